"""Length-bucketed batches: sequences of similar length go together, so little compute goes to padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


MIN_SHARED_TOKENS = 8  # a shorter common prefix is laid out with each row rather than shared
PACKED_TOKENS = 8192  # tokens per packed pass when no max_tokens is given


@dataclass(frozen=True)
class Batch:
    """One forward pass: its members, and for a packed pass its runs (consecutive ``(count, shared prefix
    length)``, :func:`rmlab.scoring.forward.pack`); ``runs=None`` is a right-padded batch."""

    members: list
    runs: list | None = None


def plan_batches(
    groups: Sequence[Sequence[Sequence[int]]], *, batch_size: int, max_tokens: int | None = None, packed: bool = True
) -> list[Batch]:
    """Forward passes over token rows grouped by prompt; members are ``(group, index)``.

    Packed (``packed=True``): each group whose rows share at least :data:`MIN_SHARED_TOKENS` leading tokens is one
    unit that lays the shared tokens out once; other rows are units of their own. Units, largest first, fill passes
    of at most ``max_tokens`` packed tokens (a group too large for one pass is split, each part with the prefix).
    No padding, whatever the lengths. Padded (``packed=False``): :func:`length_batches` over all rows.
    Depends only on the token ids, so a resumed run plans the same passes.
    """
    if not packed:
        flat = [(g, i) for g, rows in enumerate(groups) for i in range(len(rows))]
        lengths = [len(groups[g][i]) for g, i in flat]
        return [
            Batch([flat[j] for j in b]) for b in length_batches(lengths, batch_size=batch_size, max_tokens=max_tokens)
        ]
    cap = max_tokens or PACKED_TOKENS
    units: list[tuple[int, list[tuple[int, int]], int]] = []  # (packed tokens, members, shared prefix length)
    for g, rows in enumerate(groups):
        prefix = common_prefix_length(rows)
        if prefix < MIN_SHARED_TOKENS:
            units.extend((len(r), [(g, i)], 0) for i, r in enumerate(rows))
            continue
        members, size = [], prefix
        for i in sorted(range(len(rows)), key=lambda i: (-len(rows[i]), i)):
            own = len(rows[i]) - prefix
            if members and size + own > cap:
                units.append((size, members, prefix))
                members, size = [], prefix
            members.append((g, i))
            size += own
        units.append((size, members, prefix))
    units.sort(key=lambda u: (-u[0], u[1][0]))
    batches: list[Batch] = []
    members, runs, size = [], [], 0
    for tokens, unit, prefix in units:
        if members and size + tokens > cap:
            batches.append(Batch(members, runs))
            members, runs, size = [], [], 0
        members = members + unit
        runs = runs + [(len(unit), prefix)]
        size += tokens
    if members:
        batches.append(Batch(members, runs))
    return batches


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens all ``rows`` start with, capped so each keeps at least one of its own (0 for a single row)."""
    if len(rows) < 2:
        return 0
    first, n = rows[0], min(len(r) for r in rows) - 1
    for i in range(n):
        if any(r[i] != first[i] for r in rows[1:]):
            return i
    return max(n, 0)
