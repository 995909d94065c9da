"""Bradley-Terry reward-model training as a LightningModule (``conf/recipe/rm.yaml`` holds its settings).

The model is an ``AutoModelForSequenceClassification`` with one output, read at the last attended token (the
same :func:`rmlab.scoring.scorers.classifier_rewards` the evaluator uses, so training and scoring agree). Chosen
and rejected responses of a batch go through one forward pass. Loss (Bradley & Terry 1952; Ouyang et al. 2022):
``-log sigmoid(r_chosen - r_rejected)``; metrics: pairwise accuracy and reward margin.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from rmlab.scoring.scorers import classifier_rewards
from rmlab.training.distributed import gather_rows


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log sigmoid(r_c - r_r)``.

    >>> round(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([1.0])).item(), 4)  # log 2
    0.6931
    """
    return -F.logsigmoid(chosen - rejected).mean()


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy (chosen strictly above rejected; ties lose) and mean margin."""
    return {"accuracy": (chosen > rejected).float().mean(), "margin": (chosen - rejected).mean()}


def linear_with_floor(step: int, *, warmup: int, total: int, floor: float) -> float:
    """LR multiplier: linear warmup from 0 to 1 over ``warmup`` steps, then linear decay to ``floor`` at ``total``
    (EasyLM's schedule: init_lr 0 -> lr -> end_lr; floor = end_lr / lr)."""
    if step < warmup:
        return step / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 1.0 - (1.0 - floor) * progress


class RewardModelModule(pl.LightningModule):
    """:param model: a sequence classifier with one output. :param recipe: the ``recipe`` config (optimiser,
    schedule, which parameters train)."""

    def __init__(self, model, recipe):
        super().__init__()
        self.model = model
        self.recipe = recipe
        # plain containers only: checkpoints must load with torch.load(weights_only=True)
        self.save_hyperparameters({"recipe": OmegaConf.to_container(recipe, resolve=True)}, ignore=["model"])
        self.heldout_rewards: torch.Tensor | None = None  # (pairs, 2) of the last validation, all ranks gathered
        self.heldout_step: int | None = None
        self.tokens_seen = 0  # real (non-pad) training tokens of this rank, for throughput
        self.tokens_seen_all_ranks = 0  # summed over ranks when training ends
        self._heldout_rows: list[torch.Tensor] = []

    def rewards(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        r = classifier_rewards(self.model, batch["input_ids"], batch["attention_mask"])
        n = batch["input_ids"].shape[0] // 2  # rows: chosen of every pair, then rejected of every pair
        return r[:n], r[n:]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        chosen, rejected = self.rewards(batch)
        loss = bradley_terry_loss(chosen, rejected)
        n = chosen.shape[0]
        # averaged over ranks (equal batches on every rank): the loss of the whole step's pairs, as one process logs
        self.log("train/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        for k, v in pair_metrics(chosen, rejected).items():
            self.log(f"train/{k}", v, prog_bar=k == "accuracy", batch_size=n, sync_dist=True)
        self.tokens_seen += int(batch["attention_mask"].sum())
        return loss

    def on_train_end(self) -> None:
        total = torch.tensor(float(self.tokens_seen), dtype=torch.float64, device=self.device)
        self.tokens_seen_all_ranks = int(self.trainer.strategy.reduce(total, reduce_op="sum").item())

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        chosen, rejected = self.rewards(batch)
        rows = torch.stack([batch["index"].double(), chosen.double(), rejected.double()], dim=1)
        self._heldout_rows.append(rows.detach().cpu())

    def on_validation_epoch_start(self) -> None:
        self._heldout_rows = []

    def on_validation_epoch_end(self) -> None:
        """Each rank scored its share of the held-out pairs; every rank gets all of them, in the pairs' order, so
        the metrics are those of one process scoring every pair once."""
        local = torch.cat(self._heldout_rows) if self._heldout_rows else torch.zeros((0, 3), dtype=torch.float64)
        rows = gather_rows(self, local)
        rows = rows[rows[:, 0].argsort()]
        self.heldout_rewards = rows[:, 1:].float()
        self.heldout_step = self.global_step  # which weights the held-out rewards belong to
        chosen, rejected = self.heldout_rewards[:, 0], self.heldout_rewards[:, 1]
        if len(chosen):  # the same values on every rank: sync_dist averages equal numbers
            n = len(chosen)
            self.log("val/loss", bradley_terry_loss(chosen, rejected).to(self.device), batch_size=n, sync_dist=True)
            for k, v in pair_metrics(chosen, rejected).items():
                self.log(f"val/{k}", v.to(self.device), batch_size=n, sync_dist=True)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip by global norm and log that norm: one pass over the gradients (Lightning's own clipping plus a
        separate norm for logging took two). Lightning calls this after any unscaling of fp16 gradients."""
        if gradient_clip_algorithm not in (None, "norm"):
            raise ValueError(f"only clipping by norm is supported, got {gradient_clip_algorithm!r}")
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if params:
            norm = torch.nn.utils.clip_grad_norm_(params, gradient_clip_val or float("inf"))
            self.log("train/grad_norm", norm)

    def configure_optimizers(self):
        from transformers import get_scheduler

        r = self.recipe
        # the new scalar head may learn faster than the pretrained backbone (recipe.head_lr; null = lr)
        backbone = {id(p) for p in getattr(self.model, self.model.base_model_prefix).parameters()}
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if id(p) in backbone], "lr": r.lr},
            {"params": [p for p in trainable if id(p) not in backbone], "lr": r.get("head_lr") or r.lr},
        ]
        # The fused kernel (TRL's default, adamw_torch_fused) unless fp16 autocast, whose gradient scaler needs
        # the gradients unscaled before clipping, which a fused step does internally.
        fused = "16-mixed" not in str(self.trainer.precision) or str(self.trainer.precision).startswith("bf16")
        optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]],
            betas=tuple(r.betas),
            eps=r.eps,
            weight_decay=r.weight_decay,
            fused=fused,
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(r.warmup_ratio * total)
        if r.get("final_lr") and r.scheduler != "linear":
            raise ValueError(f"recipe.final_lr={r.final_lr} needs recipe.scheduler=linear, not {r.scheduler!r}")
        if r.get("final_lr"):  # linear decay to final_lr, not 0 (Tulu-2.5's end_lr); transformers has no such schedule
            floor = float(r.final_lr) / float(r.lr)
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: linear_with_floor(step, warmup=warmup, total=total, floor=floor)
            )
        else:
            scheduler = get_scheduler(r.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
