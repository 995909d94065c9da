"""Scoring throughput: this project's scorers against the peer's own code, and against the hardware floor.

The baseline is rewardbench 0.1.4's code itself (:mod:`rmlab.scoring.peers`), driven as its CLI drives it:
``RewardBenchPipeline`` for classifiers and ``DPOInference`` for implicit rewards, batch 8, dataset order, left
padding for classifiers, in the same dtype on the same RM-Bench records. Ours is
:func:`rmlab.scoring.driver.score_pairs`, run twice: right-padded length-bucketed batches, and packed rows without
padding in which a prompt's tokens are encoded once for all its responses (:mod:`rmlab.scoring.forward`).

Throughput is text tokens per second: every token of every scored conversation, whether computed or shared. The
floor is the machine's matmul rate measured in the same dtype, with a model costed at 2 FLOPs per matmul parameter
per token; for implicit rewards the LM head (vocabulary x hidden) is costed only at the scored positions, and a
reference model doubles the cost. A second floor adds causal attention at the measured SDPA rate. Peak memory is
the growth of the process's resident set during a run, sampled every 5 ms.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from rmlab.data.rm_bench import STYLES
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import DTYPES, load_causal_lm, load_classifier
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.peers import rewardbench_classifier_scores, rewardbench_dpo_scores, rewardbench_features
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer

log = logging.getLogger(__name__)


def matmul_flops_per_second(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """Sustained ``(m, k) @ (k, n)`` rate in FLOP/s, measured for about ``seconds``."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / elapsed


def sdpa_flops_per_second(
    heads: int, kv_heads: int, head_dim: int, length: int, dtype: torch.dtype, batch: int = 4, seconds: float = 2.0
) -> float:
    """Sustained causal ``scaled_dot_product_attention`` rate in FLOP/s (counting the causal half only)."""
    q = torch.randn(batch, heads, length, head_dim, dtype=dtype)
    kv = torch.randn(batch, kv_heads, length, head_dim, dtype=dtype).repeat_interleave(heads // kv_heads, dim=1)
    torch.nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=True)
    reps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        torch.nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=True)
        reps += 1
    return attention_flops(length, heads, head_dim, layers=1) * batch * reps / elapsed


def attention_flops(length: int, heads: int, head_dim: int, layers: int) -> float:
    """Causal attention FLOPs of one sequence: QK^T and AV, 2 FLOPs per MAC, half of the T x T matrix."""
    return layers * 2 * 2 * heads * head_dim * length * length / 2


def attention_shape(config) -> tuple[int, int, int, int]:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, heads, getattr(config, "num_key_value_heads", heads), head_dim


def matmul_params(model) -> int:
    """Parameters that take part in matmuls per token (all but the input embedding lookup)."""
    emb = model.get_input_embeddings()
    return sum(p.numel() for p in model.parameters()) - (emb.weight.numel() if emb is not None else 0)


@dataclass
class RunResult:
    name: str
    seconds: float
    tokens: int
    scores: np.ndarray  # (n_items, 2, 3): chosen / rejected by style
    peak_mb: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


class PeakRSS:
    """Growth of this process's resident memory while the block runs (MiB), sampled every 5 ms."""

    def __init__(self):
        self.peak_mb, self._stop = 0.0, threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self, start: int) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, (self._rss() - start) / 2**20)

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, args=(self._rss(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _timed(name: str, tokens: int, run: Callable[[], np.ndarray]) -> RunResult:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        scores = run()
        seconds = time.perf_counter() - t0
    log.info("%s: %.1f s, %.0f tok/s, peak +%.0f MiB", name, seconds, tokens / seconds, mem.peak_mb)
    return RunResult(name, seconds, tokens, scores, mem.peak_mb)


def _texts(items, formatter: ChatFormatter) -> dict[tuple[int, int, int], str]:
    return {
        (n, side, s): formatter.format(it.prompt, getattr(it, ("chosen", "rejected")[side])[s]).text
        for n, it in enumerate(items)
        for side in (0, 1)
        for s in range(len(STYLES))
    }


def _pairs(items) -> list[tuple[str, str]]:
    """(prompt, response) in (item, side, style) order."""
    return [(it.prompt, r) for it in items for side in ("chosen", "rejected") for r in getattr(it, side)]


def run_ours(scorer, items, *, packed: bool, batch_size: int, max_tokens: int | None, tokens: int) -> RunResult:
    def run():
        with tempfile.TemporaryDirectory() as tmp:
            scores, _ = score_pairs(
                _pairs(items),
                scorer_factory=lambda: scorer,
                cache=ScoreCache(tmp, "bench"),
                batch_size=batch_size,
                max_tokens=max_tokens,
                progress=False,
                packed=packed,
            )
        return scores.reshape(len(items), 2, len(STYLES))

    return _timed(f"ours ({'packed, prompts shared' if packed else 'padded'})", tokens, run)


def rank_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """How much two score sets differ: max |diff|, Spearman rho, and flipped chosen-vs-rejected decisions."""
    wins_a = a[:, 0, :, None] > a[:, 1, None, :]
    wins_b = b[:, 0, :, None] > b[:, 1, None, :]
    rho = stats.spearmanr(a.ravel(), b.ravel()).statistic
    return {
        "max_abs_diff": float(np.abs(a - b).max()),
        "spearman": float(rho),
        "flipped_comparisons": int((wins_a != wins_b).sum()),
        "comparisons": int(wins_a.size),
    }


def _floors(lengths: list[int], flops: float, model, dtype, rate: float, max_length: int) -> dict:
    """Seconds at the matmul floor, and with causal attention at the measured SDPA rate added."""
    layers, heads, kv_heads, head_dim = attention_shape(model.config)
    attn_rate = sdpa_flops_per_second(heads, kv_heads, head_dim, int(np.median(lengths)), DTYPES[dtype])
    matmul = flops / rate
    attention = sum(attention_flops(min(n, max_length), heads, head_dim, layers) for n in lengths) / attn_rate
    return {"matmul_seconds": matmul, "attention_seconds": attention, "sdpa_gflops": attn_rate / 1e9}


def _part_report(runs: dict[str, RunResult], floors: dict, rate: float, peer: str) -> dict:
    out = {"matmul_gflops": rate / 1e9, **floors, "runs": {}}
    for key, r in runs.items():
        out["runs"][key] = {
            "seconds": r.seconds,
            "tokens": r.tokens,
            "tokens_per_s": r.tokens_per_second,
            "vs_peer": runs[peer].seconds / r.seconds,
            "fraction_of_matmul_floor": floors["matmul_seconds"] / r.seconds,
            "fraction_of_matmul_plus_attention_floor": (floors["matmul_seconds"] + floors["attention_seconds"])
            / r.seconds,
            "peak_mb": r.peak_mb,
            "scores_vs_peer": rank_agreement(runs[peer].scores, r.scores),
        }
    return out


def classifier_part(cfg, items, dtype: str, rate: float) -> tuple[dict, RunResult]:
    b, max_length = cfg.bench, int(cfg.model.max_length)
    handle = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
    tok, fmt = handle.tokenizer, handle.formatter
    model, _ = load_classifier(handle.resolved, dtype=dtype, device="cpu", pad_token_id=tok.pad_token_id, seed=cfg.seed)
    scorer = ClassifierScorer(model, tok, fmt, max_length=max_length, device="cpu")
    lengths = [len(scorer.encode(p, r).input_ids) for p, r in _pairs(items)]
    tokens = sum(lengths)
    texts = _texts(items, fmt)
    peer = _timed(
        "rewardbench RewardBenchPipeline",
        tokens,
        lambda: rewardbench_classifier_scores(
            model, tok, texts, len(items), batch_size=b.peer_batch_size, max_length=max_length
        ),
    )
    kw = {"batch_size": b.ours_batch_size, "max_tokens": b.ours_max_tokens, "tokens": tokens}
    runs = {
        "rewardbench": peer,
        "ours_padded": run_ours(scorer, items, packed=False, **kw),
        "ours_packed": run_ours(scorer, items, packed=True, **kw),
    }
    floors = _floors(lengths, 2 * matmul_params(model) * tokens, model, dtype, rate, max_length)
    return _part_report(runs, floors, rate, "rewardbench"), runs["ours_packed"]


def _perturbed_reference(policy, seed: int):
    """A reference that differs from the policy (as a DPO model's SFT start does), so rewards are not all zero:
    the policy's weights plus seeded noise of 1% of each tensor's spread. Only the benchmark uses it."""
    ref = copy.deepcopy(policy)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ref.parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype)
            p.add_(noise * 0.01 * p.float().std().to(p.dtype))
    return ref


def implicit_part(cfg, items, dtype: str, rate: float, reference: bool) -> tuple[dict, RunResult]:
    b, mcfg = cfg.bench, cfg.implicit
    max_length = int(mcfg.max_length)
    handle = open_model(mcfg, cache_dir=cfg.paths.model_cache_dir)
    tok, fmt = handle.tokenizer, handle.formatter
    if tok.bos_token is None:  # as RM-Bench's scripts/run_dpo.py sets it
        tok.bos_token = tok.eos_token
    policy = load_causal_lm(handle.resolved, dtype=dtype, device="cpu")
    ref = _perturbed_reference(policy, cfg.seed) if reference else None
    mode = "avg"  # reference-free: RM-Bench's default (scripts/run_dpo.py --ref_free_type); unused with a reference
    scorer = ImplicitRewardScorer(
        policy, tok, fmt, max_length=max_length, device="cpu", reference=ref, mode=mode, tokens="rewardbench"
    )
    encoded = [scorer.encode(p, r) for p, r in _pairs(items)]
    lengths = [len(e.input_ids) for e in encoded]
    scored = sum(len(e.input_ids) - max(e.response_start, 1) for e in encoded)
    tokens = sum(lengths)
    n_styles = len(STYLES)
    features = [
        rewardbench_features(tok, it.prompt, it.chosen[s], it.rejected[s]) for s in range(n_styles) for it in items
    ]

    def peer_run():
        flat, _ = rewardbench_dpo_scores(policy, ref, tok, features, mode=mode, batch_size=b.peer_batch_size)
        return flat.reshape(n_styles, len(items), 2).transpose(1, 2, 0)  # (item, side, style)

    peer = _timed("rewardbench DPOInference", tokens, peer_run)
    kw = {"batch_size": b.ours_batch_size, "max_tokens": b.ours_max_tokens, "tokens": tokens}
    runs = {
        "rewardbench": peer,
        "ours_padded": run_ours(scorer, items, packed=False, **kw),
        "ours_packed": run_ours(scorer, items, packed=True, **kw),
    }
    head = policy.get_output_embeddings().weight.numel()
    flops = (2 if ref is not None else 1) * (2 * matmul_params(policy) * tokens + 2 * head * scored)
    floors = _floors(lengths, flops, policy, dtype, rate, max_length)
    if ref is not None:
        floors["attention_seconds"] *= 2
    return _part_report(runs, floors, rate, "rewardbench"), runs["ours_packed"]


PARTS = {
    "classifier": lambda cfg, items, dtype, rate: classifier_part(cfg, items, dtype, rate),
    "implicit_ref_free": lambda cfg, items, dtype, rate: implicit_part(cfg, items, dtype, rate, reference=False),
    "implicit_reference": lambda cfg, items, dtype, rate: implicit_part(cfg, items, dtype, rate, reference=True),
}


def benchmark(cfg) -> dict:
    """Peer and ours, for each configured part and dtype, on the same RM-Bench records; print and return figures."""
    from rmlab.data.rm_bench import load_rm_bench
    from rmlab.utils.io import write_json

    b = cfg.bench
    torch.set_num_threads(b.get("threads") or torch.get_num_threads())
    items, _ = load_rm_bench(
        data_dir=cfg.benchmark.data_dir,
        hub_id=cfg.benchmark.hub_id,
        domains=list(cfg.benchmark.domains),
        max_per_domain=b.prompts_per_domain,
        seed=cfg.seed,
    )
    unknown = [p for p in b.parts if p not in PARTS]
    if unknown:
        raise ValueError(f"bench.parts: unknown {unknown}; choose from {list(PARTS)}")
    report: dict = {
        "threads": torch.get_num_threads(),
        "n_prompts": len(items),
        "n_texts": 6 * len(items),
        "domains": sorted({it.domain for it in items}),
        "classifier_model": str(cfg.model.pretrained),
        "implicit_model": str(cfg.implicit.pretrained),
        "parts": {},
    }
    ours: dict[str, dict[str, RunResult]] = {}
    for dtype in b.dtypes:
        rate = matmul_flops_per_second(*b.matmul_shape, dtype=DTYPES[dtype])
        for part in b.parts:
            log.info("part %s, %s", part, dtype)
            report["parts"].setdefault(part, {})[dtype], ours.setdefault(part, {})[dtype] = PARTS[part](
                cfg, items, dtype, rate
            )
    report["bf16_vs_fp32"] = {
        part: rank_agreement(runs["float32"].scores, runs["bfloat16"].scores)
        for part, runs in ours.items()
        if {"float32", "bfloat16"} <= set(runs)
    }
    write_json(f"{cfg.paths.output_dir}/bench.json", report)
    print(format_report(report))
    return report


def format_report(r: dict) -> str:
    lines = [
        (
            f"Scoring throughput on {r['n_prompts']} RM-Bench prompts ({r['n_texts']} texts; {', '.join(r['domains'])}), "
            f"{r['threads']} threads; classifier {r['classifier_model']}, implicit {r['implicit_model']}"
        ),
        "",
        (
            "| part | dtype | run | tok/s | vs rewardbench | / matmul floor | / matmul+attention floor | peak MiB | "
            "max abs diff vs rewardbench | decisions differing |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for part, by_dtype in r["parts"].items():
        for dtype, x in by_dtype.items():
            for run, y in x["runs"].items():
                a = y["scores_vs_peer"]
                lines.append(
                    f"| {part} | {dtype} | {run} | {y['tokens_per_s']:.0f} | {y['vs_peer']:.2f}x | "
                    f"{100 * y['fraction_of_matmul_floor']:.1f}% | "
                    f"{100 * y['fraction_of_matmul_plus_attention_floor']:.1f}% | {y['peak_mb']:.0f} | "
                    f"{a['max_abs_diff']:.2e} | {a['flipped_comparisons']}/{a['comparisons']} |"
                )
    lines.append("")
    for part, by_dtype in r["parts"].items():
        for dtype, x in by_dtype.items():
            lines.append(
                f"{part} {dtype}: matmul {x['matmul_gflops']:.0f} GFLOP/s, SDPA {x['sdpa_gflops']:.0f} GFLOP/s; "
                f"floor {x['matmul_seconds']:.1f} s matmul + {x['attention_seconds']:.1f} s attention"
            )
    for part, a in r.get("bf16_vs_fp32", {}).items():
        lines.append(
            f"{part}, bf16 vs fp32 (ours, packed): max |diff| {a['max_abs_diff']:.3g}, Spearman {a['spearman']:.4f}, "
            f"{a['flipped_comparisons']}/{a['comparisons']} chosen-vs-rejected decisions flip"
        )
    return "\n".join(lines)
