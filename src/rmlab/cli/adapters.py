"""Entry points whose library call takes more than the composed config."""

from __future__ import annotations

from omegaconf import DictConfig


def run_pipeline(cfg: DictConfig) -> object:
    """``rmlab run-experiment``: the pipeline that the experiment names (``pipeline.name``)."""
    from rmlab.pipelines.registry import PIPELINES

    return PIPELINES[cfg.pipeline.name](cfg)


def compare_benchmarks(cfg: DictConfig) -> object:
    """``rmlab compare-benchmarks``: models side by side, with rank correlations between benchmarks."""
    from rmlab.analysis.compare import compare

    return compare(cfg.runs, cfg.paths.output_dir, n_boot=cfg.n_boot, seed=cfg.seed)
