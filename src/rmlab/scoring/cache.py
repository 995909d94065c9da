"""On-disk score cache: one directory per (model fingerprint, formatting, scorer settings), one shard per batch.

Entries are keyed by a hash of the (prompt, response) text, so the data is part of the key: any benchmark or
subset that contains the same pair reuses its score. Shards are written atomically after every batch, so a run
killed at any point loses at most the batch in flight, and a restarted run computes only what is missing.

Several runs may share one cache directory at the same time (a ``-m`` sweep under a parallel launcher, two users
on one cache): every shard gets a name no other writer can pick (time, host, process and a random part), and the
index of a cache is its directory listing, which changes only by atomic renames, so a reader sees each shard
whole or not at all and no writer ever replaces another's shard. When two runs score the same pair, both write
it; shards are read in name order and the first value read wins, so every later run sees one value per key.

A shard is never used unchecked: it holds its entry count and the SHA-256 of its entries
(``{"count": n, "sha256": ..., "entries": {...}}``), and a shard that does not parse, or whose count or checksum
disagrees (a truncated or corrupted file: a disk error, a copy cut short, a hand edit), is reported with its path,
set aside as ``<shard>.corrupt`` and its entries recomputed by whoever needs them (:attr:`ScoreCache.corrupt`).
Shards written before the checksum (a plain ``{key: value}`` object) are read as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from rmlab.utils.hashing import stable_hash
from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


_SHARD_FIELDS = {"count", "sha256", "entries"}


def shard_checksum(entries: dict) -> str:
    """SHA-256 of a shard's entries (canonical JSON: sorted keys; floats round-trip through JSON exactly)."""
    return stable_hash(entries, length=64)


def _shard_name() -> str:
    host = socket.gethostname().replace("-", "_")[:32] or "host"
    return f"shard-{time.time_ns():020d}-{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}.json"


class ScoreCache:
    def __init__(self, root: str | os.PathLike, key: str, describe: dict | None = None):
        self.dir = Path(root) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        if describe is not None and not (self.dir / "key.json").is_file():
            write_json(self.dir / "key.json", describe)  # same content from every writer; the rename is atomic
        self.scores: dict = {}
        self._read: set[str] = set()  # shard names already read
        self.corrupt: list[str] = []  # shards found corrupt and set aside (their paths)
        self.refresh()

    def refresh(self) -> int:
        """Read shards written since the last read (by this or another process); return how many were new."""
        new = 0
        for shard in sorted(self.dir.glob("shard-*.json")):
            if shard.name in self._read:
                continue
            entries = self._verified(shard)
            if entries is None:
                continue
            for k, v in entries.items():
                self.scores.setdefault(k, v)
            self._read.add(shard.name)
            new += 1
        return new

    def _verified(self, shard: Path) -> dict | None:
        """The entries of ``shard`` if it is whole; else None, with the shard reported and set aside."""
        try:
            doc = json.loads(shard.read_bytes())
        except FileNotFoundError:  # set aside by another reader meanwhile
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return self._set_aside(shard, f"unreadable JSON: {err}")
        if not isinstance(doc, dict):
            return self._set_aside(shard, f"a JSON {type(doc).__name__}, not an object")
        if set(doc) != _SHARD_FIELDS:
            return doc  # a shard from before the checksum
        entries = doc["entries"]
        if not isinstance(entries, dict) or len(entries) != doc["count"]:
            found = len(entries) if isinstance(entries, dict) else "no"
            return self._set_aside(shard, f"{found} entries where {doc['count']} were written")
        if shard_checksum(entries) != doc["sha256"]:
            return self._set_aside(shard, "its entries do not match their SHA-256")
        return entries

    def _set_aside(self, shard: Path, why: str) -> None:
        log.warning("score cache: corrupt shard %s (%s); set aside, its entries will be recomputed", shard, why)
        self.corrupt.append(str(shard))
        with contextlib.suppress(FileNotFoundError):  # another reader may have set it aside first
            os.replace(shard, shard.with_name(shard.name + ".corrupt"))

    def __contains__(self, key: str) -> bool:
        return key in self.scores

    def __len__(self) -> int:
        return len(self.scores)

    def get(self, key: str):
        return self.scores[key]

    def add(self, entries: dict) -> None:
        """Record a batch of scores durably (one atomic shard under a name no other writer can take)."""
        name = _shard_name()
        write_json(self.dir / name, {"count": len(entries), "sha256": shard_checksum(entries), "entries": entries})
        self._read.add(name)
        for k, v in entries.items():
            self.scores.setdefault(k, v)
