"""Best-of-n and overoptimization curves: python scripts/best_of_n.py policy=<spec> task=<task> reward_models.<name>=<spec>"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.policy_eval.best_of_n import best_of_n


@hydra.main(version_base="1.3", config_path="../conf", config_name="best_of_n")
def main(cfg: DictConfig) -> None:
    best_of_n(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
