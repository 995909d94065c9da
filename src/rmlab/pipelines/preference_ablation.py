"""Ablating preference data: one reward-model recipe trained on each preference set, every one scored on the same
benchmarks, in one table with paired significance against the best (:mod:`rmlab.analysis.preference_ablation`).

Stages (:mod:`rmlab.pipelines.stages`; finished ones are reused): an optional ``samples`` stage (``best_of_n`` of
``pipeline.policy_samples``: a policy's own gold-scored samples, which become the set named ``policy_samples``), then
per set in ``pipeline.sets`` (name -> train_rm overrides, e.g. ``preference=hh_rlhf`` and its files) ``train_rm``
with ``pipeline.train_rm.overrides``, then ``eval_rm`` on every benchmark of ``pipeline.rm_eval.benchmarks``.
Writes ``ablation.md``, ``ablation.json`` and ``stages.json``. Every stage logs to ``pipeline.stage_logger``
(``wandb`` groups a sweep by ``logger.group``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.analysis.preference_ablation import ablation_markdown, ablation_rows, versus_best
from rmlab.pipelines.stages import StageRunner
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)


def _list(node) -> list[str]:
    return [str(x) for x in (OmegaConf.to_container(node, resolve=True) if node is not None else [])]


def run_preference_ablation(cfg: DictConfig) -> dict:
    p = cfg.pipeline
    root, out = Path(p.stages_dir).resolve(), Path(cfg.paths.output_dir)
    seed, runtime = f"seed={cfg.seed}", [f"logger={p.stage_logger}"]
    sets = {str(k): _list(v) for k, v in (p.get("sets") or {}).items()}
    if not sets and not p.get("policy_samples"):
        raise ValueError("pipeline.sets must name at least one preference set")
    stage = StageRunner(p, root, runtime, record_to=out)

    if p.get("policy_samples"):
        ps = p.policy_samples
        over = [f"policy={ps.policy}", f"task={ps.task}", seed, *_list(ps.overrides)]
        samples_dir, _ = stage("best_of_n", over, root, "samples")
        sets["policy_samples"] = ["preference=policy_samples", f"preference.data_dir={samples_dir}",
                                  *_list(ps.get("preference_overrides"))]  # fmt: skip
    train_runs, evals = {}, {}
    for name, over in sets.items():
        rm_dir, metrics = stage("train_rm", [*over, *_list(p.train_rm.overrides), seed], root / name, "train_rm",
                                ["resume=auto"])  # fmt: skip
        train_runs[name] = metrics
        for bench, bover in (p.rm_eval.benchmarks or {}).items():
            ev = [f"model={rm_dir / 'model'}", f"benchmark={bench}", *_list(bover), *_list(p.rm_eval.overrides), seed]
            eval_dir, m = stage("eval_rm", ev, root / name, f"eval_rm_{bench}", [f"model.name={name}"])
            evals.setdefault(name, {})[bench] = {**m, "_run_dir": str(eval_dir)}
    rows = ablation_rows(train_runs, evals)
    comparisons = versus_best(evals, n_boot=int(p.get("n_boot", 1000)), seed=cfg.seed)
    result = {"rows": rows, "versus_best": comparisons, "stages": stage.decisions}
    write_json(out / "ablation.json", result)
    table = ablation_markdown(rows, comparisons)
    write_text(out / "ablation.md", table)
    print(table)
    return result
