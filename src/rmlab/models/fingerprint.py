"""Content fingerprints of model directories, memoised so that a 26 GB checkpoint is hashed once.

The fingerprint is the SHA-256 of ``config.json`` and of every weight file; the memo is keyed by each file's
absolute path, size and modification time, so a retrained model in the same directory gets a new fingerprint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rmlab.utils.hashing import file_sha256, stable_hash
from rmlab.utils.io import write_json

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def fingerprint_weights(model_dir: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> str:
    """Fingerprint of a model directory's config and weights (not its tokenizer: formatting is keyed apart)."""
    root = Path(model_dir)
    files = sorted(
        p for p in root.iterdir() if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json")
    )
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"{root}: no weight files ({', '.join(_WEIGHT_SUFFIXES)})")
    memo_path = Path(cache_dir) / "fingerprints.json" if cache_dir else None
    memo = {}
    if memo_path and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except json.JSONDecodeError:
            memo = {}
    digests, changed = [], False
    for p in files:
        st = p.stat()
        key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in memo:
            memo[key] = file_sha256(p)
            changed = True
        digests.append((p.name, memo[key]))
    if memo_path and changed:
        write_json(memo_path, memo)
    return stable_hash(digests)
