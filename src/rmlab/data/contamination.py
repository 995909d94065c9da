"""Training prompts that also appear in the benchmarks a reward model will be scored on.

Before training, every training (and held-out) pair's prompt is compared with the prompts of each configured
benchmark (``contamination.benchmarks``: RM-Bench, RewardBench, RewardBench 2, RewardMATH by default), read through
the benchmark plug-ins themselves, so a new benchmark is checked by naming it. Two tests, on the user turns only:

- **exact**: equal after lower-casing and collapsing whitespace;
- **n-gram**: at least ``threshold`` of the training prompt's word ``ngram``-grams occur among the benchmark's
  (13-grams by default, the length GPT-3's decontamination used, Brown et al. 2020, appendix C). Prompts shorter
  than ``ngram`` words are tested by the exact rule alone.

The counts per benchmark, and up to ``max_listed`` matches (training pair id, benchmark item), go into the run's
data record (``metrics.json`` / ``rmlab_meta.json``: ``data.contamination``); ``preference.decontaminate=true``
drops the overlapping pairs and counts them. A benchmark whose data cannot be read here is listed as not checked,
with the reason, not silently skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from omegaconf import OmegaConf, open_dict

from rmlab.data.errors import DataUnavailableError
from rmlab.data.pairs import PreferenceExample

log = logging.getLogger(__name__)
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

    def __init__(self, name: str, prompts: Sequence[tuple[str, object]], n: int):
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


def benchmark_prompts(root_cfg, name: str, overrides: Sequence[str]) -> list[tuple[str, object]]:
    """``(item label, prompt)`` of every request of benchmark ``name``, loaded as ``eval_rm`` would load it."""
    from rmlab.benchmarks import BENCHMARKS
    from rmlab.utils.config import compose_config

    sub = compose_config("eval_rm", [f"benchmark={name}", *overrides])
    with open_dict(sub):
        sub.paths = OmegaConf.merge(sub.paths, {k: root_cfg.paths[k] for k in root_cfg.paths if k != "output_dir"})
    bench = BENCHMARKS[name](sub.benchmark)
    items, _ = bench.load()
    seen, out = set(), []
    for r in bench.requests(items):
        key = prompt_text(r.prompt)
        if key not in seen:
            seen.add(key)
            out.append((r.label.rsplit("/", 2)[0], r.prompt))
    return out


def check(
    train: list[PreferenceExample], heldout: list[PreferenceExample], root_cfg, *, drop: bool
) -> tuple[list[PreferenceExample], list[PreferenceExample], dict]:
    """Count (and with ``drop`` remove) the pairs whose prompt overlaps a configured benchmark (module docstring)."""
    cfg = root_cfg.get("contamination")
    if cfg is None or not cfg.get("enabled", True):
        return train, heldout, {"checked": False}
    n, threshold, listed = int(cfg.ngram), float(cfg.threshold), int(cfg.get("max_listed", 50))
    report: dict = {"ngram": n, "threshold": threshold, "benchmarks": {}, "not_checked": {}, "matches": []}
    flagged: set[str] = set()
    for name, overrides in (cfg.benchmarks or {}).items():
        try:
            index = BenchmarkIndex(name, benchmark_prompts(root_cfg, name, list(overrides or [])), n)
        except (DataUnavailableError, OSError) as err:
            report["not_checked"][name] = str(err).splitlines()[0][:200]
            continue
        counts = {"benchmark_prompts": len(index.exact), "train": 0, "heldout": 0, "exact": 0, "ngram": 0}
        for split, pairs in (("train", train), ("heldout", heldout)):
            for e in pairs:
                hit = index.match(e.prompt, threshold)
                if hit is None:
                    continue
                counts[split] += 1
                counts[hit[0]] += 1
                flagged.add(e.id)
                if len(report["matches"]) < listed:
                    report["matches"].append({"pair": e.id, "split": split, "benchmark": name, "kind": hit[0],
                                              "item": hit[1]})  # fmt: skip
        report["benchmarks"][name] = counts
    if report["not_checked"]:
        log.warning("contamination: not checked against %s", report["not_checked"])
    total = {s: sum(c[s] for c in report["benchmarks"].values()) for s in ("train", "heldout")}
    log.info("contamination: %s (%d training pairs overlap a benchmark)", report["benchmarks"], total["train"])
    report["dropped"] = 0
    if drop and flagged:
        kept_train = [e for e in train if e.id not in flagged]
        kept_heldout = [e for e in heldout if e.id not in flagged]
        report["dropped"] = len(train) - len(kept_train) + len(heldout) - len(kept_heldout)
        train, heldout = kept_train, kept_heldout
    return train, heldout, {"checked": True, **report}
