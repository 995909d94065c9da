"""Stable content hashes for fingerprints and cache keys."""

from __future__ import annotations

import hashlib
import json


def stable_hash(obj: object, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), truncated to ``length`` hex digits."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def file_sha256(path, chunk: int = 1 << 22, progress_over: int = 1 << 30) -> str:
    """SHA-256 of a file's bytes, read in chunks (multi-GB checkpoints: a progress bar from ``progress_over`` bytes)."""
    import os

    from tqdm.auto import tqdm

    h = hashlib.sha256()
    size = os.path.getsize(path)
    with (
        open(path, "rb") as fh,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"hashing {os.path.basename(path)}",
            disable=size < progress_over,
        ) as bar,
    ):
        while block := fh.read(chunk):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def text_hash(*parts: str) -> str:
    """Hash of a tuple of strings, unambiguous about where one part ends."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:32]
