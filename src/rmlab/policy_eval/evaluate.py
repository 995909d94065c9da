"""Evaluate one policy on downstream tasks: the library body of ``scripts/eval_policy.py``.

Per task, in ``<run dir>/<task>/`` (all written atomically):

- ``generations.jsonl``: one row per example (prompt id, the prompt text, every sample; ``prompts``, by decoding,
  in place of ``prompt`` where the task prompts its decodings differently),
- ``scored.jsonl``: one row per scored sample (prediction, correctness / test status / toxicity / refusal label),
- ``metrics.json``: task, group, policy and its fingerprint, n, the headline metric with a bootstrap interval,
  ``unparsed`` (outputs the task's extractor or labeller could not read; also a column of ``summary.md``),
  ``normalised`` (higher is better, for the correlation study), decodings, data fingerprint and source,
  classifier / labeler / sandbox used, versions. Written last: its presence means the task is complete.

And over tasks, in the run directory: ``summary.{md,csv,json}``.

Generations are cached per (policy fingerprint, chat formatting, task, decoding), so a killed run resumes and a
finished one re-scores without the model (see :mod:`rmlab.generation.backends`).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.generation.backends import (
    GenStats,
    cache_key,
    generate_cached,
    generator_settings,
    hf_backend,
    requests_for,
    vllm_backend,
)
from rmlab.generation.decoding import Decoding
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm, pick_device
from rmlab.policy_eval.tasks import TASKS
from rmlab.policy_eval.tasks.base import ScoreContext
from rmlab.scoring.cache import ScoreCache
from rmlab.utils.io import write_json, write_jsonl, write_text
from rmlab.utils.loggers import build_logger
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


def policy_config(cfg: DictConfig) -> DictConfig:
    """``policy`` is a config (name, pretrained, chat_template ...) or just a spec string."""
    pol = cfg.policy
    if isinstance(pol, str):
        return OmegaConf.create(
            {
                "name": Path(pol).name if Path(pol).is_dir() else pol.split(":")[-1],
                "pretrained": pol,
                "revision": None,
                "chat_template": "tokenizer",
                "system_prompt": None,
                "dtype": "float32",
                "pad_token": None,
            }
        )
    return pol


def _generation_dtype(pol: DictConfig, generation: DictConfig) -> str:
    """The policy's dtype as the backend loads it (vLLM picks its own when the config does not say)."""
    return str(pol.get("dtype") or ("auto" if generation.backend == "vllm" else "float32"))


class PolicyModel:
    """The policy, loaded on first use (a fully cached re-run never loads it)."""

    def __init__(self, cfg: DictConfig, resolved, tokenizer, formatter: ChatFormatter):
        self.cfg, self.resolved, self.tokenizer, self.formatter = cfg, resolved, tokenizer, formatter
        self._backend = None

    def backend(self):
        if self._backend is None:
            gen, pol = self.cfg.generation, policy_config(self.cfg)
            device = pick_device(self.cfg.device)
            if gen.backend == "hf":
                model = load_causal_lm(self.resolved, dtype=_generation_dtype(pol, gen), device=device)
                self._backend = hf_backend(
                    model,
                    self.tokenizer,
                    batch_size=int(gen.batch_size),
                    device=device,
                    add_bos_token=self.formatter.add_special_tokens,
                    max_length=gen.get("max_length"),
                )
            elif gen.backend == "vllm":
                self._backend = vllm_backend(
                    self.resolved.path,
                    revision=self.resolved.revision,
                    dtype=_generation_dtype(pol, gen),
                    seed=int(self.cfg.seed),
                    add_bos_token=self.formatter.add_special_tokens,
                    max_length=gen.get("max_length"),
                    gpu_memory_utilization=float(gen.get("gpu_memory_utilization", 0.9)),
                )
            else:
                raise ValueError(f"generation.backend must be 'hf' or 'vllm', got {gen.backend!r}")
        return self._backend


def prompt_text(formatter: ChatFormatter, user: str, answer_prefix: str) -> str:
    """The chat prompt up to the assistant turn, plus the task's answer prefix (open-instruct's convention: a
    space before it unless the template already ends in whitespace)."""
    prefix = formatter.format(user, "").prefix
    if not answer_prefix:
        return prefix
    return prefix + (
        answer_prefix if prefix[-1:] in ("\n", " ") or answer_prefix[:1] in ("\n", " ") else " " + answer_prefix
    )


def _prompt_fields(ex_id: str, contexts: dict[str, dict[str, str]]) -> dict:
    """An example's prompt text for ``generations.jsonl``: ``prompt`` when every decoding sampled from the same
    text, else ``prompts`` by decoding name."""
    texts = {dec: by_id[ex_id] for dec, by_id in contexts.items()}
    if len(set(texts.values())) > 1:
        return {"prompts": texts}
    return {"prompt": next(iter(texts.values()))}


def score_context(cfg: DictConfig, task_cfg: DictConfig) -> ScoreContext:
    ctx = ScoreContext(
        seed=int(cfg.seed),
        n_boot=int(cfg.bootstrap.n_boot),
        confidence=float(cfg.bootstrap.confidence),
        progress=bool(cfg.generation.get("progress", True)),
    )
    if task_cfg.kind in ("humaneval_plus", "mbpp_plus"):
        from rmlab.policy_eval.sandbox.runner import build_sandbox

        ctx.sandbox = build_sandbox(cfg.sandbox)
        ctx.sandbox.check()  # stops here, with the reason, if the sandbox cannot start
    if task_cfg.kind == "toxigen":
        from rmlab.policy_eval.judging.toxicity import build_classifier

        ctx.toxicity = build_classifier(task_cfg.classifier, device=pick_device(cfg.device))
    if task_cfg.kind == "xstest" and task_cfg.labeler != "strmatch":
        from rmlab.policy_eval.judging.judges import build_judge

        ctx.judge = build_judge(task_cfg.judge, cfg)
    if task_cfg.kind == "alpaca_eval":
        from rmlab.policy_eval.judging.judges import build_preference_judge
        from rmlab.policy_eval.tasks.alpaca_eval import VERSIONS, annotator_spec

        _, mode = annotator_spec(VERSIONS[int(task_cfg.get("version", 2))][1])
        ctx.judge = build_preference_judge(task_cfg.judge, cfg, mode)
    return ctx


def evaluate_policy(cfg: DictConfig, *, on_chunk=None) -> dict:
    """Evaluate ``cfg.policy`` on every task under ``cfg.task``; return the summary (also written to disk)."""
    out_dir = Path(cfg.paths.output_dir)
    pol = policy_config(cfg)
    handle = open_model(pol, cache_dir=cfg.paths.model_cache_dir, padding_side="left")
    resolved, tokenizer, formatter = handle.resolved, handle.tokenizer, handle.formatter
    model = PolicyModel(cfg, resolved, tokenizer, formatter)
    task_cfgs = _task_configs(cfg)
    resolved_cfg = OmegaConf.to_container(cfg, resolve=True)
    logger = build_logger(cfg, output_dir=out_dir, config=resolved_cfg, name=f"{pol.name}-policy-eval")
    summary = []
    try:
        for task_cfg in task_cfgs:
            result = _evaluate_task(cfg, task_cfg, pol, resolved, formatter, model, out_dir, on_chunk)
            summary.append(result)
            logger.log_metrics(
                {
                    f"{result['task']}/{result['metric']}": result["value"],
                    f"{result['task']}/normalised": result["normalised"],
                }
            )
        table = summary_table(summary)
        write_text(out_dir / "summary.md", table)
        write_text(out_dir / "summary.csv", summary_csv(summary))
        write_json(
            out_dir / "summary.json",
            {
                "policy": pol.name,
                "policy_spec": str(pol.pretrained),
                "policy_fingerprint": resolved.fingerprint,
                "tasks": summary,
                "run": run_info(cfg.paths.root_dir),
            },
        )
        rows = [[r["task"], r["group"], r["metric"], r["value"], r["normalised"], r["n"]] for r in summary]
        logger.log_table("policy_eval/summary", ["task", "group", "metric", "value", "normalised", "n"], rows)
    finally:
        logger.finish()
    log.info("wrote %s\n%s", out_dir, table)
    print(table)
    return {"tasks": summary}


def _task_configs(cfg: DictConfig) -> list[DictConfig]:
    """``cfg.task`` holds one task config per key (``task=gsm8k`` gives one, ``task=all`` all six)."""
    tasks = [t for t in cfg.task.values() if t is not None and "kind" in t]
    if not tasks:
        raise ValueError(
            "no task selected: pass task=<name> (gsm8k, bbh, humaneval_plus, mbpp_plus, toxigen, xstest) or task=all"
        )
    for t in tasks:
        if t.kind not in TASKS:
            raise ValueError(f"task {t.name!r}: unknown kind {t.kind!r}; known: {sorted(TASKS)}")
    return tasks


def sample_cached(
    cfg: DictConfig,
    pol: DictConfig,
    resolved,
    formatter: ChatFormatter,
    model: PolicyModel,
    task_name: str,
    decoding: Decoding,
    contexts: dict[str, str],
    *,
    on_chunk=None,
    desc: str,
) -> tuple[dict[str, list[str]], GenStats, str]:
    """``decoding``'s samples of every prompt in ``contexts`` (example id -> prompt text), the generation stats and
    the cache key: through the generation cache keyed by policy, formatting, task, decoding and generator settings
    (shared by every entry point that samples the same way: ``eval_policy`` and ``best_of_n``)."""
    generator = generator_settings(
        cfg.generation, dtype=_generation_dtype(pol, cfg.generation), seed=int(cfg.seed), decoding=decoding
    )
    key = cache_key(resolved.fingerprint, formatter.fingerprint, task_name, decoding, generator)
    cache = ScoreCache(
        cfg.paths.generation_cache_dir,
        key,
        describe={
            "policy": pol.name,
            "policy_fingerprint": resolved.fingerprint,
            "task": task_name,
            "decoding": decoding.describe(),
            "generator": generator,
        },
    )
    texts, stats = generate_cached(
        requests_for(contexts, decoding),
        decoding,
        cache,
        model.backend,
        seed=int(cfg.seed),
        chunk_size=int(cfg.generation.chunk_size),
        on_chunk=on_chunk,
        progress=bool(cfg.generation.get("progress", True)),
        desc=desc,
    )
    return texts, stats, key


def _evaluate_task(cfg, task_cfg, pol, resolved, formatter, model: PolicyModel, out_dir: Path, on_chunk) -> dict:
    t0 = time.perf_counter()
    task = TASKS[task_cfg.kind](task_cfg, cfg.paths.data_dir)
    examples, provenance = task.load()
    log.info("%s: %d examples from %s", task.name, len(examples), provenance["source"])
    contexts = {  # per decoding: a task may prompt its decodings differently (Example.by_decoding)
        d.name: {ex.id: prompt_text(formatter, *ex.turns(d.name)) for ex in examples} for d in task.decodings
    }
    generations, gen_stats = {}, {}
    for decoding in task.decodings:
        texts, stats, key = sample_cached(
            cfg,
            pol,
            resolved,
            formatter,
            model,
            task.name,
            decoding,
            contexts[decoding.name],
            on_chunk=on_chunk,
            desc=f"{task.name}/{decoding.name}",
        )
        generations[decoding.name] = texts
        gen_stats[decoding.name] = {
            "generated": stats.generated,
            "from_cache": stats.from_cache,
            "seconds": stats.seconds,
            "cache_key": key,
        }
    task_dir = out_dir / task.name
    write_jsonl(
        task_dir / "generations.jsonl",
        (
            {"id": ex.id, **_prompt_fields(ex.id, contexts), **{d: generations[d][ex.id] for d in generations}}
            for ex in examples
        ),
    )
    ctx = score_context(cfg, task_cfg)
    rows, metrics = task.score(examples, generations, ctx)
    write_jsonl(task_dir / "scored.jsonl", rows)
    result = {
        "task": task.name,
        "group": task.group,
        "higher_is_better": task.higher_is_better,
        "policy": pol.name,
        "policy_spec": str(pol.pretrained),
        "policy_fingerprint": resolved.fingerprint,
        "chat_formatting": formatter.fingerprint,
        **metrics,
        "decodings": [d.describe() for d in task.decodings],
        "generation": {"backend": cfg.generation.backend, "batch_size": int(cfg.generation.batch_size), **gen_stats},
        "data_fingerprint": provenance["data_fingerprint"],
        "data_source": provenance["source"],
        "data_files": provenance["files"],
        "sandbox": ctx.sandbox.describe() if ctx.sandbox is not None else None,
        "seed": int(cfg.seed),
        "wall_seconds": time.perf_counter() - t0,
        "run": run_info(cfg.paths.root_dir),
        "task_config": OmegaConf.to_container(task_cfg, resolve=True),
    }
    write_json(task_dir / "metrics.json", result)
    log.info("%s: %s = %.4f %s (n=%d)", task.name, result["metric"], result["value"], result.get("ci"), result["n"])
    return {
        k: result[k]
        for k in ("task", "group", "metric", "value", "ci", "normalised", "n", "higher_is_better", "data_fingerprint")
    } | {
        "instrument": result.get("classifier") or result.get("labeler") or result.get("test_set"),
        "unparsed": result.get("unparsed"),  # outputs the task's extractor or labeller could not read (None: n/a)
    }


def summary_table(rows: list[dict]) -> str:
    lines = [
        "| task | group | metric | value | 95% CI | normalised (higher is better) | n | unparsed | scored with |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if r.get("ci") else "-"
        unparsed = "-" if r.get("unparsed") is None else r["unparsed"]
        lines.append(
            f"| {r['task']} | {r['group']} | {r['metric']} | {r['value']:.3f} | {ci} | "
            f"{r['normalised']:.3f} | {r['n']} | {unparsed} | {r.get('instrument') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def summary_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "task",
            "group",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "normalised",
            "n",
            "unparsed",
            "higher_is_better",
            "instrument",
        ]
    )
    for r in rows:
        ci = r.get("ci") or [None, None]
        w.writerow(
            [
                r["task"],
                r["group"],
                r["metric"],
                r["value"],
                ci[0],
                ci[1],
                r["normalised"],
                r["n"],
                r.get("unparsed"),
                r["higher_is_better"],
                r.get("instrument"),
            ]
        )
    return buf.getvalue()
