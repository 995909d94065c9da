"""Arena-Hard-Auto v0.1 scores from local verdicts vs the published ones: python scripts/arena_hard_fidelity.py"""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.arena_hard import write_arena_hard_fidelity
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="arena_hard_fidelity")
def main(cfg: DictConfig) -> None:
    write_arena_hard_fidelity(cfg)


if __name__ == "__main__":
    run(main)
