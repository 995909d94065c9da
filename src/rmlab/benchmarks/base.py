"""What every benchmark provides to the evaluator (:func:`rmlab.rm_eval.evaluate.evaluate_rm`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rmlab.utils.registry import Registry


@dataclass(frozen=True)
class ScoreRequest:
    prompt: str
    response: str
    label: str  # names the record in error messages, e.g. "chat/id=17/chosen/concise"


@dataclass(frozen=True)
class Comparison:
    """One chosen-vs-rejected comparison the benchmark's metric counts, for judges that compare two responses (or
    rate each), with the responses as the benchmark shows them to a judge."""

    prompt: str | tuple
    chosen: str
    rejected: str
    label: str  # e.g. "chat/id=17/chosen=concise/rejected=detailed_plain"
    chosen_label: str  # the responses' own labels, as in :class:`ScoreRequest`
    rejected_label: str


class Benchmark(Protocol):
    title: str  # display name in tables ("RM-Bench")
    caption: str  # what its regenerated table shows (make-tables)
    order: int  # its place among the benchmarks in tables and comparisons (optional: without it, last)

    def load(self) -> tuple[list, dict]: ...  # items, provenance (incl. data_fingerprint)

    def requests(self, items: list) -> list[ScoreRequest]: ...

    def missing(self, items: list) -> list[str]: ...  # what the loaded data lack of the whole benchmark

    def compute(
        self, items: list, scores: np.ndarray, *, n_boot: int, confidence: float, seed: int
    ) -> tuple[dict, list[dict]]: ...  # metrics, per-sample rows

    def comparisons(self, items: list) -> list[Comparison]: ...  # what a judge decides, in a fixed order

    def compute_comparisons(
        self,
        items: list,
        outcomes: Sequence[str],
        *,
        n_boot: int,
        confidence: float,
        seed: int,
        preferences: Sequence[tuple] | None = None,
    ) -> tuple[dict, list[dict]]: ...  # the same metrics from one judge outcome per comparison (metrics.judge); a

    # pairwise judge also passes each order's preference, for a rule that reads them apart (JudgeBench's counter)

    def table(self, metrics: dict, model_name: str) -> str: ...

    def figures(self, metrics: dict, model_name: str, out_dir: Path) -> list[Path]: ...

    def log_scalars(self, metrics: dict) -> dict[str, float]: ...

    # what the analysis layer reads from a finished run's metrics.json (compare, make-tables, correlation and
    # best-of-n studies, report card): none of it names a benchmark
    def headline(self, metrics: dict) -> tuple[float | None, bool]: ...  # the headline value, and whether complete

    def columns(self, metrics: dict) -> dict[str, str]: ...  # table column -> formatted cell, the same keys always

    def group_score(self, metrics: dict, spec) -> float | None: ...  # one group's score (correlation study specs)

    # optional: the published headline per model, from ../shared/reference (report card reference rows); and the
    # headline's interval, where the metric has one
    def published(self, reference_dir: Path) -> dict[str, float]: ...

    def headline_ci(self, metrics: dict) -> list[float] | None: ...

    # optional: each scored item's outcome from the run's per-sample rows (scores.jsonl), keyed by (cluster, item),
    # for paired comparisons of two models (rmlab.metrics.paired): 1 = ranked right, 0 = not, or a share
    def item_outcomes(self, rows: list[dict]) -> dict[tuple[str, str], float]: ...


def read_reference(reference_dir: Path, name: str) -> list[dict]:
    """Rows of ``<reference_dir>/<name>`` (a CSV whose rows name their source); none when the file is absent."""
    import csv

    path = Path(reference_dir) / name
    return list(csv.DictReader(path.open(encoding="utf-8"))) if path.is_file() else []


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage cell; ``—`` when missing."""
    return MISSING if x is None else f"{100 * x:.{digits}f}"


MISSING = "—"


BENCHMARKS: Registry[type] = Registry("benchmark")
