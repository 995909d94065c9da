"""JudgeBench's metric (Tan et al., ICLR 2025, arXiv 2410.12784) as its code computes it (ScalerLab/JudgeBench@e2c52c2).

Every pair is judged twice, the responses in the data's order (game 1) and swapped (game 2); game 2's decision is
read back into the data's frame (``utils/metrics.py:6-11,47``). Per pair a counter adds 1 for each game whose
decision is the label and subtracts 1 for each whose decision is the opposite; a tie (``A=B``), no verdict or a
failed call adds 0. The pair is correct iff the counter is positive (``metrics.py:59-78``): two correct games, or one
correct and one tie or unread. Inconsistent verdicts, two ties and anything worse are incorrect (paper §4).
Accuracy is the share of correct pairs per category and over all pairs (so Overall is pair-weighted, not the mean of
the four categories: ``run_judge.py:94-95``). With ``--single_game`` only game 1 counts.

A reward model scores each response alone and decides ``A>B`` iff A's score is strictly higher, else ``B>A``
(``utils/judges.py:473,525,564``): with both games, a tied score makes the pair incorrect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rmlab.data.judgebench import CATEGORIES
from rmlab.metrics.bootstrap import bootstrap_mean_interval

_FLIP = {"A>B": "B>A", "B>A": "A>B"}


def flip(decision: str | None) -> str | None:
    """A decision read in the other frame (``flip_judgment``): ``A>B`` <-> ``B>A``; anything else unchanged."""
    return _FLIP.get(decision, decision) if decision is not None else None


def pair_correct(label: str, decisions: Sequence[str | None]) -> bool:
    """One pair from its games' decisions, each in its own game's frame (game 2 swapped): the counter rule for two
    games, ``decision == label`` for one."""
    if len(decisions) == 1:
        return decisions[0] == label
    if len(decisions) != 2:
        raise ValueError(f"a JudgeBench pair has one or two games, got {len(decisions)}")
    counter = 0
    for decision in (decisions[0], flip(decisions[1])):
        counter += (decision == label) - (decision == _FLIP[label])
    return counter > 0


def reward_model_decisions(score_a: float, score_b: float) -> tuple[str, str]:
    """Both games' decisions of a reward model from the two responses' scores, each in its game's frame."""
    game1 = "A>B" if score_a > score_b else "B>A"
    game2 = "A>B" if score_b > score_a else "B>A"  # B is shown first
    return game1, game2


def preference_counter(preferences: Sequence[str | None]) -> int:
    """The counter from a judge's preferences in the lab's terms (``chosen`` = the correct response, ``rejected``,
    ``tie``, ``None``), one per order it was asked in."""
    return sum((p == "chosen") - (p == "rejected") for p in preferences)


def judgebench_metrics(
    correct: Sequence[bool], categories: Sequence[str], *, n_boot: int, confidence: float, seed: int
) -> dict:
    """Accuracy per category and overall (pair-weighted), each with a bootstrap interval over pairs."""
    ok = np.asarray(correct, dtype=np.float64)
    cats = np.asarray(categories, dtype=object)
    if ok.shape != cats.shape:
        raise ValueError(f"{ok.size} outcomes for {cats.size} pairs")

    def cell(mask: np.ndarray, salt: int) -> dict:
        n = int(mask.sum())
        if n == 0:
            return {"n": 0, "accuracy": None, "ci": None}
        values = ok[mask]
        return {
            "n": n,
            "accuracy": float(values.mean()),
            "ci": bootstrap_mean_interval(values, n_boot=n_boot, confidence=confidence, seed=seed + salt)
            if n_boot
            else None,
        }

    per = {name: cell(cats == name, k + 1) for k, name in enumerate(CATEGORIES)}
    overall = cell(np.ones(ok.shape, dtype=bool), 0)
    return {
        "n": int(ok.size),
        "accuracy": overall["accuracy"],
        "ci": overall["ci"],
        "categories": per,
        "missing_categories": [name for name, m in per.items() if m["n"] == 0],
    }
