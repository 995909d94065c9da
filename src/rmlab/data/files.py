"""Reading record files: a JSON list, or JSON lines, optionally gzip-compressed; errors name file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from rmlab.data.errors import DataValidationError

DATA_FILES = ("*.parquet", "*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz")


def data_files(directory: str | Path | None) -> list[Path]:
    """The record files of ``directory`` that :func:`read_records` reads (a Hub dataset's parquet shards or a JSON
    export), by kind then name; none when it is absent."""
    if not directory or not Path(directory).is_dir():
        return []
    return [p for glob in DATA_FILES for p in sorted(Path(directory).glob(glob)) if p.is_file()]


def read_records(path: str | Path) -> list:
    """Records of ``*.parquet`` (a Hub dataset's shard), ``*.json`` (a list), ``*.jsonl``, or a JSON one with
    ``.gz``."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
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
