"""The four parts of the GPU check (:mod:`rmlab.diagnostics.gpu_check`), each a function of a :class:`Check`.

- ``scoring``: the classifier scorer (the model's backbone with a new seeded head) and the implicit scorer,
  reference-free and with a reference, on the device in each dtype, against CPU float32 on the same RM-Bench
  pairs: max |diff|, Spearman, and chosen-vs-rejected decisions that flip;
- ``throughput``: the classifier scorer's tokens/s against the device's measured matmul rate, as a fraction of the
  2 x params x tokens floor;
- ``training``: one RM step (the Lightning loop), one DPO and one PPO step (TRL), each through its entry point's
  own config and library function, in bf16 on CUDA: did it finish, with what loss;
- ``generation``: greedy generation with the lab's vLLM and HF backends on the same prompts (exact-match rate);
  vLLM is optional and that half says "skipped" without it.

Each scorer, trainer and backend inside a part runs through :func:`attempt`, so one failure is recorded with its
traceback and the part's other pieces still run. Every model is the evaluator's or the trainer's own code path:
nothing here scores, generates or trains by itself.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from rmlab.data.rm_bench import RMBenchItem, load_rm_bench
from rmlab.diagnostics.scoring_throughput import matmul_params, rank_agreement
from rmlab.generation.backends import hf_backend, vllm_backend
from rmlab.generation.decoding import Decoding
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm, save_model_dir, torch_dtype
from rmlab.pipelines.stages import stage_kind
from rmlab.scoring.build import ScorerPlan, plan_scorer
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import ScoringStats, score_pairs
from rmlab.utils.config import compose_config, rewrite_model_overrides
from rmlab.utils.hashing import stable_hash
from rmlab.utils.io import write_jsonl

log = logging.getLogger(__name__)

TRAIN_ENTRIES = {"rm": "train_rm", "dpo": "train_dpo", "ppo": "train_ppo"}


class Skipped(Exception):
    """What cannot run here (vLLM missing, no CUDA): reported as skipped, not as a failure."""


@dataclass
class Check:
    """The run's config, device and output directory, and the lines the running part has printed."""

    cfg: DictConfig
    device: str
    out_dir: Path
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def rm_bench(self, per_domain: int) -> list[RMBenchItem]:
        b = self.cfg.benchmark
        items, _ = load_rm_bench(
            data_dir=b.data_dir,
            hub_id=b.hub_id,
            domains=list(b.domains),
            max_per_domain=int(per_domain),
            seed=int(self.cfg.seed),
        )
        return items

    def model_cfg(self, **keys) -> DictConfig:
        """The run's model config with ``keys`` replaced (kind, reference, dtype): each scorer is then planned
        exactly as ``eval_rm`` plans that config."""
        return OmegaConf.merge(self.cfg.model, keys)


def attempt(what: str, fn: Callable[[], dict]) -> dict:
    """``fn()``'s figures with ``status: ok``, or ``skipped`` / ``failed`` with the reason; never raises."""
    t0 = time.perf_counter()
    try:
        out = {"status": "ok", **fn()}
    except Skipped as why:
        out = {"status": "skipped", "reason": str(why)}
    except Exception as err:  # a failure is a finding: record it, run the rest
        log.exception("%s failed", what)
        out = {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-4000:]}
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def worst(results: dict[str, dict]) -> str:
    """A part's status from its pieces': failed if any failed, else ok if any ran, else skipped."""
    statuses = {r["status"] for r in results.values()}
    return "failed" if "failed" in statuses else "ok" if "ok" in statuses else "skipped"


def _pairs(items: list[RMBenchItem]) -> list[tuple[str, str]]:
    """(prompt, response) for each item's chosen then rejected responses, in style order: reshapes to (n, 2, 3)."""
    return [(it.prompt, r) for it in items for side in (it.chosen, it.rejected) for r in side]


def _plan(c: Check, model_cfg: DictConfig, device: str) -> ScorerPlan:
    return plan_scorer(model_cfg, cache_dir=c.cfg.paths.model_cache_dir, device=device, seed=int(c.cfg.seed))


def _score(plan: ScorerPlan, pairs, batch_size: int, max_tokens: int, scorer=None) -> tuple[np.ndarray, ScoringStats]:
    """Scores of ``pairs`` (shape ``(n, 2, 3)``) through the evaluator's own driver, from a fresh cache, so every
    pair is computed; ``scorer`` reuses a loaded model instead of the plan's factory."""
    with tempfile.TemporaryDirectory() as tmp:
        scores, stats = score_pairs(
            pairs,
            scorer_factory=(lambda: scorer) if scorer is not None else plan.factory,
            cache=ScoreCache(tmp, plan.cache_key),
            batch_size=int(batch_size),
            max_tokens=int(max_tokens),
            progress=False,
        )
    return scores.reshape(-1, 2, 3), stats


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """:func:`rank_agreement` with an undefined Spearman (constant scores) as null: the report is strict JSON."""
    a = rank_agreement(reference, other)
    return {**a, "spearman": a["spearman"] if math.isfinite(a["spearman"]) else None}


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.4f}"


def perturbed_reference(c: Check) -> str:
    """The with-reference implicit scorer's reference: ``scoring.reference``, or else the model's own weights times
    ``1 + noise x N(0, 1)`` (seeded), saved once under the model cache. With the model as its own reference every
    reward is exactly 0 in any dtype, which would hide what bf16 does to a real DPO log-ratio."""
    s = c.cfg.scoring
    if s.reference is not None:
        return str(s.reference)
    handle = open_model(c.cfg.model, cache_dir=c.cfg.paths.model_cache_dir)
    recipe = {"base": handle.fingerprint, "relative_std": float(s.reference_noise), "seed": int(c.cfg.seed)}
    out = Path(c.cfg.paths.model_cache_dir) / "perturbed" / stable_hash(recipe)
    if not (out / "config.json").is_file():
        model = load_causal_lm(handle.resolved, dtype="float32", device="cpu")
        gen = torch.Generator().manual_seed(int(c.cfg.seed))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + float(s.reference_noise) * torch.randn(p.shape, generator=gen))
        save_model_dir(model, handle.tokenizer, out, {"kind": "implicit", "base_model": handle.spec, **recipe})
    return str(out)


def check_scoring(c: Check) -> dict:
    """Each scorer on CPU float32 (the reference numbers) and on the device in each dtype, on the same pairs."""
    s = c.cfg.scoring
    items = c.rm_bench(s.prompts_per_domain)
    pairs = _pairs(items)
    baseline = ("cpu", "float32")
    runs = [baseline, *((c.device, str(d)) for d in s.dtypes if (c.device, str(d)) != baseline)]
    c.say(f"scoring: {len(items)} RM-Bench prompts, {len(pairs)} pairs; {', '.join('/'.join(r) for r in runs)}")
    variants = {
        "classifier": lambda: {"kind": "classifier"},
        "implicit_ref_free": lambda: {"kind": "implicit", "reference": None},
        "implicit_with_reference": lambda: {"kind": "implicit", "reference": perturbed_reference(c)},
    }

    def variant(name: str, keys: dict) -> dict:
        rows, scores = [], {}
        for device, dtype in runs:
            got, st = _score(_plan(c, c.model_cfg(**keys, dtype=dtype), device), pairs, s.batch_size, s.max_tokens)
            scores[(device, dtype)] = got
            row = {"device": device, "dtype": dtype, "tokens_per_second": st.tokens_per_second}
            line = f"  {name} {device}/{dtype}: {st.tokens_per_second:,.0f} tok/s"
            if (device, dtype) != baseline:
                row["vs_cpu_float32"] = a = agreement(scores[baseline], got)
                line += (
                    f"; vs cpu/float32 max |diff| {a['max_abs_diff']:.3g}, Spearman {_fmt(a['spearman'])}, "
                    f"{a['flipped_comparisons']}/{a['comparisons']} decisions flip"
                )
            c.say(line)
            rows.append(row)
        return {"runs": rows}

    scorers = {name: attempt(name, lambda n=name, k=keys: variant(n, k())) for name, keys in variants.items()}
    for name, r in scorers.items():
        if r["status"] != "ok":
            c.say(f"  {name}: {r['status']}: {r.get('error') or r.get('reason')}")
    return {"status": worst(scorers), "prompts": len(items), "pairs": len(pairs), "scorers": scorers}


def matmul_rate(size: int, dtype: torch.dtype, device: str, seconds: float) -> float:
    """Sustained ``(n x n) @ (n x n)`` FLOP/s on ``device``: 3 warm-ups, then groups of 5 products, each group
    waited for (the clock must not stop while products are still queued on a GPU), for about ``seconds``."""
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    out = torch.empty_like(a)
    for _ in range(3):
        torch.matmul(a, b, out=out)
    _wait(device)
    reps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(5):
            torch.matmul(a, b, out=out)
        _wait(device)
        reps += 5
        if (elapsed := time.perf_counter() - t0) >= seconds:
            return 2 * size**3 * reps / elapsed


def _wait(device: str) -> None:
    if device != "cpu":
        torch.accelerator.synchronize()


def check_throughput(c: Check) -> dict:
    """The classifier scorer's tokens/s (median of ``repeats`` passes after a warm-up batch, which pays for kernel
    selection and the allocator) against ``2 x matmul params x tokens`` at the measured matmul rate."""
    t = c.cfg.throughput
    pairs = _pairs(c.rm_bench(t.prompts_per_domain))
    plan = _plan(c, c.model_cfg(kind="classifier", dtype=str(t.dtype)), c.device)
    scorer = plan.factory()
    params = matmul_params(scorer.model)
    scorer([scorer.encode(*pairs[0])] * min(len(pairs), int(t.batch_size)))  # warm-up: kernels, handles, allocator
    passes: list[ScoringStats] = [
        _score(plan, pairs, t.batch_size, t.max_tokens, scorer=scorer)[1] for _ in range(int(t.repeats))
    ]
    tokens_per_second = float(np.median([p.tokens_per_second for p in passes]))
    rate = matmul_rate(int(t.matmul_size), torch_dtype(t.dtype), c.device, float(t.matmul_seconds))
    fraction = tokens_per_second * 2 * params / rate
    c.say(
        f"throughput: classifier {c.device}/{t.dtype}, {len(pairs)} pairs, {passes[0].tokens_scored:,} tokens "
        f"(padding {passes[0].padding_fraction:.1%}): {tokens_per_second:,.0f} tok/s (median of {len(passes)}); "
        f"matmul {rate / 1e12:.3g} TFLOP/s; 2 x {params / 1e6:.3g}M params x tokens/s = {fraction:.1%} of it"
    )
    return {
        "pairs": len(pairs),
        "tokens": passes[0].tokens_scored,
        "padding_fraction": passes[0].padding_fraction,
        "tokens_per_second": tokens_per_second,
        "tokens_per_second_passes": [p.tokens_per_second for p in passes],
        "matmul_params": params,
        "matmul_flops_per_second": rate,
        "fraction_of_matmul_floor": fraction,
    }


def training_overrides(cfg: DictConfig, step: str, device: str) -> list[str]:
    """A trainer's overrides: the step's own, then the device type's (bf16 on CUDA, fp32 on CPU)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return [*cfg.training[step], *cfg.training.on_device[kind][step]]


def _last_logged(path: Path, column: str) -> float | None:
    rows = list(csv.DictReader(path.read_text().splitlines())) if path.is_file() else []
    values = [float(r[column]) for r in rows if r.get(column)]
    return values[-1] if values else None


def train_step(c: Check, step: str) -> dict:
    """One optimizer step of ``step`` through its entry point's config and library function, as a stage runs."""
    kind = stage_kind(TRAIN_ENTRIES[step])
    out_dir = c.out_dir / "training" / step
    cfg = compose_config(kind.entry, rewrite_model_overrides(training_overrides(c.cfg, step, c.device), kind.groups))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    train = kind.fn()(cfg)["train"]
    if step == "rm":
        steps, loss = train["global_steps"], {"train/loss": _last_logged(out_dir / "csv" / "metrics.csv", "train/loss")}
    elif step == "dpo":
        steps, loss = train["global_steps"], {"loss": train["final"].get("loss")}
    else:
        steps, loss = train["updates"], {k: v for k, v in train["final"].items() if k.startswith("loss/")}
    if steps < 1 or not loss or not all(v is not None and math.isfinite(v) for v in loss.values()):
        raise RuntimeError(f"{step}: {steps} optimizer step(s), loss {loss}: not one finished step")
    return {"optimizer_steps": steps, "loss": loss, "fit_seconds": train["fit_seconds"], "run_dir": str(out_dir)}


def loss_text(loss: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in loss.items())


def check_training(c: Check) -> dict:
    """One step of each trainer in ``training.steps``; one failing does not stop the next."""
    steps = {}
    for step in c.cfg.training.steps:
        steps[step] = r = attempt(f"training {step}", lambda s=step: train_step(c, s))
        detail = f"{loss_text(r['loss'])}; {r['fit_seconds']:.1f} s fit" if r["status"] == "ok" else r.get("error")
        c.say(f"training {step}: {r['status']} in {r['seconds']:.1f} s: {detail}")
    return {"status": worst(steps), "steps": steps}


def vllm_ready(device: str, install: bool, timeout: float) -> None:
    """Return when vLLM can be imported here; raise :class:`Skipped` saying why not."""
    if not device.startswith("cuda"):
        raise Skipped("vLLM needs a CUDA device")
    if importlib.util.find_spec("vllm") is not None:
        return
    if not install:
        raise Skipped("vllm not installed (install_vllm=true tries `pip install vllm`)")
    try:
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "vllm"],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise Skipped(f"vllm not installed: `pip install vllm` took over {timeout:.0f} s") from None
    importlib.invalidate_caches()
    if res.returncode != 0 or importlib.util.find_spec("vllm") is None:
        raise Skipped(f"vllm not installed: `pip install vllm` failed: {(res.stderr or res.stdout)[-500:]}")


def _timed_generation(backend, prompts: list[str], decoding: Decoding, tokenizer) -> dict:
    t0 = time.perf_counter()
    texts = backend.generate(prompts, decoding)
    seconds = time.perf_counter() - t0  # generation alone: not the model load or the vLLM engine's start
    new_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return {"texts": texts, "generate_seconds": seconds, "new_tokens_per_second": new_tokens / seconds}


def check_generation(c: Check) -> dict:
    """Greedy texts of the HF and vLLM backends on the same chat prompts; ``generations.jsonl`` keeps both."""
    g = c.cfg.generation
    handle = open_model(c.cfg.model, cache_dir=c.cfg.paths.model_cache_dir, padding_side="left")
    tok, fmt = handle.tokenizer, handle.formatter
    prompts = [fmt.format(it.prompt, "").prefix for it in c.rm_bench(g.prompts_per_domain)]
    decoding = Decoding(name="greedy", max_new_tokens=int(g.max_new_tokens))

    def hf() -> dict:
        model = load_causal_lm(handle.resolved, dtype=str(g.dtype), device=c.device)
        backend = hf_backend(
            model,
            tok,
            batch_size=int(g.batch_size),
            device=c.device,
            add_bos_token=fmt.add_special_tokens,
            max_length=int(g.max_length),
        )
        return _timed_generation(backend, prompts, decoding, tok)

    def vllm() -> dict:
        vllm_ready(c.device, bool(c.cfg.install_vllm), float(c.cfg.install_vllm_timeout))
        backend = vllm_backend(
            handle.resolved.path,
            revision=handle.resolved.revision,
            dtype=str(g.dtype),
            add_bos_token=fmt.add_special_tokens,
            max_length=int(g.max_length),
            gpu_memory_utilization=float(g.gpu_memory_utilization),
            seed=int(c.cfg.seed),
        )
        return _timed_generation(backend, prompts, decoding, tok)

    backends = {"hf": attempt("hf generation", hf), "vllm": attempt("vllm generation", vllm)}
    texts = {name: r.pop("texts") for name, r in backends.items() if "texts" in r}
    for name, r in backends.items():
        what = f"{r['new_tokens_per_second']:,.0f} new tok/s" if name in texts else r.get("reason") or r.get("error")
        c.say(f"generation {name} ({g.dtype}, greedy, {len(prompts)} prompts): {r['status']}: {what}")
    out = {"status": worst(backends), "prompts": len(prompts), "backends": backends}
    if len(texts) == 2:
        same = [a == b for a, b in zip(texts["hf"], texts["vllm"])]
        out["exact_match_rate"] = float(np.mean(same))
        c.say(f"generation vllm vs hf: {sum(same)}/{len(same)} texts identical")
    rows = [{"prompt": p, **{name: t[i] for name, t in texts.items()}} for i, p in enumerate(prompts)]
    write_jsonl(c.out_dir / "generations.jsonl", rows)
    return out


PARTS: dict[str, Callable[[Check], dict]] = {
    "scoring": check_scoring,
    "throughput": check_throughput,
    "training": check_training,
    "generation": check_generation,
}
