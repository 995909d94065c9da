"""Batched generation vs per-prompt generate; sandbox overhead:
an alias of `rmlab bench-generation [bench.n_prompts=32]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("bench_generation")
