"""Score a list of (prompt, response) pairs once each, in length-bucketed batches, through the score cache."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rmlab.scoring.batching import length_batches, padding_fraction
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
) -> tuple[np.ndarray, ScoringStats]:
    """Scores for ``pairs`` (duplicates scored once), computing only what ``cache`` lacks.

    :param scorer_factory: builds the scorer (loads the model); called only if something must be computed.
    :param labels: a name per pair for error messages (e.g. ``chat/17/chosen/concise``).
    :param on_batch: called with the batch number after each batch is stored (progress hooks, tests).
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
        lengths = [len(encoded[k].input_ids) for k in ukeys]
        plan = [[ukeys[i] for i in b] for b in length_batches(lengths, batch_size=batch_size, max_tokens=max_tokens)]
        plan = [b for b in plan if not all(k in cache for k in b)]
        stats.padding_fraction = padding_fraction(
            [len(encoded[k].input_ids) for b in plan for k in b],
            _reindex(plan),
        )
        t0 = time.perf_counter()
        for n, batch in enumerate(tqdm(plan, desc="scoring", unit="batch", disable=not progress)):
            scores = scorer([encoded[k] for k in batch])
            for k, s in zip(batch, scores):
                if not math.isfinite(float(s)):
                    where = labels[unique[k]] if labels else f"pair #{unique[k]}"
                    raise ScoringError(f"non-finite score {float(s)} for {where}")
            cache.add({k: float(s) for k, s in zip(batch, scores)})
            stats.scored += len(batch)
            stats.tokens_scored += sum(len(encoded[k].input_ids) for k in batch)
            stats.batches += 1
            if on_batch is not None:
                on_batch(n)
        stats.seconds = time.perf_counter() - t0
    return np.array([cache.get(k) for k in keys], dtype=np.float64), stats


def _reindex(plan: list[list[str]]) -> list[list[int]]:
    out, i = [], 0
    for b in plan:
        out.append(list(range(i, i + len(b))))
        i += len(b)
    return out
