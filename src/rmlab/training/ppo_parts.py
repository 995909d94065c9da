"""The pieces of a PPO run that the reward-signal diagnostic (:mod:`rmlab.diagnostics.reward_signal`) shares with
training (:mod:`rmlab.training.train_ppo`): the prompts in the policy's chat format, the policy's tokenizer, the
reward model opened with its own formatting and turned into a text reward. One code path, so the diagnostic
measures exactly the reward that PPO climbs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from rmlab.data.preference import load_preferences
from rmlab.generation.sampling import generate_ids
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import ModelHandle, open_model
from rmlab.models.loading import load_classifier, load_tokenizer, require_same_vocabulary
from rmlab.scoring.scorers import ClassifierScorer, response_logprobs
from rmlab.training.ppo_reward import TextReward

log = logging.getLogger(__name__)


def check_same_tokenizer(policy_tok, rm_tok, policy_spec: str, rm_spec: str) -> None:
    """TRL's PPO feeds the policy's token ids to the value model (initialised from the reward model)."""
    require_same_vocabulary(
        policy_tok,
        rm_tok,
        (
            f"the policy {policy_spec!r} and the reward model {rm_spec!r} do not share a tokenizer: PPO passes the "
            "policy's token ids to the value model, which starts from the reward model. Train the reward model on "
            "a backbone with the policy's tokenizer (e.g. the SFT model itself)."
        ),
    )


def unique_prompts(pairs, limit: int | None, seed: int) -> list[tuple]:
    """The distinct prompts of preference pairs, in a seeded random order, at most ``limit``."""
    prompts = list(dict.fromkeys(p.prompt for p in pairs))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(prompts))
    return [prompts[i] for i in order[: limit or len(prompts)]]


def encode_prompts(
    prompts: list[tuple], formatter: ChatFormatter, max_length: int
) -> tuple[list[tuple], list[list[int]]]:
    """Prompt turns rendered with the generation prompt and tokenised; prompts longer than ``max_length`` are
    dropped."""
    kept, ids = [], []
    for p in prompts:
        x = formatter.tokenizer(formatter.format(p, "").prefix, add_special_tokens=formatter.add_special_tokens)[
            "input_ids"
        ]
        if len(x) <= max_length:
            kept.append(p)
            ids.append(x)
    return kept, ids


@dataclass
class PPOPrompts:
    """The PPO prompts of a config: turns and token ids (the policy's chat format, generation prompt added)."""

    train: list
    train_ids: list
    heldout: list
    heldout_ids: list
    data_info: dict


def ppo_prompts(cfg: DictConfig, policy_fmt: ChatFormatter) -> PPOPrompts:
    """Training prompts from the reward model's own training split (seeded subsample of at most
    ``prompts.max_train``), held-out prompts from its held-out split (the first ``prompts.heldout``); prompts longer
    than ``recipe.max_prompt_length`` tokens are dropped from both."""
    max_len = cfg.recipe.max_prompt_length
    splits = load_preferences(cfg.preference, seed=cfg.seed)  # the RM's data: same registry, split and seed
    train, train_ids = encode_prompts(
        unique_prompts(splits.train, cfg.prompts.max_train, cfg.seed), policy_fmt, max_len
    )
    heldout, heldout_ids = encode_prompts(unique_prompts(splits.heldout, None, cfg.seed), policy_fmt, max_len)
    n = cfg.prompts.heldout
    log.info(
        "PPO prompts: %d train, %d held out (at most %d prompt tokens)", len(train_ids), len(heldout_ids[:n]), max_len
    )
    return PPOPrompts(train, train_ids, heldout[:n], heldout_ids[:n], splits.info)


def reward_model_handle(cfg: DictConfig, policy: ModelHandle) -> ModelHandle:
    """``cfg.reward_model``, formatted as it was trained (its ``rmlab_meta.json``); a reward model without a record
    (a Hub checkpoint) is given the policy's formatting."""
    return open_model(
        None, spec=str(cfg.reward_model), cache_dir=cfg.paths.model_cache_dir, fallback_formatting=policy.formatting
    )


def text_reward(cfg: DictConfig, rm: ModelHandle, tokenizer, prompts: PPOPrompts, device: str) -> TextReward:
    """The reward model as a :class:`TextReward` over these prompts, in its own chat format and tokenizer."""
    rm_tokenizer, rm_fmt = rm.tokenizer, rm.formatter
    rm_model, _ = load_classifier(rm.resolved, dtype="float32", device="cpu", pad_token_id=rm_tokenizer.pad_token_id)
    scorer = ClassifierScorer(
        rm_model.eval(), rm_tokenizer, rm_fmt, max_length=cfg.recipe.reward_max_length, device=device
    )
    prompt_of = {
        tuple(ids): p for p, ids in zip([*prompts.train, *prompts.heldout], [*prompts.train_ids, *prompts.heldout_ids])
    }
    missing_eos = missing_eos_treatment(cfg.recipe)
    return TextReward(scorer, prompt_of, tokenizer, missing_eos["replace_by"])


MISSING_EOS_MODES = ("replace", "subtract", "none")


def missing_eos_treatment(recipe: DictConfig) -> dict:
    """``recipe.missing_eos`` as the two mechanisms that apply it: ``replace_by`` (the reward a rollout without EOS
    gets, set by :class:`TextReward`) and ``penalty`` (TRL's ``missing_eos_penalty``, subtracted by TRL)."""
    spec = recipe.missing_eos
    mode = str(spec.mode)
    if mode not in MISSING_EOS_MODES:
        raise ValueError(f"recipe.missing_eos.mode={mode!r}: choose one of {MISSING_EOS_MODES}")
    if mode != "none" and spec.get("value") is None:
        raise ValueError(f"recipe.missing_eos.mode={mode} needs recipe.missing_eos.value")
    return {
        "replace_by": float(spec.value) if mode == "replace" else None,
        "penalty": float(spec.value) if mode == "subtract" else None,
    }


def policy_tokenizer(cfg: DictConfig, policy_res):
    """The policy's tokenizer, left-padded, with a pad token distinct from EOS."""
    tokenizer = load_tokenizer(policy_res, pad_token=cfg.get("pad_token"), padding_side="left")
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError(
            f"policy {policy_res.spec!r}: pad token equals EOS; set pad_token to another token of its "
            "vocabulary (TRL's PPO finds response ends and missing EOS by these ids)"
        )
    return tokenizer


def heldout_comparison(
    cfg, *, sft, trained, reference, tokenizer, reward: TextReward, prompts, queries, device
) -> dict:
    """Greedy responses of the SFT and trained policies to the same held-out prompts, scored by the RM."""
    kw = {
        "pad_id": tokenizer.pad_token_id,
        "eos_id": tokenizer.eos_token_id,
        "max_new_tokens": cfg.recipe.response_length,
        "batch_size": cfg.evaluate.batch_size,
        "device": device,
    }
    out, rewards, responses = {}, {}, {}
    for name, model in (("sft", sft), ("trained", trained)):
        model.eval()
        responses[name] = generate_ids(model, queries, **kw, progress=f"held-out responses ({name})")
        with torch.inference_mode():
            rewards[name] = reward.score(prompts, responses[name]).double().numpy()
        has_eos = np.array([bool(r) and r[-1] == tokenizer.eos_token_id for r in responses[name]])
        out[name] = {
            "mean_reward": float(rewards[name].mean()),
            "eos_rate": float(has_eos.mean()),
            "mean_response_tokens": float(np.mean([len(r) for r in responses[name]])),
        }
    diff = rewards["trained"] - rewards["sft"]
    out["difference"] = {
        "mean": float(diff.mean()),
        "ci": bootstrap_mean_interval(
            diff, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed
        ),
        "confidence": cfg.bootstrap.confidence,
        "paired_over_prompts": len(diff),
    }
    out["log_ratio_to_reference"] = float(
        np.mean(_sequence_log_ratio(trained, reference, queries, responses["trained"], tokenizer.pad_token_id, device))
    )
    out["n_prompts"] = len(prompts)
    out["samples"] = [
        {
            "prompt": [list(t) for t in p],
            "sft": tokenizer.decode(a, skip_special_tokens=True),
            "trained": tokenizer.decode(b, skip_special_tokens=True),
            "reward_sft": float(x),
            "reward_trained": float(y),
        }
        for p, a, b, x, y in zip(prompts, responses["sft"], responses["trained"], rewards["sft"], rewards["trained"])
    ]
    return out


@torch.inference_mode()
def _sequence_log_ratio(policy, reference, queries, responses, pad_id: int, device: str) -> list[float]:
    """sum over response tokens of log pi - log pi_ref: the per-sequence KL estimate on the policy's responses."""
    out = []
    for q, r in zip(queries, responses):
        if not r:
            out.append(0.0)
            continue
        ids = torch.tensor([list(q) + list(r)], device=device)
        mask = torch.ones_like(ids)
        start = torch.tensor([len(q)])
        lp = (
            response_logprobs(policy, ids, mask, start)[0].sum()
            - response_logprobs(reference, ids, mask, start)[0].sum()
        )
        out.append(float(lp))
    return out
