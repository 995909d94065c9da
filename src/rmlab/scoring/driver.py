"""Score a list of (prompt, response) pairs once each, in packed (or length-bucketed) passes, through the score
cache."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rmlab.scoring.batching import Batch, padding_fraction, plan_batches
from rmlab.scoring.cache import ScoreCache
from rmlab.utils.hashing import text_hash

log = logging.getLogger(__name__)


class ScoringError(RuntimeError):
    """A model produced an unusable score (NaN or infinite)."""


@dataclass
class ScoringStats:
    unique_pairs: int = 0
    cached: int = 0
    scored: int = 0
    tokens_scored: int = 0
    tokens_shared: int = 0  # prompt tokens encoded once for several responses instead of once each
    truncated: int = 0
    padding_fraction: float = 0.0
    seconds: float = 0.0
    batches: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_scored / self.seconds if self.seconds else 0.0


def pair_key(prompt: str | tuple, response: str) -> str:
    """Cache key of a (prompt, response) pair; a multi-turn prompt is keyed by its JSON form."""
    return text_hash(prompt if isinstance(prompt, str) else json.dumps(prompt), response)


def score_pairs(
    pairs: Sequence[tuple[str, str]],
    *,
    scorer_factory: Callable[[], object],
    cache: ScoreCache,
    batch_size: int,
    max_tokens: int | None,
    labels: Sequence[str] | None = None,
    on_batch: Callable[[int], None] | None = None,
    progress: bool = True,
    packed: bool = True,
) -> tuple[np.ndarray, ScoringStats]:
    """Scores for ``pairs`` (duplicates scored once), computing only what ``cache`` lacks.

    :param scorer_factory: builds the scorer (loads the model); called only if something must be computed.
    :param labels: a name per pair for error messages (e.g. ``chat/17/chosen/concise``).
    :param on_batch: called with the batch number after each batch is stored (progress hooks, tests).
    :param packed: lay each pass's sequences end to end without padding, a prompt's shared tokens once
        (:mod:`rmlab.scoring.forward`; scorers whose models allow it, ``scorer.packs``); scores equal the padded,
        unshared ones to rounding. Otherwise right-padded, length-bucketed batches.
    """
    keys = [pair_key(p, r) for p, r in pairs]
    unique: dict[str, int] = {}
    for i, k in enumerate(keys):
        unique.setdefault(k, i)
    stats = ScoringStats(unique_pairs=len(unique))
    todo = [k for k in unique if k not in cache]
    stats.cached = len(unique) - len(todo)
    if todo:
        scorer = scorer_factory()
        # The plan covers every unique pair, so a resumed run rebuilds exactly the batches of the first run and
        # recomputes only those not yet stored: the scores are bit-identical to an uninterrupted run.
        ukeys = list(unique)
        encoded = {}
        for k in tqdm(ukeys, desc="tokenising", disable=not progress, mininterval=2):
            prompt, response = pairs[unique[k]]
            encoded[k] = scorer.encode(prompt, response)
        packs = packed and getattr(scorer, "packs", False)
        groups = _prompt_groups(ukeys, pairs, unique)
        plan = plan_batches(
            [[encoded[k].input_ids for k in g] for g in groups],
            batch_size=batch_size,
            max_tokens=max_tokens,
            packed=packs,
        )
        plan = [Batch([groups[g][i] for g, i in b.members], b.runs) for b in plan]
        plan = [b for b in plan if not all(k in cache for k in b.members)]
        if not packs:
            stats.padding_fraction = padding_fraction(
                [len(encoded[k].input_ids) for b in plan for k in b.members], _reindex([b.members for b in plan])
            )
        t0 = time.perf_counter()
        for n, planned in enumerate(tqdm(plan, desc="scoring", unit="batch", disable=not progress)):
            batch = planned.members
            rows = [encoded[k] for k in batch]
            scores = scorer(rows) if planned.runs is None else scorer(rows, runs=planned.runs)
            for k, s in zip(batch, scores):
                if not math.isfinite(float(s)):
                    where = labels[unique[k]] if labels else f"pair #{unique[k]}"
                    raise ScoringError(f"non-finite score {float(s)} for {where}")
            cache.add({k: float(s) for k, s in zip(batch, scores)})
            stats.scored += len(batch)
            stats.tokens_scored += sum(len(encoded[k].input_ids) for k in batch)
            stats.tokens_shared += sum((count - 1) * prefix for count, prefix in planned.runs or [])
            stats.batches += 1
            if on_batch is not None:
                on_batch(n)
        stats.seconds = time.perf_counter() - t0
    return np.array([cache.get(k) for k in keys], dtype=np.float64), stats


def _prompt_groups(ukeys: list[str], pairs, unique: dict[str, int]) -> list[list[str]]:
    """Unique pairs grouped by prompt, in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for k in ukeys:
        prompt = pairs[unique[k]][0]
        groups.setdefault(prompt if isinstance(prompt, str) else json.dumps(prompt), []).append(k)
    return list(groups.values())


def _reindex(plan: list[list[str]]) -> list[list[int]]:
    out, i = [], 0
    for b in plan:
        out.append(list(range(i, i + len(b))))
        i += len(b)
    return out
