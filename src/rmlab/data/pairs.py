"""The schema of a preference pair (:class:`PreferenceExample`) and the error a converter raises for a row that
cannot become one (:class:`MalformedRow`) or is by rule not a pair (:class:`SkippedRow`); see :mod:`rmlab.data.preference`."""

from __future__ import annotations

from dataclasses import dataclass, field


class MalformedRow(ValueError):
    """A source row that cannot be turned into a preference pair; the message says which field and why."""


class SkippedRow(Exception):
    """A well-formed row that is by rule not a pair (a tie, another split): counted by reason and reported, never
    an error and never dropped silently; the message is the reason."""


@dataclass(frozen=True)
class PreferenceExample:
    source: str
    id: str
    prompt: tuple[tuple[str, str], ...]
    chosen: str
    rejected: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def as_row(self) -> list:
        return [self.source, self.id, [list(t) for t in self.prompt], self.chosen, self.rejected]
