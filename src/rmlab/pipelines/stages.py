"""Run one stage of a pipeline, or reuse it: a stage is an entry point's config (its overrides) plus the library
function the entry point calls. Its directory is named by a hash of the overrides that change its result, so a
finished stage is found again by any later pipeline that asks for the same thing, and a changed setting never
reuses a stale result. A stage is finished when its ``done`` file exists (written last by every stage)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)


def stage_dir(root: str | Path, name: str, overrides: Sequence[str]) -> Path:
    """``<root>/<name>-<hash of the overrides>``."""
    return Path(root) / f"{name}-{stable_hash(sorted(overrides), length=10)}"


def run_stage(entry: str, overrides: Sequence[str], out_dir: Path, fn: Callable[[DictConfig], object], *,
              done: str, runtime: Sequence[str] = ()) -> dict:
    """Reuse ``out_dir/done`` when it exists, else compose ``conf/<entry>.yaml`` with ``overrides`` (plus
    ``runtime`` overrides that do not change the result: logger, progress bars), run ``fn`` with its outputs in
    ``out_dir``, and return the ``done`` file's content."""
    from rmlab.cli import compose_config, rewrite_model_overrides

    marker = out_dir / done
    if marker.is_file():
        log.info("stage %s: reusing %s", entry, out_dir)
        return json.loads(marker.read_text())
    log.info("stage %s -> %s (%s)", entry, out_dir, " ".join(overrides))
    cfg = compose_config(entry, rewrite_model_overrides([*overrides, *runtime]))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "stage_overrides.json").write_text(json.dumps({"entry": entry, "overrides": list(overrides)}, indent=1))
    fn(cfg)
    if not marker.is_file():
        raise RuntimeError(f"stage {entry} finished without writing {marker}")
    return json.loads(marker.read_text())
