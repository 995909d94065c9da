"""Run one stage of a pipeline, or reuse it: a stage is an entry point's config (its overrides) plus the library
function the entry point calls. Its directory is named by a hash of the overrides that change its result, so a
finished stage is found again by any later pipeline that asks for the same thing, and a changed setting never
reuses a stale result. A stage is finished when its ``done`` file exists (written last by every stage)."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

from rmlab.utils.hashing import stable_hash
from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


def stage_dir(root: str | Path, name: str, overrides: Sequence[str]) -> Path:
    """``<root>/<name>-<hash of the overrides>``."""
    return Path(root) / f"{name}-{stable_hash(sorted(overrides), length=10)}"


def run_stage(entry: str, overrides: Sequence[str], out_dir: Path, fn: Callable[[DictConfig], object] | None, *,
              done: str, runtime: Sequence[str] = (), groups: tuple[str, ...] = ("model",),
              launch: Sequence[str] = ()) -> dict:
    """Reuse ``out_dir/done`` when it exists, else compose ``conf/<entry>.yaml`` with ``overrides`` (plus
    ``runtime`` overrides that do not change the result: logger, progress bars), run ``fn`` with its outputs in
    ``out_dir``, and return the ``done`` file's content.

    With ``launch`` (e.g. ``["accelerate", "launch", "--config_file", "conf/accelerate/deepspeed_zero3.yaml"]``) the
    stage runs as ``<launch> scripts/<entry>.py <overrides>`` in a child process instead (several GPUs; ``fn`` is
    then unused). Either way ``stage.json`` records the overrides and the stage's wall time."""
    from rmlab.cli import ROOT, compose_config, rewrite_model_overrides

    marker = out_dir / done
    if marker.is_file():
        log.info("stage %s: reusing %s", entry, out_dir)
        return json.loads(marker.read_text())
    log.info("stage %s -> %s (%s)", entry, out_dir, " ".join(overrides))
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"entry": entry, "overrides": list(overrides), "launch": list(launch)}
    write_json(out_dir / "stage.json", record)
    start = time.perf_counter()
    if launch:
        cmd = [*launch, str(ROOT / "scripts" / f"{entry}.py"), *overrides, *runtime, f"hydra.run.dir={out_dir}"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    else:
        cfg = compose_config(entry, rewrite_model_overrides([*overrides, *runtime], groups))
        with open_dict(cfg):
            cfg.paths.output_dir = str(out_dir)
        fn(cfg)
    if not marker.is_file():
        raise RuntimeError(f"stage {entry} finished without writing {marker}")
    write_json(out_dir / "stage.json", {**record, "wall_seconds": time.perf_counter() - start})
    return json.loads(marker.read_text())


def stage_record(out_dir: Path) -> dict:
    """What ``run_stage`` recorded for a stage: its entry, overrides and wall time (empty if none)."""
    path = Path(out_dir) / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else {}
