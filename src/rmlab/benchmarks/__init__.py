"""Benchmarks as plug-ins: each says which pairs to score and how scores become metrics.

Importing this package registers the built-in benchmarks in :data:`BENCHMARKS`.
"""

from rmlab.benchmarks import reward_bench, reward_math, rm_bench  # noqa: F401  (register themselves)
from rmlab.benchmarks.base import BENCHMARKS, ScoreRequest

__all__ = ["BENCHMARKS", "ScoreRequest"]
