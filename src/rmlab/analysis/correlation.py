"""Reward-model benchmark scores against their PPO policies' downstream scores (RM-Bench Sec. 5.2, Fig. 5).

One point per (reward model, task group): x = the reward model's benchmark score for that group, y = its policy's
group score. The paper reports Pearson r = 0.55 (p = 0.07) for RM-Bench and r = 0.21 (p = 0.51) for RewardBench
over 4 reward models x 3 task groups; with n = 12 points the two-sided t-test of r reproduces both p-values
(:func:`pearson_p_from_r`). Choices the paper leaves open are arguments: ``standardise`` (none, global, or within
each task group: Pearson is invariant to one global affine rescaling of x or y, not to per-group rescaling).

Statistics come from ``scipy.stats``; this module only arranges the points and the resampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

STANDARDISE = ("none", "global", "within_group")


@dataclass(frozen=True)
class Point:
    reward_model: str
    group: str  # task group: math | code | safety
    x: float  # benchmark score of the reward model for this group
    y: float  # downstream score of its policy for this group (higher is better)


def pearson_p_from_r(r: float, n: int) -> float:
    """Two-sided p-value of Pearson's r over n points (t-test with n - 2 degrees of freedom), as scipy computes it.

    >>> round(pearson_p_from_r(0.55, 12), 3), round(pearson_p_from_r(0.21, 12), 3)
    (0.064, 0.512)
    """
    if n < 3:
        raise ValueError("a p-value for Pearson's r needs at least 3 points")
    if abs(r) >= 1:
        return 0.0
    t = r * np.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def zscored(values: np.ndarray, groups: Sequence[str], how: str) -> np.ndarray:
    """``values`` z-scored over all points (``global``), within each task group (``within_group``), or as they are."""
    if how not in STANDARDISE:
        raise ValueError(f"standardise must be one of {STANDARDISE}, got {how!r}")
    v = np.array(values, dtype=float)
    if how == "none":
        return v
    keys = np.array(groups) if how == "within_group" else np.zeros(len(v))
    for g in np.unique(keys):
        m = keys == g
        sd = v[m].std()
        v[m] = (v[m] - v[m].mean()) / sd if sd > 0 else 0.0
    return v


def standardised(points: Sequence[Point], x_how: str, y_how: str) -> tuple[np.ndarray, np.ndarray]:
    """x (benchmark scores) and y (policy scores), each standardised its own way (:func:`zscored`)."""
    groups = [p.group for p in points]
    x = zscored(np.array([p.x for p in points], dtype=float), groups, x_how)
    y = zscored(np.array([p.y for p in points], dtype=float), groups, y_how)
    return x, y


def correlation_report(
    points: Sequence[Point],
    *,
    standardise_x: str = "none",
    standardise_y: str = "none",
    n_boot: int = 2000,
    n_perm: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Pearson r and p, Spearman, Kendall, a bootstrap interval of r over points, a permutation p-value of r, and
    r with each reward model left out; x and y standardised independently (:func:`zscored`)."""
    if len(points) < 3:
        raise ValueError(f"need at least 3 points, got {len(points)}")
    x, y = standardised(points, standardise_x, standardise_y)
    constant = [name for name, v in (("benchmark scores (x)", x), ("policy scores (y)", y)) if np.ptp(v) == 0]
    if constant:  # no correlation is defined; say so rather than report NaN
        return {
            "n": len(points),
            "reward_models": sorted({p.reward_model for p in points}),
            "standardise_x": standardise_x,
            "standardise_y": standardise_y,
            "pearson_r": None,
            "pearson_p": None,
            "spearman": None,
            "kendall": None,
            "pearson_ci": [None, None],
            "confidence": confidence,
            "n_boot": n_boot,
            "permutation_p": None,
            "leave_one_reward_model_out": {},
            "undefined": f"the {' and the '.join(constant)} are the same at every point: r is undefined",
        }
    pearson = stats.pearsonr(x, y)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            boots.append(stats.pearsonr(x[idx], y[idx]).statistic)
    lo, hi = np.percentile(boots, [50 * (1 - confidence), 50 * (1 + confidence)]).tolist() if boots else (None, None)
    r = float(pearson.statistic)
    perm = np.array([stats.pearsonr(x, rng.permutation(y)).statistic for _ in range(n_perm)]) if n_perm else None
    models = sorted({p.reward_model for p in points})
    loo = {}
    for m in models:
        keep = [i for i, p in enumerate(points) if p.reward_model != m]
        if len(keep) >= 3:
            xs, ys = standardised([points[i] for i in keep], standardise_x, standardise_y)
            loo[m] = float(stats.pearsonr(xs, ys).statistic) if np.ptp(xs) > 0 and np.ptp(ys) > 0 else None
    return {
        "n": len(points),
        "reward_models": models,
        "standardise_x": standardise_x,
        "standardise_y": standardise_y,
        "pearson_r": r,
        "pearson_p": float(pearson.pvalue),
        "spearman": float(stats.spearmanr(x, y).statistic),
        "kendall": float(stats.kendalltau(x, y).statistic),
        "pearson_ci": [lo, hi],
        "confidence": confidence,
        "n_boot": n_boot,
        "permutation_p": float((np.sum(np.abs(perm) >= abs(r) - 1e-12) + 1) / (n_perm + 1)) if n_perm else None,
        "leave_one_reward_model_out": loo,
    }


def correlation_figure(panels: dict, path) -> object:
    """The scatter of each benchmark's points as the report read them (standardised the same way);
    ``panels[benchmark] = (points, report)``."""
    from rmlab.utils.plots import correlation_scatter

    return correlation_scatter(
        {
            bench: (
                *standardised(points, rep["standardise_x"], rep["standardise_y"]),
                [p.group for p in points],
                rep,
            )
            for bench, (points, rep) in panels.items()
        },
        path,
    )
