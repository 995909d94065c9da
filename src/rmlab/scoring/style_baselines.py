"""Style null baselines: pseudo reward models whose score is a style heuristic, so that a table shows how much of
a benchmark a heuristic already solves (``model.kind: length | markdown``; no weights).

- ``length``: the response's length in tokens, counted as Arena-Hard-Auto counts answer length (tiktoken
  ``cl100k_base``, the whole answer; :func:`rmlab.utils.style_features.token_lengths`): the longer answer wins.
- ``markdown``: the number of markdown elements, Arena-Hard-Auto's style-control counts summed (headers h1-h6,
  ordered and unordered list items, bold spans, counted outside code blocks;
  :func:`rmlab.utils.style_features.markdown_counts`): the more formatted answer wins.

Both ignore the prompt. A benchmark with an exact tie (same length, or no markdown on either side) counts it as the
benchmark counts ties (RM-Bench, RewardBench: a loss), so the markdown baseline sits below chance where neither
response is formatted. Written here because no library ships them as reward models; the counts are the lab's
Arena-Hard ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmlab.scoring.scorers import SCORERS, Encoded
from rmlab.utils.style_features import markdown_counts, token_lengths

STYLE_KINDS = ("length", "markdown")


@dataclass(frozen=True)
class StyleEncoded(Encoded):
    score: float = 0.0


class _StyleScorer:
    packs = False

    def __call__(self, batch: list[StyleEncoded], runs=None) -> np.ndarray:
        return np.array([e.score for e in batch], dtype=np.float64)


@SCORERS.register("length")
class LengthScorer(_StyleScorer):
    """Score = the response's cl100k_base token count."""

    def encode(self, prompt, response: str) -> StyleEncoded:
        (n,) = token_lengths([response])
        return StyleEncoded([0] * max(1, n // 64), 0, float(n))  # input_ids: a length for batching only


@SCORERS.register("markdown")
class MarkdownScorer(_StyleScorer):
    """Score = headers + list items + bold spans (outside code)."""

    def encode(self, prompt, response: str) -> StyleEncoded:
        counts = markdown_counts(response)
        n = sum(sum(family.values()) for family in counts.values())
        return StyleEncoded([0] * max(1, len(response) // 256), 0, float(n))
