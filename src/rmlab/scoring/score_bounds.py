"""How far scores move with batch size, packing and order: the measurement behind
:data:`rmlab.scoring.precision.RELATIVE_BOUND` (``rmlab measure-score-bounds``; docs/numerics.md).

The configured classifier (``model``; SmolLM2-135M-Instruct with a seeded head by default) and implicit reward model
(``implicit``; reference-free, mean and sum of log-probabilities) score the same real RM-Bench pairs once per
batching: batch sizes 1, 2, 7 and all, padded and packed, in the loaded, reversed and a shuffled order. Per scorer and
dtype it reports the largest absolute and relative (to ``max(1, |score|)``) deviation from batch size 1 in the loaded
order, also in units of the dtype's unit roundoff. A measurement, not a test: the bounds it prints, doubled, are
``RELATIVE_BOUND``. Run it once natively and once under ``ATEN_CPU_CAPABILITY=default`` (the CPU kernel paths sum in
other orders).
"""

from __future__ import annotations

import logging
import random
import tempfile

import numpy as np
import torch

from rmlab.models.handle import open_model
from rmlab.models.loading import DTYPES, load_causal_lm, load_classifier
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer

log = logging.getLogger(__name__)

# (batch size, packed, order): order 0 as loaded, 1 reversed, 2 shuffled; None = all pairs in one batch. The first
# is the reference every other batching is compared with.
BATCHINGS = [
    (1, False, 0),
    (2, False, 0),
    (7, False, 1),
    (None, False, 2),
    (None, True, 0),
    (None, True, 1),
    (4, True, 2),
]


def scores_under(scorer, pairs: list[tuple[str, str]], batch_size: int | None, packed: bool, order: int) -> np.ndarray:
    """``pairs``' scores in their given order, computed in another order and batching (no score cache shared)."""
    idx = list(range(len(pairs)))
    if order == 1:
        idx.reverse()
    elif order == 2:
        random.Random(3).shuffle(idx)
    with tempfile.TemporaryDirectory() as d:
        got, _ = score_pairs([pairs[i] for i in idx], scorer_factory=lambda: scorer, cache=ScoreCache(d, "k"),
                             batch_size=batch_size or len(pairs), max_tokens=None, progress=False, packed=packed)  # fmt: skip
    out = np.empty(len(pairs))
    out[idx] = got
    return out


def deviation_report(runs: np.ndarray, dtype: torch.dtype) -> dict:
    """Largest deviation of runs[1:] from runs[0] (one row per batching), absolute and relative to max(1, |score|)."""
    dev = np.abs(runs - runs[0]).max(axis=0)
    rel = dev / np.maximum(1.0, np.abs(runs[0]))
    return {
        "max_abs": float(dev.max()),
        "max_rel": float(rel.max()),
        "max_rel_in_u": float(rel.max() / (torch.finfo(dtype).eps / 2)),
        "max_abs_score": float(np.abs(runs[0]).max()),
    }


def _scorers(cfg, dtype: str, kinds) -> dict:
    """The requested scorers in ``dtype``: the classifier from ``cfg.model``, the implicit ones from ``cfg.implicit``."""
    out = {}
    if "classifier" in kinds:
        h = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
        clf, _ = load_classifier(
            h.resolved, dtype=dtype, device="cpu", pad_token_id=h.tokenizer.pad_token_id, seed=cfg.seed
        )
        out["classifier"] = ClassifierScorer(
            clf, h.tokenizer, h.formatter, max_length=int(cfg.model.max_length), device="cpu"
        )
    modes = [k.removeprefix("implicit_") for k in kinds if k.startswith("implicit_")]
    if modes:
        h = open_model(cfg.implicit, cache_dir=cfg.paths.model_cache_dir)
        lm = load_causal_lm(h.resolved, dtype=dtype, device="cpu")
        for mode in modes:
            out[f"implicit_{mode}"] = ImplicitRewardScorer(
                lm, h.tokenizer, h.formatter, max_length=int(cfg.implicit.max_length), device="cpu", mode=mode
            )
    return out


def measure_score_bounds(cfg) -> dict:
    """Score the same pairs under every batching, per scorer and dtype; print and write ``score_bounds.json``."""
    from rmlab.data.rm_bench import load_rm_bench
    from rmlab.utils.io import write_json

    m = cfg.measure
    items, _ = load_rm_bench(
        data_dir=cfg.benchmark.data_dir,
        hub_id=cfg.benchmark.hub_id,
        domains=list(cfg.benchmark.domains),
        max_per_domain=m.prompts_per_domain,
        seed=cfg.seed,
    )
    pairs = list(dict.fromkeys((it.prompt, r) for it in items for r in (*it.chosen, *it.rejected)))[: m.pairs]
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "pairs": len(pairs), "results": {}}
    for dtype in m.dtypes:
        for kind, scorer in _scorers(cfg, dtype, list(m.scorers)).items():
            runs = np.array([scores_under(scorer, pairs, *b) for b in BATCHINGS])
            out["results"][f"{kind}/{dtype}"] = res = deviation_report(runs, DTYPES[dtype])
            print(f"{kind:13s} {dtype:9s} " + ", ".join(f"{k} {v:.3g}" for k, v in res.items()), flush=True)
    write_json(f"{cfg.paths.output_dir}/score_bounds.json", out)
    return out
