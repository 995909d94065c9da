"""Reward-model benchmark scores against their PPO policies' downstream scores (RM-Bench Sec. 5.2, Fig. 5).

One point per (reward model, task group): x = the reward model's benchmark score for that group, y = its policy's
group score. The paper reports Pearson r = 0.55 (p = 0.07) for RM-Bench and r = 0.21 (p = 0.51) for RewardBench
over 4 reward models x 3 task groups; with n = 12 points the two-sided t-test of r reproduces both p-values
(:func:`pearson_p_from_r`). Choices the paper leaves open are arguments: ``standardise`` (none, global, or within
each task group: Pearson is invariant to one global affine rescaling of x or y, not to per-group rescaling).

The inference respects the design (:func:`correlation_report`):

- intervals and p-values come in matched pairs: by default Fisher's z interval of each coefficient with the p of
  the same z test (:mod:`rmlab.metrics.correlation_inference`), so an interval excludes 0 exactly when p < 1 -
  confidence; z-scoring within g task groups spends g - 1 degrees of freedom (:func:`effective_n`);
- the reward model is the unit that was sampled: its points (one per task group) are not independent, so the
  bootstrap resamples reward models with all their points (a cluster bootstrap, Davison & Hinkley 1997 Sec. 3.8)
  and the permutation test permutes which reward model's policy scores go with which reward model's benchmark
  scores, within each task group; the standardisation is redone inside every resample. A resample whose r is
  undefined (constant x or y) is counted and reported, and the bootstrap interval is withheld when there is one:
  the interval over the rest would describe a biased subset;
- every report states the number of reward models and points and the smallest |r| the design detects at 80% power.

scipy computes the statistics (``pearsonr``, ``spearmanr``, ``kendalltau``, ``bootstrap``, ``permutation_test``);
this module arranges the points and the resampling units.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rmlab.metrics.correlation_inference import COEFFICIENTS, coefficient, fisher_inference, power_statement

STANDARDISE = ("none", "global", "within_group")
INTERVALS = ("fisher", "bca", "percentile")  # the interval of r in pearson_ci; Fisher's z is the default


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


def effective_n(points: Sequence[Point], x_how: str, y_how: str) -> int:
    """The number of points the Fisher-z standard errors count: n, less g - 1 when x or y is z-scored within g
    task groups (each group mean beyond the global one is an estimated covariate; Fisher 1924). Rescaling by the
    group standard deviations costs a little more, which this does not count: the intervals stay approximate."""
    groups = len({p.group for p in points})
    return len(points) - (groups - 1 if "within_group" in (x_how, y_how) else 0)


def defined_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, or NaN where it is undefined (fewer than 3 points, or x or y constant). The moment formula
    directly: scipy's ``pearsonr`` gives the same r, but its input checks dominate thousands of resamples."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.clip(xc @ yc / np.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


def _clusters(points: Sequence[Point]) -> list[np.ndarray]:
    """The point indices of each reward model, in sorted reward-model order."""
    models = sorted({p.reward_model for p in points})
    return [np.array([i for i, p in enumerate(points) if p.reward_model == m]) for m in models]


def cluster_bootstrap(
    points: Sequence[Point],
    x_how: str,
    y_how: str,
    *,
    method: str = "BCa",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """A bootstrap interval of Pearson's r that resamples reward models with all their points and standardises
    each resample anew (``scipy.stats.bootstrap`` over reward-model indices; ``method`` BCa or percentile,
    Efron & Tibshirani 1993 ch. 14). Resamples with an undefined r are counted (``degenerate``); when there is
    one, the interval is None and ``withheld`` says why."""
    clusters = _clusters(points)
    xs = np.array([p.x for p in points], dtype=float)
    ys = np.array([p.y for p in points], dtype=float)
    groups = np.array([p.group for p in points])

    def statistic(chosen):
        idx = np.concatenate([clusters[int(c)] for c in chosen])
        return defined_r(zscored(xs[idx], groups[idx], x_how), zscored(ys[idx], groups[idx], y_how))

    out = {"method": method, "resampled": "reward models", "n_reward_models": len(clusters), "n_boot": n_boot}
    if len(clusters) < 2 or n_boot <= 0:
        return {**out, "interval": [None, None], "degenerate": 0, "withheld": "fewer than 2 reward models"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples make scipy warn; they are counted below instead
        res = stats.bootstrap(
            (np.arange(len(clusters)),),
            statistic,
            n_resamples=n_boot,
            vectorized=False,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
    degenerate = int(np.isnan(res.bootstrap_distribution).sum())
    out["degenerate"] = degenerate
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if degenerate or not (np.isfinite(lo) and np.isfinite(hi)):
        why = f"{degenerate} of {n_boot} resamples of reward models have no defined r (constant x or y)"
        return {**out, "interval": [None, None], "withheld": why if degenerate else "the interval is not finite"}
    return {**out, "interval": [lo, hi]}


def cluster_permutation_p(
    points: Sequence[Point], x_how: str, y_how: str, *, n_perm: int = 10000, seed: int = 0
) -> dict:
    """Two-sided permutation p-value of Pearson's r under "a reward model's benchmark score says nothing about its
    policy": the policy scores are permuted among reward models, each task group's point going to the same group
    of the other reward model, so the permutation stays within groups and clusters (``scipy.stats.permutation_test``,
    ``pairings``: exact when the number of reward models! <= n_perm). When reward models cover different groups,
    the policy scores are permuted among the points of each group instead (Monte Carlo, (b + 1) / (B + 1))."""
    xs = np.array([p.x for p in points], dtype=float)
    ys = np.array([p.y for p in points], dtype=float)
    groups = np.array([p.group for p in points])
    x = zscored(xs, groups, x_how)
    observed = defined_r(x, zscored(ys, groups, y_how))
    models = sorted({p.reward_model for p in points})
    cell = {(p.reward_model, p.group): i for i, p in enumerate(points)}
    layout = {m: sorted(g for mm, g in cell if mm == m) for m in models}
    balanced = len({tuple(v) for v in layout.values()}) == 1 and len(cell) == len(points)
    rng = np.random.default_rng(seed)
    if balanced:
        cols = [[cell[(m, g)] for g in layout[models[0]]] for m in models]
        order = np.array([i for c in cols for i in c])

        def statistic(perm):
            yp = ys.copy()
            yp[order] = ys[np.array([i for k in perm for i in cols[int(k)]])]
            return defined_r(x, zscored(yp, groups, y_how))

        res = stats.permutation_test(
            (np.arange(len(models)),), statistic, permutation_type="pairings", n_resamples=n_perm, rng=rng
        )
        exact = math.factorial(len(models)) <= n_perm
        return {"p": float(res.pvalue), "scheme": "reward models within groups", "n_perm": n_perm, "exact": exact}
    hits = 0
    for _ in range(n_perm):
        yp = ys.copy()
        for g in np.unique(groups):
            m = np.flatnonzero(groups == g)
            yp[m] = ys[rng.permutation(m)]
        hits += abs(defined_r(x, zscored(yp, groups, y_how))) >= abs(observed) - 1e-12
    p = (hits + 1) / (n_perm + 1)
    return {
        "p": float(p),
        "scheme": "points within groups (reward models cover different groups)",
        "n_perm": n_perm,
        "exact": False,
    }


def _undefined(points: Sequence[Point], x: np.ndarray, y: np.ndarray) -> str | None:
    constant = [name for name, v in (("benchmark scores (x)", x), ("policy scores (y)", y)) if np.ptp(v) == 0]
    if constant:
        return f"the {' and the '.join(constant)} are the same at every point: r is undefined"
    return None


def correlation_report(
    points: Sequence[Point],
    *,
    standardise_x: str = "none",
    standardise_y: str = "none",
    interval: str = "fisher",
    n_boot: int = 2000,
    n_perm: int = 10000,
    confidence: float = 0.95,
    power: float = 0.8,
    underpowered_above: float = 0.7,
    seed: int = 0,
) -> dict:
    """Pearson, Spearman and Kendall with Fisher-z intervals and the matching p-values, scipy's t-test p of
    Pearson's r (the papers' p), a cluster bootstrap interval of r and a cluster permutation p (module docstring),
    the design's power, and r with each reward model left out. ``interval`` picks which interval of r is
    ``pearson_ci``: ``fisher`` (default), or the cluster bootstrap's ``bca`` or ``percentile``; the bootstrap's
    matching test is the permutation p."""
    if len(points) < 3:
        raise ValueError(f"need at least 3 points, got {len(points)}")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    x, y = standardised(points, standardise_x, standardise_y)
    models = sorted({p.reward_model for p in points})
    n_eff = effective_n(points, standardise_x, standardise_y)
    base = {
        "n": len(points),
        "n_points": len(points),
        "n_reward_models": len(models),
        "n_groups": len({p.group for p in points}),
        "n_effective": n_eff,
        "reward_models": models,
        "standardise_x": standardise_x,
        "standardise_y": standardise_y,
        "confidence": confidence,
        "n_boot": n_boot,
        "power": power_statement(n_eff, confidence=confidence, power=power, underpowered_above=underpowered_above),
    }
    undefined = _undefined(points, x, y)
    if undefined:  # no correlation is defined; say so rather than report NaN
        none = {k: None for k in ("pearson_r", "pearson_p", "pearson_p_t", "spearman", "kendall", "permutation_p")}
        return {
            **base,
            **none,
            "pearson_ci": [None, None],
            "interval_method": None,
            "leave_one_reward_model_out": {},
            "undefined": undefined,
        }
    inference = {k: fisher_inference(k, coefficient(k, x, y), n_eff, confidence).as_dict() for k in COEFFICIENTS}
    boot_method = "percentile" if interval == "percentile" else "BCa"
    boot = cluster_bootstrap(
        points, standardise_x, standardise_y, method=boot_method, n_boot=n_boot, confidence=confidence, seed=seed
    )
    perm = cluster_permutation_p(points, standardise_x, standardise_y, n_perm=n_perm, seed=seed) if n_perm else None
    pearson = inference["pearson"]
    if interval == "fisher":
        ci, method = pearson["interval"], pearson["method"]
    else:
        ci, method = boot["interval"], f"cluster bootstrap ({boot_method}) over {len(models)} reward models"
    loo = {}
    for m in models:
        keep = [p for p in points if p.reward_model != m]
        if len(keep) >= 3:
            r = defined_r(*standardised(keep, standardise_x, standardise_y))
            loo[m] = None if np.isnan(r) else r
    return {
        **base,
        "pearson_r": pearson["estimate"],
        "pearson_p": pearson["p"],  # the Fisher-z test: the p that matches the Fisher interval
        "pearson_p_t": float(stats.pearsonr(x, y).pvalue),  # scipy's t-test over all points, as the papers report
        "pearson_ci": ci,
        "interval_method": method,
        "spearman": inference["spearman"]["estimate"],
        "kendall": inference["kendall"]["estimate"],
        "inference": inference,
        "bootstrap": boot,
        "permutation_p": None if perm is None else perm["p"],
        "permutation": perm,
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
