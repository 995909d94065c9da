"""Models side by side on three benchmarks, with rank correlations: python scripts/compare_benchmarks.py runs=..."""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.compare import compare
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="compare")
def main(cfg: DictConfig) -> None:
    compare(cfg.runs, cfg.paths.output_dir, n_boot=cfg.n_boot, seed=cfg.seed)


if __name__ == "__main__":
    run(main)
