"""Building blocks of a Lightning run from the config: trainable parameters, logger, callbacks."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def prepare_trainable(model, recipe):
    """Choose what trains (``recipe.trainable``): ``all``; ``head`` (a linear probe on a frozen backbone);
    ``top_layers`` (the head, the final norm and the last ``recipe.top_layers`` blocks); ``lora`` (peft adapters
    plus the head). Optionally turn on gradient checkpointing."""
    mode = recipe.get("trainable", "all")
    model.train()
    if recipe.get("disable_dropout", True):  # as TRL and the Tulu-2.5 RM recipe train: deterministic forward passes
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    if mode in ("head", "top_layers"):
        backbone = getattr(model, model.base_model_prefix)
        for p in backbone.parameters():
            p.requires_grad_(False)
        if mode == "top_layers":  # the last k transformer blocks and the final norm train too
            blocks = _transformer_blocks(backbone, model.config.num_hidden_layers)
            for block in blocks[-recipe.top_layers :]:
                block.requires_grad_(True)
            norm = getattr(backbone, "norm", None)
            if norm is not None:
                norm.requires_grad_(True)
    elif mode == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as err:
            raise ImportError("recipe.trainable=lora needs peft: pip install peft") from err
        lora = recipe.lora
        model = get_peft_model(
            model,
            LoraConfig(
                task_type="SEQ_CLS",
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules) if lora.target_modules else None,
            ),
        )
    elif mode != "all":
        raise ValueError(f"recipe.trainable must be all, head, top_layers or lora, got {mode!r}")
    if recipe.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log.info("trainable parameters: %d of %d (%s)", n_train, n_all, mode)
    return model


def _transformer_blocks(backbone, n_layers: int) -> torch.nn.ModuleList:
    """The backbone's list of transformer blocks: its ModuleList with one entry per hidden layer."""
    for module in backbone.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"no list of {n_layers} transformer blocks found in {type(backbone).__name__}")


def build_lightning_logger(cfg, run_dir: Path, config: dict):
    """Lightning's own W&B or CSV logger, as ``cfg.logger.type`` says (W&B offline unless a key is set)."""
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    from rmlab.utils.loggers import _wandb_has_key

    kind = cfg.logger.get("type", "none")
    if kind == "wandb":
        mode = cfg.logger.get("mode", "auto")
        if mode == "auto":
            mode = "online" if _wandb_has_key() else "offline"
        logger = WandbLogger(
            project=cfg.logger.project,
            entity=cfg.logger.get("entity"),
            group=cfg.logger.get("group"),
            job_type=cfg.logger.get("job_type"),
            tags=list(cfg.logger.get("tags") or []),
            save_dir=str(run_dir),
            mode=mode,
            name=cfg.get("run_name"),
        )
        logger.log_hyperparams(config)
        return logger
    if kind == "csv":
        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if kind == "none":
        return False
    raise ValueError(f"unknown logger type {kind!r}; use wandb, csv or none")


def build_callbacks(cfg, run_dir: Path) -> list:
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

    ckpt = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        save_last=True,
        save_top_k=0,
        every_n_train_steps=cfg.recipe.get("checkpoint_every_n_steps") or None,
    )
    callbacks = [ckpt, StepHistory()]
    if cfg.logger.get("type", "none") != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    return callbacks


def _callback_base():
    from pytorch_lightning.callbacks import Callback

    return Callback


class StepHistory(_callback_base()):
    """The training scalars at each optimizer step (loss, accuracy, margin, gradient norm, learning rate): the
    rows of ``curves.png`` and ``train_history.jsonl``, whatever logger the run uses."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.rows and self.rows[-1]["step"] == trainer.global_step:
            return  # a micro-batch inside a gradient accumulation
        row = {
            k.removeprefix("train/"): float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")
        }
        row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else None
        self.rows.append({"step": trainer.global_step, **row})
