"""From a judge's verdicts to one outcome per comparison (chosen vs rejected), and the counts a run reports.

Pairwise mode asks twice, once with the chosen response as A and once as B (the position swap of Zheng et al. 2023,
"Judging LLM-as-a-judge", arXiv 2306.05685: a verdict counts only if it survives the swap). Only the side of a
verdict counts here: a graded one (Arena-Hard's ``A>>B`` ... ``B>>A``) is read as ``A`` / ``tie`` / ``B``
(:func:`verdict_side`; its strength matters to Arena-Hard's battle weights only). The comparison is

- ``win``: both orders prefer the chosen response; ``loss``: both prefer the rejected one; ``tie``: both say tie;
- ``position_flip``: the two orders disagree (FastChat's "inconsistent"; e.g. ``[[A]]`` both times);
- ``unparsed``: at least one order's verdict could not be read.

Rating mode rates each response alone; the comparison is ``win`` / ``loss`` / ``tie`` by the two ratings (the
benchmarks' own per-response rule: strictly higher wins), ``unparsed`` if either rating could not be read.

Only ``win`` counts for the chosen response. For the benchmarks' tie counts (RM-Bench's per-cell ties,
RewardBench's, RewardMATH's accuracy with ties) ``tie`` and ``position_flip`` are ties; ``unparsed`` is a loss, as
RewardMATH counts a missing verdict (``src/evaluation/eval.py:341``), and never a win. rewardbench gives a
missing verdict or a tie half a point (``scripts/run_generative.py:252-257``); here it is reported instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OUTCOMES = ("win", "loss", "tie", "position_flip", "unparsed")
TIE_LIKE = ("tie", "position_flip")

# the side each pairwise verdict takes: the lab parsers' A / B / tie, and Arena-Hard's graded labels
_SIDE = {"A": "A", "B": "B", "tie": "tie", "A>>B": "A", "A>B": "A", "A=B": "tie", "B>A": "B", "B>>A": "B"}

_PREFERS = {  # (order, side) -> which response the verdict prefers
    ("chosen_first", "A"): "chosen",
    ("chosen_first", "B"): "rejected",
    ("rejected_first", "A"): "rejected",
    ("rejected_first", "B"): "chosen",
}


def verdict_side(verdict: str | None) -> str | None:
    """``A`` / ``B`` / ``tie`` from a pairwise verdict, graded (``A>>B``) or not; ``None`` if unread or unknown."""
    return None if verdict is None else _SIDE.get(verdict)


def preference(order: str, verdict: str | None) -> str | None:
    """``chosen`` / ``rejected`` / ``tie`` from one order's verdict (``A`` / ``B`` / ``tie`` or a graded label);
    ``None`` if unread."""
    side = verdict_side(verdict)
    if side == "tie":
        return "tie"
    return _PREFERS.get((order, side))


def pairwise_outcome(chosen_first: str | None, rejected_first: str | None) -> str:
    """The comparison's outcome from its two verdicts (``A`` / ``B`` / ``tie`` / ``None``), one per order."""
    first, second = preference("chosen_first", chosen_first), preference("rejected_first", rejected_first)
    if first is None or second is None:
        return "unparsed"
    if first != second:
        return "position_flip"
    return {"chosen": "win", "rejected": "loss", "tie": "tie"}[first]


def rating_outcome(chosen: int | None, rejected: int | None) -> str:
    """The comparison's outcome from the two responses' ratings (``None``: unread)."""
    if chosen is None or rejected is None:
        return "unparsed"
    return "win" if chosen > rejected else ("loss" if chosen < rejected else "tie")


def wins_and_ties(outcomes: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean arrays for the benchmarks' metrics: ``win``, and ``tie`` or ``position_flip``."""
    o = np.asarray(outcomes, dtype=object)
    unknown = set(o.tolist()) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown judge outcome(s) {sorted(unknown)}; expected {OUTCOMES}")
    return o == "win", np.isin(o, TIE_LIKE)


def outcome_counts(outcomes: Sequence[str]) -> dict[str, int]:
    """How many comparisons ended each way (every outcome named, zeros included)."""
    values = list(outcomes)
    return {k: values.count(k) for k in OUTCOMES}


def flip_positions(chosen_first: Sequence[str | None], rejected_first: Sequence[str | None]) -> dict[str, int]:
    """Position flips where the judge named the same slot both times (``A>B`` then ``A>>B`` included): pure
    position bias, by slot."""
    sides = [(verdict_side(a), verdict_side(b)) for a, b in zip(chosen_first, rejected_first)]
    same = [a for a, b in sides if a == b and a in ("A", "B")]
    return {"A_both_orders": same.count("A"), "B_both_orders": same.count("B")}
