"""A short check of the GPU code paths on one CUDA device: the body of ``scripts/gpu_check.py``.

The lab is built and tested on CPUs; its GPU settings (bf16 scoring, the vLLM backend, Lightning and TRL training
on CUDA) are composed and checked there, but they run only where a GPU is lent, for minutes at a time. This runs
each such path once, small, and measures what a CPU cannot tell: scores on the device against CPU float32, the
scorer's share of the matmul rate, one step of each trainer in bf16, vLLM against HF generation
(:mod:`rmlab.diagnostics.gpu_check_parts`; sizes in ``conf/gpu_check.yaml``).

Every part runs wrapped: a failure is recorded with its traceback and the next part runs. The report
(``gpu_check.json``, ``gpu_check.md``) is rewritten atomically after each part, so a run cut short by the device's
time limit keeps what it measured, and ``budget_seconds`` skips the parts that would start too late, so the
closing summary always prints. The parts share one process (imports and the CUDA context are paid once); the RM
step switches on PyTorch's deterministic algorithms process-wide (Lightning's ``deterministic=True``), so the
setting is restored after each part.
"""

from __future__ import annotations

import gc
import importlib.metadata
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from rmlab.diagnostics.gpu_check_parts import PARTS, Check, attempt, loss_text
from rmlab.models.loading import pick_device
from rmlab.utils.io import write_json, write_text
from rmlab.utils.run_info import run_info

VERSIONED = ("torch", "transformers", "trl", "pytorch-lightning", "accelerate", "peft", "lm_eval", "vllm")


def describe_device(device: str) -> dict:
    """What ran the check: the device's name, memory and bf16 support, and the versions that compute results."""
    out: dict = {"device": device, "python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device}, but CUDA is not available here (device=cpu runs the CPU path)")
        props = torch.cuda.get_device_properties(device)
        out |= {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "bf16": torch.cuda.is_bf16_supported(),
            "cuda": torch.version.cuda,
        }
    return out


def gpu_check(cfg: DictConfig) -> dict:
    """Run ``cfg.parts`` in order, each wrapped; print figures as they come; write the report after every part."""
    unknown = [p for p in cfg.parts if p not in PARTS]
    if unknown:
        raise ValueError(f"parts: unknown {unknown}; choose from {list(PARTS)}")
    device = pick_device(cfg.device)
    c = Check(cfg, device, Path(cfg.paths.output_dir))
    report = {"about": describe_device(device), "parts": {}, "config": OmegaConf.to_container(cfg, resolve=True)}
    print(f"GPU check on {report['about'].get('name', device)}: parts {list(cfg.parts)}", flush=True)
    t0 = time.perf_counter()
    for name in cfg.parts:
        c.lines = []
        if time.perf_counter() - t0 > cfg.budget_seconds:
            result = {"status": "skipped", "reason": f"budget_seconds={cfg.budget_seconds} spent", "seconds": 0.0}
        else:
            deterministic = torch.are_deterministic_algorithms_enabled()
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats(device)
            result = attempt(name, lambda n=name: PARTS[n](c))
            torch.use_deterministic_algorithms(deterministic)  # Lightning's deterministic=True is process-wide
            if device.startswith("cuda"):
                result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            gc.collect()
        report["parts"][name] = {**result, "lines": c.lines}
        if result["status"] != "ok":
            print(f"{name}: {result['status']}: {result.get('reason') or result.get('error') or ''}", flush=True)
        report["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_report(c.out_dir, report)
    report["run"] = run_info(cfg.paths.root_dir)
    write_report(c.out_dir, report)
    print("\n" + summary(report) + f"\n\nreport: {c.out_dir / 'gpu_check.md'}", flush=True)
    return report


def write_report(out_dir: Path, report: dict) -> None:
    write_json(out_dir / "gpu_check.json", report)
    write_text(out_dir / "gpu_check.md", format_report(report))


def _headline(name: str, r: dict) -> str:
    """One line of figures per part, for the summary table."""
    if r["status"] == "skipped" or "error" in r:
        return r.get("reason") or r.get("error", "")
    if name == "scoring":
        figures = []
        for scorer, s in r["scorers"].items():
            for run in s.get("runs", []):
                if "vs_cpu_float32" in run:
                    a = run["vs_cpu_float32"]
                    figures.append(
                        f"{scorer} {run['dtype']}: |diff| {a['max_abs_diff']:.2g}, "
                        f"{a['flipped_comparisons']}/{a['comparisons']} flips"
                    )
            if s["status"] != "ok":
                figures.append(f"{scorer}: {s['status']}")
        return "; ".join(figures)
    if name == "throughput":
        return f"{r['tokens_per_second']:,.0f} tok/s = {r['fraction_of_matmul_floor']:.1%} of the 2PT matmul floor"
    if name == "training":
        return "; ".join(
            f"{step}: {x['status']} " + (loss_text(x["loss"]) if "loss" in x else x.get("error", "")[:100])
            for step, x in r["steps"].items()
        )
    b = r["backends"]
    match = f"exact match {r['exact_match_rate']:.0%}" if "exact_match_rate" in r else "no comparison"
    vllm = b["vllm"].get("reason") or b["vllm"].get("error", "")[:100]
    return f"hf {b['hf']['status']}, vllm {b['vllm']['status']}{f' ({vllm})' if vllm else ''}; {match}"


def summary(report: dict) -> str:
    about = report["about"]
    head = f"GPU check: {about.get('name', about['device'])}, torch {about['torch']}, {report['wall_seconds']} s"
    rows = ["| part | status | seconds | figures |", "|---|---|---|---|"]
    rows += [
        f"| {n} | {r['status']} | {r['seconds']:.0f} | {_headline(n, r)} |".replace("\n", " ")
        for n, r in report["parts"].items()
    ]
    return "\n".join([head, "", *rows])


def _tracebacks(result: dict, where: str):
    """``(where, traceback)`` of every failure in a part's result, its scorers', steps' and backends' included."""
    if "traceback" in result:
        yield where, result["traceback"]
    for key, value in result.items():
        if isinstance(value, dict):
            yield from _tracebacks(value, f"{where}.{key}")


def format_report(report: dict) -> str:
    """The markdown report: the summary table, then every part's printed lines and the tracebacks of failures."""
    about = ", ".join(f"{k} {v}" for k, v in report["about"].items() if v is not None)
    out = ["# GPU check", "", summary(report), "", f"Ran on: {about}."]
    for name, r in report["parts"].items():
        out += ["", f"## {name}: {r['status']} ({r['seconds']:.1f} s)", "", *[f"    {x}" for x in r["lines"]]]
        for where, tb in _tracebacks(r, name):
            out += ["", f"{where}:", "", "```", tb.rstrip(), "```"]
    return "\n".join(out) + "\n"
