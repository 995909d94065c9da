"""Train a DPO model with TRL: python scripts/train_dpo.py preference=hh_rlhf model=<sft model>"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.training.train_dpo import train_dpo


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_dpo")
def main(cfg: DictConfig) -> None:
    train_dpo(cfg)


if __name__ == "__main__":
    run(main)
