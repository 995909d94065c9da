"""Scoring throughput vs a RewardBench-style pipeline and the matmul rate:
an alias of `rmlab bench-scoring [bench.prompts_per_domain=20]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("bench_scoring")
