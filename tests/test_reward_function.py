"""The reward function GRPO / RLOO train on is the evaluator's reward: for a lab-trained reward model (its
rmlab_meta.json records its formatting) the token stream the reward function scores equals the one `rmlab eval-rm`
scores, for single- and multi-turn prompts, and so does the reward; a model of another kind is refused. With
``shuffle`` (the null control) each prompt's group keeps its rewards, permuted among its completions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rmlab.models.handle import open_model
from rmlab.scoring.build import plan_scorer
from rmlab.training.reward_function import completion_text, prompt_turns, reward_function, shuffle_within_groups
from rmlab.utils.config import compose_config, rewrite_model_overrides
from tests.conftest import ROOT


@pytest.fixture
def recorded_rm(tmp_path, tiny_classifier_dir):
    """The tiny classifier with a record as `rmlab train-rm` writes it: its formatting (its tokenizer's own chat
    template, SmolLM2's, with a system prompt)."""
    out = tmp_path / "rm"
    shutil.copytree(tiny_classifier_dir, out)
    meta = {"kind": "classifier", "formatting": {"chat_template": "tokenizer", "system_prompt": "Answer briefly."}}
    (out / "rmlab_meta.json").write_text(json.dumps(meta))
    return out


CASES = [
    ([{"role": "user", "content": "What is 2+3?"}], [{"role": "assistant", "content": "5"}]),
    (
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Name a prime."}],
        [{"role": "assistant", "content": "7, since its only divisors are 1 and 7."}],
    ),
]  # fmt: skip


def test_the_reward_function_scores_what_the_evaluator_scores(tmp_path, recorded_rm):
    args = rewrite_model_overrides([f"paths.root_dir={ROOT}", f"model={recorded_rm}", "model.kind=classifier"])
    cfg = compose_config("eval_rm", args)
    evaluator = plan_scorer(cfg.model, cache_dir=str(tmp_path / "cache"), device="cpu").factory()
    # the policy's formatting is another one: a recorded reward model keeps its own
    handle = open_model(None, spec=str(recorded_rm), cache_dir=tmp_path / "cache",
                        fallback_formatting={"chat_template": "tulu", "system_prompt": None})  # fmt: skip
    fn = reward_function(handle, max_length=int(cfg.model.get("max_length", 2048)), device="cpu")
    prompts, completions = zip(*CASES)
    ours = fn.encode(prompts, completions)
    theirs = [evaluator.encode(prompt_turns(p), completion_text(c)) for p, c in CASES]
    assert [e.input_ids for e in ours] == [e.input_ids for e in theirs]
    assert [e.response_start for e in ours] == [e.response_start for e in theirs]
    text = evaluator.tokenizer.decode(ours[1].input_ids)
    # the recorded format (SmolLM2's template, the system prompt), not the policy's tulu one; both turns there
    assert "Answer briefly." in text and "<|im_start|>user\nName a prime." in text and "<|user|>" not in text
    # and the rewards: the same forward pass, so equal to the last bit
    assert np.array_equal(np.asarray(fn(list(prompts), list(completions))), np.asarray(evaluator(theirs)))
    assert fn.calls == 1 and fn.scored == 2 and fn.__name__.startswith("rm:")


def test_string_prompts_and_bad_shapes():
    assert prompt_turns("Hi") == (("user", "Hi"),) and completion_text("ok") == "ok"
    with pytest.raises(ValueError, match="end with a user message"):
        prompt_turns([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def test_only_a_classifier_can_be_a_reward_function(tmp_path, recorded_rm):
    meta = json.loads((recorded_rm / "rmlab_meta.json").read_text())
    (recorded_rm / "rmlab_meta.json").write_text(json.dumps({**meta, "kind": "dpo"}))
    handle = open_model(None, spec=str(recorded_rm), cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="a dpo model cannot serve as a reward function"):
        reward_function(handle, max_length=512, device="cpu")


def test_shuffle_permutes_within_each_group_only():
    values = [0.1, 0.2, 0.3, 0.4, 1.1, 1.2, 1.3, 1.4, 9.0]
    groups = [0, 0, 1, 0, 1, 1, 0, 1, 2]  # groups need not be adjacent; a group of one stays put
    out = shuffle_within_groups(values, groups, np.random.default_rng(0))
    for g in set(groups):
        members = [i for i, k in enumerate(groups) if k == g]
        assert sorted(out[i] for i in members) == sorted(values[i] for i in members)
    assert out[8] == 9.0
    # over many draws every member of a group is paid every member's reward: the assignment does not follow the
    # completion. 200 draws of a 4-permutation: P(a given value never lands on a given slot) = (3/4)^200 < 1e-24
    rng = np.random.default_rng(1)
    seen = {(i, v) for _ in range(200) for i, v in enumerate(shuffle_within_groups(values, groups, rng))}
    assert all((i, values[j]) in seen for i in range(8) for j in range(8) if groups[i] == groups[j])
    with pytest.raises(ValueError, match="3 rewards for 2 group keys"):
        shuffle_within_groups([1.0, 2.0, 3.0], [0, 0], np.random.default_rng(0))


def test_the_shuffled_reward_function_pays_the_group_its_own_rewards(tmp_path, recorded_rm):
    handle = open_model(None, spec=str(recorded_rm), cache_dir=tmp_path / "cache")
    plain = reward_function(handle, max_length=256, device="cpu")
    prompts = ["What is 2+3?"] * 4 + ["Name a prime."] * 4
    completions = ["5", "It is 5.", "six", "2 + 3 = 5", "7", "4", "Seven.", "11 is prime."]
    index = [0] * 4 + [1] * 4
    true = plain(prompts, completions)
    shuffled = reward_function(handle, max_length=256, device="cpu")
    shuffled.shuffle, shuffled.seed = True, 3
    paid = [shuffled(prompts, completions, prompt_index=index) for _ in range(3)]
    # the same forward passes: each group's rewards are the true ones, to the bit, in another order
    for got in paid:
        assert sorted(got[:4]) == sorted(true[:4]) and sorted(got[4:]) == sorted(true[4:])
    assert any(got != true for got in paid)  # 3 draws of two 4-permutations all the identity: p = (1/24)^6
    # seeded by (seed, call): a rerun pays the same
    again = reward_function(handle, max_length=256, device="cpu")
    again.shuffle, again.seed = True, 3
    assert [again(prompts, completions, prompt_index=index) for _ in range(3)] == paid
