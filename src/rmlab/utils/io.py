"""Atomic writes: a reader sees either the old file or the whole new one, never a partial file.

Every file goes the same way (:func:`write_bytes`): the whole content is written to a temporary file beside the
target (a name no reader looks for: ``.<name>.<random>.tmp``), flushed to the disk (``fsync``), renamed over the
target (``os.replace``, atomic on POSIX file systems) and the rename itself made durable (``fsync`` of the
directory). A process killed at any point leaves the old file or the new one, plus at most a stray ``.tmp``.
Directories (a saved model) go the same way through :func:`atomic_dir`.

A full disk (``ENOSPC``, or a quota: ``EDQUOT``) raises :class:`DiskFullError`, one line naming the file and the
free space; the temporary file is removed and the target left as it was, so caches stay valid.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(OSError):
    """No space left (or quota exceeded) while writing ``path``; nothing at ``path`` was replaced."""

    def __init__(self, path: str | os.PathLike, err: OSError):
        try:
            free = f"{shutil.disk_usage(Path(path).parent).free} bytes free there"
        except OSError:
            free = "free space unknown"
        super().__init__(err.errno, f"no space left on device writing {path} ({free}); the file was left as it was")
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.strerror)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable; a no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in _FULL:
            raise DiskFullError(path, err) from err
        raise
    fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write JSON atomically; NaN and infinity are refused (they are not JSON)."""
    return write_text(path, json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False))


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    return write_text(path, "".join(json.dumps(row, allow_nan=False, ensure_ascii=False) + "\n" for row in rows))


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a matplotlib figure atomically as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_dir(d) as tmp:`` fill ``tmp``; on success every file in it is flushed to the disk and ``tmp``
    replaces ``d`` (an existing ``d`` is removed first); on an error ``tmp`` is removed and ``d`` left as it was."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_dir(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in _FULL:
            raise DiskFullError(out_dir, err) from err
        raise
    fsync_dir(out_dir.parent)
