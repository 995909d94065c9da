"""Reward-model benchmark scores vs their policies' downstream scores:
an alias of `rmlab correlate runs=<dir or glob>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("correlate")
