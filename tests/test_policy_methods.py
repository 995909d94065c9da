"""The policy optimizer as an axis of the best-of-n study: ``pipeline.algos`` (a typo is refused with a suggestion),
a trained policy's paired gold gain over its SFT policy, the controls' verdicts, the per-method table; the task's
gold check as train-policy's weight-0 monitor (right answers score 1, training prompts outside the task refused);
and the CPU controls experiment composing into train_policy and best_of_n configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from rmlab.analysis.bon_study import study_correlations, study_rows
from rmlab.analysis.policy_methods import (
    admit_negative_pool,
    method_controls,
    methods_markdown,
    negative_pool,
    policy_gain,
    pooled_pairwise_accuracy,
)
from rmlab.pipelines.bon_study import _list, check_algos, policy_overrides, rm_overrides
from rmlab.policy_eval.evaluate import ScoreContext
from rmlab.policy_eval.tasks import TASKS
from rmlab.training.reward_function import TaskGold
from rmlab.utils.config import compose_config, rewrite_model_overrides
from tests.conftest import ROOT
from tests.test_correlation_pipeline import _run_experiment_cfg


def _samples(path: Path, gold: dict[str, list[float]]) -> Path:
    path.write_text("".join(json.dumps({"id": k, "prompt": k, "samples": ["x"] * len(v), "gold": v}) + "\n"
                            for k, v in gold.items()))  # fmt: skip
    return path


def test_algos_are_checked_with_a_suggestion():
    assert check_algos(None) == ["bon"] and check_algos("grpo") == ["grpo"]
    assert check_algos(OmegaConf.create(["bon", "rloo"])) == ["bon", "rloo"]
    with pytest.raises(ValueError, match="did you mean grpo"):
        check_algos(OmegaConf.create(["bon", "gpro"]))
    with pytest.raises(ValueError, match="twice"):
        check_algos(OmegaConf.create(["ppo", "ppo"]))


def test_policy_gain_is_paired_over_prompts(tmp_path):
    sft = _samples(tmp_path / "sft.jsonl", {"p1": [0, 0, 0, 1], "p2": [0, 0, 0, 0], "p3": [1, 1, 0, 0]})
    trained = _samples(tmp_path / "t.jsonl", {"p3": [1, 1, 1, 1], "p1": [1, 1, 0, 1], "p2": [0, 0, 0, 0]})
    g = policy_gain(sft, trained, n_boot=500, seed=0)
    # pytest.approx's default relative 1e-6 here: means of three float64 values, off by a few ulps (~1e-16) at most
    # per prompt: 0.25 -> 0.75, 0 -> 0, 0.5 -> 1: the gains 0.5, 0, 0.5 average to 1/3
    assert g["value"] == pytest.approx(1 / 3) and g["n_prompts"] == 3
    assert g["before"]["value"] == pytest.approx(0.25) and g["after"]["value"] == pytest.approx(7 / 12)
    # a percentile interval of a resampled mean of {0.5, 0, 0.5} lies within [min, max] of the gains and holds the mean
    assert 0.0 <= g["ci"][0] <= g["value"] <= g["ci"][1] <= 0.5
    other = _samples(tmp_path / "o.jsonl", {"p1": [0], "p9": [1], "p3": [0]})
    with pytest.raises(ValueError, match="different prompts"):
        policy_gain(sft, other, n_boot=10, seed=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "p1", "gold": [0]}) + "\n" + json.dumps({"id": "p2", "gold": []}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: record 2 \('p2'\): field 'gold'"):
        policy_gain(sft, bad, n_boot=10, seed=0)


def _bon(names_acc_gain):
    return {
        "ns": [1, 16],
        "reward_models": {
            name: {"pairwise_accuracy": {"value": acc, "ci": None},
                   "per_n": {"16": {"gold": {"value": 0.2}, "gain": {"value": g, "ci": [g - 0.05, g + 0.05]}}}}
            for name, acc, g in names_acc_gain
        },
    }  # fmt: skip


def test_controls_and_the_per_method_table():
    bon = _bon([("good", 0.8, 0.15), ("mid", 0.65, 0.08), ("bad", 0.5, 0.0)])
    grpo = {
        "good": {"value": 0.12, "ci": [0.04, 0.2], "before": {"value": 0.14, "ci": None}, "after": {"value": 0.26, "ci": None}},
        "mid": {"value": 0.05, "ci": [-0.02, 0.12], "before": {"value": 0.14, "ci": None}, "after": {"value": 0.19, "ci": None}},
        "bad": {"value": -0.01, "ci": [-0.06, 0.04], "before": {"value": 0.14, "ci": None}, "after": {"value": 0.13, "ci": None}},
    }  # fmt: skip
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    assert rows[0]["gains"]["grpo"]["value"] == 0.12 and rows[0]["gains"]["bon"]["value"] == 0.15
    controls = method_controls(rows, {"positive": "good", "negative": "bad"}, ["grpo"])
    assert [(c["kind"], c["passed"]) for c in controls] == [("positive", True), ("negative", True)]
    # the negative reward model's policy gaining clearly fails the negative control
    grpo["bad"] = {**grpo["bad"], "value": 0.1, "ci": [0.02, 0.18]}
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    assert [c["passed"] for c in method_controls(rows, {"positive": "good", "negative": "bad"}, ["grpo"])] == [
        True,
        False,
    ]
    with pytest.raises(ValueError, match="not a reward model of this study"):
        method_controls(rows, {"positive": "nope"}, ["grpo"])
    by_method = {m: study_correlations(rows, method=m, n_boot=100, n_perm=100, seed=0) for m in ("bon", "grpo")}
    # r of three points, scipy vs numpy, both float64: they agree to ~1e-15, well inside approx's relative 1e-6
    # y differs by method: the best-of-16 gains are collinear with the accuracies here, the GRPO gains are not
    assert by_method["bon"]["pairwise_accuracy (positive control)"]["pearson_r"] == pytest.approx(
        np.corrcoef([0.8, 0.65, 0.5], [0.15, 0.08, 0.0])[0, 1]
    )
    assert by_method["grpo"]["pairwise_accuracy (positive control)"]["pearson_r"] == pytest.approx(
        np.corrcoef([0.8, 0.65, 0.5], [0.12, 0.05, 0.1])[0, 1]
    )
    table = methods_markdown(rows, by_method, ["bon", "grpo"], 16, controls)
    assert "| good | 15.0 [10.0, 20.0] | 14.0 -> 26.0 | 12.0 [4.0, 20.0] |" in table
    assert "GRPO, negative (bad)" in table and "pairwise_accuracy (positive control)" in table


def test_a_negative_control_above_chance_is_invalid_and_the_shuffled_control_reads_the_shuffled_arm():
    bon = _bon([("good", 0.8, 0.15), ("bad", 0.5, 0.0)])
    bon["reward_models"]["bad"]["pairwise_accuracy"] = {"value": 0.62, "ci": [0.556, 0.679]}
    gain = {"before": {"value": 0.13, "ci": None}, "after": {"value": 0.2, "ci": None}}
    grpo = {"good": {**gain, "value": 0.10, "ci": [0.03, 0.18]}, "bad": {**gain, "value": 0.33, "ci": [0.24, 0.41]}}
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    shuffled = {"grpo": {**gain, "value": 0.02, "ci": [-0.03, 0.07]}}
    controls = method_controls(
        rows, {"positive": "good", "negative": "bad", "shuffled": "good"}, ["grpo"], {"shuffled": shuffled}
    )
    assert [(c["kind"], c["verdict"]) for c in controls] == [
        ("positive", "PASSED"), ("negative", "INVALID"), ("shuffled", "PASSED"),
    ]  # fmt: skip
    # INVALID is not PASSED: the bad model's policy did gain, and the rule's outcome is kept beside the premise
    assert controls[1]["passed"] is False and controls[1]["premise_holds"] is False
    # the same reward model with no gain passes: no spurious gain even from a model with some signal
    no_gain = study_rows(bon, {}, {}, 16, {"grpo": {**grpo, "bad": {**gain, "value": -0.07, "ci": [-0.22, 0.08]}}})
    (neg,) = method_controls(no_gain, {"negative": "bad"}, ["grpo"])
    assert (neg["verdict"], neg["premise_holds"]) == ("PASSED", False)
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, controls)
    assert "GRPO, negative (bad): gold@1 gain at T = 1 33.0 [24.0, 41.0]: INVALID (its pairwise accuracy" in table
    assert "62.0 [55.6, 67.9], is above chance: not signal-free" in table
    assert "GRPO, shuffled (good, rewards shuffled): gold@1 gain at T = 1 2.0 [-3.0, 7.0]: PASSED" in table
    assert "greedy" not in table  # no greedy read-out was run
    # with one: a column per method, and each control's greedy gain beside its verdict
    grpo["good"]["greedy"] = {
        "value": -0.11,
        "ci": [-0.2, -0.02],
        "before": {"value": 0.315},
        "after": {"value": 0.205},
    }
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    controls = method_controls(rows, {"positive": "good"}, ["grpo"])
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, controls)
    assert "GRPO greedy SFT -> trained (gain)" in table and "| 31.5 -> 20.5 (-11.0 [-20.0, -2.0]) |" in table
    assert (
        "GRPO, positive (good): gold@1 gain at T = 1 10.0 [3.0, 18.0]; greedy gain -11.0 [-20.0, -2.0]: PASSED" in table
    )
    # read on the greedy gain, the same policy fails the positive control; a read-out needs its gains
    (c,) = method_controls(rows, {"positive": "good", "read_out": "greedy"}, ["grpo"])
    assert (c["verdict"], c["gain"], c["sampled"]["value"]) == ("FAILED", -0.11, 0.10)
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, [c])
    assert "read on the greedy gain" in table and "greedy gain -11.0 [-20.0, -2.0]; gold@1 gain at T = 1 10.0" in table
    with pytest.raises(ValueError, match="needs the greedy read-out: pipeline.greedy=true"):
        method_controls(rows, {"negative": "bad", "read_out": "greedy"}, ["grpo"])
    with pytest.raises(ValueError, match="read_out='mode'"):
        method_controls(rows, {"positive": "good", "read_out": "mode"}, ["grpo"])
    # a shuffled arm that gains fails; a shuffled control naming no reward model of the study is refused
    shuffled["grpo"] = {**gain, "value": 0.3, "ci": [0.2, 0.4]}
    assert method_controls(rows, {"shuffled": "good"}, ["grpo"], {"shuffled": shuffled})[0]["verdict"] == "FAILED"
    with pytest.raises(ValueError, match="controls.shuffled='nope'"):
        method_controls(rows, {"shuffled": "nope"}, ["grpo"], {"shuffled": shuffled})
    with pytest.raises(ValueError, match="only negative pools"):
        method_controls(rows, {"shuffled": ["good", "bad"]}, ["grpo"], {"shuffled": shuffled})


def test_a_pooled_negative_control_reads_its_arms_mean_gain_and_mean_pairwise_accuracy(tmp_path):
    # three flipped reward models: one above chance by luck, two below; one pooled verdict from their arms' mean
    sft = _samples(tmp_path / "sft.jsonl", {"p1": [0, 0, 1, 1], "p2": [0, 1, 0, 0], "p3": [1, 1, 0, 0]})
    arms = [
        _samples(tmp_path / "a.jsonl", {"p1": [1, 1, 1, 1], "p2": [1, 1, 0, 0], "p3": [1, 1, 1, 0]}),
        _samples(tmp_path / "b.jsonl", {"p1": [0, 0, 0, 0], "p2": [0, 0, 0, 0], "p3": [1, 0, 0, 0]}),
        _samples(tmp_path / "c.jsonl", {"p1": [0, 0, 1, 0], "p2": [0, 0, 0, 0], "p3": [0, 0, 0, 0]}),
    ]
    one = [policy_gain(sft, a, n_boot=200, seed=0) for a in arms]
    pooled = policy_gain(sft, arms, n_boot=200, seed=0)
    # the arms' mean per prompt minus the SFT's equals the mean of the arms' gains: the same float64 sums in another
    # order, so they differ by a few ulps of values <= 1 (approx's default relative 1e-6 is far above that)
    assert pooled["value"] == pytest.approx(np.mean([g["value"] for g in one])) and pooled["arms"] == 3
    assert pooled["before"] == one[0]["before"] and pooled["n_prompts"] == 3
    # one arm given as a list is that arm's gain, to the bit (a mean over one value is that value)
    assert {k: v for k, v in policy_gain(sft, arms[:1], n_boot=200, seed=0).items() if k != "arms"} == one[0]
    with pytest.raises(ValueError, match="no trained policy"):
        policy_gain(sft, [], n_boot=10, seed=0)
    # pairwise accuracy pooled over models, from the best-of-n samples' proxy scores: per prompt the models' mean
    rows_jsonl = [
        {"id": "p1", "gold": [1, 0, 0], "proxy": {"x": [3, 1, 2], "y": [0, 1, 2], "z": [1, 1, 1]}},  # x 1, y 0, z .5
        {"id": "p2", "gold": [0, 0, 0], "proxy": {"x": [1, 2, 3], "y": [1, 2, 3], "z": [1, 2, 3]}},  # no pairs
        {"id": "p3", "gold": [0, 1, 1], "proxy": {"x": [0, 1, 2], "y": [2, 1, 0], "z": [1, 0, 2]}},  # x 1, y 0, z .5
    ]
    bon_samples = tmp_path / "samples.jsonl"
    bon_samples.write_text("".join(json.dumps(r) + "\n" for r in rows_jsonl))
    acc = pooled_pairwise_accuracy(bon_samples, ["x", "y", "z"], n_boot=200, seed=0)
    assert (acc["value"], acc["n"]) == (0.5, 2)  # exact: means of halves and ones
    assert pooled_pairwise_accuracy(bon_samples, ["x"], n_boot=200, seed=0)["value"] == 1.0
    with pytest.raises(ValueError, match=r"samples.jsonl: record 1 \('p1'\): field 'proxy' lacks \['w'\]"):
        pooled_pairwise_accuracy(bon_samples, ["x", "w"], n_boot=10, seed=0)
    # the verdicts: a pooled gain with an interval above 0 fails (the premise holding: mean accuracy at chance) ...
    bon = _bon([("good", 0.8, 0.15), ("f0", 0.62, 0.0), ("f1", 0.45, 0.0), ("f2", 0.4, 0.0)])
    gain = {"before": {"value": 0.13, "ci": None}, "after": {"value": 0.2, "ci": None}}
    grpo = {n: {**gain, "value": v, "ci": [v - 0.04, v + 0.04]} for n, v in
            [("good", 0.3), ("f0", 0.085), ("f1", -0.09), ("f2", -0.05)]}  # fmt: skip
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    controls = {"positive": "good", "negative": ["f0", "f1", "f2"]}
    mean_acc = {"value": 0.49, "ci": [0.45, 0.53]}
    gains = {"negative": {"grpo": {**gain, "value": 0.06, "ci": [0.01, 0.11]}}}
    (_, neg) = method_controls(rows, controls, ["grpo"], gains, mean_acc)
    assert (neg["verdict"], neg["premise_holds"], neg["reward_model"]) == ("FAILED", True, "f0 + f1 + f2")
    assert neg["pooled"]["f0"] == {"value": 0.085, "ci": [0.085 - 0.04, 0.085 + 0.04]}
    # ... no pooled gain passes, and one arm's own gain (f0's, above 0) does not decide it
    gains["negative"]["grpo"] = {**gain, "value": -0.018, "ci": [-0.05, 0.015]}
    (_, neg) = method_controls(rows, controls, ["grpo"], gains, mean_acc)
    assert (neg["verdict"], neg["gain"]) == ("PASSED", -0.018)
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, [neg])
    assert "GRPO, negative (pooled over 3: f0 8.5 [4.5, 12.5], f1 -9.0 [-13.0, -5.0], f2 -5.0" in table
    assert ": PASSED (their mean pairwise accuracy on the best-of-n samples: 49.0 [45.0, 53.0])" in table
    # with the pooled models above chance on average, a pooled gain is INVALID, not FAILED
    gains["negative"]["grpo"]["ci"] = [0.01, 0.1]
    (_, neg) = method_controls(rows, controls, ["grpo"], gains, {"value": 0.6, "ci": [0.55, 0.65]})
    assert neg["verdict"] == "INVALID"
    with pytest.raises(ValueError, match="distinct reward models"):
        method_controls(rows, {"negative": ["f0", "f0"]}, ["grpo"], gains, mean_acc)
    with pytest.raises(ValueError, match="controls.negative='f9'"):
        method_controls(rows, {"negative": ["f0", "f9"]}, ["grpo"], gains, mean_acc)


def test_a_pooled_negative_control_sets_aside_members_that_carry_signal_either_way():
    # each member's own pairwise-accuracy interval decides: wholly above 0.5 or wholly below is set aside; one that
    # touches or covers 0.5, or has no interval (no pairs of different gold), serves
    accs = {"lucky": {"value": 0.613, "ci": [0.549, 0.677]}, "unlucky": {"value": 0.4, "ci": [0.33, 0.47]},
            "edge": {"value": 0.447, "ci": [0.387, 0.5]}, "free": {"value": 0.489, "ci": [0.407, 0.565]},
            "blank": None}  # fmt: skip
    admitted, aside = admit_negative_pool(accs, ["lucky", "edge", "unlucky", "free", "blank"])
    assert admitted == ["edge", "free", "blank"]
    assert aside == {"lucky": {"side": "above", "value": 0.613, "ci": [0.549, 0.677]},
                     "unlucky": {"side": "below", "value": 0.4, "ci": [0.33, 0.47]}}  # fmt: skip
    # the verdict reads the members' pooled gain; the lucky model's large gain, set aside, does not decide it
    bon = _bon([("good", 0.8, 0.15), ("lucky", 0.61, 0.04), ("edge", 0.45, 0.0), ("free", 0.49, 0.0)])
    gain = {"before": {"value": 0.13, "ci": None}, "after": {"value": 0.2, "ci": None}}
    grpo = {n: {**gain, "value": v, "ci": [v - 0.04, v + 0.04]} for n, v in
            [("good", 0.3), ("lucky", 0.27), ("edge", 0.03), ("free", -0.07)]}  # fmt: skip
    rows = study_rows(bon, {}, {}, 16, {"grpo": grpo})
    controls = {"negative": ["lucky", "edge", "free"]}
    pooled = {"negative": {"grpo": {**gain, "value": -0.02, "ci": [-0.05, 0.01]}}}
    set_aside = {"lucky": aside["lucky"]}
    (neg,) = method_controls(rows, controls, ["grpo"], pooled, {"value": 0.47, "ci": [0.44, 0.5]}, set_aside)
    assert (neg["verdict"], neg["reward_model"], list(neg["pooled"])) == ("PASSED", "edge + free", ["edge", "free"])
    assert neg["set_aside"]["lucky"]["gain"] == {"value": 0.27, "ci": [0.27 - 0.04, 0.27 + 0.04]}
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, [neg])
    assert "(pooled over 2: edge 3.0 [-1.0, 7.0], free -7.0 [-11.0, -3.0]; set aside: lucky 27.0 [23.0, 31.0]" in table
    assert (
        "(pairwise accuracy 61.3 [54.9, 67.7], above chance)): gold@1 gain at T = 1 -2.0 [-5.0, 1.0]: PASSED" in table
    )
    # with every member set aside, the pool has no signal-free model: it averages all of them, and a gain is
    # INVALID, never FAILED
    assert admit_negative_pool(accs, ["lucky", "unlucky"]) == (["lucky", "unlucky"], aside)
    pooled["negative"]["grpo"]["ci"] = [0.01, 0.1]
    all_aside = {**set_aside, "edge": {"side": "below", "value": 0.45, "ci": [0.4, 0.49]}}
    (neg,) = method_controls(rows, {"negative": ["lucky", "edge"]}, ["grpo"], pooled, None, all_aside)
    assert (neg["verdict"], neg["premise_holds"]) == ("INVALID", False)
    table = methods_markdown(rows, {"bon": {}, "grpo": {}}, ["bon", "grpo"], 16, [neg])
    assert "(no pooled reward model is signal-free: every one was set aside)" in table


def test_the_task_gold_monitor_scores_right_answers_and_refuses_foreign_prompts():
    cfg = OmegaConf.load(ROOT / "conf" / "task" / "arithmetic.yaml")
    cfg = OmegaConf.merge(cfg, {"split": "all"})
    task = TASKS["arithmetic"](cfg, ROOT)
    examples, _ = task.load()
    ex = next(e for e in examples if e.reference["operands"] == [7, 3] and "+" in e.user)
    turns = [(("user", ex.user),)]
    gold = TaskGold(task, examples, turns, ScoreContext(n_boot=0))
    completions = ["7 + 3 = 10", "The answer is 11.", [{"role": "assistant", "content": "It is 10."}]]
    assert gold([ex.user] * 3, completions, prompt_index=[0, 0, 0]) == [1.0, 0.0, 1.0]
    assert gold.__name__ == "gold" and gold.describe()["weight"] == 0.0
    with pytest.raises(ValueError, match="1 of 1 training prompts are not among its prompts"):
        TaskGold(task, examples, [(("user", "Write a poem."),)], ScoreContext())


def test_the_controls_experiment_composes_into_its_stages(tmp_path):
    cfg = _run_experiment_cfg(["experiment=grpo_controls_cpu"])
    p = cfg.pipeline
    assert check_algos(p.algos) == ["bon", "grpo"] and p.greedy and p.controls.read_out == "sampled"
    named = {p.controls.positive, p.controls.shuffled, *p.controls.negative}
    assert named == set(p.reward_models) and negative_pool(p.controls) == list(p.controls.negative)
    # the pooled negatives are one recipe under distinct seeds: a reward model's own seed wins over the study's
    flips = {name: _list(p.reward_models[name]) for name in p.controls.negative}
    assert all("preference.label_noise=0.5" in over for over in flips.values())
    assert sorted(next((o for o in over if o.startswith("seed=")), f"seed={cfg.seed}") for over in flips.values()) == [
        "seed=0", "seed=1", "seed=2", "seed=3"
    ]  # fmt: skip
    assert p.controls.shuffled == p.controls.positive  # the shuffled arm shuffles the good reward model's rewards
    # the train_rm configs: each pooled negative trains under its own seed, the others under the study's
    seeds = {
        name: compose_config("train_rm", [f"paths.root_dir={ROOT}", *rm_overrides(cfg, name, tmp_path / "s")]).seed
        for name in p.reward_models
    }
    assert seeds == {"flip_00": cfg.seed, "flip_50": cfg.seed, "flip_50_s1": 1, "flip_50_s2": 2, "flip_50_s3": 3}
    over = policy_overrides(cfg, "grpo", "/rm/model", tmp_path / "samples")
    tp = compose_config(
        "train_policy",
        rewrite_model_overrides([f"paths.root_dir={ROOT}", "reward_model=/rm/model", *over], groups=("policy",)),
    )
    assert tp.algo.name == "grpo" and tp.preference.data_dir == str(tmp_path / "samples")
    # the prompts come from the same split as the reward model's pairs
    assert tp.preference.heldout_pairs == 40 and "preference.heldout_pairs=40" in p.train_rm.preference_overrides
    assert tp.algo.max_completion_length == 32 and "arithmetic" in tp.task and tp.algo.gradient_checkpointing is False
    # a prompt plus a completion fits SmolLM2's context, and per_device_train_batch_size holds whole groups
    assert tp.algo.per_device_train_batch_size % tp.algo.num_generations == 0


def test_the_correlation_study_plans_one_policy_per_optimizer(tmp_path):
    from rmlab.pipelines.correlation_study import algo_evaluations, plan_study

    base = {(s.branch, s.step): s for s in plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu"]))}
    stages = plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu", "pipeline.algos=[ppo,grpo]"]))
    by_step = {(s.branch, s.step): s for s in stages}
    # adding an optimizer leaves every PPO stage (and its identity) as it was, and adds GRPO's two per reward model
    assert all(by_step[k].out_dir == s.out_dir for k, s in base.items())
    added = sorted(k for k in by_step if k not in base)
    assert added == sorted(
        (b, step) for b in {b for b, _ in base if b != "sft"} for step in ("train_grpo", "eval_policy:grpo")
    )
    grpo, ppo = by_step[("helpful_base", "train_grpo")], by_step[("helpful_base", "train_ppo")]
    cfg = compose_config(
        "train_policy", rewrite_model_overrides([f"paths.root_dir={ROOT}", *grpo.overrides], groups=("policy",))
    )
    assert cfg.algo.name == "grpo" and cfg.algo.num_generations == 4 and cfg.algo.gradient_checkpointing is False
    assert f"reward_model={Path(by_step[('helpful_base', 'train_rm')].out_dir) / 'model'}" in ppo.overrides
    assert [o for o in grpo.overrides if o.startswith("reward_model=")] == [
        o for o in ppo.overrides if o.startswith("reward_model=")
    ]
    # each optimizer's correlation reads the shared evaluations and its own policies' only
    runs = set(algo_evaluations(stages, "grpo"))
    assert (
        by_step[("helpful_base", "eval_policy:grpo")].out_dir in runs
        and by_step[("sft", "eval_policy")].out_dir in runs
    )
    assert by_step[("helpful_base", "eval_rm:rm_bench")].out_dir in runs
    assert by_step[("helpful_base", "eval_policy")].out_dir not in runs
    ppo_runs = set(algo_evaluations(stages, "ppo"))
    assert (
        by_step[("sft", "eval_policy")].out_dir in ppo_runs
        and by_step[("helpful_base", "eval_policy")].out_dir in ppo_runs
    )
    assert by_step[("helpful_base", "eval_policy:grpo")].out_dir not in ppo_runs


def test_the_correlation_study_refuses_bon_and_typos():
    from rmlab.pipelines.correlation_study import plan_study

    with pytest.raises(ValueError, match="best-of-n study"):
        plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu", "pipeline.algos=[ppo,bon]"]))
    with pytest.raises(ValueError, match="did you mean rloo"):
        plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu", "pipeline.algos=[rlo]"]))


def test_the_per_optimizer_table_sets_each_benchmark_side_by_side():
    from rmlab.pipelines.correlation_study import by_algo_markdown

    def entry(r, lo, hi, p, n):
        return {"pearson_r": r, "pearson_ci": [lo, hi], "interval_method": "Fisher z", "pearson_p": p, "n": n}

    table = by_algo_markdown({
        "ppo": {"benchmarks": {"rm_bench": entry(0.61, 0.1, 0.87, 0.02, 8), "reward_bench": {"pearson_r": None}}},
        "grpo": {"benchmarks": {"rm_bench": entry(-0.2, -0.7, 0.4, 0.5, 8)}},
    })  # fmt: skip
    assert "| benchmark | PPO: r [CI] (p; points) | GRPO: r [CI] (p; points) |" in table
    row = next(line for line in table.splitlines() if line.startswith("| rm_bench"))
    assert "0.61" in row and "-0.20" in row and row.count("; 8)") == 2
    assert "| reward_bench | undefined | - |" in table


def test_the_paper_study_trains_grpo_as_the_gpu_experiment_does(tmp_path):
    from rmlab.pipelines.correlation_study import plan_study

    stages = plan_study(_run_experiment_cfg(["experiment=correlation_study", "pipeline.algos=[ppo,grpo]"]))
    grpo = [s for s in stages if s.step == "train_grpo"]
    assert len(grpo) == 4 and all(s.launch[:2] == ("accelerate", "launch") for s in grpo)
    cfg = compose_config(
        "train_policy", rewrite_model_overrides([f"paths.root_dir={ROOT}", *grpo[0].overrides], groups=("policy",))
    )
    assert cfg.algo.use_vllm and cfg.device == "cuda" and cfg.policy.pretrained == "allenai/tulu-2-13b"
    assert cfg.algo.per_device_train_batch_size * cfg.algo.gradient_accumulation_steps == 64
