"""Hydra callbacks: a summary table of a ``-m`` sweep, written next to its runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)

# (file in a job directory, key path, column name): the headline numbers of each stage
_COLUMNS = [
    ("train_metrics.json", ("heldout", "accuracy"), "heldout_acc"),
    ("train_metrics.json", ("heldout", "ci"), "heldout_ci"),
    ("train_metrics.json", ("train", "tokens_per_second"), "train_tok_s"),
    ("metrics.json", ("benchmark",), "benchmark"),
    ("metrics.json", ("overall",), "overall"),
    ("metrics.json", ("partial_overall", "value"), "partial_overall"),
    ("metrics.json", ("accuracy",), "accuracy"),
    ("metrics.json", ("mrr",), "mrr"),
]


def _get(obj, path):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def summarize_sweep(sweep_dir: str | Path) -> list[dict]:
    rows = []
    for job in sorted(
        (p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    ):
        overrides_file = job / ".hydra" / "overrides.yaml"
        row = {
            "job": int(job.name),
            "overrides": " ".join(OmegaConf.load(overrides_file)) if overrides_file.is_file() else "",
        }
        for fname, path, col in _COLUMNS:
            f = job / fname
            if f.is_file():
                value = _get(json.loads(f.read_text()), path)
                if value is not None:
                    row[col] = value
        rows.append(row)
    return rows


class SweepSummary(Callback):
    """After a multirun: ``<sweep dir>/sweep_summary.{json,md}``, one row per job with its overrides."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summarize_sweep(sweep_dir)
        cols = ["job", "overrides"] + [c for _, _, c in _COLUMNS if any(c in r for r in rows)]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            cells = [r.get(c) for c in cols]
            lines.append(
                "| "
                + " | ".join("" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in cells)
                + " |"
            )
        write_json(sweep_dir / "sweep_summary.json", rows)
        write_text(sweep_dir / "sweep_summary.md", "\n".join(lines) + "\n")
        log.info("sweep summary: %s", sweep_dir / "sweep_summary.md")
