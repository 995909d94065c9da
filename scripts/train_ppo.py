"""PPO-train a policy with TRL: python scripts/train_ppo.py reward_model=<RM dir> policy=<sft model>"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.training.train_ppo import train_ppo


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_ppo")
def main(cfg: DictConfig) -> None:
    train_ppo(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
