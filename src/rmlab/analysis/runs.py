"""Collect finished runs (directories holding a ``metrics.json``) and put them side by side."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from rmlab.data.rm_bench import METRIC_DOMAINS


def find_runs(pattern, marker: str = "metrics.json") -> list[Path]:
    """Run directories under ``pattern`` (a directory, searched recursively, or a glob; or a list of these)
    holding ``marker`` (``metrics.json`` for evaluations, ``summary.json`` for policy evaluations)."""
    if not isinstance(pattern, (str, os.PathLike)):  # a list (or a Hydra ListConfig) of directories and globs
        return sorted({run for p in pattern for run in find_runs(p, marker)})
    pattern = str(pattern)
    if os.path.isdir(pattern):
        files = sorted(Path(pattern).rglob(marker))
    else:
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).name == marker)
        files += sorted(Path(p) / marker for p in glob.glob(pattern) if (Path(p) / marker).is_file())
    return sorted({f.parent for f in files})


def runs_value(runs) -> str | list[str]:
    """A ``runs`` config value as plain data: one directory or glob, or a list of them (JSON-ready)."""
    if isinstance(runs, (str, os.PathLike)):
        return str(runs)
    return [str(r) for r in runs]


def load_metrics(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def rm_bench_rows(runs: list[Path]) -> list[dict]:
    """One row per RM-Bench run: model, per-domain averages, easy / normal / hard, overall (or partial)."""
    rows = []
    for run in runs:
        m = load_metrics(run)
        if m.get("benchmark") != "rm_bench":
            continue
        row = {"model": m["model"], "run": str(run)}
        for d in METRIC_DOMAINS:
            row[d] = m["domains"][d]["avg"] if d in m["domains"] else None
        row.update(m["difficulty"])
        row["overall"] = m["overall"]
        row["partial_overall"] = m["partial_overall"]["value"]
        row["partial_domains"] = ",".join(m["partial_overall"]["domains"])
        rows.append(row)
    return rows
