"""A policy's Arena-Hard-Auto v0.1 score, raw and style-controlled:
an alias of `rmlab arena-hard policy=<hub id | dir | name> max_examples=20`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("arena_hard")
