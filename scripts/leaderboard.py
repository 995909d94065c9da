"""RewardMATH / RewardBench-math leaderboard from published score dumps: python scripts/leaderboard.py"""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.leaderboard import write_leaderboard
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="leaderboard")
def main(cfg: DictConfig) -> None:
    write_leaderboard(cfg)


if __name__ == "__main__":
    run(main)
