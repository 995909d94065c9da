"""Overlap between training prompts and a benchmark's prompts (the index; the check before training that uses it
is :mod:`rmlab.training.contamination`). Two tests, on the user turns only:

- **exact**: equal after lower-casing and collapsing whitespace;
- **n-gram**: at least ``threshold`` of the training prompt's word ``ngram``-grams occur among the benchmark's
  (13-grams by default, the length GPT-3's decontamination used, Brown et al. 2020, appendix C). Prompts shorter
  than ``ngram`` words are tested by the exact rule alone.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def prompt_text(prompt) -> str:
    """The user turns of a prompt (a string or ``(role, content)`` turns), lower-cased, whitespace collapsed."""
    turns = [prompt] if isinstance(prompt, str) else [c for role, c in prompt if role == "user"]
    return " ".join(" ".join(turns).lower().split())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class BenchmarkIndex:
    """One benchmark's prompts: exact texts and n-grams, each pointing back at an item label."""

    def __init__(self, name: str, prompts, n: int):
        self.name, self.n = name, n
        self.exact: dict[str, str] = {}
        self.grams: dict[tuple[str, ...], str] = {}
        for label, prompt in prompts:
            text = prompt_text(prompt)
            self.exact.setdefault(text, label)
            for g in ngrams(text, n):
                self.grams.setdefault(g, label)

    def match(self, prompt, threshold: float) -> tuple[str, str] | None:
        """``(kind, benchmark item)`` where ``prompt`` overlaps this benchmark, else None."""
        text = prompt_text(prompt)
        if text in self.exact:
            return "exact", self.exact[text]
        grams = ngrams(text, self.n)
        if grams:
            hits = [self.grams[g] for g in grams if g in self.grams]
            if len(hits) / len(grams) >= threshold:
                return "ngram", hits[0]
        return None
