"""On-disk score cache: one directory per (model fingerprint, formatting, scorer settings), one shard per batch.

Entries are keyed by a hash of the (prompt, response) text, so the data is part of the key: any benchmark or
subset that contains the same pair reuses its score. Shards are written atomically after every batch, so a run
killed at any point loses at most the batch in flight, and a restarted run computes only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


class ScoreCache:
    def __init__(self, root: str | os.PathLike, key: str, describe: dict | None = None):
        self.dir = Path(root) / key
        self.dir.mkdir(parents=True, exist_ok=True)
        if describe is not None and not (self.dir / "key.json").is_file():
            write_json(self.dir / "key.json", describe)  # what this cache key stands for, for humans
        self.scores: dict[str, float] = {}
        self._next = 0
        for shard in sorted(self.dir.glob("shard-*.json")):
            try:
                self.scores.update(json.loads(shard.read_text()))
            except json.JSONDecodeError:  # cannot happen with atomic writes, but never trust a cache blindly
                log.warning("ignoring unreadable cache shard %s", shard)
            self._next = max(self._next, int(shard.stem.split("-")[1]) + 1)

    def __contains__(self, key: str) -> bool:
        return key in self.scores

    def __len__(self) -> int:
        return len(self.scores)

    def get(self, key: str) -> float:
        return self.scores[key]

    def add(self, entries: dict[str, float]) -> None:
        """Record a batch of scores durably (one atomic shard)."""
        write_json(self.dir / f"shard-{self._next:07d}.json", entries)
        self._next += 1
        self.scores.update(entries)
