"""Train a DPO model with TRL's ``DPOTrainer``: the library body of ``scripts/train_dpo.py``.

TRL does the optimisation (loss, reference handling, LoRA, precomputed reference log-probs, accelerate for
multi-GPU); this module only feeds it the project's preference registry and writes the project's outputs. The one
thing taken over from TRL is tokenisation: pairs are tokenised by :meth:`ImplicitRewardScorer.encode` (prompt
and response tokenised separately, the model's chat template), so the token sequences DPO trains on are exactly
the ones ``scripts/eval_rm.py`` later scores. Over-long pairs are cut on the right, as EasyLM's DPO did
(``recipe.overlong=drop`` drops them, as the classifier training does).

Outputs in the run directory: ``model/`` (a Hugging Face causal-LM directory with ``rmlab_meta.json`` naming its
reference model, so ``scripts/eval_rm.py model=<run>/model`` scores it with that reference, or reference-free
with ``model.reference=null``), ``checkpoints/`` (TRL/HF checkpoints; ``resume=last`` continues),
``train_metrics.json`` (held-out implicit-reward accuracy with a bootstrap interval, before and after training;
data provenance; throughput), ``log_history.jsonl`` (TRL's logged curves), and ``eval_<benchmark>/`` per
benchmark in ``evaluate.benchmarks``.

Several processes (``accelerate launch --config_file conf/accelerate/<config>.yaml scripts/train_dpo.py``; on
CPUs ``conf/accelerate/multi_cpu.yaml``): accelerate and TRL shard the batches and average the gradients. The
ranks agree on rank 0's run directory and resume decision; rank 0 alone starts the W&B run, scores the held-out
pairs and writes every output (TRL writes checkpoints from the main process, plus each rank's RNG state).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rmlab.data.preference import PreferenceExample, load_preferences
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm, pick_device, save_model_dir
from rmlab.scoring.scorers import Encoded, ImplicitRewardScorer
from rmlab.training.contamination import decontaminate
from rmlab.training.distributed import agree_on_run_dir, is_main_process, same_on_every_rank
from rmlab.training.evaluate import evaluate_trained
from rmlab.training.resume import resolve_resume
from rmlab.utils.io import write_json, write_jsonl
from rmlab.utils.loggers import hf_report_to
from rmlab.utils.plots import training_curves
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


def tokenize_dpo_pairs(
    pairs: list[PreferenceExample], scorer: ImplicitRewardScorer, max_length: int, overlong: str = "truncate"
) -> tuple[list[dict], dict[str, int]]:
    """TRL's pre-tokenised DPO rows (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) and what happened to the pairs
    whose prompt plus a response is longer than ``max_length`` tokens: ``{"truncated": n, "dropped": n}``.

    ``overlong="truncate"`` is EasyLM's rule for Tulu 2.5 DPO (``PreferenceDataset`` in ``EasyLM/data.py``): each side
    is cut on the right at ``max_length`` tokens (so it loses its end, EOS included), and a pair is dropped only when
    a side keeps no response token (EasyLM filters out examples without a loss token). ``"drop"`` drops every
    over-long pair (EasyLM's ``remove_truncated_samples``, which its RM recipe sets)."""
    if overlong not in ("truncate", "drop"):
        raise ValueError(f"recipe.overlong={overlong!r}: expected truncate or drop")
    rows, counts = [], {"truncated": 0, "dropped": 0}
    for p in pairs:
        chosen, rejected = scorer.encode(p.prompt, p.chosen), scorer.encode(p.prompt, p.rejected)
        start = chosen.response_start
        assert start == rejected.response_start, "the prompt tokenises the same for both responses"
        if max(len(chosen.input_ids), len(rejected.input_ids)) > max_length:
            if overlong == "drop" or start >= max_length:  # no response token would be left to train on
                counts["dropped"] += 1
                continue
            counts["truncated"] += 1
        rows.append(
            {
                "prompt_ids": chosen.input_ids[:start],
                "chosen_ids": chosen.input_ids[start:max_length],
                "rejected_ids": rejected.input_ids[start:max_length],
            }
        )
    return rows, counts


def heldout_rewards(scorer: ImplicitRewardScorer, rows: list[dict], batch_pairs: int) -> np.ndarray:
    """``(n, 2)`` implicit rewards (chosen, rejected) of pre-tokenised pairs, scored longest first."""
    encoded = [
        Encoded(r["prompt_ids"] + r[k], len(r["prompt_ids"])) for r in rows for k in ("chosen_ids", "rejected_ids")
    ]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
    out = np.empty(len(encoded))
    from tqdm.auto import tqdm

    for lo in tqdm(range(0, len(order), 2 * batch_pairs), desc="held-out pairs", unit="batch"):
        idx = order[lo : lo + 2 * batch_pairs]
        out[idx] = scorer([encoded[i] for i in idx])
    return out.reshape(-1, 2)


def accuracy_summary(rewards: np.ndarray, cfg: DictConfig) -> dict:
    """Accuracy (chosen strictly above rejected; ties count half, as RewardBench scores DPO ties) with a
    bootstrap interval, and how many pairs were exact ties."""
    wins = np.where(rewards[:, 0] > rewards[:, 1], 1.0, np.where(rewards[:, 0] == rewards[:, 1], 0.5, 0.0))
    return {
        "n": len(wins),
        "accuracy": float(wins.mean()) if len(wins) else None,
        "ci": bootstrap_mean_interval(
            wins, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed
        )
        if len(wins) > 1
        else None,
        "confidence": cfg.bootstrap.confidence,
        "ties": int((rewards[:, 0] == rewards[:, 1]).sum()),
        "mean_margin": float((rewards[:, 0] - rewards[:, 1]).mean()) if len(wins) else None,
    }


def dpo_config(cfg: DictConfig, run_dir: Path, device: str, accumulate: int, report_to):
    """TRL's ``DPOConfig`` from ``cfg.recipe`` (the Tulu-2.5 DPO recipe) and the run's logger and device."""
    from trl import DPOConfig

    r = cfg.recipe
    return DPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=cfg.get("run_name"),
        seed=cfg.seed,
        data_seed=cfg.seed,
        beta=r.beta,
        loss_type=list(r.loss_type) if OmegaConf.is_list(r.loss_type) else [r.loss_type],
        learning_rate=r.lr,
        lr_scheduler_type=r.scheduler,
        warmup_steps=float(r.warmup_ratio),
        num_train_epochs=r.epochs,
        max_steps=r.get("max_steps") or -1,
        per_device_train_batch_size=r.micro_batch_pairs,
        gradient_accumulation_steps=accumulate,
        adam_beta1=r.betas[0],
        adam_beta2=r.betas[1],
        adam_epsilon=r.eps,
        weight_decay=r.weight_decay,
        max_grad_norm=r.clip_grad_norm,
        max_length=None,
        precompute_ref_log_probs=r.precompute_ref_log_probs,
        precompute_ref_batch_size=r.eval_batch_pairs,
        activation_checkpointing=r.gradient_checkpointing,
        disable_dropout=True,
        remove_unused_columns=False,
        bf16=cfg.precision == "bf16",
        fp16=cfg.precision == "fp16",
        use_cpu=device == "cpu",
        logging_steps=r.logging_steps,
        save_strategy="steps" if r.checkpoint_every_n_steps else "no",
        save_steps=r.checkpoint_every_n_steps or 500,
        save_total_limit=1,
        report_to=report_to,
        dataloader_num_workers=0,
    )


def _lora_config(recipe):
    from peft import LoraConfig

    lora = recipe.lora
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if lora.target_modules else None,
    )


class _PreTokenizedDPOTrainer:
    """Built lazily (TRL imports are slow): a ``DPOTrainer`` that accepts datasets already tokenised by
    :func:`tokenize_dpo_pairs` and leaves them as they are."""

    _cls = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            from trl import DPOTrainer

            class PreTokenizedDPOTrainer(DPOTrainer):
                def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
                    if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
                        return dataset
                    return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

            cls._cls = PreTokenizedDPOTrainer
        return cls._cls


CURVES = {  # TRL's DPO log keys -> panel titles
    "loss": "loss",
    "rewards/accuracies": "pair accuracy",
    "rewards/margins": "reward margin",
    "grad_norm": "grad norm",
    "learning_rate": "lr",
}


@dataclass
class DPOData:
    """The loaded pieces of a DPO run: the pairs tokenized once, the policy and its frozen reference."""

    splits: object
    base: object  # the SFT model's handle
    policy: object
    reference: object | None  # None with LoRA (TRL disables the adapters instead)
    train_rows: list
    heldout_rows: list
    long_train: dict


def train_dpo(cfg: DictConfig) -> dict:
    """The recipe (TRL's DPO with the Tulu 2.5 / open-instruct settings in ``conf/recipe/dpo.yaml``; sources in
    docs/fidelity.md): load and tokenize the pairs, train (resuming where asked), score the held-out pairs by the
    implicit reward, save the model and its record, evaluate it on ``evaluate.benchmarks``."""
    from transformers import set_seed

    device = pick_device(cfg.get("device", "auto"))
    run_dir = agree_on_run_dir(Path(cfg.paths.output_dir), cpu=device == "cpu")  # one directory for all ranks
    main = is_main_process()
    ckpt, resumed = same_on_every_rank(
        resolve_resume(cfg.get("resume"), run_dir / "checkpoints", _newest_checkpoint, what="HF Trainer")
    )
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    d = _load_and_tokenize(cfg, device)
    before = _heldout_before(cfg, d, device) if main else None
    trainer, run_logger, fit_seconds = _train(cfg, d, run_dir, device, ckpt, main)
    if not main:  # rank 0 scores the held-out pairs and writes every output
        log.info("rank %d: training done; rank 0 writes the outputs", trainer.accelerator.process_index)
        return {"train": {"global_steps": trainer.state.global_step}, "resume": resumed}
    trained = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
    trained.eval()
    after = _heldout_after(cfg, d, trained, device)
    metrics = _save(cfg, d, trainer, trained, before, after, fit_seconds, run_dir)
    metrics.update(resume=resumed, wall_seconds=time.perf_counter() - t0, run=run_info(cfg.paths.root_dir))
    write_json(run_dir / "train_metrics.json", metrics)
    run_logger.log_metrics({f"heldout/{k}": v for k, v in (after or {}).items() if isinstance(v, (int, float))})
    run_logger.finish()
    metrics["evaluations"] = evaluate_trained(cfg, Path(metrics["model_dir"]), run_dir)
    return metrics


def _load_and_tokenize(cfg: DictConfig, device: str) -> DPOData:
    """The preference splits (decontaminated when asked), the SFT model twice (the policy that trains and the
    frozen reference), and every pair tokenized in the model's formatting, overlong ones truncated or dropped."""
    recipe = cfg.recipe
    splits = decontaminate(load_preferences(cfg.preference, seed=cfg.seed), cfg)
    base = open_model(cfg.model, cache_dir=cfg.paths.model_cache_dir)
    resolved, tokenizer, formatter = base.resolved, base.tokenizer, base.formatter
    # the SFT model twice: the policy that trains and the frozen reference (with LoRA, TRL disables the adapters)
    policy = load_causal_lm(resolved, dtype="float32", device="cpu")
    reference = None if recipe.trainable == "lora" else load_causal_lm(resolved, dtype="float32", device="cpu")
    encoder = ImplicitRewardScorer(policy, tokenizer, formatter, max_length=10**9, device=device, reference=reference)
    overlong = recipe.get("overlong", "truncate")
    train_rows, long_train = tokenize_dpo_pairs(splits.train, encoder, recipe.max_pair_tokens, overlong)
    heldout_rows, long_heldout = tokenize_dpo_pairs(splits.heldout, encoder, recipe.max_pair_tokens, overlong)
    log.info(
        "pairs: %d train (%d truncated, %d dropped at %d tokens, overlong=%s), %d held out (%d truncated, %d dropped)",
        len(train_rows), long_train["truncated"], long_train["dropped"], recipe.max_pair_tokens, overlong,
        len(heldout_rows), long_heldout["truncated"], long_heldout["dropped"],
    )  # fmt: skip
    if not train_rows:
        raise ValueError(
            f"no training pair is left at recipe.max_pair_tokens={recipe.max_pair_tokens} (recipe.overlong={overlong})"
        )
    return DPOData(splits, base, policy, reference, train_rows, heldout_rows, long_train)


def _heldout_before(cfg: DictConfig, d: DPOData, device: str) -> dict | None:
    """With ``heldout_before``: the held-out accuracy before training (policy == reference: all rewards 0, ties)."""
    if not (cfg.get("heldout_before", False) and d.heldout_rows):
        return None
    scorer = _scorer(d.policy, d.policy, d.base.tokenizer, d.base.formatter, device)
    before = accuracy_summary(heldout_rewards(scorer, d.heldout_rows, cfg.recipe.eval_batch_pairs), cfg)
    log.info("held-out implicit-reward accuracy before training: %s", before)
    return before


def _train(cfg: DictConfig, d: DPOData, run_dir: Path, device: str, ckpt, main: bool):
    """TRL's DPO trainer on the tokenized pairs (LoRA when the recipe says so); returns it, the run's logger and
    the fit time."""
    from datasets import Dataset

    recipe = cfg.recipe
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulate = max(1, recipe.pairs_per_update // (recipe.micro_batch_pairs * world))
    report_to, run_logger = hf_report_to(
        cfg, output_dir=run_dir, config=OmegaConf.to_container(cfg, resolve=True), start=main
    )
    trainer = _PreTokenizedDPOTrainer.get()(
        model=d.policy,
        ref_model=d.reference,
        args=dpo_config(cfg, run_dir, device, accumulate, report_to),
        train_dataset=Dataset.from_list(d.train_rows),
        processing_class=d.base.tokenizer,
        peft_config=_lora_config(recipe) if recipe.trainable == "lora" else None,
    )
    fit_t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return trainer, run_logger, time.perf_counter() - fit_t0


def _heldout_after(cfg: DictConfig, d: DPOData, trained, device: str) -> dict | None:
    """Held-out implicit-reward accuracy of the trained policy against the reference, with a bootstrap interval."""
    if not d.heldout_rows:
        return None
    resolved = d.base.resolved
    reference = d.reference if d.reference is not None else load_causal_lm(resolved, dtype="float32", device=device)
    scorer = _scorer(trained, reference, d.base.tokenizer, d.base.formatter, device)
    after = accuracy_summary(heldout_rewards(scorer, d.heldout_rows, cfg.recipe.eval_batch_pairs), cfg)
    log.info("held-out implicit-reward accuracy after training: %s", after)
    return after


def _save(cfg: DictConfig, d: DPOData, trainer, trained, before, after, fit_seconds: float, run_dir: Path) -> dict:
    """TRL's log history and curves, the model directory with its record (``rmlab_meta.json``: an implicit reward
    model and its reference); returns the run's metrics."""
    recipe, resolved = cfg.recipe, d.base.resolved
    tokens = int(getattr(trainer, "_total_train_tokens", 0))
    metrics = {
        "heldout": after,
        "heldout_before": before,
        "train": {
            "pairs": len(d.train_rows),
            "dropped_too_long": d.long_train["dropped"],
            "truncated_too_long": d.long_train["truncated"],
            "overlong": recipe.get("overlong", "truncate"),
            "global_steps": trainer.state.global_step,
            "epochs": recipe.epochs,
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "accumulate_grad_batches": trainer.args.gradient_accumulation_steps,
            "fit_seconds": fit_seconds,
            "tokens_seen": tokens,
            "tokens_per_second": tokens / fit_seconds if fit_seconds else None,
            "final": _last_logged(trainer.state.log_history),
        },
        "data": d.splits.info,
        "model": {"base": resolved.spec, "base_fingerprint": resolved.fingerprint, "trainable": recipe.trainable},
        "seed": cfg.seed,
    }
    write_jsonl(run_dir / "log_history.jsonl", trainer.state.log_history)
    if trainer.state.log_history:  # beside train_metrics.json: TRL's curves whatever the logger
        curves = training_curves(trainer.state.log_history, CURVES, path=run_dir / "curves.png", title=resolved.spec)
        metrics["curves"] = str(curves)
    model_dir = save_model_dir(
        trained,
        d.base.tokenizer,
        run_dir / "model",
        {
            "kind": "implicit",
            "reference_model": resolved.spec,
            "reference_fingerprint": resolved.fingerprint,
            "base_model": resolved.spec,
            "formatting": d.base.formatting,
            "beta": recipe.beta,
            "data": d.splits.info,
            "recipe": OmegaConf.to_container(recipe, resolve=True),
            "seed": cfg.seed,
            "heldout": after,
            **run_info(cfg.paths.root_dir),
        },
    )
    metrics["model_dir"] = str(model_dir)
    return metrics


def _scorer(policy, reference, tokenizer, formatter, device: str) -> ImplicitRewardScorer:
    for model in (policy, reference):
        model.to(device).eval()
    return ImplicitRewardScorer(policy, tokenizer, formatter, max_length=10**9, device=device, reference=reference)


def _last_logged(history: list[dict]) -> dict:
    """The last logged training metrics (TRL logs loss, rewards/accuracies, rewards/margins, ...)."""
    rows = [h for h in history if "loss" in h]
    return rows[-1] if rows else {}


def _newest_checkpoint(checkpoints: Path) -> Path | None:
    """The HF Trainer's complete ``checkpoint-<step>`` with the highest step. The Trainer writes a checkpoint's
    files one by one, ``trainer_state.json`` last: a directory without it was cut short by a kill, and is skipped."""
    ckpts = sorted(
        (p for p in checkpoints.glob("checkpoint-*") if (p / "trainer_state.json").is_file()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return ckpts[-1] if ckpts else None
