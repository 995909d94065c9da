"""Scoring throughput: this project's scorer against the way RewardBench scores, and against the matmul floor.

The baseline is how RewardBench's ``scripts/run_rm.py`` (and RM-Bench's copy of it) score a classifier: a
Hugging Face ``text-classification`` pipeline over the formatted texts in dataset order, with a fixed batch size,
one pass per style for the chosen and then the rejected responses, ``function_to_apply="none"``, truncation at
the same max length and the same dtype. Ours is :func:`rmlab.scoring.driver.score_pairs` (each unique pair once,
length-bucketed batches, ``inference_mode``).

Throughput is reported as real (non-padding) tokens per second over the same texts. The floor is the machine's
measured matmul rate in the same dtype, with the model costed at 2 FLOPs per matmul parameter per token.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from rmlab.data.rm_bench import STYLES
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import DTYPES, load_classifier
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.scorers import ClassifierScorer

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

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def _texts(items, formatter: ChatFormatter) -> dict[tuple[int, int, int], str]:
    return {
        (n, side, s): formatter.format(it.prompt, getattr(it, ("chosen", "rejected")[side])[s]).text
        for n, it in enumerate(items)
        for side in (0, 1)
        for s in range(len(STYLES))
    }


def run_baseline(items, model, tokenizer, formatter, *, batch_size: int, max_length: int) -> RunResult:
    """RewardBench-style: pipeline, dataset order, fixed batch, one pass per style and side."""
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=model.device)
    texts = _texts(items, formatter)
    out = np.zeros((len(items), 2, 3))
    kwargs = {"batch_size": batch_size, "truncation": True, "max_length": max_length, "function_to_apply": "none"}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(len(STYLES)):
            for side in (0, 1):
                batch = [texts[(n, side, s)] for n in range(len(items))]
                for n, r in enumerate(pipe(batch, **kwargs)):
                    out[n, side, s] = r["score"]
    seconds = time.perf_counter() - t0
    tokens = sum(min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), max_length) for t in texts.values())
    return RunResult("baseline (RewardBench-style pipeline)", seconds, tokens, out)


def run_ours(
    items, model, tokenizer, formatter, *, batch_size: int, max_tokens: int | None, max_length: int
) -> RunResult:
    scorer = ClassifierScorer(model, tokenizer, formatter, max_length=max_length, device=str(model.device))
    pairs = [(it.prompt, r) for it in items for side in ("chosen", "rejected") for r in getattr(it, side)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        scores, st = score_pairs(
            pairs,
            scorer_factory=lambda: scorer,
            cache=ScoreCache(tmp, "bench"),
            batch_size=batch_size,
            max_tokens=max_tokens,
            progress=False,
        )
        seconds = time.perf_counter() - t0  # includes tokenisation and cache writes
    return RunResult("ours (rmlab score_pairs)", seconds, st.tokens_scored, scores.reshape(len(items), 2, 3))


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


def load_bench_model(model_cfg, *, cache_dir: str, dtype: str, seed: int):
    handle = open_model(model_cfg, cache_dir=cache_dir)
    tokenizer, formatter = handle.tokenizer, handle.formatter
    model, _ = load_classifier(
        handle.resolved, dtype=dtype, device="cpu", pad_token_id=tokenizer.pad_token_id, seed=seed
    )
    return model, tokenizer, formatter


def benchmark(cfg) -> dict:
    """Run baseline and ours in each configured dtype on the same RM-Bench records; print and return figures."""
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
    max_length = int(cfg.model.max_length)
    report: dict = {
        "threads": torch.get_num_threads(),
        "n_prompts": len(items),
        "n_texts": 6 * len(items),
        "model": str(cfg.model.pretrained),
        "max_length": max_length,
        "runs": {},
    }
    results: dict[str, dict[str, RunResult]] = {}
    for dtype in b.dtypes:
        model, tok, fmt = load_bench_model(cfg.model, cache_dir=cfg.paths.model_cache_dir, dtype=dtype, seed=cfg.seed)
        rate = matmul_flops_per_second(*b.matmul_shape, dtype=DTYPES[dtype])
        flops_per_token = 2 * matmul_params(model)
        layers, heads, kv_heads, head_dim = attention_shape(model.config)
        lengths = [
            min(len(tok(t, add_special_tokens=False)["input_ids"]), max_length) for t in _texts(items, fmt).values()
        ]
        attn_rate = sdpa_flops_per_second(heads, kv_heads, head_dim, int(np.median(lengths)), DTYPES[dtype])
        # the attainable floor: linear layers at the matmul rate plus causal attention at the measured SDPA rate
        floor_seconds = (
            sum(lengths) * flops_per_token / rate
            + sum(attention_flops(n, heads, head_dim, layers) for n in lengths) / attn_rate
        )
        base = run_baseline(items, model, tok, fmt, batch_size=b.baseline_batch_size, max_length=max_length)
        ours = run_ours(
            items, model, tok, fmt, batch_size=b.ours_batch_size, max_tokens=b.ours_max_tokens, max_length=max_length
        )
        results[dtype] = {"baseline": base, "ours": ours}
        report["runs"][dtype] = {
            "matmul_gflops": rate / 1e9,
            "flops_per_token": flops_per_token,
            "baseline_tokens_per_s": base.tokens_per_second,
            "ours_tokens_per_s": ours.tokens_per_second,
            "speedup_vs_baseline": ours.tokens_per_second / base.tokens_per_second,
            "ours_fraction_of_matmul_rate": ours.tokens_per_second * flops_per_token / rate,
            "baseline_fraction_of_matmul_rate": base.tokens_per_second * flops_per_token / rate,
            "sdpa_gflops": attn_rate / 1e9,
            "floor_seconds_linear_plus_attention": floor_seconds,
            "ours_seconds": ours.seconds,
            "ours_fraction_of_linear_plus_attention_floor": floor_seconds / ours.seconds,
            "baseline_vs_ours_scores": rank_agreement(base.scores, ours.scores),
            "tokens": {"baseline": base.tokens, "ours": ours.tokens},
        }
        del model
    if "float32" in results and "bfloat16" in results:
        report["bf16_vs_fp32"] = rank_agreement(results["float32"]["ours"].scores, results["bfloat16"]["ours"].scores)
    write_json(f"{cfg.paths.output_dir}/bench.json", report)
    print(format_report(report))
    return report


def format_report(r: dict) -> str:
    lines = [
        (
            f"Scoring throughput: {r['model']}, {r['n_prompts']} RM-Bench prompts ({r['n_texts']} texts), "
            f"max_length {r['max_length']}, {r['threads']} threads"
        ),
        "",
    ]
    lines.append(
        "| dtype | matmul GFLOP/s | SDPA GFLOP/s | baseline tok/s | ours tok/s | ours / baseline | "
        "ours / matmul rate (2P FLOPs/token) | ours / (matmul + attention) floor |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for dtype, x in r["runs"].items():
        lines.append(
            f"| {dtype} | {x['matmul_gflops']:.1f} | {x['sdpa_gflops']:.1f} | {x['baseline_tokens_per_s']:.1f} | "
            f"{x['ours_tokens_per_s']:.1f} | {x['speedup_vs_baseline']:.2f}x | "
            f"{100 * x['ours_fraction_of_matmul_rate']:.1f}% | "
            f"{100 * x['ours_fraction_of_linear_plus_attention_floor']:.1f}% |"
        )
    for dtype, x in r["runs"].items():
        a = x["baseline_vs_ours_scores"]
        lines.append(
            f"{dtype}: baseline vs ours scores: max |diff| {a['max_abs_diff']:.2e}, "
            f"{a['flipped_comparisons']}/{a['comparisons']} comparisons differ"
        )
    if "bf16_vs_fp32" in r:
        a = r["bf16_vs_fp32"]
        lines.append(
            f"bf16 vs fp32 (ours): max |diff| {a['max_abs_diff']:.3g}, Spearman {a['spearman']:.4f}, "
            f"{a['flipped_comparisons']}/{a['comparisons']} chosen-vs-rejected decisions flip"
        )
    return "\n".join(lines)
