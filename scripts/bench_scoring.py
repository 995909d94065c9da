"""Scoring throughput vs a RewardBench-style pipeline and vs the matmul rate: python scripts/bench_scoring.py"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.scoring.throughput import benchmark


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench_scoring")
def main(cfg: DictConfig) -> None:
    benchmark(cfg)


if __name__ == "__main__":
    run(main)
