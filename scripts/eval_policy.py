"""Evaluate a policy on downstream tasks: python scripts/eval_policy.py policy=<hub id | dir | name> task=<task | all>"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.policy_eval.evaluate import evaluate_policy


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval_policy")
def main(cfg: DictConfig) -> None:
    evaluate_policy(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
