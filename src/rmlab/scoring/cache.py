"""On-disk score cache: one directory per (model fingerprint, formatting, scorer settings), one shard per batch.

Entries are keyed by a hash of the (prompt, response) text, so the data is part of the key: any benchmark or
subset that contains the same pair reuses its score. Shards are written atomically after every batch, so a run
killed at any point loses at most the batch in flight, and a restarted run computes only what is missing.

Several runs may share one cache directory at the same time (a ``-m`` sweep under a parallel launcher, two users
on one cache): every shard gets a name no other writer can pick (time, host, process and a random part), and the
index of a cache is its directory listing, which changes only by atomic renames, so a reader sees each shard
whole or not at all and no writer ever replaces another's shard. When two runs score the same pair, both write
it; shards are read in name order and the first value read wins, so every later run sees one value per key.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


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
        self.refresh()

    def refresh(self) -> int:
        """Read shards written since the last read (by this or another process); return how many were new."""
        new = 0
        for shard in sorted(self.dir.glob("shard-*.json")):
            if shard.name in self._read:
                continue
            try:
                entries = json.loads(shard.read_text())
            except json.JSONDecodeError:  # cannot happen with atomic writes, but never trust a cache blindly
                log.warning("ignoring unreadable cache shard %s", shard)
                continue
            for k, v in entries.items():
                self.scores.setdefault(k, v)
            self._read.add(shard.name)
            new += 1
        return new

    def __contains__(self, key: str) -> bool:
        return key in self.scores

    def __len__(self) -> int:
        return len(self.scores)

    def get(self, key: str):
        return self.scores[key]

    def add(self, entries: dict) -> None:
        """Record a batch of scores durably (one atomic shard under a name no other writer can take)."""
        name = _shard_name()
        write_json(self.dir / name, entries)
        self._read.add(name)
        for k, v in entries.items():
            self.scores.setdefault(k, v)
