"""PPO-train a policy against a reward model with TRL (``trl.experimental.ppo``): the body of ``scripts/train_ppo.py``.

As Tulu-2.5 does: the policy and its frozen reference start from the SFT model; the value model starts from the
reward model; prompts come from the reward model's own preference data (the training split, seeded subsample).
TRL runs the rollouts, GAE, the clipped policy and value losses, the KL penalty and the missing-EOS penalty;
the reward itself goes through text (:mod:`rmlab.training.ppo_reward`), so it is what the evaluator gives.

Outputs in the run directory: ``policy/`` (a Hugging Face model directory with ``rmlab_meta.json``: SFT model,
reward model, data fingerprint, recipe, seed, versions), ``log_history.jsonl`` and ``curves.png`` (reward, KL,
entropy, value loss, response length; also sent to W&B), ``train_metrics.json`` with the held-out comparison:
greedy responses of the SFT policy and of the trained policy to the same held-out prompts, their mean reward
under the reward model, the difference with a paired bootstrap interval, and the trained policy's log-ratio to
the reference on its own responses.

TRL's PPO loop has no resume of its own: ``recipe.save_every`` writes resumable checkpoints and ``resume=last``
continues a killed run from the latest (:mod:`rmlab.training.ppo_resume`); the outputs above are written at the end.

Several processes (``accelerate launch``): TRL shards the prompts and averages the gradients; the ranks agree on
rank 0's run directory and resume decision, and rank 0 alone starts the W&B run, runs the held-out comparison and
writes the outputs.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import (
    load_causal_lm,
    load_classifier,
    pick_device,
    save_model_dir,
)
from rmlab.training.distributed import agree_on_run_dir, is_main_process, same_on_every_rank
from rmlab.training.ppo_parts import (
    check_same_tokenizer,
    heldout_comparison,
    missing_eos_treatment,
    policy_tokenizer,
    ppo_prompts,
    reward_model_handle,
    text_reward,
)
from rmlab.training.ppo_resume import PPOCheckpoint, SeededEpochs, checkpoint_dir, find_resume, resume_trainer
from rmlab.training.ppo_reward import TextReward, text_rewards
from rmlab.utils.io import write_json, write_jsonl
from rmlab.utils.loggers import hf_report_to
from rmlab.utils.plots import training_curves
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


def ppo_config(cfg: DictConfig, run_dir: Path, device: str, report_to):
    from trl.experimental.ppo import PPOConfig

    r = cfg.recipe
    return PPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=cfg.get("run_name"),
        seed=cfg.seed,
        data_seed=cfg.seed,
        learning_rate=r.lr,
        lr_scheduler_type=r.scheduler,
        warmup_steps=float(r.warmup_ratio),
        per_device_train_batch_size=r.rollouts_per_device_batch,
        gradient_accumulation_steps=r.gradient_accumulation,
        num_mini_batches=r.num_mini_batches,
        num_ppo_epochs=r.ppo_epochs,
        total_episodes=r.total_episodes,
        local_rollout_forward_batch_size=r.rollout_forward_batch,
        response_length=r.response_length,
        stop_token="eos",
        temperature=r.temperature,
        missing_eos_penalty=missing_eos_treatment(r)["penalty"],
        kl_coef=r.kl_coef,
        kl_estimator=r.kl_estimator,
        cliprange=r.cliprange,
        cliprange_value=r.cliprange_value,
        vf_coef=r.vf_coef,
        gamma=r.gamma,
        lam=r.lam,
        whiten_rewards=r.whiten_rewards,
        max_grad_norm=r.clip_grad_norm,
        adam_beta1=r.betas[0],
        adam_beta2=r.betas[1],
        weight_decay=r.weight_decay,
        num_sample_generations=0,
        save_strategy="no",
        logging_steps=1,
        report_to=report_to,
        bf16=cfg.precision == "bf16",
        fp16=cfg.precision == "fp16",
        use_cpu=device == "cpu",
        activation_checkpointing=r.gradient_checkpointing,
        dataloader_num_workers=0,
    )


@dataclass
class PPOSetup:
    trainer: object
    reward: TextReward
    tokenizer: object
    sft: object
    reference: object
    eval_prompts: list
    eval_ids: list
    info: dict
    device: str
    run_logger: object
    run_dir: Path


def setup_ppo(cfg: DictConfig) -> PPOSetup:
    """Models, prompts, the text reward and TRL's ``PPOTrainer``, ready to train."""
    from transformers import set_seed

    set_seed(cfg.seed)
    missing_eos_treatment(cfg.recipe)  # a bad setting fails before any model is loaded
    device = pick_device(cfg.get("device", "auto"))
    run_dir = agree_on_run_dir(Path(cfg.paths.output_dir), cpu=device == "cpu")  # one directory for all ranks
    policy_handle, rm, tokenizer, prompts = _ppo_inputs(cfg)
    trainer, sft, reference, reward, run_logger = _ppo_trainer(
        cfg, policy_handle, rm, tokenizer, prompts, device, run_dir
    )
    info = {
        "sft_model": policy_handle.resolved.spec,
        "sft_fingerprint": policy_handle.resolved.fingerprint,
        "reward_model": rm.resolved.spec,
        "reward_model_fingerprint": rm.resolved.fingerprint,
        "data": prompts.data_info,
        "formatting": policy_handle.formatting,
        "reward_model_formatting": rm.formatting,
        "reward_model_formatting_fingerprint": rm.formatter.fingerprint,  # with the weights: the RM's identity
        "prompts": {"train": len(prompts.train_ids), "heldout": len(prompts.heldout_ids)},
        "recipe": OmegaConf.to_container(cfg.recipe, resolve=True),
        "seed": cfg.seed,
    }
    return PPOSetup(trainer, reward, tokenizer, sft, reference, prompts.heldout, prompts.heldout_ids, info, device,
                    run_logger, run_dir)  # fmt: skip


def _ppo_inputs(cfg: DictConfig):
    """The policy and reward-model handles (one tokenizer), and the prompts in the policy's chat format; too few
    prompts for one rollout batch is refused before any model loads."""
    r = cfg.recipe
    policy_handle = open_model(cfg.policy, cache_dir=cfg.paths.model_cache_dir)
    rm = reward_model_handle(cfg, policy_handle)
    tokenizer = policy_tokenizer(cfg, policy_handle.resolved)
    check_same_tokenizer(tokenizer, rm.tokenizer, policy_handle.resolved.spec, rm.resolved.spec)
    policy_fmt = ChatFormatter(
        tokenizer, policy_handle.formatting["chat_template"], policy_handle.formatting["system_prompt"]
    )
    prompts = ppo_prompts(cfg, policy_fmt)
    local_batch = r.rollouts_per_device_batch * r.gradient_accumulation
    if len(prompts.train_ids) < local_batch:  # TRL drops the last partial batch: fewer prompts never yield one
        raise ValueError(
            f"{len(prompts.train_ids)} training prompt(s) within recipe.max_prompt_length="
            f"{r.max_prompt_length} tokens, fewer than one rollout batch ({r.rollouts_per_device_batch} x "
            f"{r.gradient_accumulation}); give more prompts or longer max_prompt_length"
        )
    return policy_handle, rm, tokenizer, prompts


def _ppo_trainer(cfg: DictConfig, policy_handle, rm, tokenizer, prompts, device: str, run_dir: Path):
    """TRL's ``PPOTrainer``: the policy, its frozen reference, a value model from the reward model's weights, the
    text reward; seeded prompt order, response-length logging, periodic checkpoints."""
    from datasets import Dataset
    from trl.experimental.ppo import PPOTrainer

    r, policy_res = cfg.recipe, policy_handle.resolved
    policy, reference, sft = (load_causal_lm(policy_res, dtype="float32", device="cpu") for _ in range(3))
    for m in (policy, reference, sft):  # sft: the untouched SFT policy, for the held-out comparison
        m.generation_config.pad_token_id = tokenizer.pad_token_id
    value, _ = load_classifier(rm.resolved, dtype="float32", device="cpu", pad_token_id=tokenizer.pad_token_id)
    reward = text_reward(cfg, rm, tokenizer, prompts, device)
    config = OmegaConf.to_container(cfg, resolve=True)
    report_to, run_logger = hf_report_to(cfg, output_dir=run_dir, config=config, start=is_main_process())
    trainer = PPOTrainer(
        args=ppo_config(cfg, run_dir, device, report_to),
        processing_class=tokenizer,
        model=policy,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=Dataset.from_dict({"input_ids": prompts.train_ids}),
    )
    trainer.callback_handler.callbacks.insert(0, _ResponseLength(reward))
    trainer.callback_handler.callbacks.insert(0, _NoVarianceOfOne())
    trainer.dataloader = SeededEpochs(trainer.dataloader, cfg.seed)  # a known prompt order at every update
    if r.get("save_every"):
        trainer.add_callback(PPOCheckpoint(trainer, run_dir, r.save_every))
    return trainer, sft, reference, reward, run_logger


def train_ppo(cfg: DictConfig) -> dict:
    """The recipe (EasyLM's PPO as Tulu 2.5 ran it, on TRL's ``trl.experimental.ppo``; sources in
    docs/fidelity.md): set up, train (resuming where asked), compare SFT and trained policy on held-out prompts,
    save the policy and its record."""
    t0 = time.perf_counter()
    s = setup_ppo(cfg)
    trainer, run_dir = s.trainer, s.run_dir
    ckpt, resume_record = same_on_every_rank(find_resume(cfg.get("resume"), run_dir))
    resumed_at = resume_trainer(trainer, ckpt) if ckpt is not None else 0
    fit_t0 = time.perf_counter()
    with text_rewards():
        trainer.train()
    fit_seconds = time.perf_counter() - fit_t0
    if not trainer.accelerator.is_main_process:  # rank 0 compares on the held-out prompts and writes the outputs
        log.info("rank %d: PPO done; rank 0 writes the outputs", trainer.accelerator.process_index)
        return {"train": {"updates": trainer.state.global_step, "resume": resume_record}}
    wrapper = trainer.accelerator.unwrap_model(trainer.model)  # DDP wraps TRL's policy-and-value model
    trained = wrapper.policy if hasattr(wrapper, "policy") else wrapper
    comparison = _heldout(cfg, s, trained)
    train = {"updates": trainer.state.global_step, "episodes": trainer.state.episode, "resumed_at_update": resumed_at,
             "resumed_from": str(ckpt) if ckpt else None, "resume": resume_record,
             "processes": trainer.accelerator.num_processes, "fit_seconds": fit_seconds}  # fmt: skip
    metrics = _save(cfg, s, trained, comparison, train)
    metrics.update(wall_seconds=time.perf_counter() - t0, run=run_info(cfg.paths.root_dir))
    write_json(run_dir / "train_metrics.json", metrics)
    if not cfg.recipe.get("keep_checkpoint", False):  # the policy is saved; the resume point is no longer needed
        shutil.rmtree(checkpoint_dir(run_dir), ignore_errors=True)
    _log_run(s, comparison, metrics["curves"])
    return metrics


def _heldout(cfg: DictConfig, s: PPOSetup, trained) -> dict | None:
    """SFT and trained policy on the same held-out prompts, scored by the reward model (``heldout_comparison``)."""
    if not s.eval_ids:
        return None
    s.reward.scorer.device = s.device
    return heldout_comparison(
        cfg, sft=s.sft.to(s.device), trained=trained.to(s.device), reference=s.reference.to(s.device),
        tokenizer=s.tokenizer, reward=s.reward, prompts=s.eval_prompts, queries=s.eval_ids, device=s.device,
    )  # fmt: skip


def _save(cfg: DictConfig, s: PPOSetup, trained, comparison, train: dict) -> dict:
    """TRL's log history and curves, the policy with its record (``rmlab_meta.json``), the held-out samples."""
    history = s.trainer.state.log_history
    write_jsonl(s.run_dir / "log_history.jsonl", history)
    curves = training_curves(
        history, CURVES, path=s.run_dir / "curves.png", title=f"PPO against {s.info['reward_model']}"
    )
    heldout = comparison and {k: v for k, v in comparison.items() if k != "samples"}
    policy_dir = save_model_dir(
        trained, s.tokenizer, s.run_dir / "policy",
        {"kind": "policy", **s.info, "heldout": heldout, **run_info(cfg.paths.root_dir)},
    )  # fmt: skip
    if comparison:
        write_jsonl(s.run_dir / "heldout_samples.jsonl", comparison["samples"])
    return {**s.info, "heldout": heldout, "train": {**train, "final": history[-1] if history else {}},
            "curves": str(curves), "policy_dir": str(policy_dir)}  # fmt: skip


def _log_run(s: PPOSetup, comparison, curves: str) -> None:
    """The held-out rewards and the curves to the run's logger (W&B, CSV), and one log line."""
    if comparison:
        s.run_logger.log_metrics(
            {
                "heldout/reward_sft": comparison["sft"]["mean_reward"],
                "heldout/reward_trained": comparison["trained"]["mean_reward"],
                "heldout/reward_difference": comparison["difference"]["mean"],
            }
        )
        s.run_logger.log_images({"curves": curves})
    s.run_logger.finish()
    log.info(
        "held-out reward: SFT %s, trained %s, difference %s",
        *((comparison or {}).get(k) for k in ("sft", "trained", "difference")),
    )


CURVES = {
    "objective/scores": "reward (RM score)",
    "objective/kl": "KL to reference",
    "objective/entropy": "entropy",
    "loss/value_avg": "value loss",
    "response_length": "response length (tokens)",
}


class _ResponseLength(TrainerCallback):
    """Adds the mean length of the responses scored since the last log to TRL's logs (W&B and log history)."""

    def __init__(self, reward: TextReward):
        self.reward = reward

    def on_log(self, args, state, control, logs=None, **kwargs):
        lengths, self.reward.response_lengths = self.reward.response_lengths, []
        if logs is not None and lengths:
            logs["response_length"] = float(np.mean(lengths))
            if state.log_history:
                state.log_history[-1]["response_length"] = logs["response_length"]


class _NoVarianceOfOne(TrainerCallback):
    """TRL logs ``val/ratio_var``, the sample variance (n - 1 in the denominator) of the per-micro-batch mean
    policy ratio over an update's micro-batches (epochs x mini-batches x accumulation steps x processes). With one
    micro-batch it is 0/0, NaN, which no log can hold (JSON refuses it): undefined, so it is left out of the logs
    rather than written as a number."""

    KEY = "val/ratio_var"

    def on_log(self, args, state, control, logs=None, **kwargs):
        micro_batches = args.num_ppo_epochs * args.num_mini_batches * args.gradient_accumulation_steps
        if micro_batches * args.world_size > 1 or logs is None or self.KEY not in logs:
            return
        logs.pop(self.KEY)
        if state.log_history:
            state.log_history[-1].pop(self.KEY, None)
