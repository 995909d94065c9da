"""RM training throughput, ours vs TRL's RewardTrainer: an alias of `rmlab bench-train-rm [bench.steps=8]`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("bench_train_rm")
