"""Reward-model benchmarks vs their policies' downstream scores: python scripts/correlate.py runs=<dir or glob>"""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.correlation_study import correlate
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="correlate")
def main(cfg: DictConfig) -> None:
    correlate(cfg)


if __name__ == "__main__":
    run(main)
