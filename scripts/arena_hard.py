"""A policy's Arena-Hard-Auto v0.1 score, raw and style-controlled (RM-Bench Sec. 5.1):
python scripts/arena_hard.py policy=<hub id | dir | name> [model@judge=judge_endpoint judge.judge.endpoint.model=...]"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.policy_eval.arena_hard import evaluate_arena_hard


@hydra.main(version_base="1.3", config_path="../conf", config_name="arena_hard")
def main(cfg: DictConfig) -> None:
    evaluate_arena_hard(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
