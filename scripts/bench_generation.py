"""Batched generation vs per-prompt generate, and sandbox overhead: python scripts/bench_generation.py"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.policy_eval.bench import benchmark


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench_generation")
def main(cfg: DictConfig) -> None:
    benchmark(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
