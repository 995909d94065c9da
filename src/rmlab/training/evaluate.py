"""What a reward-model trainer does after saving its model: evaluate it on ``evaluate.benchmarks`` through
``rmlab eval-rm``'s own code path, so a training run's numbers are the evaluator's (shared by ``train-rm`` and
``train-dpo``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict


def evaluate_trained(cfg: DictConfig, model_dir: Path, run_dir: Path) -> dict:
    """Evaluate the trained model on ``cfg.evaluate.benchmarks`` with the evaluator's own code path."""
    from rmlab.rm_eval.evaluate import evaluate_rm
    from rmlab.utils.config import compose_config

    results = {}
    for bench in cfg.get("evaluate", {}).get("benchmarks") or []:
        eval_cfg = compose_config(
            "eval_rm", overrides=[f"benchmark={bench}", "model=auto", *list(cfg.evaluate.get("overrides") or [])]
        )
        with open_dict(eval_cfg):
            eval_cfg.model.pretrained = str(model_dir)
            eval_cfg.model.name = cfg.get("run_name") or f"{cfg.model.get('name') or 'rm'}-{cfg.preference.name}"
            for key in ("max_length", "dtype"):  # the formatting comes from the model directory (rmlab_meta.json)
                if key in cfg.model:
                    eval_cfg.model[key] = cfg.model[key]
            eval_cfg.paths = cfg.paths
            eval_cfg.paths.output_dir = str(run_dir / f"eval_{bench}")
            eval_cfg.logger = cfg.logger
            eval_cfg.device = cfg.get("device", "auto")
        results[bench] = evaluate_rm(eval_cfg)
    return {b: {k: r.get(k) for k in ("overall", "partial_overall", "accuracy", "mrr")} for b, r in results.items()}
