"""The best-of-n study as one experiment, end to end on tiny models: samples, reward models of graded label noise,
their benchmark evaluations, best-of-n with every one of them, the study table; a rerun reuses every stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rmlab.analysis.bon_study import benchmark_accuracy, positive_control, study_correlations
from rmlab.analysis.policy_methods import admit_negative_pool
from tests.conftest import ROOT
from tests.test_correlation_pipeline import _quoted_list, _run_experiment_cfg


def test_cpu_study_composes_with_eleven_graded_reward_models():
    cfg = _run_experiment_cfg(["experiment=bon_study_cpu"])
    p = cfg.pipeline
    assert p.name == "bon_study" and len(p.reward_models) == 11
    noise = sorted(float(o[0].split("=")[1]) for o in p.reward_models.values())
    assert noise[0] == 0.0 and noise[-1] == 0.5
    assert "task.arithmetic.split=train" in p.samples.overrides and "task.arithmetic.split=test" in p.bon.overrides
    assert "n_samples=16" in p.bon.overrides and p.gain_n == 16


def test_positive_control_needs_an_interval_above_zero():
    rows = [
        {
            "reward_model": f"rm{i}",
            "pairwise_accuracy": {"value": a, "ci": None},
            "train_heldout_accuracy": None,
            "train_heldout_ci": None,
            "benchmarks": {"rm_bench": 0.5},
            "gold": {},
            "gain": {"value": g, "ci": None},
        }
        for i, (a, g) in enumerate([(0.5, 0.0), (0.6, 0.05), (0.7, 0.12), (0.8, 0.2), (0.9, 0.31)])
    ]
    corr = study_correlations(rows, n_boot=200, n_perm=100, seed=0)
    assert positive_control(corr)["passed"] and corr["pairwise_accuracy (positive control)"]["pearson_r"] > 0.98
    assert corr["rm_bench"]["pearson_r"] is None  # the same benchmark score for every model: r undefined, said so
    for r, g in zip(rows, [0.3, 0.0, 0.2, 0.1, 0.05]):
        r["gain"]["value"] = g
    failed = positive_control(study_correlations(rows, n_boot=200, n_perm=100, seed=0))
    assert not failed["passed"] and failed["verdict"].startswith("FAILED")
    # five reward models detect only |r| >= 0.96 at 80% power: the verdict says the design is too small to tell
    assert "underpowered: 5 reward models detect |r| >= 0.96" in failed["verdict"]
    # two reward models give no r at all: not computed, which is not a pass either
    two = positive_control(study_correlations(rows[:2], n_boot=200, n_perm=100, seed=0))
    assert not two["passed"] and two["verdict"] == "NOT COMPUTED (fewer than 3 reward models: no correlation)"


def test_benchmark_accuracy_reads_each_benchmark():
    partial = {"benchmark": "rm_bench", "overall": None, "partial_overall": {"value": 0.6, "domains": ["chat"]}}
    assert benchmark_accuracy(partial) == 0.6
    assert benchmark_accuracy({**partial, "overall": 0.7}) == 0.7
    rb = {
        "benchmark": "reward_bench",
        "sections": {"Chat": {"score": None}, "Reasoning": {"score": None, "partial_score": 0.7}},
    }
    assert benchmark_accuracy(rb) == pytest.approx(0.7)
    assert benchmark_accuracy({"benchmark": "reward_math", "accuracy": 0.25, "n": 4}) == 0.25


NOISE = [  # replace the experiment's eleven reward models by three
    "~pipeline.reward_models",
    (
        "+pipeline.reward_models={a: ['preference.label_noise=0.0'], b: ['preference.label_noise=0.5'], "
        "c: ['preference.label_noise=1.0']}"
    ),
]
SPLIT_TRAIN = ["task.arithmetic.split=train", "task.arithmetic.max_examples=8", "n_samples=4"]
SPLIT_TEST = ["task.arithmetic.split=test", "task.arithmetic.max_examples=6", "n_samples=4"]
GEN = ["generation.batch_size=8", "generation.chunk_size=16", "generation.progress=false", "scoring.progress=false"]


def _tiny_env(tmp_path, data_dir) -> dict:
    return {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "RMLAB_CACHE_DIR": str(tmp_path / "cache"),
            "RMLAB_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}  # fmt: skip


def _tiny_gold(classifier) -> list[str]:
    """Gold is a tiny reward model (a random policy is never right on arithmetic): real-valued gold."""
    return ["gold.kind=reward_model", f"gold.model={classifier}", "sampling.max_new_tokens=6"]


def _tiny_bon_and_statistics(gold: list[str]) -> list[str]:
    """Best-of-4 on 6 test prompts and cheap study statistics: the tail of every tiny study's command."""
    bon = _quoted_list("pipeline.bon.overrides", [*SPLIT_TEST, *gold, *GEN, "bootstrap.n_boot=50"])
    return [bon, "pipeline.gain_n=4", "pipeline.n_boot=50", "pipeline.n_perm=50"]


def _tiny_train(classifier) -> list[str]:
    return [f"model={classifier}", "trainer=cpu", "trainer.enable_progress_bar=false", "recipe.max_steps=2",
            "recipe.pairs_per_update=4", "recipe.micro_batch_pairs=4", "recipe.max_pair_tokens=128", "recipe.lr=1e-3",
            "bootstrap.n_boot=20"]  # fmt: skip


@pytest.mark.slow
def test_study_end_to_end_on_tiny_models_and_reused(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    """Gold is a tiny reward model here (a random policy is never right on arithmetic): real-valued gold, pairs by
    gold order, three reward models with 0%, 50% and 100% of the labels flipped."""
    env, gold = _tiny_env(tmp_path, data_dir), _tiny_gold(tiny_classifier_dir)
    train = [*_tiny_train(tiny_classifier_dir), "preference.heldout_pairs=4"]
    cmd = [
        sys.executable,
        "scripts/run_experiment.py",
        "experiment=bon_study_cpu",
        "pipeline.stage_logger=none",
        f"pipeline.policy={tiny_lm_dir}",
        *NOISE,
        _quoted_list("pipeline.samples.overrides", [*SPLIT_TRAIN, *gold, *GEN]),
        _quoted_list("pipeline.train_rm.overrides", train),
        _quoted_list("pipeline.rm_eval.benchmarks.rm_bench", ["benchmark.max_per_domain=1"]),
        _quoted_list("pipeline.rm_eval.benchmarks.reward_bench", ["benchmark.max_per_subset=2"]),
        _quoted_list("pipeline.rm_eval.overrides", ["device=cpu", "bootstrap.n_boot=0", "scoring.progress=false"]),
        *_tiny_bon_and_statistics(gold),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "bon_study" / "runs").iterdir()
    study = json.loads((run / "study.json").read_text())
    assert [r["reward_model"] for r in study["rows"]] == ["a", "b", "c"]
    for row in study["rows"]:
        assert set(row["benchmarks"]) == {"rm_bench", "reward_bench", "reward_math_sample"}
        assert row["train_heldout_accuracy"] is not None
    assert "pairwise_accuracy (positive control)" in study["correlations"]
    assert "Positive control" in (run / "study.md").read_text()
    stages = json.loads((run / "stages.json").read_text())
    assert len(stages) == 1 + 3 + 3 * 3 + 1 and all(s["decision"] == "run" for s in stages)
    flipped = [
        json.loads(p.read_text())["data"]["labels_flipped"]
        for p in sorted((tmp_path / "logs" / "stages").glob("*/train_rm-*/train_metrics.json"))
    ]
    assert min(flipped) == 0 and max(flipped) > 0

    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    second = max((tmp_path / "logs" / "bon_study" / "runs").iterdir())
    assert all(s["decision"] == "reuse" for s in json.loads((second / "stages.json").read_text()))
    assert (second / "study.md").read_text() == (run / "study.md").read_text()


def test_paper_scale_study_composes_stage_by_stage(tmp_path, data_dir):
    """The released Tulu-2.5 reward models (ids as the reference list has them) on the whole benchmarks from the
    Hub, and best-of-64 on all of GSM8k with tulu-2-13b under vLLM; every stage's config resolves."""
    import csv

    from omegaconf import OmegaConf

    from rmlab.pipelines.bon_study import bon_overrides, eval_overrides
    from rmlab.policy_eval.best_of_n import reward_model_cfgs
    from rmlab.utils.config import rewrite_model_overrides
    from tests.conftest import compose_eval_cfg

    cfg = _run_experiment_cfg(["experiment=bon_study_tulu25_gsm8k"])
    p = cfg.pipeline
    rows = csv.DictReader(
        line for line in (data_dir.parent / "reference" / "tulu25-model-ids.csv").open() if not line.startswith("#")
    )
    assert sorted(p.released.values()) == sorted(r["reward_model_seq_classifier"] for r in rows)
    assert not p.reward_models
    for spec in p.released.values():
        for bench, over in eval_overrides(cfg, spec).items():
            c = compose_eval_cfg(tmp_path, rewrite_model_overrides(over, ("model",)), "eval_rm", ("logger=none",))
            assert c.benchmark.name == bench and c.benchmark.require_complete and c.device == "cuda"
            assert c.model.pretrained == spec and c.model.chat_template == "tulu" and c.model.kind == "classifier"
            assert c.benchmark.get("data_dir", c.benchmark.get("path")) is None  # the Hub, never a local copy
    over = bon_overrides(cfg, dict(p.released))
    c = compose_eval_cfg(tmp_path, rewrite_model_overrides(over, ("policy",)), "best_of_n", ("logger=none",))
    OmegaConf.resolve(c)
    assert c.policy.pretrained == "allenai/tulu-2-13b" and c.policy.chat_template == "tulu"
    assert list(c.task) == ["gsm8k"] and c.task.gsm8k.max_examples is None and c.task.gsm8k.n_shot == 8
    assert (c.n_samples, c.sampling.temperature, c.generation.backend, c.gold.kind) == (64, 0.7, "vllm", "task")
    rms = reward_model_cfgs(c.reward_models)
    assert sorted(m.pretrained for m in rms.values()) == sorted(p.released.values())
    assert all((m.chat_template, m.dtype, m.kind) == ("tulu", "bfloat16", "classifier") for m in rms.values())


def test_benchmarks_are_compared_on_the_same_reward_models_and_the_table_says_so():
    from rmlab.analysis.bon_study import benchmark_comparison, study_markdown

    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        q = i / 10
        rows.append(
            {
                "reward_model": f"rm{i}",
                "pairwise_accuracy": {"value": 0.5 + q / 2, "ci": None},
                "train_heldout_accuracy": None,
                "train_heldout_ci": None,
                "benchmarks": {"good_bench": q + rng.normal(0, 0.05), "noise_bench": rng.normal()},
                "gold": {"1": 0.1},
                "gain": {"value": q + rng.normal(0, 0.05), "ci": None},
            }
        )
    corr = study_correlations(rows, n_boot=100, n_perm=100, seed=0)
    comp = benchmark_comparison(rows)
    (pair,) = comp["pairs"]  # benchmarks only: the positive control is not a benchmark
    assert (pair["a"], pair["b"], pair["n_points"]) == ("good_bench", "noise_bench", 10)
    assert pair["difference"] > 0.5 and pair["p"] < 0.01 and pair["df"] == 7
    assert pair["r_a"] == pytest.approx(corr["good_bench"]["pearson_r"])
    md = study_markdown(rows, corr, positive_control(corr), [1], 1, comp)
    assert "Williams' t" in md and "Fisher z" in md and "UNDERPOWERED" in md and "10 reward models" in md


@pytest.mark.slow
def test_study_with_a_policy_optimizer_end_to_end(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    """``pipeline.algos=[bon, grpo]`` on tiny models: each reward model also trains a GRPO policy (the gold monitor
    on), that policy is sampled on the best-of-n prompts, and the study reports each method's gain, the per-method
    table and the controls' verdicts."""
    env, gold = _tiny_env(tmp_path, data_dir), _tiny_gold(tiny_classifier_dir)
    train = _tiny_train(tiny_classifier_dir)
    policy = ["device=cpu", "prompts.heldout=2", "recipe.max_prompt_length=64", "recipe.response_length=6",
              "evaluate.batch_size=2", "bootstrap.n_boot=10"]  # fmt: skip
    grpo = ["algo.max_completion_length=6", "algo.num_generations=2", "algo.per_device_train_batch_size=4",
            "algo.max_steps=1", "algo.gradient_checkpointing=false", "algo.learning_rate=0.05"]  # fmt: skip
    cmd = [
        sys.executable,
        "scripts/run_experiment.py",
        "experiment=grpo_controls_cpu",
        "pipeline.stage_logger=none",
        f"pipeline.policy={tiny_lm_dir}",
        _quoted_list("pipeline.samples.overrides", [*SPLIT_TRAIN, *gold, *GEN]),
        _quoted_list("pipeline.train_rm.overrides", train),
        _quoted_list("pipeline.train_rm.preference_overrides", ["preference.heldout_pairs=4"]),
        _quoted_list("pipeline.train_policy.overrides", policy),
        _quoted_list("pipeline.train_policy.grpo", grpo),
        *_tiny_bon_and_statistics(gold),
        # the pooled negative control over two flip seeds (the experiment pools four)
        "~pipeline.reward_models.flip_50_s2",
        "~pipeline.reward_models.flip_50_s3",
        "pipeline.controls.negative=[flip_50,flip_50_s1]",
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "bon_study" / "runs").iterdir()
    study = json.loads((run / "study.json").read_text())
    assert study["algos"] == ["bon", "grpo"]
    assert set(study["policy_runs"]["grpo"]) == {"flip_00", "flip_50", "flip_50_s1", "flip_00_shuffled"}
    # the pooled negative: the flipped models' arms that are signal-free by their own pairwise accuracy (on tiny
    # models either may carry chance signal, so the members are derived from the rows, not assumed)
    rows = {r["reward_model"]: r for r in study["rows"]}
    members, aside = admit_negative_pool({n: rows[n]["pairwise_accuracy"] for n in ("flip_50", "flip_50_s1")},
                                         ["flip_50", "flip_50_s1"])  # fmt: skip
    assert study["pooled_negative_set_aside"] == aside
    pooled = study["control_gains"]["negative"]["grpo"]
    arms = [rows[n]["gains"]["grpo"] for n in members]
    # the arms' mean per prompt vs the mean of the arms' gains, float64 over 6 prompts: ~1e-16 apart, approx 1e-6
    assert pooled["arms"] == len(members) and pooled["value"] == pytest.approx(np.mean([a["value"] for a in arms]))
    assert pooled["greedy"]["arms"] == len(members)
    neg = next(c for c in study["method_controls"] if c["kind"] == "negative")
    assert neg["reward_model"] == " + ".join(members) and neg["gain"] == pooled["value"]
    assert study["pooled_negative_accuracy"]["models"] == members
    assert f"negative (pooled over {len(members)}: {members[0]}" in (run / "study.md").read_text()
    rm_seeds = {
        n: json.loads(next((tmp_path / "logs" / "stages" / n).glob("train_rm-*/stage.json")).read_text())["identity"]
        for n in ("flip_00", "flip_50", "flip_50_s1")
    }
    assert {n: i["config"]["seed"] for n, i in rm_seeds.items()} == {"flip_00": 0, "flip_50": 0, "flip_50_s1": 1}
    for row in study["rows"]:
        g = row["gains"]["grpo"]
        # mean of differences vs difference of means over 6 prompts, float64: equal to ~1e-16, approx allows 1e-6
        assert g["n_prompts"] == 6 and g["value"] == pytest.approx(g["after"]["value"] - g["before"]["value"])
        # the greedy read-out (grpo_controls_cpu sets pipeline.greedy): the same prompts, one greedy decode each
        assert g["greedy"]["n_prompts"] == 6
    assert [c["kind"] for c in study["method_controls"]] == ["positive", "negative", "shuffled"]
    assert (
        "## Per method" in (run / "study.md").read_text()
        and "shuffled (flip_00, rewards shuffled)" in (run / "study.md").read_text()
    )

    # the shuffled arm: flip_00's reward model, its rewards shuffled; the flip_00 arm's unshuffled
    def record(arm: str) -> dict:
        return json.loads((Path(study["policy_runs"]["grpo"][arm]["train"]) / "train_metrics.json").read_text())

    null_meta, good_meta = record("flip_00_shuffled"), record("flip_00")
    assert null_meta["rewards_shuffled"] is True and good_meta["rewards_shuffled"] is False
    assert null_meta["reward_model_fingerprint"] == good_meta["reward_model_fingerprint"]
    assert study["control_gains"]["shuffled"]["grpo"]["n_prompts"] == 6
    greedy = [
        json.loads(line) for line in (Path(study["policy_runs"]["grpo"]["flip_00"]["greedy"]) / "samples.jsonl").open()
    ]
    assert len(greedy) == 6 and all(len(r["samples"]) == 1 for r in greedy)

    def samples(stage: str) -> list:
        return [json.loads(line)["samples"] for line in (Path(stage) / "samples.jsonl").open()]

    # the trained policy was sampled, not the SFT one (a large step moves a tiny model's samples)
    assert samples(study["policy_runs"]["grpo"]["flip_00"]["gold"]) != samples(study["bon_run"])
    train = json.loads((Path(study["policy_runs"]["grpo"]["flip_00"]["train"]) / "train_metrics.json").read_text())
    assert train["algo"] == "grpo" and train["gold_monitor"]["task"] == "arithmetic"
    assert "rewards/gold/mean" in train["train"]["final"] or any(
        "rewards/gold/mean" in json.loads(line)
        for line in (Path(study["policy_runs"]["grpo"]["flip_00"]["train"]) / "log_history.jsonl").open()
    )
