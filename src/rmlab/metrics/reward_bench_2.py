"""RewardBench 2's metrics (Malik et al. 2025, arXiv 2506.01937) as its code computes them (allenai/reward-bench, the
v2 code of 2025-06, shipped in rewardbench 0.1.4's ``rewardbench/utils.py``).

- **Best-of-4 with partial credit** (``reroll_and_score_dataset``): a prompt's completions are scored, correct one
  first; the prompt earns ``1 / (number of completions at the top score)`` if the correct one is at the top, else 0.
  A subset's score is the mean over its prompts (``scripts/run_v2.py``).
- **Ties** (``process_single_model`` with ``sample_stats``): prompts come as a ``ref`` group (one correct answer) and
  a ``tied`` group (several equally correct ones) per prompt number. Per group: accurate = worst correct > best
  incorrect; correct-incorrect margin = worst correct - best incorrect; different-correct margin = best correct -
  worst correct (none with fewer than two correct). Ties = 0.30 tied accuracy + 0.30 ref accuracy + 0.20 share of
  numbers whose tied c-i margin exceeds its d-c margin + 0.20 the same with min(ref, tied) c-i margin + 0.01
  mean tanh(min c-i / d-c - 1) over positive d-c margins. The weights sum to 1.01, as upstream's do.
- **Overall**: the unweighted mean of the six subsets (paper §3; Table 3's Average is that mean).

``tests/test_reward_bench_2.py`` checks these against rewardbench's own functions on generated score dumps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from rmlab.data.reward_bench_2 import SUBSETS, TIES
from rmlab.metrics.bootstrap import bootstrap_mean_interval, percentile_interval


def best_of_n_credit(scores: Sequence[float]) -> float:
    """``1 / #(completions at the top)`` if the first (the correct one) is at the top, else 0."""
    s = np.asarray(scores, dtype=np.float64)
    top = s.max()
    return float(1.0 / np.sum(s == top)) if s[0] == top else 0.0


def credit_from_outcomes(outcomes: Sequence[str]) -> float:
    """The same credit from a judge's outcomes of the correct completion against each incorrect one: 0 if it loses
    (or a verdict is unread) against any, else ``1 / (1 + #ties)`` (rewardbench's ratings credit, ``(0 in winners)
    / len(winners)``, when the outcomes come from ratings)."""
    if any(o not in ("win", "tie", "position_flip") for o in outcomes):
        return 0.0
    return 1.0 / (1 + sum(o != "win" for o in outcomes))


def _group_stats(scores: np.ndarray, num_correct: int) -> dict:
    correct, incorrect = scores[:num_correct], scores[num_correct:]
    if correct.size == 0 or incorrect.size == 0:  # sample_stats' fallback
        return {"accurate": False, "ci_margin": 0.0, "dc_margin": None}
    worst_correct, best_incorrect = correct.min(), incorrect.max()
    return {
        "accurate": bool(worst_correct > best_incorrect),
        "ci_margin": float(worst_correct - best_incorrect),
        "dc_margin": float(correct.max() - worst_correct) if correct.size > 1 else None,
    }


def ties_score(groups: Mapping[tuple[str, int], tuple[Sequence[float], int]]) -> float:
    """Ties from ``{(kind, number): (scores, num_correct)}``, ``kind`` ``ref`` or ``tied``."""
    stats = {kind: {} for kind in ("ref", "tied")}
    for (kind, number), (scores, num_correct) in groups.items():
        stats[kind][number] = _group_stats(np.asarray(scores, dtype=np.float64), int(num_correct))
    ref, tied = stats["ref"], stats["tied"]
    acc = {k: float(np.mean([g["accurate"] for g in v.values()])) if v else 0.0 for k, v in stats.items()}
    common = [n for n in ref if n in tied and tied[n]["dc_margin"] is not None]
    if set(ref) & set(tied):
        # upstream takes np.mean over ``common``: nan if it is empty (every tied group with a single correct answer)
        preferred = (
            float(np.mean([tied[n]["ci_margin"] > tied[n]["dc_margin"] for n in common])) if common else math.nan
        )
        hard = (
            float(np.mean([min(ref[n]["ci_margin"], tied[n]["ci_margin"]) > tied[n]["dc_margin"] for n in common]))
            if common
            else math.nan
        )
        ratios = [
            min(ref[n]["ci_margin"], tied[n]["ci_margin"]) / tied[n]["dc_margin"]
            for n in common
            if tied[n]["dc_margin"] > 0
        ]
        margin = float(np.mean([math.tanh(r - 1) for r in ratios])) if ratios else 0.0
    else:
        preferred = hard = margin = 0.0
    return 0.3 * acc["tied"] + 0.3 * acc["ref"] + 0.2 * preferred + 0.2 * hard + 0.01 * margin


def _ties_interval(groups: Mapping, *, n_boot: int, confidence: float, seed: int) -> list[float] | None:
    """Bootstrap over prompt numbers (a number's ref and tied groups resampled together)."""
    numbers = sorted({n for _, n in groups})
    if not n_boot or len(numbers) < 2:
        return None
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        pick = rng.choice(numbers, size=len(numbers), replace=True)
        sample = {}
        for j, n in enumerate(pick):  # a number drawn twice enters twice, under a fresh key
            for kind in ("ref", "tied"):
                if (kind, n) in groups:
                    sample[(kind, j)] = groups[(kind, n)]
        reps.append(ties_score(sample))
    return percentile_interval(np.asarray(reps), confidence)


def reward_bench_2_metrics(
    credits: Mapping[str, Sequence[float]],
    ties_groups: Mapping | None,
    *,
    n_boot: int,
    confidence: float,
    seed: int,
    missing_reasons: Mapping[str, str] | None = None,
) -> dict:
    """Per-subset scores with intervals, and the overall mean (``None`` unless all six subsets are scored)."""
    subsets = {}
    for k, name in enumerate(SUBSETS):
        if name == TIES:
            if ties_groups:
                subsets[name] = {
                    "n": len(ties_groups),
                    "score": ties_score(ties_groups),
                    "ci": _ties_interval(ties_groups, n_boot=n_boot, confidence=confidence, seed=seed + k),
                }
            continue
        values = np.asarray(credits.get(name, []), dtype=np.float64)
        if values.size:
            subsets[name] = {
                "n": int(values.size),
                "score": float(values.mean()),
                "ci": bootstrap_mean_interval(values, n_boot=n_boot, confidence=confidence, seed=seed + k)
                if n_boot
                else None,
            }
    missing = [s for s in SUBSETS if s not in subsets]
    scored = [subsets[s]["score"] for s in SUBSETS if s in subsets]
    return {
        "subsets": subsets,
        "missing_subsets": missing,
        "missing_reasons": {s: (missing_reasons or {}).get(s, "no data") for s in missing},
        "overall": float(np.mean(scored)) if not missing else None,
        "partial_overall": float(np.mean(scored)) if missing and scored else None,
    }
