"""Agreement of a refusal labeler with the XSTest authors' labels: python scripts/xstest_agreement.py [labeler=judge]"""

import hydra
from omegaconf import DictConfig

from rmlab.cli import run
from rmlab.policy_eval.refusal_fidelity import report_agreement


@hydra.main(version_base="1.3", config_path="../conf", config_name="xstest_agreement")
def main(cfg: DictConfig) -> None:
    report_agreement(cfg)


if __name__ == "__main__":
    run(main)
