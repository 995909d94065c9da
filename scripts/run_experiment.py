"""Run a multi-stage experiment: python scripts/run_experiment.py experiment=dpo_vs_classifier"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.pipelines.registry import PIPELINES


@hydra.main(version_base="1.3", config_path="../conf", config_name="run_experiment")
def main(cfg: DictConfig) -> None:
    PIPELINES[cfg.pipeline.name](cfg)


if __name__ == "__main__":
    run(main)
