"""What every benchmark provides to the evaluator (:func:`rmlab.rm_eval.evaluate.evaluate_rm`)."""

from __future__ import annotations

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


class Benchmark(Protocol):
    def load(self) -> tuple[list, dict]: ...  # items, provenance (incl. data_fingerprint)

    def requests(self, items: list) -> list[ScoreRequest]: ...

    def missing(self, items: list) -> list[str]: ...  # what the loaded data lack of the whole benchmark

    def compute(
        self, items: list, scores: np.ndarray, *, n_boot: int, confidence: float, seed: int
    ) -> tuple[dict, list[dict]]: ...  # metrics, per-sample rows

    def table(self, metrics: dict, model_name: str) -> str: ...

    def figures(self, metrics: dict, model_name: str, out_dir: Path) -> list[Path]: ...

    def log_scalars(self, metrics: dict) -> dict[str, float]: ...


BENCHMARKS: Registry[type] = Registry("benchmark")
