"""Training prompts that also appear in the benchmarks a reward model will be scored on, checked before training.

Every training (and held-out) pair's prompt is compared with the prompts of each configured benchmark
(``contamination.benchmarks``: RM-Bench, RewardBench, RewardBench 2, RewardMATH by default), read through the
benchmark plug-ins themselves, so a new benchmark is checked by naming it; the tests (exact, word n-grams) are
:class:`rmlab.data.contamination.BenchmarkIndex`'s. The counts per benchmark, and up to ``max_listed`` matches
(training pair id, benchmark item), go into the run's data record (``metrics.json`` / ``rmlab_meta.json``:
``data.contamination``); ``preference.decontaminate=true`` drops the overlapping pairs and counts them. A benchmark
whose data cannot be read here is listed as not checked, with the reason, not silently skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from omegaconf import OmegaConf, open_dict

from rmlab.data.contamination import BenchmarkIndex, prompt_text
from rmlab.data.errors import DataUnavailableError
from rmlab.data.pairs import PreferenceExample
from rmlab.data.preference import PreferenceSplits, fingerprint

log = logging.getLogger(__name__)


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
    report: dict = {"ngram": n, "threshold": threshold, "max_listed": listed, "benchmarks": {}, "not_checked": {},
                    "matches": []}  # fmt: skip
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


def decontaminate(splits: PreferenceSplits, cfg) -> PreferenceSplits:
    """The check on a run's pairs (``cfg``: the run config), recorded in ``splits.info['contamination']``; with
    ``preference.decontaminate`` the overlapping pairs are dropped and the record's counts and fingerprints follow."""
    drop = bool(cfg.preference.get("decontaminate"))
    train, heldout, report = check(splits.train, splits.heldout, cfg, drop=drop)
    info = {**splits.info, "contamination": report}
    if report.get("dropped"):
        info.update({"train_pairs": len(train), "heldout_pairs": len(heldout),
                     "train_fingerprint": fingerprint(train), "heldout_fingerprint": fingerprint(heldout)})  # fmt: skip
    return PreferenceSplits(train, heldout, info)
