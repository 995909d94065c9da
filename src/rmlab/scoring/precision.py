"""How far a reward model's score can move between two runs of the same evaluation, and which comparisons that
can flip ("fragile").

A score is a floating-point reduction over thousands of terms; another batch size, padding, packing, CPU kernel path
(``ATEN_CPU_CAPABILITY``), GPU or library version sums them in another order, and the score moves at rounding level.
A benchmark's chosen-vs-rejected comparison whose margin is inside that movement may flip on another machine: the
evaluator counts those comparisons next to the accuracy (``metrics.json`` ``fragile``), so that two reward models
whose accuracies differ by less than the fragile share are not ranked on noise.

The bound is relative to ``max(1, |score|)`` and per dtype (:data:`RELATIVE_BOUND`): the largest movement measured
by ``rmlab measure-score-bounds`` (:mod:`rmlab.scoring.score_bounds`) on SmolLM2-135M-Instruct (classifier and implicit rewards; batch sizes 1, 2,
7 and all, packed and unpacked, three orders; the native and the ``default`` CPU kernel paths), doubled. The
derived fp32 bound (``docs/numerics.md``) is far looser; the measured one is what rounding does in practice. Deeper
models move more: ``scoring.fragile_bound`` sets another relative bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RELATIVE_BOUND = {  # see the module docstring; docs/numerics.md has the measurements
    "float32": 2.0e-5,
    "bfloat16": 6.0e-2,
    "float16": 1.0e-2,
    "exact": 0.0,  # the style baselines' counts: integers, the same on every machine
}


def score_tolerance(dtype: str, scores, relative: float | None = None) -> np.ndarray:
    """Per score, how far it may move between two runs: ``relative * max(1, |score|)``."""
    if relative is None:
        if dtype not in RELATIVE_BOUND:
            raise ValueError(f"no score bound for dtype {dtype!r}; known: {sorted(RELATIVE_BOUND)}")
        relative = RELATIVE_BOUND[dtype]
    return relative * np.maximum(1.0, np.abs(np.asarray(scores, dtype=np.float64)))


def fragile_count(
    chosen: Sequence[float], rejected: Sequence[float], dtype: str, relative: float | None = None
) -> dict:
    """How many comparisons have a margin within the two scores' tolerances (either could flip the outcome)."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    tol = score_tolerance(dtype, c, relative) + score_tolerance(dtype, r, relative)
    fragile = (np.abs(c - r) <= tol) & (tol > 0)  # exact scores (a zero bound): an equal pair is a tie, not fragile
    n = int(c.size)
    return {
        "comparisons": n,
        "fragile": int(fragile.sum()),
        "share": float(fragile.mean()) if n else 0.0,
        "dtype": dtype,
        "relative_bound": float(relative if relative is not None else RELATIVE_BOUND[dtype]),
        "note": "comparisons whose margin is within rounding of the scores: they may flip on another machine, "
        "batch size or kernel path (docs/numerics.md)",
    }


def fragile_comparisons(benchmark, items: list, requests: list, scores: np.ndarray, dtype: str, relative=None) -> dict:
    """:func:`fragile_count` over every comparison the benchmark's metrics count (``benchmark.comparisons``), the
    scores found by the requests' labels."""
    by_label = {r.label: float(s) for r, s in zip(requests, scores, strict=True)}
    comps = benchmark.comparisons(items)
    missing = [c.label for c in comps if c.chosen_label not in by_label or c.rejected_label not in by_label]
    if missing:
        raise KeyError(f"comparisons without a scored response: {missing[:3]}")
    return fragile_count(
        [by_label[c.chosen_label] for c in comps], [by_label[c.rejected_label] for c in comps], dtype, relative
    )


def fragile_line(fragile: dict) -> str:
    """One line for the printed table."""
    return (
        f"Fragile comparisons: {fragile['fragile']} of {fragile['comparisons']} ({100 * fragile['share']:.2f}%) have a "
        f"margin within {fragile['dtype']} rounding (relative bound {fragile['relative_bound']:.0e}); accuracy "
        f"differences smaller than this share may not hold on another machine."
    )
