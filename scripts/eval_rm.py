"""Score a reward model on a benchmark: python scripts/eval_rm.py model=<name | hub id | dir> benchmark=rm_bench"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.rm_eval.evaluate import evaluate_rm


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval_rm")
def main(cfg: DictConfig) -> None:
    evaluate_rm(cfg)


if __name__ == "__main__":
    run(main)
