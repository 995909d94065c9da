"""Pipelines by name, for ``scripts/run_experiment.py`` (an experiment file sets ``pipeline.name``)."""

from __future__ import annotations

from rmlab.utils.registry import Registry

PIPELINES: Registry = Registry("pipeline")


@PIPELINES.register("dpo_vs_classifier")
def _dpo_vs_classifier(cfg):
    from rmlab.pipelines.dpo_vs_classifier import run_dpo_vs_classifier

    return run_dpo_vs_classifier(cfg)


@PIPELINES.register("correlation_study")
def _correlation_study(cfg):
    from rmlab.pipelines.correlation_study import run_correlation_study

    return run_correlation_study(cfg)


@PIPELINES.register("bon_study")
def _bon_study(cfg):
    from rmlab.pipelines.bon_study import run_bon_study

    return run_bon_study(cfg)


@PIPELINES.register("preference_ablation")
def _preference_ablation(cfg):
    from rmlab.pipelines.preference_ablation import run_preference_ablation

    return run_preference_ablation(cfg)
