"""Train a classifier reward model: python scripts/train_rm.py preference=hh_rlhf model=<backbone> recipe=rm"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.training.train_rm import train_reward_model


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_rm")
def main(cfg: DictConfig) -> None:
    train_reward_model(cfg)


if __name__ == "__main__":
    run(main)
