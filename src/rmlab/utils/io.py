"""Atomic writes: a reader sees either the old file or the whole new one, never a partial file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO


def _atomic(path: str | os.PathLike, write: Callable[[IO], None], mode: str = "w") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic(path, lambda fh: fh.write(text))


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write JSON atomically; NaN and infinity are refused (they are not JSON)."""
    return _atomic(path, lambda fh: json.dump(obj, fh, indent=2, allow_nan=False, ensure_ascii=False))


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    def write(fh: IO) -> None:
        fh.writelines(json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n" for row in rows)

    return _atomic(path, write)


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a matplotlib figure atomically as PNG."""
    return _atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120, bbox_inches="tight"), mode="wb")
