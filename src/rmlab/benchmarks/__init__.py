"""Benchmarks as plug-ins: each says which pairs to score (or compare) and how scores (or a judge's outcomes)
become metrics.

Importing this package registers the built-in benchmarks in :data:`BENCHMARKS`.
"""

from rmlab.benchmarks import judgebench, ppe, reward_bench, reward_bench_2, reward_math, rm_bench, rmb  # noqa: F401  (register themselves)
from rmlab.benchmarks.base import BENCHMARKS, Comparison, ScoreRequest

__all__ = ["BENCHMARKS", "Comparison", "ScoreRequest"]
