"""Spread of a reward model's scores over a policy's own samples:
an alias of `rmlab reward-signal reward_model=<RM dir> [policy=<dir>]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("reward_signal")
