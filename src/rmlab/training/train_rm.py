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
    """The recipe (Bradley-Terry on chosen/rejected pairs, the Tulu 2.5 / EasyLM settings in ``conf/recipe/``; sources
    in docs/fidelity.md): load the pairs and the backbone, build the trainer, fit (resuming where asked), score the
    held-out pairs, save the model and its record, evaluate it on ``evaluate.benchmarks``."""
    run_dir = Path(cfg.paths.output_dir)
    ckpt, resumed = resolve_resume(cfg.get("resume"), run_dir / "checkpoints", _newest_checkpoint, what="Lightning")
    pl.seed_everything(cfg.seed, workers=True)
    t0 = time.perf_counter()
    splits, base, module, dm, new_head = _load(cfg)
    trainer, replicas = _build_trainer(cfg, run_dir)
    fit_seconds = _fit(trainer, module, dm, ckpt)
    metrics = {
        "heldout": _heldout(cfg, trainer, module, dm),
        "train": {
            "pairs": len(dm.train_pairs),
            "dropped_too_long": dm.dropped_train,
            "global_steps": trainer.global_step,
            "epochs": cfg.recipe.epochs,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "fit_seconds": fit_seconds,
            "tokens_seen": module.tokens_seen_all_ranks,
            "tokens_per_second": module.tokens_seen_all_ranks / fit_seconds if fit_seconds else None,
        },
        "distributed": {
            "strategy": type(trainer.strategy).__name__,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "micro_batch_pairs_per_rank": cfg.recipe.micro_batch_pairs,
            "replica_checks": replicas.record() if replicas else None,
        },
        "data": splits.info,
        "model": {"base": base.resolved.spec, "base_fingerprint": base.resolved.fingerprint, "new_head": new_head},
        "seed": cfg.seed,
        "resume": resumed,
    }
    if not trainer.is_global_zero:  # rank 0 writes every output; the others are done
        log.info("rank %d of %d: training done; rank 0 writes the outputs", trainer.global_rank, trainer.world_size)
        return metrics
    model_dir = _save(cfg, trainer, module, base, splits, metrics, run_dir)
    metrics["wall_seconds"] = time.perf_counter() - t0
    metrics["run"] = run_info(cfg.paths.root_dir)
    write_json(run_dir / "train_metrics.json", metrics)
    h = metrics["heldout"]
    log.info(
        "held-out accuracy %.4f %s over %d pairs; model saved to %s", h["accuracy"] or 0, h["ci"], h["n"], model_dir
    )
    metrics["evaluations"] = evaluate_trained(cfg, model_dir, run_dir)
    return metrics


def _load(cfg: DictConfig):
    """The preference splits (decontaminated when asked), the backbone with its classifier head made trainable as
    the recipe says, and the data module that batches the pairs in the backbone's formatting."""
    splits = decontaminate(load_preferences(cfg.preference, seed=cfg.seed), cfg)
    base = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
    model, new_head = load_classifier(
        base.resolved, dtype="float32", device="cpu", pad_token_id=base.tokenizer.pad_token_id, seed=cfg.seed
    )
    recipe = cfg.recipe
    model = prepare_trainable(model, recipe)
    dm = PreferenceDataModule(
        splits.train,
        splits.heldout,
        base.formatter,
        max_length=recipe.max_pair_tokens,
        micro_batch_pairs=recipe.micro_batch_pairs,
        eval_batch_pairs=recipe.eval_batch_pairs,
        group_by_length=recipe.get("group_by_length", False),
        seed=cfg.seed,
    )
    return splits, base, RewardModelModule(model, recipe), dm, new_head


def _build_trainer(cfg: DictConfig, run_dir: Path):
    """Lightning's trainer from ``conf/trainer/`` with the recipe's limits; gradients accumulate so that one
    optimizer step sees ``recipe.pairs_per_update`` pairs over all devices."""
    recipe = cfg.recipe
    replicas = ReplicaCheck() if cfg.get("check_replicas") else None
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        logger=build_lightning_logger(cfg, run_dir, OmegaConf.to_container(cfg, resolve=True)),
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
    trainer.accumulate_grad_batches = max(1, recipe.pairs_per_update // (recipe.micro_batch_pairs * trainer.world_size))
    return trainer, replicas


def _fit(trainer, module, dm, ckpt) -> float:
    """Train (from ``ckpt``, skipping the batches it had consumed); returns the seconds it took."""
    fit_t0 = time.perf_counter()
    if ckpt is not None:  # the batches the checkpoint had consumed are skipped, not trained on again
        dm.resume_at(*lightning_position(ckpt))
    with warnings.catch_warnings():
        # Lightning warns that a plain DataLoader cannot resume mid-epoch; ours skips what the checkpoint consumed
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
    return time.perf_counter() - fit_t0


def _heldout(cfg: DictConfig, trainer, module, dm) -> dict:
    """Held-out pairwise accuracy of the final weights, with a bootstrap interval over pairs."""
    if module.heldout_step != trainer.global_step or module.heldout_rewards is None:  # not yet the final weights
        trainer.validate(module, datamodule=dm, verbose=False)
    heldout = module.heldout_rewards if module.heldout_rewards is not None else torch.zeros(0, 2)
    wins = (heldout[:, 0] > heldout[:, 1]).double().numpy()
    ci = (
        bootstrap_mean_interval(wins, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed)
        if len(wins) > 1
        else None
    )
    return {"n": len(wins), "accuracy": float(wins.mean()) if len(wins) else None, "ci": ci,
            "confidence": cfg.bootstrap.confidence}  # fmt: skip


def _save(cfg: DictConfig, trainer, module, base, splits, metrics: dict, run_dir: Path) -> Path:
    """The model directory with its record (``rmlab_meta.json``), the step history and its curves."""
    model_dir = save_model_dir(
        module.model,
        base.tokenizer,
        run_dir / "model",
        {
            "kind": "classifier",
            "base_model": base.resolved.spec,
            "formatting": base.formatting,
            "data": splits.info,
            "recipe": OmegaConf.to_container(cfg.recipe, resolve=True),
            "seed": cfg.seed,
            "heldout": metrics["heldout"],
            **run_info(cfg.paths.root_dir),
        },
    )
    metrics["model_dir"] = str(model_dir)
    (history,) = [c.rows for c in trainer.callbacks if isinstance(c, StepHistory)]
    if history:  # beside train_metrics.json: the curves whatever the logger
        write_jsonl(run_dir / "train_history.jsonl", history)
        title = base.resolved.spec
        metrics["curves"] = str(training_curves(history, CURVES, path=run_dir / "curves.png", title=title))
    return model_dir


def _newest_checkpoint(checkpoints: Path) -> Path | None:
    """``checkpoints/last.ckpt``, which the checkpoint callback rewrites every ``checkpoint_every_n_steps``."""
    path = checkpoints / "last.ckpt"
    return path if path.is_file() else None
