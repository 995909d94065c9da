"""Length-bucketed batches: sequences of similar length go together, so little compute goes to padding."""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], *, batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Split indices into batches of similar length, longest first (an out-of-memory error shows up at once).

    A batch holds at most ``batch_size`` sequences and, when ``max_tokens`` is set, at most ``max_tokens``
    padded tokens (``len(batch) * longest``); a single sequence longer than ``max_tokens`` gets its own batch.
    The plan depends only on the lengths, so it is the same in a resumed run.

    >>> length_batches([3, 9, 4, 8], batch_size=2)
    [[1, 3], [2, 0]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        full = len(current) >= batch_size or (max_tokens is not None and (len(current) + 1) * longest > max_tokens)
        if current and full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the computed token positions that are padding."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - real / padded if padded else 0.0
