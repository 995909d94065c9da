"""Training throughput: this project's Lightning loop against TRL's ``RewardTrainer`` on the same work.

Same backbone and new head (seeded), same HH-RLHF pairs in the same chat format, same pairs per step, same dtype
(fp32 unless configured), full fine-tuning, dropout off, no gradient accumulation, no checkpoint saving, no
logging; TRL's own defaults that would change the work are set explicitly: ``bf16=False`` (TRL turns bf16 on by
default) and ``activation_checkpointing=False`` (on by default in TRL's base config). Throughput is real
(non-padding) training tokens per second over the whole ``fit`` / ``train`` call (start-up and first step
included for both), and in steady state (steps 2..n, what a long run sees).
Both see the same batches in the same order (``bench.order: same``): the pairs are shuffled once by seed and
cut into consecutive batches, so both trainers pad the same tokens (the padded-token counts are reported and
must agree). ``bench.order: own`` lets each draw random batches its own way (the padding then differs by chance);
``bench.group_by_length=true`` makes ours batch by length, as ``recipe.group_by_length`` does in real runs.
"""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl
import torch

from rmlab.data.preference import load_preferences
from rmlab.models.handle import open_model
from rmlab.models.loading import load_classifier
from rmlab.training.rm_data import PreferenceDataModule
from rmlab.training.rm_module import RewardModelModule
from rmlab.training.setup import prepare_trainable
from rmlab.utils.io import write_json

log = logging.getLogger(__name__)


def _fresh_model(cfg, resolved, tokenizer):
    model, _ = load_classifier(
        resolved, dtype="float32", device="cpu", pad_token_id=tokenizer.pad_token_id, seed=cfg.seed
    )
    return prepare_trainable(model, cfg.recipe)


def run_ours(cfg, resolved, tokenizer, formatter, pairs) -> dict:
    pl.seed_everything(cfg.seed)
    model = _fresh_model(cfg, resolved, tokenizer)
    dm = PreferenceDataModule(
        pairs,
        pairs[:1],
        formatter,
        max_length=cfg.recipe.max_pair_tokens,
        micro_batch_pairs=cfg.bench.pairs_per_step,
        eval_batch_pairs=cfg.bench.pairs_per_step,
        group_by_length=cfg.bench.group_by_length,
        seed=cfg.seed,
        shuffle=cfg.bench.order != "same",
    )
    module = RewardModelModule(model, cfg.recipe)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision=cfg.bench.precision,
        max_steps=cfg.bench.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        gradient_clip_val=cfg.recipe.clip_grad_norm,
    )
    first, padded = {}, [0]

    class AfterFirstStep(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            padded[0] += batch["input_ids"].numel()

        def on_train_batch_end(self, *args, **kwargs):
            first.setdefault("at", (time.perf_counter(), module.tokens_seen))

    trainer.callbacks.append(AfterFirstStep())
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    t1 = time.perf_counter()
    return {**_rates(t0, t1, module.tokens_seen, first["at"], trainer.global_step), "padded_tokens": padded[0]}


def _rates(t0: float, t1: float, tokens: int, first: tuple[float, int], steps: int) -> dict:
    """Whole-call tokens/s (start-up and first step included) and steady-state tokens/s (steps 2..n)."""
    t_first, tok_first = first
    return {
        "seconds": t1 - t0,
        "tokens": tokens,
        "tokens_per_second": tokens / (t1 - t0),
        "steps": steps,
        "steady_tokens_per_second": (tokens - tok_first) / (t1 - t_first),
        "startup_and_first_step_seconds": t_first - t0,
    }


def run_trl(cfg, resolved, tokenizer, formatter, pairs, out_dir: str) -> dict:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    rows = [
        {
            "prompt": [{"role": r, "content": c} for r, c in p.prompt],
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]
    model = _fresh_model(cfg, resolved, tokenizer)
    args = RewardConfig(
        output_dir=out_dir,
        use_cpu=True,
        per_device_train_batch_size=cfg.bench.pairs_per_step,
        gradient_accumulation_steps=1,
        max_steps=cfg.bench.steps,
        max_length=cfg.recipe.max_pair_tokens,
        bf16=cfg.bench.precision.startswith("bf16"),
        fp16=False,
        activation_checkpointing=False,
        learning_rate=cfg.recipe.lr,
        adam_beta1=cfg.recipe.betas[0],
        adam_beta2=cfg.recipe.betas[1],
        max_grad_norm=cfg.recipe.clip_grad_norm,
        report_to="none",
        save_strategy="no",
        logging_steps=max(1, cfg.bench.steps),
        disable_tqdm=True,
        seed=cfg.seed,
        disable_dropout=True,
        dataloader_num_workers=0,
    )
    from transformers import TrainerCallback

    first = {}

    class AfterFirstStep(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            first.setdefault("at", (time.perf_counter(), int(trainer._total_train_tokens)))

    padded = [0]

    class Counted(RewardTrainer):  # counts the tokens (with padding) of each batch it trains on
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                padded[0] += inputs["input_ids"].numel()
            return super().compute_loss(model, inputs, *args, **kwargs)

        def _get_train_sampler(self, *args, **kwargs):  # bench.order=same: consecutive batches, as ours
            if cfg.bench.order == "same":
                return torch.utils.data.SequentialSampler(self.train_dataset)
            return super()._get_train_sampler(*args, **kwargs)

    trainer = Counted(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[AfterFirstStep()],
    )
    t0 = time.perf_counter()
    trainer.train()
    t1 = time.perf_counter()
    tokens = int(trainer._total_train_tokens)  # non-pad tokens TRL counts for its num_tokens log
    return {**_rates(t0, t1, tokens, first["at"], trainer.state.global_step), "padded_tokens": padded[0]}


def benchmark(cfg) -> dict:
    torch.set_num_threads(cfg.bench.get("threads") or torch.get_num_threads())
    splits = load_preferences(cfg.preference, seed=cfg.seed)
    handle = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
    resolved, tokenizer, formatter = handle.resolved, handle.tokenizer, handle.formatter
    n = cfg.bench.steps * cfg.bench.pairs_per_step
    pairs = splits.train[:n]  # already in a seeded random order: with bench.order=same, both cut it into batches
    if cfg.bench.order not in ("same", "own"):
        raise ValueError(f"bench.order must be 'same' or 'own', got {cfg.bench.order!r}")
    report = {
        "model": resolved.spec,
        "pairs": len(pairs),
        "pairs_per_step": cfg.bench.pairs_per_step,
        "steps": cfg.bench.steps,
        "precision": cfg.bench.precision,
        "max_length": cfg.recipe.max_pair_tokens,
        "threads": torch.get_num_threads(),
        "order": cfg.bench.order,
    }
    report["trl"] = run_trl(cfg, resolved, tokenizer, formatter, pairs, f"{cfg.paths.output_dir}/trl")
    report["ours"] = run_ours(cfg, resolved, tokenizer, formatter, pairs)
    report["ours_over_trl"] = report["ours"]["tokens_per_second"] / report["trl"]["tokens_per_second"]
    report["ours_over_trl_steady"] = (
        report["ours"]["steady_tokens_per_second"] / report["trl"]["steady_tokens_per_second"]
    )
    write_json(f"{cfg.paths.output_dir}/bench_train.json", report)
    print(
        f"RM training throughput: {report['model']}, {report['steps']} steps x {report['pairs_per_step']} pairs, "
        f"{report['precision']}, max_length {report['max_length']}, {report['threads']} threads"
    )
    for name in ("trl", "ours"):
        r = report[name]
        print(
            f"  {name:5s} {r['tokens_per_second']:8.1f} tokens/s whole call ({r['tokens']} tokens, {r['steps']} "
            f"steps, {r['seconds']:.1f} s; start-up + first step {r['startup_and_first_step_seconds']:.1f} s), "
            f"{r['steady_tokens_per_second']:.1f} tokens/s over steps 2..{r['steps']}; "
            f"{r['padded_tokens']} tokens with padding"
        )
    print(
        f"  ours / TRL = {report['ours_over_trl']:.2f}x whole call, {report['ours_over_trl_steady']:.2f}x steady state"
    )
    return report
