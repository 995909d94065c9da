"""RM-Bench Sec. 4.2: DPO models against sequence classifiers trained on the same preference pairs.

For each preference dataset: train (or reuse) the classifier RM (``train_rm``) and the DPO model (``train_dpo``)
on the same split, then score on RM-Bench (``eval_rm``) the classifier, the DPO model with its reference, and the
DPO model reference-free. Writes ``comparison.md``, ``comparison.csv`` and ``comparison.png`` to the run
directory. Both trainings read the same ``preference`` settings and seed, so their pairs are the same; the table
records both data fingerprints and the pipeline fails if they differ.

With ``pipeline.released`` (dataset -> ``classifier``, ``dpo``, ``reference`` model specs) a dataset's models are
not trained: the released checkpoints are scored as they are (the paper's own setting: RM-Bench Sec. 4.2 evaluates
the Tulu-2.5 classifiers and DPO models, with tulu-2-13b as the DPO reference).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from rmlab.analysis.dpo_vs_classifier import comparison_csv, comparison_figure, comparison_markdown, comparison_row
from rmlab.pipelines.stages import StageRunner
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)


def run_dpo_vs_classifier(cfg: DictConfig) -> list[dict]:
    p = cfg.pipeline
    root, out = Path(p.stages_dir).resolve(), Path(cfg.paths.output_dir)
    released = p.get("released") or {}
    total = sum(3 if d in released else 5 for d in p.datasets)  # 2 trainings + 3 evaluations
    stage = StageRunner(p, root, [f"logger={p.stage_logger}"], total=total)

    rows, provenance = [], {}
    for dataset in p.datasets:
        if dataset in released:
            evals, provenance[dataset] = released_evals(cfg, dataset)
            for variant, over in evals.items():
                eval_dir, metrics = stage(
                    "eval_rm",
                    over,
                    root / dataset,
                    f"{p.eval.benchmark}_{variant}",
                    [f"model.name={dataset}-{variant}"],
                )
                rows.append(comparison_row(dataset, variant, metrics, str(eval_dir / "metrics.json"), p.eval.benchmark))
            continue
        shared = [f"preference={dataset}", *p.preference_overrides, f"seed={cfg.seed}"]
        cls_over = [*shared, *p.classifier.overrides]
        dpo_over = [*shared, *p.dpo.overrides]
        cls_dir, cls = stage("train_rm", cls_over, root / dataset, "classifier", ["resume=auto"])
        dpo_dir, dpo = stage("train_dpo", dpo_over, root / dataset, "dpo", ["resume=auto"])
        fps = {k: (cls["data"]["train_fingerprint"], dpo["data"]["train_fingerprint"]) for k in ("train",)}
        if fps["train"][0] != fps["train"][1]:
            raise RuntimeError(
                f"{dataset}: the classifier and the DPO model were trained on different pairs "
                f"(fingerprints {fps['train']}); give both the same preference settings"
            )
        provenance[dataset] = {
            "classifier_run": str(cls_dir),
            "dpo_run": str(dpo_dir),
            "train_fingerprint": fps["train"][0],
            "classifier_heldout": cls.get("heldout"),
            "dpo_heldout": dpo.get("heldout"),
        }
        evals = {
            "classifier": (cls_dir, []),
            "dpo_ref": (dpo_dir, ["model.reference=auto"]),
            "dpo_ref_free": (dpo_dir, ["model.reference=null", f"model.ref_free_mode={p.ref_free_mode}"]),
        }
        for variant, (run_dir, extra) in evals.items():
            over = [
                f"model={run_dir / 'model'}",
                f"benchmark={p.eval.benchmark}",
                *extra,
                *p.eval.overrides,
                f"seed={cfg.seed}",
            ]
            eval_dir, metrics = stage(
                "eval_rm", over, run_dir, f"{p.eval.benchmark}_{variant}", [f"model.name={dataset}-{variant}"]
            )
            rows.append(comparison_row(dataset, variant, metrics, str(eval_dir / "metrics.json"), p.eval.benchmark))
    write_text(out / "comparison.md", comparison_markdown(rows))
    write_text(out / "comparison.csv", comparison_csv(rows))
    comparison_figure(rows, out / "comparison.png")
    write_json(out / "comparison.json", {"rows": rows, "runs": provenance})
    log.info("wrote %s\n%s", out, comparison_markdown(rows))
    return rows


def released_evals(cfg: DictConfig, dataset: str) -> tuple[dict[str, list[str]], dict]:
    """The eval_rm overrides of the three scorings of a dataset's released checkpoints, and their provenance."""
    p = cfg.pipeline
    spec, ref_free_mode = p.released[dataset], p.ref_free_mode
    for key in ("classifier", "dpo", "reference"):
        if not spec.get(key):
            raise ValueError(f"pipeline.released: each dataset needs classifier, dpo and reference; {key!r} is missing")
    models = {
        "classifier": [f"model={spec.classifier}", "model.kind=classifier"],
        "dpo_ref": [f"model={spec.dpo}", "model.kind=implicit", f"model.reference={spec.reference}"],
        "dpo_ref_free": [
            f"model={spec.dpo}",
            "model.kind=implicit",
            "model.reference=null",
            f"model.ref_free_mode={ref_free_mode}",
        ],
    }
    evals = {v: [f"benchmark={p.eval.benchmark}", *m, *p.eval.overrides, f"seed={cfg.seed}"] for v, m in models.items()}
    return evals, {"released": {k: str(spec[k]) for k in ("classifier", "dpo", "reference")}}
