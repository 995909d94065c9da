"""Collect finished runs (directories holding a ``metrics.json``) and put them side by side."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from rmlab.benchmarks import BENCHMARKS


def find_runs(pattern, marker: str = "metrics.json") -> list[Path]:
    """Run directories under ``pattern`` (a directory, searched recursively, or a glob; or a list of these)
    holding ``marker`` (``metrics.json`` for evaluations, ``summary.json`` for policy evaluations)."""
    if not isinstance(pattern, (str, os.PathLike)):  # a list (or a Hydra ListConfig) of directories and globs
        return sorted({run for p in pattern for run in find_runs(p, marker)})
    pattern = str(pattern)
    if os.path.isdir(pattern):
        files = sorted(Path(pattern).rglob(marker))
    else:
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).name == marker)
        files += sorted(Path(p) / marker for p in glob.glob(pattern) if (Path(p) / marker).is_file())
    return sorted({f.parent for f in files})


class RunChoiceError(ValueError):
    """Runs of one model that cannot be told apart safely (they were evaluated on different data)."""


def _when(doc: dict, marker: Path) -> tuple[str, int]:
    """When a run finished: its recorded time, then its marker file's mtime (runs recorded without a time)."""
    return (str((doc.get("run") or {}).get("time_utc") or ""), marker.stat().st_mtime_ns)


def choose_runs(candidates: list[tuple[str, Path, dict]], *, data_of, what: str) -> dict[str, dict]:
    """One run per key among ``candidates`` (``(key, marker file, its content)``): the newest finished run, after
    checking that every run of the key saw the same data (``data_of(doc)``: a data fingerprint). Runs of one model
    on different data (a subsample beside the full set) are an error naming them, never a silent pick.

    :return: ``{key: {"doc", "chosen": path, "passed_over": [paths], "data": fingerprint}}``."""
    by_key: dict[str, list[tuple[Path, dict]]] = {}
    for key, marker, doc in candidates:
        by_key.setdefault(key, []).append((marker, doc))
    out = {}
    for key, found in by_key.items():
        data = {}
        for marker, doc in found:
            data.setdefault(json.dumps(data_of(doc), sort_keys=True), []).append(str(marker))
        if len(data) > 1:
            listing = "; ".join(f"data {fp}: {', '.join(paths)}" for fp, paths in data.items())
            raise RunChoiceError(
                f"{what} {key}: its runs were evaluated on different data ({listing}); "
                f"pass runs= that select the evaluation to use"
            )
        ordered = sorted(found, key=lambda md: (*_when(md[1], md[0]), str(md[0])))
        marker, doc = ordered[-1]
        out[key] = {
            "doc": doc,
            "chosen": str(marker),
            "passed_over": [str(m) for m, _ in ordered[:-1]],
            "data": data_of(doc),
        }
    return out


def runs_value(runs) -> str | list[str]:
    """A ``runs`` config value as plain data: one directory or glob, or a list of them (JSON-ready)."""
    if isinstance(runs, (str, os.PathLike)):
        return str(runs)
    return [str(r) for r in runs]


def load_metrics(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


class UnknownBenchmarkError(ValueError):
    """A run directory holds an evaluation of a benchmark this installation does not register."""


def benchmark_of(metrics: dict, where: str | os.PathLike | None = None):
    """The registered benchmark class of an ``eval_rm`` run's ``metrics.json``; an unknown one is an error naming it
    (never skipped: a table that silently drops a benchmark misleads)."""
    name = metrics.get("benchmark")
    if name not in BENCHMARKS:
        raise UnknownBenchmarkError(
            f"{where or 'metrics.json'}: benchmark {name!r} is not registered (known: {', '.join(BENCHMARKS.names())}); "
            "import the module that registers it, or leave the run out of runs="
        )
    return BENCHMARKS[name]


def eval_runs(runs) -> list[tuple[Path, dict]]:
    """Every ``eval_rm`` run under ``runs`` (a ``metrics.json`` naming a ``benchmark``), with its metrics; other
    stages' ``metrics.json`` (training, best-of-n) name none and are not evaluations."""
    out = []
    for run in find_runs(runs):
        m = load_metrics(run)
        if "benchmark" in m:
            benchmark_of(m, run / "metrics.json")
            out.append((run, m))
    return out
