"""A few minutes on a lent GPU: scoring, generation, training and throughput checks: python scripts/gpu_check.py"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.pipelines.gpu_check import gpu_check


@hydra.main(version_base="1.3", config_path="../conf", config_name="gpu_check")
def main(cfg: DictConfig) -> None:
    gpu_check(cfg)


if __name__ == "__main__":
    run(main)
