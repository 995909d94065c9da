"""A few minutes on a GPU: scoring, generation, training and throughput checks:
an alias of `rmlab gpu-check [model=<dir>]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("gpu_check")
