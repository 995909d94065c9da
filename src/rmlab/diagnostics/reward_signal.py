"""What a reward model offers PPO on a policy's own samples: how its scores spread within and between prompts.

PPO climbs the reward by preferring, for each prompt, the sampled responses the reward model scores above the
value model's baseline. Whether there is anything to climb shows before any training, in K samples per prompt
from the SFT policy at the rollout temperature, scored by the reward model:

- ``within_prompt_sd`` vs ``between_prompt_sd``: how much of the score variance lies between responses to the
  same prompt (what a policy can change) rather than between prompts (what it cannot);
- ``best_of_k_gain``: the mean over prompts of (best of the K scores - their mean), with a bootstrap interval over
  prompts. It is the gain of best-of-K sampling, the improvement available to a policy that stays close to the
  SFT model; ``pair_gap`` (the mean |difference| of two samples of one prompt) is twice the best-of-2 gain;
- what the within-prompt differences track: the Pearson r, over all samples, of the prompt-centred reward
  with the prompt-centred response length, and the reward of responses that end with EOS minus those that are cut;
- ``greedy_minus_sampled``: the greedy response's reward minus the mean sampled reward of the same prompt (the
  held-out comparison decodes greedily, PPO's rollouts sample).

None of these needs a trained policy; given a PPO policy instead of the SFT model, the same numbers show what
training changed. ``scripts/reward_signal.py`` runs it; the statistics are :func:`signal_stats`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.utils.io import write_json, write_jsonl
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


def signal_stats(
    rewards: np.ndarray,
    lengths: np.ndarray,
    has_eos: np.ndarray,
    *,
    greedy: np.ndarray | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Spread statistics of ``rewards`` (prompts x samples), with each sample's length and whether it ended
    with EOS (same shape), and optionally each prompt's greedy reward."""
    rewards, lengths = np.asarray(rewards, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
    has_eos = np.asarray(has_eos, dtype=bool)
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be prompts x samples with at least 2 samples per prompt, got {rewards.shape}")
    if lengths.shape != rewards.shape or has_eos.shape != rewards.shape:
        raise ValueError("lengths and has_eos must have the shape of rewards")
    n, k = rewards.shape
    means = rewards.mean(axis=1)
    within_var = float(rewards.var(axis=1, ddof=1).mean())
    between_var = float(means.var(ddof=1)) if n > 1 else 0.0
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    best = rewards.max(axis=1) - means
    i, j = np.triu_indices(k, 1)
    gaps = np.abs(rewards[:, i] - rewards[:, j]).mean(axis=1)
    out = {
        "n_prompts": n,
        "samples_per_prompt": k,
        "mean_reward": float(rewards.mean()),
        "within_prompt_sd": within_var**0.5,
        "between_prompt_sd": between_var**0.5,
        "within_fraction_of_variance": within_var / (within_var + between_var) if within_var + between_var else None,
        "best_of_k_gain": {"mean": float(best.mean()), "ci": bootstrap_mean_interval(best, **boot)},
        "pair_gap": {"mean": float(gaps.mean()), "ci": bootstrap_mean_interval(gaps, **boot)},
        "eos_rate": float(has_eos.mean()),
        "mean_length": float(lengths.mean()),
    }
    centred_r = (rewards - means[:, None]).ravel()
    centred_len = (lengths - lengths.mean(axis=1, keepdims=True)).ravel()
    if centred_len.std() > 0 and centred_r.std() > 0:
        res = stats.pearsonr(centred_len, centred_r)
        out["length_r_within_prompt"] = {"r": float(res.statistic), "p": float(res.pvalue), "n": len(centred_r)}
    else:
        out["length_r_within_prompt"] = None
    mixed = has_eos.any(axis=1) & ~has_eos.all(axis=1)  # prompts with both ended and cut samples
    if mixed.any():
        eos_gap = np.array(
            [rewards[p][has_eos[p]].mean() - rewards[p][~has_eos[p]].mean() for p in np.flatnonzero(mixed)]
        )
        out["eos_minus_cut"] = {
            "mean": float(eos_gap.mean()),
            "ci": bootstrap_mean_interval(eos_gap, **boot),
            "n_prompts": int(mixed.sum()),
        }
    else:
        out["eos_minus_cut"] = None
    if greedy is not None:
        diff = np.asarray(greedy, dtype=np.float64) - means
        out["greedy_minus_sampled"] = {"mean": float(diff.mean()), "ci": bootstrap_mean_interval(diff, **boot)}
    return out


def reward_signal(cfg: DictConfig) -> dict:
    """Sample ``samples_per_prompt`` responses per prompt from ``policy`` at the recipe's temperature (plus one
    greedy response), score them with ``reward_model`` through text, and write ``reward_signal.json`` and
    ``samples.jsonl`` to the run directory."""
    import torch
    from transformers import set_seed

    from rmlab.generation.sampling import generate_ids
    from rmlab.models.chat_format import ChatFormatter
    from rmlab.models.handle import open_model
    from rmlab.models.loading import load_causal_lm, pick_device
    from rmlab.training.ppo_parts import policy_tokenizer, ppo_prompts, reward_model_handle, text_reward

    t0 = time.perf_counter()
    set_seed(cfg.seed)
    device = pick_device(cfg.get("device", "auto"))
    policy_handle = open_model(cfg.policy, cache_dir=cfg.paths.model_cache_dir)
    rm = reward_model_handle(cfg, policy_handle)
    policy_res = policy_handle.resolved
    tokenizer = policy_tokenizer(cfg, policy_res)
    fmt = ChatFormatter(tokenizer, policy_handle.formatting["chat_template"], policy_handle.formatting["system_prompt"])
    prompts = ppo_prompts(cfg, fmt)
    turns, ids = (
        (prompts.heldout, prompts.heldout_ids) if cfg.split == "heldout" else (prompts.train, prompts.train_ids)
    )
    turns, ids = turns[: cfg.n_prompts], ids[: cfg.n_prompts]
    if not ids:
        raise ValueError(f"no {cfg.split} prompts within recipe.max_prompt_length={cfg.recipe.max_prompt_length}")
    reward = text_reward(cfg, rm, tokenizer, prompts, device)
    policy = load_causal_lm(policy_res, dtype="float32", device=device).eval()
    k, r = int(cfg.samples_per_prompt), cfg.recipe
    kw = {
        "pad_id": tokenizer.pad_token_id,
        "eos_id": tokenizer.eos_token_id,
        "max_new_tokens": r.response_length,
        "batch_size": cfg.batch_size,
        "device": device,
    }
    queries = [q for q in ids for _ in range(k)]
    sampled = generate_ids(
        policy, queries, do_sample=True, temperature=r.temperature, seed=cfg.seed, progress="samples", **kw
    )
    greedy = generate_ids(policy, ids, progress="greedy responses", **kw)
    with torch.inference_mode():
        rs = reward.score([p for p in turns for _ in range(k)], sampled).double().numpy().reshape(len(ids), k)
        rg = reward.score(turns, greedy).double().numpy()
    eos = tokenizer.eos_token_id
    lengths = np.array([len(x) for x in sampled]).reshape(len(ids), k)
    has_eos = np.array([bool(x) and x[-1] == eos for x in sampled]).reshape(len(ids), k)
    result = signal_stats(
        rs, lengths, has_eos, greedy=rg, n_boot=cfg.bootstrap.n_boot, confidence=cfg.bootstrap.confidence, seed=cfg.seed
    )
    result.update(
        {
            "policy": policy_res.spec,
            "policy_fingerprint": policy_res.fingerprint,
            "reward_model": rm.spec,
            "reward_model_fingerprint": rm.fingerprint,
            "split": cfg.split,
            "data": prompts.data_info,
            "temperature": r.temperature,
            "response_length": r.response_length,
            "seed": cfg.seed,
            "wall_seconds": time.perf_counter() - t0,
            "run": run_info(cfg.paths.root_dir),
            "config": OmegaConf.to_container(cfg, resolve=True),
        }
    )
    run_dir = Path(cfg.paths.output_dir)
    write_jsonl(
        run_dir / "samples.jsonl",
        (
            {
                "prompt": [list(t) for t in p],
                "greedy": tokenizer.decode(g, skip_special_tokens=True),
                "reward_greedy": float(gr),
                "samples": [tokenizer.decode(x, skip_special_tokens=True) for x in sampled[i * k : (i + 1) * k]],
                "rewards": [float(v) for v in rs[i]],
            }
            for i, (p, g, gr) in enumerate(zip(turns, greedy, rg))
        ),
    )
    write_json(run_dir / "reward_signal.json", result)
    log.info(
        "reward signal: within-prompt sd %.3f, between-prompt sd %.3f, best-of-%d gain %.3f %s",
        result["within_prompt_sd"],
        result["between_prompt_sd"],
        k,
        result["best_of_k_gain"]["mean"],
        result["best_of_k_gain"]["ci"],
    )
    return result
