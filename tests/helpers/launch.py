"""Running the entry points in child processes, as a user or a cluster launcher would (multi-process tests)."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Offline, one thread per process (the machines running these have 2 cores), outputs under ``tmp_path``."""
    return {
        **os.environ,
        "RMLAB_LOG_DIR": str(tmp_path / "logs"),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }


def run_entry(cmd: list[str], env: dict[str, str], timeout: int = 600) -> float:
    """Run ``cmd`` from the repository root; fail with the end of its stderr; return its wall time in seconds."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert res.returncode == 0, f"{' '.join(cmd[:4])} ... failed:\n{res.stderr[-4000:]}"
    return time.perf_counter() - t0


def csv_column(path: Path, column: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every row of a Lightning ``metrics.csv`` that has ``column``."""
    rows = list(csv.DictReader(path.read_text().splitlines()))
    return [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
