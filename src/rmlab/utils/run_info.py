"""What every metrics file records about how it was produced: versions, git commit, host, time."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

_PACKAGES = (
    "rmlab",
    "torch",
    "transformers",
    "trl",
    "pytorch-lightning",
    "hydra-core",
    "datasets",
    "numpy",
    "scipy",
    "wandb",
)


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root: str | Path) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def run_info(root: str | Path) -> dict:
    return {
        "time_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "git_commit": git_commit(root),
        "versions": package_versions(),
    }
