"""Evaluate one reward model on one benchmark: the library body of ``scripts/eval_rm.py``.

Outputs, all in the run directory and written atomically (a reader never sees a partial file):

- ``config.yaml``: the resolved config,
- ``scores.jsonl``: one row per benchmark record with its scores (a judge: its outcome per comparison),
- ``judgements.jsonl`` (judges only): every verdict with the judge's text,
- ``metrics.json``: the benchmark's metrics plus provenance (model, fingerprints, versions, seed) and, for scores,
  ``fragile``: how many comparisons have a margin within rounding (:mod:`rmlab.scoring.precision`); for a judge,
  ``judge``: mode, prompt template, and the counts of wins, losses, ties, position flips and unparsed verdicts,
- ``table.md`` and the benchmark's figures (RM-Bench: ``heatmap_<domain>.png``).

Scores live in the score cache (``paths.score_cache_dir``), so a killed run resumes where it stopped and a
finished evaluation re-runs at no model cost. Bad input fails before anything is written.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.benchmarks import BENCHMARKS
from rmlab.rm_eval.judge import JUDGE_KIND, judge_benchmark, judge_table
from rmlab.scoring.build import plan_scorer
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.precision import fragile_comparisons, fragile_line
from rmlab.utils.io import write_json, write_jsonl, write_text
from rmlab.utils.loggers import build_logger
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


class IncompleteBenchmarkError(ValueError):
    """A run that asks for the whole benchmark found partial data."""


def evaluate_rm(cfg: DictConfig, *, on_batch=None) -> dict:
    """Score ``cfg.model`` on ``cfg.benchmark`` and write the run's outputs to ``cfg.paths.output_dir``.

    :param on_batch: optional hook called after each scored batch (progress reporting, interruption tests).
    :return: the contents of ``metrics.json``.
    """
    out_dir = Path(cfg.paths.output_dir)
    benchmark = BENCHMARKS[cfg.benchmark.name](cfg.benchmark)
    t0 = time.perf_counter()

    items, provenance = benchmark.load()
    log.info(
        "%s: %d records from %s (domains %s)",
        cfg.benchmark.name,
        len(items),
        provenance["source"],
        provenance.get("source_domains"),
    )
    missing = benchmark.missing(items)
    if missing and cfg.benchmark.get("require_complete"):
        raise IncompleteBenchmarkError(
            f"{cfg.benchmark.name}: the data from {provenance['source']} are not the whole benchmark (missing: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}); this run asks for the whole benchmark "
            f"(benchmark.require_complete=true, as the paper-scale experiments do). Read it from the Hub "
            f"(benchmark.data_dir=null, hub id {cfg.benchmark.get('hub_id')}), or set "
            f"benchmark.require_complete=false to score the partial data (the outputs then list what is missing)"
        )
    if cfg.model.get("kind") == JUDGE_KIND:
        scored = _judge(cfg, benchmark, items, on_batch)
    else:
        scored = _score(cfg, benchmark, items, on_batch)

    resolved_cfg = OmegaConf.to_container(cfg, resolve=True)
    result = {
        "benchmark": cfg.benchmark.name,
        "benchmark_version": cfg.benchmark.get("version"),
        "model": scored.name,
        "model_spec": scored.spec,
        "scorer": scored.describe,
        **({"judge": scored.judge} if scored.judge is not None else {}),
        "model_formatting": scored.formatting,
        "score_cache_key": scored.cache_key,
        "data_fingerprint": provenance["data_fingerprint"],
        "data_source": provenance["source"],
        "data_files": provenance.get("files", []),
        "n_records": len(items),
        "complete": not missing,
        "incomplete_because": missing,
        "seed": cfg.seed,
        "training_overlap": training_overlap(str(scored.spec), cfg.benchmark.name),
        **scored.metrics,
        "scoring": scored.scoring,
        "wall_seconds": time.perf_counter() - t0,
        "run": run_info(cfg.paths.root_dir),
        "config": resolved_cfg,
    }
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_jsonl(out_dir / "scores.jsonl", scored.rows)
    if scored.judgements is not None:
        write_jsonl(out_dir / "judgements.jsonl", scored.judgements)
    metrics, rows, name = scored.metrics, scored.rows, scored.name
    table = benchmark.table(metrics, name) + (f"\n{judge_table(scored.judge)}" if scored.judge is not None else "")
    if "fragile" in metrics:
        table = f"{table.rstrip()}\n\n{fragile_line(metrics['fragile'])}\n"
    write_text(out_dir / "table.md", table)
    figures = benchmark.figures(metrics, name, out_dir)
    write_json(out_dir / "metrics.json", result)  # last: its presence means the run is complete
    log.info("wrote %s\n%s", out_dir, table)

    logger = build_logger(cfg, output_dir=out_dir, config=resolved_cfg, name=f"{name}-{cfg.benchmark.name}")
    try:
        logger.log_metrics(benchmark.log_scalars(metrics))
        logger.log_images({f"{cfg.benchmark.name}/{p.stem}": p for p in figures})
        logger.log_table(f"{cfg.benchmark.name}/scores", list(rows[0]), [list(r.values()) for r in rows])
    finally:
        logger.finish()
    return result


@dataclass
class _Scored:
    """What scored the benchmark and what came of it (a reward model's scores, or a judge's outcomes)."""

    metrics: dict
    rows: list[dict]
    name: str
    spec: str
    describe: dict
    formatting: dict | None
    cache_key: str
    scoring: dict
    judge: dict | None = None
    judgements: list[dict] | None = None


def _score(cfg: DictConfig, benchmark, items: list, on_batch) -> _Scored:
    """A classifier or implicit reward model: one score per (prompt, response), the benchmark's comparisons of
    scores."""
    requests = benchmark.requests(items)
    plan = plan_scorer(cfg.model, cache_dir=cfg.paths.model_cache_dir, device=cfg.device, seed=cfg.seed)
    cache = ScoreCache(cfg.paths.score_cache_dir, plan.cache_key, describe=plan.describe)
    scores, stats = score_pairs(
        [(r.prompt, r.response) for r in requests],
        scorer_factory=plan.factory,
        cache=cache,
        batch_size=cfg.scoring.batch_size,
        max_tokens=cfg.scoring.get("max_tokens_per_batch"),
        labels=[r.label for r in requests],
        on_batch=on_batch,
        progress=cfg.scoring.get("progress", True),
        packed=cfg.scoring.get("packed", True),
    )
    metrics, rows = benchmark.compute(
        items, scores, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed
    )
    dtype = (plan.dtype_choice or {}).get("used") or "float32"
    metrics["fragile"] = fragile_comparisons(
        benchmark, items, requests, scores, str(dtype), cfg.scoring.get("fragile_bound")
    )
    return _Scored(
        metrics,
        rows,
        plan.name,
        str(cfg.model.get("pretrained") or cfg.model.kind),
        plan.describe,
        plan.formatting,
        plan.cache_key,
        {
            "unique_pairs": stats.unique_pairs,
            "from_cache": stats.cached,
            "scored": stats.scored,
            "tokens_scored": stats.tokens_scored,
            "tokens_shared": stats.tokens_shared,
            "tokens_per_second": stats.tokens_per_second,
            "padding_fraction": stats.padding_fraction,
            "seconds": stats.seconds,
            "dtype": plan.dtype_choice,
            "packed": bool(cfg.scoring.get("packed", True)),
        },
    )


def _judge(cfg: DictConfig, benchmark, items: list, on_batch) -> _Scored:
    """An LLM judge (:mod:`rmlab.rm_eval.judge`): one outcome per comparison, the benchmark's metrics of those."""
    run = judge_benchmark(cfg, benchmark.comparisons(items), on_chunk=on_batch)
    metrics, rows = benchmark.compute_comparisons(
        items,
        run.outcomes,
        n_boot=cfg.bootstrap.n_boot,
        confidence=cfg.bootstrap.confidence,
        seed=cfg.seed,
        preferences=run.preferences,
    )
    return _Scored(
        metrics,
        rows,
        run.name,
        run.spec,
        run.describe,
        run.formatting,
        run.cache_key,
        {
            "requests": run.summary["requests"],
            "from_cache": run.stats.from_cache,
            "generated": run.stats.generated,
            "seconds": run.stats.seconds,
        },
        judge=run.summary,
        judgements=run.judgements,
    )


def training_overlap(model_spec: str, benchmark: str) -> dict | None:
    """Which of this benchmark's items the model's training prompts overlapped, from the contamination record a
    reward model trained here carries (``rmlab_meta.json``: ``data.contamination``; :mod:`rmlab.training.
    contamination`); None for a model without one (released checkpoints, wheel models)."""
    meta = Path(model_spec) / "rmlab_meta.json"
    if not meta.is_file():
        return None
    record = (json.loads(meta.read_text()).get("data") or {}).get("contamination") or {}
    if not record.get("checked"):
        return {"checked": False}
    if benchmark not in record.get("benchmarks", {}):
        why = record.get("not_checked", {}).get(benchmark, "not among contamination.benchmarks")
        return {"checked": False, "why": why}
    counts = record["benchmarks"][benchmark]
    items = sorted({m["item"] for m in record.get("matches", []) if m["benchmark"] == benchmark})
    return {"checked": True, "train_pairs": counts["train"], "heldout_pairs": counts["heldout"],
            "items": items, "items_complete": len(record.get("matches", [])) < int(record.get("max_listed", 50))}  # fmt: skip
