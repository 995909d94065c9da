"""Percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13)."""

from __future__ import annotations

import numpy as np


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> list[float]:
    """The central ``confidence`` interval of bootstrap replicates, as ``[low, high]``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(np.asarray(samples, dtype=np.float64), [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def bootstrap_mean_interval(
    values: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> list[float]:
    """Interval for the mean of ``values`` by resampling them with replacement."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return percentile_interval(values[idx].mean(axis=1), confidence)
