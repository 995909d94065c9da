"""Reward models side by side on three benchmarks, with rank correlations:
an alias of `rmlab compare-benchmarks runs=<dir or glob>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("compare")
