"""Spread of a reward model's scores over a policy's samples: python scripts/reward_signal.py reward_model=<RM dir>"""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.reward_signal import reward_signal
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="reward_signal")
def main(cfg: DictConfig) -> None:
    reward_signal(cfg)


if __name__ == "__main__":
    run(main, groups=("policy",))
