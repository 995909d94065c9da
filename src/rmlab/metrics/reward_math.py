"""RewardMATH's metrics (Kim et al. 2024, "Evaluating Robustness of Reward Models for Mathematical Reasoning",
arXiv 2410.01729), as the authors' ``src/evaluation/eval.py`` (kimsh0507/RewardMATH_official) computes them.

Each problem has one correct solution and ``k`` (9) incorrect ones.

- accuracy: the correct solution scores strictly above every incorrect one; ``accuracy_with_ties`` uses >=;
- MRR: mean of 1 / rank of the correct solution, ranking pessimistically on ties
  (rank = 1 + number of incorrect solutions scoring at least as high);
- random baselines: accuracy 1 / (k + 1) = 10%, MRR = H_{k+1} / (k + 1) = 29.29% for k = 9;
- process reward models: a solution's score from its step scores by :data:`PRM_AGGREGATIONS`;
- pairwise judges (one verdict per correct-vs-incorrect pair): accuracy = every pair won, MRR = 1 / (1 + pairs
  not won).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.utils.registry import Registry

PRM_AGGREGATIONS: Registry[Callable[[np.ndarray], float]] = Registry("PRM aggregation")


def _probs(steps: Sequence[float]) -> np.ndarray:
    p = np.asarray(steps, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError("a PRM solution needs at least one step score")
    return p


PRM_AGGREGATIONS.register("min")(lambda s: float(_probs(s).min()))
PRM_AGGREGATIONS.register("max")(lambda s: float(_probs(s).max()))
PRM_AGGREGATIONS.register("prod")(lambda s: float(np.prod(_probs(s))))
PRM_AGGREGATIONS.register("geometric_mean")(lambda s: float(np.prod(_probs(s)) ** (1 / len(_probs(s)))))
PRM_AGGREGATIONS.register("mean")(lambda s: float(_probs(s).mean()))
# sigmoid of the mean log-odds (monotone in the mean logit); max(0, mean odds), as the authors' code does
PRM_AGGREGATIONS.register("mean_logit")(
    lambda s: float(1 / (1 + np.exp(-np.mean(np.log(_probs(s) / (1 - _probs(s)))))))
)
PRM_AGGREGATIONS.register("mean_odd")(lambda s: float(max(0.0, np.mean(_probs(s) / (1 - _probs(s))))))
PRM_AGGREGATIONS.register("last")(lambda s: float(_probs(s)[-1]))


def random_baselines(k: int = 9) -> dict[str, float]:
    """Expected accuracy and MRR of a random scorer with one correct among ``k + 1`` solutions."""
    n = k + 1
    return {"accuracy": 1 / n, "mrr": float(sum(1 / r for r in range(1, n + 1)) / n)}


def problem_outcomes(correct: np.ndarray, incorrect: np.ndarray) -> dict[str, np.ndarray]:
    """Per problem: strict win, win with ties, and reciprocal rank (pessimistic on ties).

    :param correct: ``(n,)`` scores of the correct solutions.
    :param incorrect: ``(n, k)`` scores of the incorrect ones.
    """
    c = np.asarray(correct, dtype=np.float64)
    w = np.asarray(incorrect, dtype=np.float64)
    if c.ndim != 1 or w.ndim != 2 or len(c) != len(w):
        raise ValueError(f"expected (n,) and (n, k) score arrays, got {c.shape} and {w.shape}")
    if not (np.isfinite(c).all() and np.isfinite(w).all()):
        raise ValueError("scores contain NaN or infinity")
    at_least = (w >= c[:, None]).sum(axis=1)
    return {
        "win": (w < c[:, None]).all(axis=1),
        "win_with_ties": (w <= c[:, None]).all(axis=1),
        "reciprocal_rank": 1.0 / (1 + at_least),
    }


def pairwise_outcomes(won: np.ndarray, tied: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per problem from pairwise verdicts ``(n, k)`` (True = the judge preferred the correct solution).

    A problem is won only if all ``k`` pairs are (RewardMATH ``src/evaluation/eval.py:353-376``: the correct
    solution's rank is 1 + the pairs it lost). ``tied`` marks pairs judged even (our judges' ties and position
    flips; RewardMATH's verdicts have none): they count in ``win_with_ties`` and, pessimistically, in the rank."""
    won = np.asarray(won, dtype=bool)
    tied = np.zeros_like(won) if tied is None else np.asarray(tied, dtype=bool)
    if won.ndim != 2 or tied.shape != won.shape:
        raise ValueError(f"expected (n, k) verdict arrays, got {won.shape} and {tied.shape}")
    losses = (~won).sum(axis=1)
    return {
        "win": losses == 0,
        "win_with_ties": (won | tied).all(axis=1),
        "reciprocal_rank": 1.0 / (1 + losses),
    }


def summarize(
    outcomes: dict[str, np.ndarray],
    *,
    subjects: Sequence[str] | None = None,
    levels: Sequence[int] | None = None,
    k: int = 9,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Accuracy, accuracy with ties and MRR (with bootstrap intervals) overall and by subject and level."""

    def block(mask: np.ndarray | None) -> dict:
        sel = {k_: v if mask is None else v[mask] for k_, v in outcomes.items()}
        out = {
            "n": len(sel["win"]),
            "accuracy": float(sel["win"].mean()),
            "accuracy_with_ties": float(sel["win_with_ties"].mean()),
            "mrr": float(sel["reciprocal_rank"].mean()),
        }
        if n_boot and out["n"] > 1:
            out["ci"] = {
                "accuracy": bootstrap_mean_interval(sel["win"], n_boot=n_boot, confidence=confidence, seed=seed),
                "mrr": bootstrap_mean_interval(sel["reciprocal_rank"], n_boot=n_boot, confidence=confidence, seed=seed),
            }
        return out

    result = {**block(None), "random_baseline": random_baselines(k)}
    if subjects is not None:
        subj = np.asarray(subjects)
        result["by_subject"] = {s: block(subj == s) for s in sorted(set(subj.tolist()))}
    if levels is not None:
        lev = np.asarray(levels)
        result["by_level"] = {str(v): block(lev == v) for v in sorted(set(lev.tolist()))}
    return result
