"""RM-Bench Sec. 4.2: DPO models against sequence classifiers trained on the same preference pairs.

For each preference dataset: train (or reuse) the classifier RM (``train_rm``) and the DPO model (``train_dpo``)
on the same split, then score on RM-Bench (``eval_rm``) the classifier, the DPO model with its reference, and the
DPO model reference-free. Writes ``comparison.md``, ``comparison.csv`` and ``comparison.png`` to the run
directory. Both trainings read the same ``preference`` settings and seed, so their pairs are the same; the table
records both data fingerprints and the pipeline fails if they differ.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from rmlab.analysis.dpo_vs_classifier import comparison_csv, comparison_figure, comparison_markdown, comparison_row
from rmlab.pipelines.stages import run_stage, stage_dir
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)


def run_dpo_vs_classifier(cfg: DictConfig) -> list[dict]:
    from rmlab.evaluation.rm_eval import evaluate_rm
    from rmlab.training.train_dpo import train_dpo
    from rmlab.training.train_rm import train_reward_model

    p = cfg.pipeline
    root, out = Path(p.stages_dir), Path(cfg.paths.output_dir)
    runtime = [f"logger={p.stage_logger}"]
    rows, provenance = [], {}
    for dataset in p.datasets:
        shared = [f"preference={dataset}", *p.preference_overrides, f"seed={cfg.seed}"]
        cls_over = [*shared, *p.classifier.overrides]
        dpo_over = [*shared, *p.dpo.overrides]
        cls_dir, dpo_dir = stage_dir(root / dataset, "classifier", cls_over), stage_dir(root / dataset, "dpo", dpo_over)
        cls = run_stage("train_rm", cls_over, cls_dir, train_reward_model, done="train_metrics.json", runtime=runtime)
        dpo = run_stage("train_dpo", dpo_over, dpo_dir, train_dpo, done="train_metrics.json", runtime=runtime)
        fps = {k: (cls["data"]["train_fingerprint"], dpo["data"]["train_fingerprint"]) for k in ("train",)}
        if fps["train"][0] != fps["train"][1]:
            raise RuntimeError(f"{dataset}: the classifier and the DPO model were trained on different pairs "
                               f"(fingerprints {fps['train']}); give both the same preference settings")
        provenance[dataset] = {"classifier_run": str(cls_dir), "dpo_run": str(dpo_dir),
                               "train_fingerprint": fps["train"][0],
                               "classifier_heldout": cls.get("heldout"), "dpo_heldout": dpo.get("heldout")}
        evals = {"classifier": (cls_dir, []), "dpo_ref": (dpo_dir, ["model.reference=auto"]),
                 "dpo_ref_free": (dpo_dir, ["model.reference=null", f"model.ref_free_mode={p.ref_free_mode}"])}
        for variant, (run_dir, extra) in evals.items():
            over = [f"model={run_dir / 'model'}", "benchmark=rm_bench", *extra, *p.eval.overrides, f"seed={cfg.seed}"]
            eval_dir = run_dir / f"rm_bench_{variant}"
            metrics = run_stage("eval_rm", over, eval_dir, evaluate_rm, done="metrics.json",
                                runtime=[*runtime, f"model.name={dataset}-{variant}"])
            rows.append(comparison_row(dataset, variant, metrics, str(eval_dir / "metrics.json")))
    write_text(out / "comparison.md", comparison_markdown(rows))
    write_text(out / "comparison.csv", comparison_csv(rows))
    comparison_figure(rows, out / "comparison.png")
    write_json(out / "comparison.json", {"rows": rows, "runs": provenance})
    log.info("wrote %s\n%s", out, comparison_markdown(rows))
    return rows
