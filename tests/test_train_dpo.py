"""DPO training with TRL: tokenisation shared with the scorer, the Hydra entry point on a tiny model, the saved
model's implicit reward against a hand computation, held-out accuracy before training (all ties)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from rmlab.data.preference import PreferenceExample
from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.build import plan_scorer
from rmlab.scoring.scorers import ImplicitRewardScorer
from rmlab.training.train_dpo import accuracy_summary, heldout_rewards, tokenize_dpo_pairs
from tests.conftest import ROOT, compose_eval_cfg

PAIRS = [
    PreferenceExample("t", "a", (("user", "What is 2+2?"),), "It is 4.", "It is 5, I think."),
    PreferenceExample("t", "b", (("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a colour.")), "Blue.", "No."),
]


def _tiny_overrides(model_dir, extra=()):
    return [
        f"model={model_dir}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        "recipe.pairs_per_update=4",
        "recipe.micro_batch_pairs=2",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
        "recipe.checkpoint_every_n_steps=1",
        "bootstrap.n_boot=50",
        "precision=fp32",
        "device=cpu",
        *extra,
    ]


def test_dpo_rows_are_the_scorers_token_sequences(tiny_lm_dir, tokenizer):
    lm = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    scorer = ImplicitRewardScorer(lm, tokenizer, ChatFormatter(tokenizer), max_length=10**9, device="cpu", reference=lm)
    rows, counts = tokenize_dpo_pairs(PAIRS, scorer, max_length=4096)
    assert counts == {"truncated": 0, "dropped": 0} and len(rows) == 2
    for pair, row in zip(PAIRS, rows):
        enc = scorer.encode(pair.prompt, pair.chosen)
        assert row["prompt_ids"] + row["chosen_ids"] == enc.input_ids
        assert len(row["prompt_ids"]) == enc.response_start
        assert row["prompt_ids"] + row["rejected_ids"] == scorer.encode(pair.prompt, pair.rejected).input_ids
    full = rows
    short = min(len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) for r in rows)
    rows, counts = tokenize_dpo_pairs(PAIRS, scorer, max_length=short, overlong="drop")
    assert (len(rows), counts) == (1, {"truncated": 0, "dropped": 1})  # recipe.overlong=drop
    # EasyLM's DPO (the default): each side of an over-long pair keeps its first max_length tokens, prompt included
    for pair, whole in zip(PAIRS, full):
        window = len(whole["prompt_ids"]) + 2
        (row,), counts = tokenize_dpo_pairs([pair], scorer, max_length=window)
        assert counts == {"truncated": 1, "dropped": 0} and row["prompt_ids"] == whole["prompt_ids"]
        assert (row["chosen_ids"], row["rejected_ids"]) == (whole["chosen_ids"][:2], whole["rejected_ids"][:2])
        # a window the prompt alone fills leaves no response token to train on: dropped in both modes (EasyLM
        # filters out examples without a loss token)
        rows, counts = tokenize_dpo_pairs([pair], scorer, max_length=len(whole["prompt_ids"]))
        assert (rows, counts) == ([], {"truncated": 0, "dropped": 1})
    with pytest.raises(ValueError, match="recipe.overlong='cut'"):
        tokenize_dpo_pairs(PAIRS, scorer, max_length=short, overlong="cut")


def test_policy_equal_to_reference_gives_all_ties(tiny_lm_dir, tokenizer, tmp_path):
    lm = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    scorer = ImplicitRewardScorer(lm, tokenizer, ChatFormatter(tokenizer), max_length=10**9, device="cpu", reference=lm)
    rows, _ = tokenize_dpo_pairs(PAIRS, scorer, max_length=4096)
    rewards = heldout_rewards(scorer, rows, batch_pairs=1)
    assert rewards.shape == (2, 2) and np.all(rewards == 0)
    cfg = compose_eval_cfg(tmp_path, ["bootstrap.n_boot=20"], "train_dpo")
    summary = accuracy_summary(rewards, cfg)
    assert summary["ties"] == 2 and summary["accuracy"] == 0.5  # a tie counts half
    summary = accuracy_summary(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, -1.0]]), cfg)
    assert summary["accuracy"] == pytest.approx(2 / 3) and summary["ties"] == 0


def _hand_implicit_reward(policy, reference, ids: list[int], start: int) -> float:
    """sum over response tokens of log pi(y_t | y_<t) - log pi_ref(y_t | y_<t), with plain full-vocabulary
    log-softmax over one unpadded sequence."""
    x = torch.tensor([ids])
    total = 0.0
    for model, sign in ((policy, 1.0), (reference, -1.0)):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=x).logits[0].double(), dim=-1)
        total += sign * sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
    return total


@pytest.mark.slow
def test_entry_point_trains_and_the_saved_model_scores_with_its_reference(tmp_path, tiny_lm_dir, tokenizer, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    cmd = [
        sys.executable,
        "scripts/train_dpo.py",
        *_tiny_overrides(
            tiny_lm_dir,
            [
                "recipe.max_steps=2",
                "logger=wandb",
                "heldout_before=true",
                "scoring.progress=false",
                f"paths.score_cache_dir={tmp_path / 'scores'}",
                "evaluate.benchmarks=[rm_bench]",
                "evaluate.overrides=['benchmark.max_per_domain=1','bootstrap.n_boot=0']",
            ],
        ),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train_dpo" / "runs").iterdir()
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert metrics["train"]["global_steps"] == 2 and metrics["data"]["train_fingerprint"]
    before, after = metrics["heldout_before"], metrics["heldout"]
    assert before["ties"] == before["n"] > 0  # policy = reference before training
    assert after["ties"] < after["n"]  # two steps at lr 1e-3 moved the policy
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    assert any("rewards/accuracies" in h for h in history)
    (wandb_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")  # TRL's curves and our config, one W&B run
    assert all(
        key in wandb_file.read_bytes()
        for key in (b"rewards/accuracies", b"rewards/margins", b"recipe", b"heldout/accuracy")
    )
    meta = json.loads((run / "model" / "rmlab_meta.json").read_text())
    assert meta["kind"] == "implicit" and meta["reference_model"] == str(tiny_lm_dir) and meta["beta"] == 0.1
    ev = json.loads((run / "eval_rm_bench" / "metrics.json").read_text())
    assert ev["scorer"]["scorer"] == "implicit" and "reference" in ev["scorer"]  # found in the metadata

    # the evaluator's scorer for the saved model (reference found in its metadata) equals a hand computation
    cfg = compose_eval_cfg(tmp_path, [f"model={run / 'model'}"])
    plan = plan_scorer(cfg.model, cache_dir=cfg.paths.model_cache_dir, device="cpu")
    assert plan.describe["scorer"] == "implicit" and plan.describe["reference"] == meta["reference_fingerprint"]
    scorer = plan.factory()
    policy = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    reference = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    for pair in PAIRS:
        enc = scorer.encode(pair.prompt, pair.chosen)
        expected = _hand_implicit_reward(policy, reference, enc.input_ids, enc.response_start)
        assert float(scorer([enc])[0]) == pytest.approx(expected, rel=1e-4, abs=1e-4)
        assert abs(expected) > 1e-6  # trained away from the reference


@pytest.mark.slow
def test_lora_with_precomputed_reference_saves_a_merged_model(tmp_path, tiny_lm_dir, data_dir):
    from omegaconf import open_dict

    from rmlab.training.train_dpo import train_dpo

    cfg = compose_eval_cfg(
        tmp_path,
        _tiny_overrides(
            tiny_lm_dir,
            [
                "recipe.max_steps=1",
                "recipe.warmup_ratio=0",
                "recipe.trainable=lora",
                "recipe.precompute_ref_log_probs=true",
                "recipe.lora.target_modules=[q_proj,v_proj]",
            ],
        ),
        "train_dpo",
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    metrics = train_dpo(cfg)
    model_dir = tmp_path / "run" / "model"
    assert metrics["train"]["global_steps"] == 1 and metrics["model"]["trainable"] == "lora"
    assert not list(model_dir.glob("adapter_*")) and (model_dir / "config.json").is_file()  # merged on save
    merged = AutoModelForCausalLM.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    moved = [n for n, p in merged.named_parameters() if not torch.equal(p, base.state_dict()[n])]
    assert moved and all("q_proj" in n or "v_proj" in n for n in moved)  # only the adapted projections changed
    assert metrics["heldout"]["n"] > 0


def test_resume_last_without_a_checkpoint_fails_and_auto_starts_fresh(tmp_path, tiny_lm_dir, data_dir):
    from omegaconf import open_dict

    from rmlab.training.train_dpo import train_dpo

    def cfg_for(resume):
        cfg = compose_eval_cfg(
            tmp_path, _tiny_overrides(tiny_lm_dir, ["recipe.max_steps=1", f"resume={resume}"]), "train_dpo"
        )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
        return cfg

    with pytest.raises(
        FileNotFoundError, match=rf"resume=last: no HF Trainer checkpoint in {tmp_path}/run/checkpoints"
    ):
        train_dpo(cfg_for("last"))
    assert not (tmp_path / "run" / "train_metrics.json").exists()
    metrics = train_dpo(cfg_for("auto"))
    assert metrics["resume"] == {
        "mode": "auto",
        "resumed_from": None,
        "started_fresh": True,
        "searched": str(tmp_path / "run" / "checkpoints"),
    }
    assert json.loads((tmp_path / "run" / "train_metrics.json").read_text())["resume"]["started_fresh"] is True
    again = train_dpo(cfg_for("last"))  # now there is a checkpoint to continue from
    assert again["resume"]["mode"] == "last" and again["resume"]["resumed_from"].endswith("checkpoint-1")
