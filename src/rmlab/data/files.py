"""Reading record files: a JSON list, or JSON lines, optionally gzip-compressed; errors name file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from rmlab.data.errors import DataValidationError


def read_records(path: str | Path) -> list:
    """Records of ``*.json`` (a list), ``*.jsonl``, or either with ``.gz``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.with_suffix("") if path.suffix == ".gz" else path
    with opener(path, "rt", encoding="utf-8") as fh:
        if stem.suffix == ".jsonl":
            rows = []
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise DataValidationError(f"{path}, line {lineno}: not valid JSON ({err})") from err
            return rows
        try:
            data = json.load(fh)
        except json.JSONDecodeError as err:
            raise DataValidationError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, list):
        raise DataValidationError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data
