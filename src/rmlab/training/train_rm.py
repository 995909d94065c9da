"""Train a classifier reward model: the library body of ``scripts/train_rm.py``.

Outputs in the run directory: ``model/`` (a Hugging Face model directory with tokenizer and
``rmlab_meta.json``, loadable by ``scripts/eval_rm.py model=<run>/model``), ``checkpoints/`` (Lightning,
``last.ckpt`` to resume), ``train_metrics.json`` (held-out accuracy with a bootstrap interval, data provenance,
throughput), and, when ``evaluate.benchmarks`` is set, ``eval_<benchmark>/`` for each benchmark.

Data parallel (``trainer.strategy=ddp``, ``trainer.devices=N``; ``trainer=ddp_cpu`` on CPUs): Lightning starts
the other processes (it runs this script again for each) and averages gradients. Each rank trains on its share
of every batch (:class:`rmlab.training.rm_data.SeededBatches`) and scores its share of the held-out pairs,
gathered on every rank; rank 0 alone writes the model, ``train_metrics.json``, the logger's run and the
evaluations (Lightning already writes checkpoints from rank 0 only).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from rmlab.data.preference import load_preferences
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.models.handle import open_model
from rmlab.models.loading import load_classifier, save_model_dir
from rmlab.training.contamination import decontaminate
from rmlab.training.distributed import ReplicaCheck, check_relaunch
from rmlab.training.evaluate import evaluate_trained
from rmlab.training.resume import resolve_resume
from rmlab.training.rm_data import PreferenceDataModule, lightning_position
from rmlab.training.rm_module import RewardModelModule
from rmlab.training.setup import StepHistory, build_callbacks, build_lightning_logger, prepare_trainable
from rmlab.utils.io import write_json, write_jsonl
from rmlab.utils.plots import training_curves
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


CURVES = {"loss": "loss", "accuracy": "pair accuracy", "margin": "reward margin", "grad_norm": "grad norm", "lr": "lr"}


def train_reward_model(cfg: DictConfig) -> dict:
    run_dir = Path(cfg.paths.output_dir)
    ckpt, resumed = resolve_resume(cfg.get("resume"), run_dir / "checkpoints", _newest_checkpoint, what="Lightning")
    pl.seed_everything(cfg.seed, workers=True)
    t0 = time.perf_counter()
    splits = decontaminate(load_preferences(cfg.preference, seed=cfg.seed), cfg)
    base = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
    resolved, tokenizer, formatter = base.resolved, base.tokenizer, base.formatter
    model, new_head = load_classifier(
        resolved, dtype="float32", device="cpu", pad_token_id=tokenizer.pad_token_id, seed=cfg.seed
    )
    model = prepare_trainable(model, cfg.recipe)
    recipe = cfg.recipe
    dm = PreferenceDataModule(
        splits.train,
        splits.heldout,
        formatter,
        max_length=recipe.max_pair_tokens,
        micro_batch_pairs=recipe.micro_batch_pairs,
        eval_batch_pairs=recipe.eval_batch_pairs,
        group_by_length=recipe.get("group_by_length", False),
        seed=cfg.seed,
    )
    module = RewardModelModule(model, recipe)
    config = OmegaConf.to_container(cfg, resolve=True)
    replicas = ReplicaCheck() if cfg.get("check_replicas") else None
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        logger=build_lightning_logger(cfg, run_dir, config),
        callbacks=[*build_callbacks(cfg, run_dir), *([replicas] if replicas else [])],
        use_distributed_sampler=False,  # SeededBatches shards the batches itself (same order as one process)
        gradient_clip_val=recipe.clip_grad_norm,
        max_epochs=recipe.epochs,
        max_steps=recipe.get("max_steps") or -1,
        val_check_interval=recipe.get("val_check_interval"),
        num_sanity_val_steps=0,
        deterministic=True,
    )
    check_relaunch(trainer, "train_rm.py")
    # pairs_per_update is the effective batch over all devices: accumulate what one step on each does not cover
    accumulate = max(1, recipe.pairs_per_update // (recipe.micro_batch_pairs * trainer.world_size))
    trainer.accumulate_grad_batches = accumulate
    fit_t0 = time.perf_counter()
    if ckpt is not None:  # the batches the checkpoint had consumed are skipped, not trained on again
        dm.resume_at(*lightning_position(ckpt))
    with warnings.catch_warnings():
        # Lightning warns that a plain DataLoader cannot resume mid-epoch; ours skips what the checkpoint consumed
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
    fit_seconds = time.perf_counter() - fit_t0
    if module.heldout_step != trainer.global_step or module.heldout_rewards is None:  # not yet the final weights
        trainer.validate(module, datamodule=dm, verbose=False)
    heldout = module.heldout_rewards if module.heldout_rewards is not None else torch.zeros(0, 2)
    wins = (heldout[:, 0] > heldout[:, 1]).double().numpy()
    metrics = {
        "heldout": {
            "n": len(wins),
            "accuracy": float(wins.mean()) if len(wins) else None,
            "ci": bootstrap_mean_interval(
                wins, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed
            )
            if len(wins) > 1
            else None,
            "confidence": cfg.bootstrap.confidence,
        },
        "train": {
            "pairs": len(dm.train_pairs),
            "dropped_too_long": dm.dropped_train,
            "global_steps": trainer.global_step,
            "epochs": recipe.epochs,
            "accumulate_grad_batches": accumulate,
            "fit_seconds": fit_seconds,
            "tokens_seen": module.tokens_seen_all_ranks,
            "tokens_per_second": module.tokens_seen_all_ranks / fit_seconds if fit_seconds else None,
        },
        "distributed": {
            "strategy": type(trainer.strategy).__name__,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "micro_batch_pairs_per_rank": recipe.micro_batch_pairs,
            "replica_checks": replicas.record() if replicas else None,
        },
        "data": splits.info,
        "model": {"base": resolved.spec, "base_fingerprint": resolved.fingerprint, "new_head": new_head},
        "seed": cfg.seed,
        "resume": resumed,
    }
    if not trainer.is_global_zero:  # rank 0 writes every output; the others are done
        log.info("rank %d of %d: training done; rank 0 writes the outputs", trainer.global_rank, trainer.world_size)
        return metrics
    model_dir = save_model_dir(
        module.model,
        tokenizer,
        run_dir / "model",
        {
            "kind": "classifier",
            "base_model": resolved.spec,
            "formatting": base.formatting,
            "data": splits.info,
            "recipe": OmegaConf.to_container(recipe, resolve=True),
            "seed": cfg.seed,
            "heldout": metrics["heldout"],
            **run_info(cfg.paths.root_dir),
        },
    )
    metrics["model_dir"] = str(model_dir)
    (history,) = [c.rows for c in trainer.callbacks if isinstance(c, StepHistory)]
    if history and trainer.is_global_zero:  # beside train_metrics.json: the curves whatever the logger
        write_jsonl(run_dir / "train_history.jsonl", history)
        metrics["curves"] = str(training_curves(history, CURVES, path=run_dir / "curves.png", title=resolved.spec))
    metrics["wall_seconds"] = time.perf_counter() - t0
    metrics["run"] = run_info(cfg.paths.root_dir)
    write_json(run_dir / "train_metrics.json", metrics)
    log.info(
        "held-out accuracy %.4f %s over %d pairs; model saved to %s",
        metrics["heldout"]["accuracy"] or 0,
        metrics["heldout"]["ci"],
        metrics["heldout"]["n"],
        model_dir,
    )
    metrics["evaluations"] = evaluate_trained(cfg, model_dir, run_dir)
    return metrics


def _newest_checkpoint(checkpoints: Path) -> Path | None:
    """``checkpoints/last.ckpt``, which the checkpoint callback rewrites every ``checkpoint_every_n_steps``."""
    path = checkpoints / "last.ckpt"
    return path if path.is_file() else None
