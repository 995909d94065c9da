"""``rmlab train-policy algo=ppo|grpo|rloo``: one stage, the same inputs and outputs, three optimizers.

``algo=ppo`` is ``rmlab train-ppo`` (:func:`rmlab.training.train_ppo.train_ppo`). ``algo=grpo`` and ``algo=rloo`` use
TRL's ``GRPOTrainer`` / ``RLOOTrainer`` (both in the pinned TRL 1.12, beside ``trl.experimental.ppo``), with the
reward model as the reward function (:class:`rmlab.training.reward_function.RewardFunction`: the evaluator's scorer
in the reward model's own formatting). The prompts are PPO's (the reward model's own preference prompts, in the
policy's chat format, too-long ones dropped); the held-out comparison, the saved policy and its record are PPO's
too, so the correlation and best-of-n studies read any of the three the same way.
"""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm, pick_device, save_model_dir
from rmlab.training.ppo_parts import heldout_comparison, policy_tokenizer, ppo_prompts, reward_model_handle, text_reward
from rmlab.training.reward_function import RewardFunction, TaskGold, check_reward_model_kind
from rmlab.utils.io import write_json, write_jsonl
from rmlab.utils.plots import training_curves
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)

ALGOS = ("ppo", "grpo", "rloo")
CURVES = {
    "reward": "reward (RM score)",
    "rewards/gold/mean": "gold (task check, not optimised)",
    "kl": "KL to reference",
    "completions/mean_length": "completion length",
}


def check_algo(name: str) -> str:
    if name not in ALGOS:
        close = difflib.get_close_matches(name, ALGOS, n=1)
        raise ValueError(f"algo={name!r} is not one of {ALGOS}" + (f"; did you mean {close[0]}?" if close else ""))
    return name


def check_context(policy_handle, needed: int) -> None:
    """A prompt of ``recipe.max_prompt_length`` tokens plus ``algo.max_completion_length`` must fit the policy."""
    import json

    config = Path(policy_handle.resolved.path) / "config.json"
    limit = json.loads(config.read_text()).get("max_position_embeddings") if config.is_file() else None
    if limit is not None and needed > int(limit):
        raise ValueError(
            f"recipe.max_prompt_length + algo.max_completion_length = {needed} tokens exceed the policy's context "
            f"({limit}, {policy_handle.resolved.spec}); lower one of them"
        )


def task_gold(cfg: DictConfig, turns: list) -> TaskGold | None:
    """With ``task=<name>``: that task's exact gold check on every training completion (``TaskGold``), each training
    prompt found among the task's prompts (all splits); without a task, None."""
    task_cfgs = [t for t in (cfg.get("task") or {}).values() if t is not None and "kind" in t]
    if not task_cfgs:
        return None
    if len(task_cfgs) > 1:
        raise ValueError("train-policy monitors at most one task: pass task=<name>")
    from rmlab.policy_eval.evaluate import ScoreContext
    from rmlab.policy_eval.tasks import TASKS

    task_cfg = OmegaConf.merge(task_cfgs[0], {"split": "all", "max_examples": None})
    task = TASKS[task_cfg.kind](task_cfg, cfg.paths.data_dir)
    if task.gold_context:
        raise ValueError(
            f"task={task.name}: its gold check needs {', '.join(task.gold_context)}; train-policy monitors only "
            "tasks whose check needs nothing else (arithmetic, gsm8k, math, ifeval)"
        )
    examples, _ = task.load()
    ctx = ScoreContext(seed=int(cfg.seed), n_boot=int(cfg.bootstrap.n_boot), confidence=float(cfg.bootstrap.confidence))
    return TaskGold(task, examples, turns, ctx)


def train_policy(cfg: DictConfig) -> dict:
    """``algo=ppo``: train-ppo's recipe; ``algo=grpo|rloo``: TRL's trainers with the reward model as the reward."""
    algo = check_algo(str(cfg.algo.name))
    if algo == "ppo" and cfg.get("shuffle_rewards"):
        raise ValueError(
            "shuffle_rewards=true permutes rewards within each prompt's group of completions, which PPO does not "
            "sample; the null control runs with algo=grpo or algo=rloo"
        )
    if algo == "ppo":
        from rmlab.training.train_ppo import train_ppo

        return train_ppo(cfg)
    return _train_group_relative(cfg, algo)


def trainer_config(cfg: DictConfig, algo: str, run_dir: Path, device: str, with_gold: bool = False):
    from trl import GRPOConfig, RLOOConfig

    a = cfg.algo
    common = {
        "output_dir": str(run_dir / "checkpoints"), "learning_rate": a.learning_rate, "beta": a.beta,
        "num_generations": a.num_generations, "epsilon": a.epsilon, "num_iterations": a.num_iterations,
        "temperature": a.temperature, "max_completion_length": a.max_completion_length,
        "per_device_train_batch_size": a.per_device_train_batch_size, "gradient_accumulation_steps": a.gradient_accumulation_steps,
        "num_train_epochs": a.epochs, "max_steps": a.max_steps, "logging_steps": a.logging_steps, "seed": cfg.seed,
        "report_to": "none", "save_strategy": "no", "use_cpu": device == "cpu", "bf16": cfg.precision == "bf16",
        "fp16": cfg.precision == "fp16", "remove_unused_columns": False, "use_vllm": bool(a.get("use_vllm", False)),
        "vllm_mode": str(a.get("vllm_mode", "colocate")),
        "vllm_gpu_memory_utilization": float(a.get("vllm_gpu_memory_utilization", 0.3)),
        "lr_scheduler_type": str(a.get("lr_scheduler_type", "linear")),
        "gradient_checkpointing": bool(a.get("gradient_checkpointing", True)),
    }  # fmt: skip
    if with_gold:  # the task's gold check rides along with weight 0: logged as a curve, never optimised
        common["reward_weights"] = [1.0, 0.0]
    if algo == "grpo":
        return GRPOConfig(**common, scale_rewards=a.scale_rewards, loss_type=a.loss_type)
    return RLOOConfig(**common, normalize_advantages=a.normalize_advantages)


@dataclass
class GroupRelativeSetup:
    """Everything a GRPO/RLOO run trains and evaluates with, once loaded and formatted."""

    policy_handle: object
    rm: object  # the reward model's handle
    tokenizer: object
    prompts: object  # ppo_parts.PPOPrompts
    reward: object  # ppo_reward.TextReward: the held-out comparison's reward, as PPO's
    reward_fn: RewardFunction
    gold_fn: TaskGold | None
    dataset: object  # datasets.Dataset of pre-rendered prompts and their indices


def _train_group_relative(cfg: DictConfig, algo: str) -> dict:
    """The recipe (TRL's GRPO / RLOO, TRL's defaults unless the config says otherwise; docs/fidelity.md): check and
    load, format the prompts, train, compare SFT and trained policy on held-out prompts, save."""
    from transformers import set_seed

    t0 = time.perf_counter()
    set_seed(cfg.seed)
    device = pick_device(cfg.get("device", "auto"))
    run_dir = Path(cfg.paths.output_dir)
    setup = _load_and_format(cfg, device)
    trainer, sft, fit_seconds = _train(cfg, algo, setup, run_dir, device)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    comparison = _heldout(cfg, setup, sft, trained, device)
    metrics = _save(cfg, algo, setup, trainer, trained, comparison, fit_seconds, run_dir)
    metrics.update(wall_seconds=time.perf_counter() - t0)
    write_json(run_dir / "train_metrics.json", metrics)
    log.info("%s held-out reward: %s", algo, (comparison or {}).get("difference"))
    return metrics


def _load_and_format(cfg: DictConfig, device: str) -> GroupRelativeSetup:
    """Refuse bad input before any model loads; then the prompts in the policy's chat format and the reward
    function(s): the reward model in its own formatting, and the task's gold check as a monitor."""
    from datasets import Dataset

    a = cfg.algo
    if a.per_device_train_batch_size % a.num_generations:
        raise ValueError(
            f"algo.per_device_train_batch_size={a.per_device_train_batch_size} must be a multiple of "
            f"algo.num_generations={a.num_generations} (each prompt's completions form one group)"
        )
    policy_handle = open_model(cfg.policy, cache_dir=cfg.paths.model_cache_dir)
    rm = reward_model_handle(cfg, policy_handle)
    check_reward_model_kind(rm)  # before any model loads
    check_context(policy_handle, cfg.recipe.max_prompt_length + a.max_completion_length)
    tokenizer = policy_tokenizer(cfg, policy_handle.resolved)
    fmt = ChatFormatter(tokenizer, policy_handle.formatting["chat_template"], policy_handle.formatting["system_prompt"])
    prompts = ppo_prompts(cfg, fmt)
    if not prompts.train:
        raise ValueError(f"no training prompt within recipe.max_prompt_length={cfg.recipe.max_prompt_length} tokens")
    reward = text_reward(cfg, rm, tokenizer, prompts, device)
    # the prompt text the policy sees is its own chat format; the reward functions read the turns by index
    turns = list(prompts.train)
    texts = [fmt.format(p, "").prefix for p in turns]
    return GroupRelativeSetup(
        policy_handle, rm, tokenizer, prompts, reward,
        RewardFunction(reward.scorer, name=f"rm:{rm.resolved.spec}", turns=turns,
                       shuffle=bool(cfg.get("shuffle_rewards", False)), seed=int(cfg.seed)),
        task_gold(cfg, turns),
        Dataset.from_dict({"prompt": texts, "prompt_index": list(range(len(texts)))}),
    )  # fmt: skip


def _train(cfg: DictConfig, algo: str, s: GroupRelativeSetup, run_dir: Path, device: str):
    """TRL's trainer over the prompts with the reward function(s); returns it, the SFT copy and the fit time."""
    from trl import GRPOTrainer, RLOOTrainer

    policy = load_causal_lm(s.policy_handle.resolved, dtype="float32", device="cpu")
    sft = load_causal_lm(s.policy_handle.resolved, dtype="float32", device="cpu")
    for m in (policy, sft):
        m.generation_config.pad_token_id = s.tokenizer.pad_token_id
    trainer_cls = GRPOTrainer if algo == "grpo" else RLOOTrainer
    trainer = trainer_cls(
        model=policy, reward_funcs=[s.reward_fn, *([s.gold_fn] if s.gold_fn else [])],
        args=trainer_config(cfg, algo, run_dir, device, with_gold=s.gold_fn is not None),
        train_dataset=s.dataset, processing_class=s.tokenizer,
    )  # fmt: skip
    fit_t0 = time.perf_counter()
    trainer.train()
    return trainer, sft, time.perf_counter() - fit_t0


def _heldout(cfg: DictConfig, s: GroupRelativeSetup, sft, trained, device: str) -> dict | None:
    """PPO's held-out comparison: SFT and trained policy on the same held-out prompts, scored by the reward model."""
    if not s.prompts.heldout_ids:
        return None
    s.reward.scorer.device = device
    return heldout_comparison(
        cfg, sft=sft.to(device), trained=trained.to(device), reference=sft, tokenizer=s.tokenizer, reward=s.reward,
        prompts=s.prompts.heldout, queries=s.prompts.heldout_ids, device=device,
    )  # fmt: skip


def _save(cfg: DictConfig, algo: str, s: GroupRelativeSetup, trainer, trained, comparison, fit_seconds, run_dir):
    """The log history and curves, the policy with its record (``rmlab_meta.json``), the held-out samples."""
    history = trainer.state.log_history
    write_jsonl(run_dir / "log_history.jsonl", history)
    curves = training_curves(
        history, CURVES, path=run_dir / "curves.png", title=f"{algo.upper()} against {s.rm.resolved.spec}"
    )
    info = {
        "algo": algo,
        "sft_model": s.policy_handle.resolved.spec,
        "sft_fingerprint": s.policy_handle.resolved.fingerprint,
        "reward_model": s.rm.resolved.spec,
        "reward_model_fingerprint": s.rm.resolved.fingerprint,
        "rewards_shuffled": s.reward_fn.shuffle,  # the null control: rewards permuted within each prompt's group
        "reward_model_formatting": s.rm.formatting,
        "reward_model_formatting_fingerprint": s.rm.formatter.fingerprint,
        "data": s.prompts.data_info,
        "formatting": s.policy_handle.formatting,
        "prompts": {"train": len(s.prompts.train), "heldout": len(s.prompts.heldout_ids)},
        "algo_config": OmegaConf.to_container(cfg.algo, resolve=True),
        "gold_monitor": s.gold_fn and s.gold_fn.describe(),
        "seed": cfg.seed,
    }
    heldout = comparison and {k: v for k, v in comparison.items() if k != "samples"}
    policy_dir = save_model_dir(
        trained, s.tokenizer, run_dir / "policy",
        {"kind": "policy", **info, "heldout": heldout, **run_info(cfg.paths.root_dir)},
    )  # fmt: skip
    if comparison:
        write_jsonl(run_dir / "heldout_samples.jsonl", comparison["samples"])
    train = {"steps": trainer.state.global_step, "fit_seconds": fit_seconds, "reward_calls": s.reward_fn.calls,
             "completions_scored": s.reward_fn.scored, "final": history[-1] if history else {}}  # fmt: skip
    return {**info, "heldout": heldout, "train": train, "curves": str(curves), "policy_dir": str(policy_dir),
            "run": run_info(cfg.paths.root_dir)}  # fmt: skip
