"""What ``resume=`` means, the same for every trainer (RM, DPO, PPO).

- ``null``: start fresh (a run directory is new each time unless ``hydra.run.dir`` says otherwise);
- ``last``: continue from this run directory's newest checkpoint; **an error** when there is none, naming the
  directory searched, because a user who asks to continue and silently gets a fresh run reports the wrong run;
- ``auto``: continue from the newest checkpoint when there is one, else start fresh, and say which in the log and
  in the run's outputs (pipelines use this: a stage that was killed continues, a new one starts);
- a path: continue from that checkpoint (an error when it does not exist).

Each trainer passes its own way of finding its newest checkpoint; :func:`resolve_resume` returns the checkpoint
(or None) and a record for ``train_metrics.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MODES = ("null", "last", "auto", "<checkpoint path>")


class NoCheckpointError(FileNotFoundError):
    """``resume=last`` found nothing to continue from."""


def resolve_resume(
    resume: str | None, searched: Path, newest: Callable[[Path], Path | None], *, what: str
) -> tuple[Path | None, dict]:
    """The checkpoint to continue from and a record of the decision.

    :param searched: the directory the newest checkpoint is looked for in (named in errors and records).
    :param newest: returns the newest checkpoint under ``searched``, or None.
    :param what: the kind of checkpoint, for messages (``Lightning``, ``HF Trainer``, ``PPO``).
    """
    mode = "null" if resume in (None, "", "null") else str(resume)
    if mode == "null":
        return None, {"mode": "null", "resumed_from": None}
    if mode in ("last", "auto"):
        ckpt = newest(searched) if searched.is_dir() else None
        if ckpt is None and mode == "last":
            raise NoCheckpointError(
                f"resume=last: no {what} checkpoint in {searched}; resume=auto starts fresh when there is none, "
                f"resume=<path> continues from a given checkpoint"
            )
        if ckpt is None:
            log.info("resume=auto: no %s checkpoint in %s; starting fresh", what, searched)
            return None, {"mode": "auto", "resumed_from": None, "started_fresh": True, "searched": str(searched)}
        log.info("resume=%s: continuing from %s", mode, ckpt)
        return ckpt, {"mode": mode, "resumed_from": str(ckpt), "started_fresh": False, "searched": str(searched)}
    path = Path(mode)
    if not path.exists():
        raise NoCheckpointError(f"resume={mode}: no such {what} checkpoint (valid values: {', '.join(MODES)})")
    return path, {"mode": "path", "resumed_from": str(path), "started_fresh": False}
