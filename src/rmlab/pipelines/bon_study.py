"""A best-of-n study: do reward-model benchmarks predict what a reward model does for best-of-n sampling?

RewardMATH's validation design (Kim et al. 2024, Sec. 5) at any scale, with reward models of graded quality so
that a positive result is expected and its absence reveals a bug (:mod:`rmlab.analysis.bon_study`):

1. ``samples`` (``best_of_n`` on the task's training split, no reward models): the policy's own samples with
   their gold scores, the training data of the reward models (``preference=policy_samples``);
2. ``train_rm`` per reward model in ``pipeline.reward_models`` (each with its own overrides, e.g. a label-noise
   rate or a number of pairs): classifiers of graded quality;
3. ``eval_rm`` of each on every benchmark in ``pipeline.rm_eval.benchmarks``;
4. ``bon`` (``best_of_n`` on the task's test split, N samples per prompt, every reward model as a proxy);
5. the analysis: one row per reward model (its pairwise accuracy on the best-of-n samples, its held-out accuracy,
   its benchmark accuracies, gold@n) and the correlation of each quality measure with the best-of-N gold gain.

Or, with ``pipeline.released`` (name -> a reward model spec), released reward models are used as they are (no
training; the paper-scale variant). Stages are named by their identity and reused when finished, like every
pipeline here (:mod:`rmlab.pipelines.stages`). Writes ``study.md``, ``study.json`` and the best-of-n curves.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.analysis.bon_study import (
    benchmark_comparison,
    positive_control,
    study_correlations,
    study_markdown,
    study_rows,
)
from rmlab.pipelines.stages import StageRunner
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)


def _list(node) -> list[str]:
    return [str(x) for x in (OmegaConf.to_container(node, resolve=True) if node is not None else [])]


def _hydra_value(v) -> str:
    return "null" if v is None else f"'{v}'" if isinstance(v, str) else str(v)


def eval_overrides(cfg: DictConfig, spec: str) -> dict[str, list[str]]:
    """Per benchmark, the ``eval_rm`` overrides of one reward model."""
    p = cfg.pipeline
    return {
        bench: [f"model={spec}", f"benchmark={bench}", *_list(over), *_list(p.rm_eval.overrides), f"seed={cfg.seed}"]
        for bench, over in (p.rm_eval.benchmarks or {}).items()
    }


def bon_overrides(cfg: DictConfig, models: dict[str, str]) -> list[str]:
    """The ``best_of_n`` overrides of the study's best-of-n stage: every reward model a proxy."""
    p = cfg.pipeline
    keys = OmegaConf.to_container(p.bon.get("reward_model") or {}, resolve=True)  # conf/model keys of every proxy
    extra = "".join(f", {k}: {_hydra_value(v)}" for k, v in keys.items())
    proxies = [f"+reward_models.{name}={{pretrained: '{spec}'{extra}}}" for name, spec in models.items()]
    return [f"policy={p.policy}", f"task={p.task}", f"seed={cfg.seed}", *_list(p.bon.overrides), *proxies]


def run_bon_study(cfg: DictConfig) -> dict:
    p = cfg.pipeline
    root, out = Path(p.stages_dir).resolve(), Path(cfg.paths.output_dir)
    seed = f"seed={cfg.seed}"
    runtime = [f"logger={p.stage_logger}"]
    released = dict(p.get("released") or {})
    trained = dict(p.get("reward_models") or {})
    if not released and not trained:
        raise ValueError("pipeline.reward_models (trained) or pipeline.released (given) must name reward models")
    clash = sorted(set(released) & set(trained))
    if clash:
        raise ValueError(f"reward models {clash} are both trained and released; give each a distinct name")
    base = [f"policy={p.policy}", f"task={p.task}", seed]

    stage = StageRunner(p, root, runtime, record_to=out)

    models: dict[str, str] = {name: str(spec) for name, spec in released.items()}
    train_runs: dict[str, dict] = {}
    if trained:
        samples_dir, samples = stage("best_of_n", [*base, *_list(p.samples.overrides)], root, "samples")
        log.info("training samples: %d prompts, mean gold %.3f", samples["n_prompts"], samples["gold_mean"])
        data = ["preference=policy_samples", f"preference.data_dir={samples_dir}"]
        for name, over in trained.items():
            rm_over = [*data, *_list(over), *_list(p.train_rm.overrides), seed]
            rm_dir, metrics = stage("train_rm", rm_over, root / name, "train_rm", ["resume=auto"])
            models[name], train_runs[name] = str(rm_dir / "model"), metrics

    evals: dict[str, dict[str, dict]] = {}
    for name, spec in models.items():
        for bench, over in eval_overrides(cfg, spec).items():
            _, metrics = stage("eval_rm", over, root / name, f"eval_rm_{bench}", [f"model.name={name}"])
            evals.setdefault(name, {})[bench] = metrics

    bon_dir, bon = stage("best_of_n", bon_overrides(cfg, models), root, "bon")
    n = int(p.gain_n or bon["ns"][-1])
    rows = study_rows(bon, evals, train_runs, n)
    correlations = study_correlations(
        rows, n_boot=int(p.n_boot), n_perm=int(p.n_perm), seed=int(cfg.seed), interval=str(p.get("interval", "fisher"))
    )
    control = positive_control(correlations)
    comparison = benchmark_comparison(rows)
    table = study_markdown(rows, correlations, control, bon["ns"], n, comparison)
    header = (
        f"# Best-of-n study: {len(rows)} reward models, {bon['task']}, {bon['n_prompts']} prompts x "
        f"{bon['n_samples']} samples of {bon['policy']}\n\n"
    )
    write_text(out / "study.md", header + table)
    for f in ("bon.md", "curves.png"):
        shutil.copyfile(bon_dir / f, out / f)
    write_json(
        out / "study.json",
        {
            "rows": rows,
            "correlations": correlations,
            "benchmark_comparison": comparison,
            "positive_control": control,
            "gain_n": n,
            "bon_run": str(bon_dir),
        },
    )
    log.info("wrote %s\n%s", out, table)
    print(header + table)
    if not control["passed"]:
        log.warning("positive control failed: %s", json.dumps(control))
    return {"rows": rows, "correlations": correlations, "benchmark_comparison": comparison, "positive_control": control}
