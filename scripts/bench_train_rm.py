"""RM training throughput, ours vs TRL's RewardTrainer: python scripts/bench_train_rm.py"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.training.throughput import benchmark


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench_train_rm")
def main(cfg: DictConfig) -> None:
    benchmark(cfg)


if __name__ == "__main__":
    run(main)
