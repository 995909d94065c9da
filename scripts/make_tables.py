"""The papers' tables from run outputs: python scripts/make_tables.py runs=<dir or glob>"""

import hydra
from omegaconf import DictConfig

from rmlab.analysis.tables import make_tables
from rmlab.cli import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="make_tables")
def main(cfg: DictConfig) -> None:
    make_tables(cfg)


if __name__ == "__main__":
    run(main)
