"""Arena-Hard-Auto v0.1 scores from local verdicts vs the published ones:
an alias of `rmlab arena-hard-fidelity [n_rounds=1000]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("arena_hard_fidelity")
