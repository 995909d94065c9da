"""Speed of the policy-evaluation path, measured against its baselines in the same run (not a test).

1. Generation: the batched generator that ``eval_policy`` uses (lm-eval's ``HFLM.generate_until``: length-sorted,
   left-padded batches) against the plain way to use a Hugging Face model, one ``model.generate`` call per prompt
   with the KV cache, on the same prompts, greedy, same new-token budget. Reported: new tokens per second of each,
   the ratio, and how many outputs are identical (padding can change a float's last bits, and greedy decoding
   can then pick another token; each mismatch is counted, not hidden).
2. Sandbox: the median wall time of a trivial Python program run through the sandbox, against the same program
   run directly with the same interpreter; the difference is the sandbox's overhead per program.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from rmlab.generation.backends import hf_backend
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm
from rmlab.policy_eval.sandbox.runner import Sandbox
from rmlab.policy_eval.tasks.base import Decoding
from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


def _prompts(cfg: DictConfig, formatter: ChatFormatter) -> list[str]:
    path = Path(cfg.paths.data_dir) / "gsm8k" / "test.jsonl"
    with path.open(encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for _, line in zip(range(int(cfg.bench.n_prompts)), fh)]
    return [formatter.format(q, "").prefix for q in questions]


def bench_generation(cfg: DictConfig) -> dict:
    pol = cfg.policy
    handle = open_model(pol, cache_dir=cfg.paths.model_cache_dir, padding_side="left")
    resolved, tok, formatter = handle.resolved, handle.tokenizer, handle.formatter
    model = load_causal_lm(resolved, dtype=pol.dtype, device=cfg.device)
    prompts = _prompts(cfg, formatter)
    max_new = int(cfg.bench.max_new_tokens)

    # baseline: one generate call per prompt
    t0 = time.perf_counter()
    single_ids = []
    with torch.inference_mode():
        for text in prompts:
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
            new = out[0, enc.input_ids.shape[1] :].tolist()
            single_ids.append(new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new)
    t_single = time.perf_counter() - t0

    backend = hf_backend(
        model,
        tok,
        batch_size=int(cfg.bench.batch_size),
        device=cfg.device,
        add_bos_token=formatter.add_special_tokens,
        max_length=None,
    )
    decoding = Decoding(name="greedy", max_new_tokens=max_new)
    t0 = time.perf_counter()
    batched = backend.generate(prompts, decoding)
    t_batched = time.perf_counter() - t0

    single_text = [tok.decode(ids, skip_special_tokens=True) for ids in single_ids]
    identical = sum(a == b for a, b in zip(single_text, batched))
    tokens = sum(len(ids) for ids in single_ids)  # the same outputs, so the same token count, where identical
    res = {
        "prompts": len(prompts),
        "max_new_tokens": max_new,
        "batch_size": int(cfg.bench.batch_size),
        "new_tokens": tokens,
        "per_prompt_seconds": t_single,
        "batched_seconds": t_batched,
        "per_prompt_tokens_per_second": tokens / t_single,
        "batched_tokens_per_second": tokens / t_batched,
        "speedup": t_single / t_batched,
        "identical_outputs": identical,
        "torch_threads": torch.get_num_threads(),
    }
    return res


def bench_sandbox(cfg: DictConfig) -> dict:
    sandbox = Sandbox()
    sandbox.check()
    n = int(cfg.bench.sandbox_programs)
    source = "x = sum(range(1000))\n"
    sandboxed, direct = [], []
    with tempfile.TemporaryDirectory() as tmp:
        main = Path(tmp) / "main.py"
        main.write_text(source)
        for _ in range(n):  # interleaved, so drift in machine load hits both alike
            sandboxed.append(sandbox.run_python(source).wall_seconds)
            t0 = time.perf_counter()
            subprocess.run([sandbox.python, "-I", "-B", str(main)], check=True, env={})
            direct.append(time.perf_counter() - t0)
    med_s, med_d = statistics.median(sandboxed), statistics.median(direct)
    return {
        "programs": n,
        "median_sandboxed_seconds": med_s,
        "median_direct_seconds": med_d,
        "median_overhead_ms": 1000 * (med_s - med_d),
        "python": sandbox.python,
    }


def benchmark(cfg: DictConfig) -> dict:
    gen = bench_generation(cfg)
    print(
        f"generation ({gen['prompts']} GSM8k prompts, greedy, {gen['max_new_tokens']} new tokens, "
        f"{gen['torch_threads']} threads): per-prompt generate {gen['per_prompt_tokens_per_second']:.1f} tok/s, "
        f"batched (lm-eval HFLM, batch {gen['batch_size']}) {gen['batched_tokens_per_second']:.1f} tok/s: "
        f"{gen['speedup']:.2f}x; identical outputs {gen['identical_outputs']}/{gen['prompts']}"
    )
    sbx = bench_sandbox(cfg)
    print(
        f"sandbox: median {1000 * sbx['median_sandboxed_seconds']:.1f} ms sandboxed vs "
        f"{1000 * sbx['median_direct_seconds']:.1f} ms direct over {sbx['programs']} programs: "
        f"overhead {sbx['median_overhead_ms']:.1f} ms per program"
    )
    result = {"generation": gen, "sandbox": sbx, "python": sys.version.split()[0]}
    write_json(Path(cfg.paths.output_dir) / "bench_generation.json", result)
    return result
