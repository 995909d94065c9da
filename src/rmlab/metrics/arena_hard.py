"""Arena-Hard-Auto v0.1 scores: the Bradley-Terry fit against a baseline, with and without style control.

As lmarena/arena-hard-auto@3071ef9 computes them (code unchanged from 0489bf3, 2024-09-01, "update style
control"; file:line from the data folder's SOURCES.md):

- **Battles** (``show_result.py:25-105``): one row per unit of weight, model_a = the baseline; winner is
  ``model_a``, ``model_b`` or ``tie``.
- **Design** (``utils_math.py:38-69`` ``compute_mle_elo``): the battle table is duplicated; X holds +ln 10 in
  model_a's column and -ln 10 in model_b's; Y = 1 for an A win; a tie is an A win in the first copy and a B win
  in the second. The fit is a logistic regression without intercept and, for the raw score, without penalty
  (``LogisticRegression(fit_intercept=False, penalty=None, tol=1e-8)``).
- **Ratings**: Elo = 400 coef + 1000, shifted so that the baseline is 1000 (raw) or 1114 (style control,
  ``utils_math.py:127-131``); the anchor does not change a score.
- **Style control** (``utils_math.py:138-198``, ``fit_bt`` ``:119-135``): per feature, d = (f_A - f_B) /
  (f_A + f_B + 1), standardised over the pool's rows with the population std; the design is [model columns | z]
  and the fit is sklearn's default ``LogisticRegression(fit_intercept=False)``: L2 with C = 1 on *every*
  coefficient. The score is then the win rate at z = 0, the pool's mean style gap, so it depends on the pool.
- **Score** (``utils_math.py:93-116``, ``show_result.py:205-230``): the win probability against the baseline
  from the full-sample fit, 100 / (1 + 10^((Elo_base - Elo_m) / 400)); its 95% interval is the 2.5 / 97.5
  percentiles of the bootstrap Elos (battle rows resampled, z kept fixed; ``utils_math.py:72-80,201-231``), each
  turned into a win rate the same way.

We minimise the same objective as sklearn to convergence (Newton's method) instead of stopping at sklearn's
``tol`` / ``max_iter``; upstream's bootstrap is unseeded, ours is seeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

from rmlab.metrics.bootstrap import percentile_interval

SCALE, BASE, INIT_RATING = 400, 10, 1000  # utils_math.py:38
RAW_ANCHOR = 1000  # compute_mle_elo: the baseline is 1000
SC_ANCHOR = 1114  # fit_bt: the baseline is 1114 (utils_math.py:127-131)
UPSTREAM_C = 1.0  # sklearn's default C in fit_bt's LogisticRegression (utils_math.py:124)
UPSTREAM_ROUNDS = 100  # show_result.py --num-rounds default (:145)


@dataclass(frozen=True)
class ArenaScores:
    """Scores of every model in one fit, the baseline included (it scores 50)."""

    baseline: str
    elo: dict[str, float]  # full-sample ratings, anchored
    score: dict[str, float]  # win rate against the baseline, in %
    ci: dict[str, list[float]]  # [2.5, 97.5] bootstrap percentiles as win rates, in % (empty without rounds)
    n_battles: dict[str, int]  # battle rows per model (weight units)
    style_coef: dict[str, float]  # per style feature (z units, log-odds / ln 10); empty for the raw fit
    penalty_c: float | None  # None: no penalty


def bt_design(model_a: Sequence[str], model_b: Sequence[str], winner: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Models (in order of first appearance, as upstream) and the duplicated design's model columns and Y.

    :return: ``models`` and an array ``[X | Y]`` of shape (2n, p + 1).
    """
    models = list(dict.fromkeys([*model_a, *model_b]))
    col = {m: i for i, m in enumerate(models)}
    n = len(winner)
    x = np.zeros((2 * n, len(models) + 1))
    rows = np.arange(2 * n)
    x[rows, [col[m] for m in (*model_a, *model_a)]] = +math.log(BASE)
    x[rows, [col[m] for m in (*model_b, *model_b)]] = -math.log(BASE)
    win = np.asarray(winner)
    a_win, tie = win == "model_a", win == "tie"
    if not np.all(a_win | tie | (win == "model_b")):
        raise ValueError(f"winner must be model_a, model_b or tie; got {sorted(set(win.tolist()))}")
    x[:, -1] = np.concatenate([a_win | tie, a_win])  # a tie: an A win in the first copy, a B win in the second
    return models, x


def style_z(features_a: np.ndarray, features_b: np.ndarray) -> np.ndarray:
    """Standardised style gaps (n, k): d = (f_A - f_B) / (f_A + f_B + 1), then (d - mean) / std.

    ``apply_ratio=[1, 1, 1, 1]``, ``add_one=True`` (``utils_math.py:171-186``); std is the population std over
    the rows. A feature that never varies gets z = 0 where upstream divides by zero (NaN, and sklearn refuses).
    """
    fa, fb = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    d = (fa - fb) / (fa + fb + 1)
    std = d.std(axis=0)
    return np.divide(d - d.mean(axis=0), std, out=np.zeros_like(d), where=std > 0)


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    c: float | None,
    weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Coefficients minimising sklearn's ``LogisticRegression(fit_intercept=False)`` objective,
    C * sum_i w_i logloss_i + ||beta||^2 / 2 (``c=None``: no penalty). Row weights equal repeated rows.

    Newton's method with a backtracking line search, to convergence (from ``start``, zero by default). Without
    penalty the model columns are not identified (adding a constant to all leaves the fit unchanged): the gradient
    and the minimum-norm Newton steps never have a component along that direction, and the anchor removes it.
    """
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    sign = 2 * np.asarray(y, dtype=np.float64) - 1
    total = w.sum()  # the objective divided by it (as sklearn's lbfgs does): same argmin, better scaled
    ridge = 0.0 if c is None else 1.0 / (c * total)

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        margin = sign * (x @ beta)
        p_wrong = expit(-margin)
        loss = -(w @ log_expit(margin)) / total + ridge * (beta @ beta) / 2
        return loss, -(x.T @ (w * sign * p_wrong)) / total + ridge * beta, p_wrong

    beta = np.zeros(x.shape[1]) if start is None else np.array(start, dtype=np.float64)
    loss, grad, p_wrong = objective(beta)
    for _ in range(100):
        hess = (x.T * (w * p_wrong * (1 - p_wrong))) @ x / total + ridge * np.eye(len(beta))
        step = np.linalg.lstsq(hess, -grad, rcond=None)[0]
        if -(grad @ step) < 1e-24:  # the Newton decrement: converged to rounding
            break
        t = 1.0
        while t > 1e-6:  # Armijo backtracking
            new = objective(beta + t * step)
            if new[0] <= loss + 1e-4 * t * (grad @ step):
                break
            t /= 2
        else:
            break  # no decrease left to find
        beta = beta + t * step
        loss, grad, p_wrong = new
    if not np.all(np.isfinite(beta)) or np.abs(grad).max() > 1e-8:
        raise RuntimeError(f"the Bradley-Terry fit did not converge (gradient {np.abs(grad).max():.2e})")
    return beta


def win_rate(elo: float, elo_baseline: float) -> float:
    """Predicted win probability against the baseline, in % (``utils_math.py:93-116``)."""
    return float(100.0 / (1.0 + BASE ** ((elo_baseline - elo) / SCALE)))


def _elos(beta: np.ndarray, p: int, base_col: int, anchor: float) -> np.ndarray:
    elo = SCALE * beta[:p] + INIT_RATING
    return elo + (anchor - elo[base_col])


def _fit_scores(
    models: list[str],
    x: np.ndarray,
    y: np.ndarray,
    *,
    baseline: str,
    anchor: float,
    c: float | None,
    n_rounds: int,
    seed: int,
    style_names: Sequence[str] = (),
) -> ArenaScores:
    p, n = len(models), len(y) // 2
    if baseline not in models:
        raise ValueError(f"the baseline {baseline!r} is in no battle")
    base = models.index(baseline)
    # identical rows merged into weights (the same objective): the raw design has a handful of distinct rows
    rows, inverse = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)

    def fit(row_weights: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        weights = np.bincount(inverse, weights=row_weights, minlength=len(rows))
        return fit_logistic(rows[:, :-1], rows[:, -1], c=c, weights=weights, start=start)

    beta = fit(np.ones(2 * n))
    elo = _elos(beta, p, base, anchor)
    played = np.abs(x[:n, :p]) > 0
    ci = {}
    if n_rounds:
        rng = np.random.default_rng(seed)
        boot = np.empty((n_rounds, p))
        for r in range(n_rounds):  # resample battle rows; both copies of a row go together
            counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
            boot[r] = _elos(fit(np.concatenate([counts, counts]), start=beta), p, base, anchor)
            boot[r, ~(counts @ played > 0)] = np.nan  # a model absent from the resample has no rating
        ci = {
            m: [win_rate(v, anchor) for v in percentile_interval(boot[~np.isnan(boot[:, i]), i])]
            for i, m in enumerate(models)
        }
    return ArenaScores(
        baseline=baseline,
        elo=dict(zip(models, elo.tolist())),
        score={m: win_rate(e, anchor) for m, e in zip(models, elo)},
        ci=ci,
        n_battles={m: int(played[:, i].sum()) for i, m in enumerate(models)},
        style_coef=dict(zip(style_names, beta[p:].tolist())),
        penalty_c=c,
    )


def arena_hard_scores(
    model_a: Sequence[str],
    model_b: Sequence[str],
    winner: Sequence[str],
    *,
    baseline: str,
    n_rounds: int = UPSTREAM_ROUNDS,
    seed: int = 0,
) -> ArenaScores:
    """The raw Arena-Hard score (``compute_mle_elo``: no penalty, baseline anchored at 1000).

    When every battle is against the baseline, a model's score is 100 (wins + ties / 2) / rows of its own rows.
    """
    models, xy = bt_design(model_a, model_b, winner)
    return _fit_scores(
        models, xy[:, :-1], xy[:, -1], baseline=baseline, anchor=RAW_ANCHOR, c=None, n_rounds=n_rounds, seed=seed
    )


def style_controlled_scores(
    model_a: Sequence[str],
    model_b: Sequence[str],
    winner: Sequence[str],
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    baseline: str,
    feature_names: Sequence[str],
    c: float | None = UPSTREAM_C,
    n_rounds: int = UPSTREAM_ROUNDS,
    seed: int = 0,
) -> ArenaScores:
    """The style-controlled score over one pool of battles (``construct_style_matrices`` + ``fit_bt``).

    :param features_a: (n, k) style features of each battle's model_a answer (the baseline's), one row per
        battle row; ``features_b`` the same for model_b.
    :param c: the L2 inverse strength on every coefficient; upstream's sklearn default 1.0. ``None``: no penalty,
        and with features that never vary this is exactly :func:`arena_hard_scores`.
    """
    models, xy = bt_design(model_a, model_b, winner)
    z = style_z(features_a, features_b)
    x = np.hstack([xy[:, :-1], np.vstack([z, z])])
    return _fit_scores(
        models,
        x,
        xy[:, -1],
        baseline=baseline,
        anchor=SC_ANCHOR,
        c=c,
        n_rounds=n_rounds,
        seed=seed,
        style_names=feature_names,
    )


def style_control_drop(raw: float, controlled: float) -> float:
    """RM-Bench Sec. 5.1's style-control score of a policy: the relative drop (raw - SC) / raw.

    Negative when style control raises the score. Comparable across studies only for the same pool.
    """
    return (raw - controlled) / raw
