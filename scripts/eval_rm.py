"""Score a reward model on RM-Bench, RewardBench or RewardMATH:
an alias of `rmlab eval-rm model=<name | hub id | dir> benchmark=rm_bench`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("eval_rm")
