"""The correlation study as one experiment: the paper's configuration resolved stage by stage (GPUs, the Hub, the
SLURM launcher), and the CPU-scale pipeline end to end on tiny models and real data, resumed and fanned out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from scipy import stats

from rmlab.pipelines.correlation_study import plan_study
from rmlab.utils.config import rewrite_model_overrides
from tests.conftest import ROOT, compose_eval_cfg
from tests.test_eval_policy import TINY as TINY_TASKS

# as in experiments/correlation_study_cpu.yaml: RewardBench's Reasoning is scored on its local subset only
PARTIAL_REASONING = [
    "benchmarks.reward_bench.groups.math.partial=true",
    "benchmarks.reward_bench.groups.code.partial=true",
]
PAPER_DATASETS = {"hh_rlhf", "stack_exchange", "chatbot_arena_2023", "nectar"}


def _run_experiment_cfg(overrides: list[str], hydra_config: bool = False):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("run_experiment", overrides=overrides, return_hydra_config=hydra_config)


def _stage_cfg(tmp_path: Path, stage):
    base = ("device=cpu", "logger=none") + (
        ("scoring.progress=false",) if stage.entry in ("train_rm", "eval_rm") else ()
    )
    cfg = compose_eval_cfg(tmp_path, rewrite_model_overrides(list(stage.overrides), stage.groups), stage.entry, base)
    OmegaConf.resolve(cfg)
    return cfg


def assert_paper_arena_hard(c) -> None:
    """An arena_hard stage at the paper's scale: all 500 questions answered greedily by vLLM up to upstream's 4096
    tokens, judged by gpt-4-1106-preview behind OpenAI's endpoint (key from the environment) with upstream's
    prompt, the pool the policy and the baseline."""
    assert c.max_examples is None and c.answer.max_new_tokens == 4096 and c.baseline == "gpt-4-0314"
    assert c.generation.backend == "vllm" and c.device == "cuda"
    judge = c.judge.judge
    assert (judge.backend, judge.mode, judge.prompt, judge.max_new_tokens) == (
        "endpoint", "pairwise", "arena_hard_v0.1", 4096)  # fmt: skip
    assert judge.endpoint.model == "gpt-4-1106-preview" and judge.endpoint.api_key_env == "OPENAI_API_KEY"
    assert judge.endpoint.base_url == "https://api.openai.com/v1"
    assert c.pool.name == "policy+baseline" and not c.pool.battles and c.n_rounds == 100 and c.penalty_c == 1.0


def test_paper_configuration_resolves_stage_by_stage(tmp_path):
    cfg = _run_experiment_cfg(["experiment=correlation_study"], hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.gpus_per_node == 8 and launcher.nodes == 1
    stages = plan_study(cfg)
    # the SFT model's evaluations, then per reward model: training, RM-Bench, RewardBench, PPO, policy evaluation,
    # Arena-Hard (Sec. 5.1)
    assert len(stages) == 2 + 4 * 6 and {s.branch for s in stages} == PAPER_DATASETS | {"sft"}
    assert len({s.out_dir for s in stages}) == len(stages)  # no two stages share a directory
    for s in stages:
        c = _stage_cfg(tmp_path, s)
        if s.entry == "train_rm":
            assert c.model.pretrained == "allenai/tulu-2-13b" and c.model.kind == "classifier"
            assert c.preference.name == s.branch and c.preference.max_pairs == 60000
            assert c.recipe.lr == 1.0e-5 and c.recipe.pairs_per_update == 512 and c.trainer.strategy is not None
        elif s.entry == "eval_rm":
            assert c.benchmark.name == s.step.split(":")[1] and c.device == "cuda"
            assert c.benchmark.max_per_domain is None if c.benchmark.name == "rm_bench" else c.benchmark.subsets is None
            assert c.model.pretrained.startswith(stages[[x.branch for x in stages].index(s.branch)].out_dir)
        elif s.entry == "train_ppo":
            assert c.policy.pretrained == "allenai/tulu-2-13b" and c.preference.name == s.branch
            assert c.policy.chat_template == "tulu" and c.pad_token == "<unk>"  # prompts in Tulu's format
            assert c.recipe.kl_coef == 0.05 and c.recipe.lr == 1.0e-6 and c.recipe.vf_coef == 0.1
            assert s.launch[:2] == ("accelerate", "launch") and (ROOT / s.launch[-1]).is_file()
        elif s.entry == "arena_hard":
            assert_paper_arena_hard(c)
            ppo = next((x for x in stages if x.branch == s.branch and x.entry == "train_ppo"), None)
            assert c.policy.pretrained == ("allenai/tulu-2-13b" if ppo is None else f"{ppo.out_dir}/policy")
        else:
            assert set(c.task) == {"gsm8k", "bbh", "humaneval_plus", "mbpp_plus", "toxigen", "xstest"}
            assert c.generation.backend == "vllm" and c.task.gsm8k.max_examples == 200
            if s.branch == "sft":
                assert c.policy.pretrained == "allenai/tulu-2-13b"
            else:  # the policy PPO trained against this branch's reward model
                ppo = next(x for x in stages if x.branch == s.branch and x.entry == "train_ppo")
                assert c.policy.pretrained == f"{ppo.out_dir}/policy"


def test_a_changed_setting_moves_only_the_stages_it_feeds(tmp_path):
    base = {
        (s.branch, s.step): s.out_dir for s in plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu"]))
    }
    changed = {
        (s.branch, s.step): s.out_dir
        for s in plan_study(
            _run_experiment_cfg(
                ["experiment=correlation_study_cpu", "pipeline.ppo.overrides=['device=cpu','recipe.lr=1e-4']"]
            )
        )
    }
    moved = {k for k in base if base[k] != changed[k]}
    assert moved == {
        (b, step)
        for b in ("helpful_base", "harmless_base", "helpful_online", "helpful_rejection_sampled")
        for step in ("train_ppo", "eval_policy")
    }


def test_plan_rejects_an_unknown_branch_and_a_reserved_name(tmp_path):
    from rmlab.pipelines.correlation_study import _selected

    cfg = _run_experiment_cfg(["experiment=correlation_study_cpu"])
    with pytest.raises(ValueError, match="pipeline.only='nectar': not a branch of this study"):
        _selected(plan_study(cfg), "nectar")
    cfg = _run_experiment_cfg(["experiment=correlation_study_cpu", "+pipeline.reward_models.sft.preference=hh_rlhf"])
    with pytest.raises(ValueError, match="'sft' names the SFT policy's branch"):
        plan_study(cfg)


def _quoted_list(key: str, items: list[str]) -> str:
    return f"{key}=[" + ",".join(f"'{i}'" for i in items) + "]"


@pytest.mark.slow
def test_cpu_study_end_to_end_resumes_and_fans_out(tmp_path, tiny_classifier_dir, tiny_lm_dir, data_dir):
    """Two reward models (two HH-RLHF subsets) on tiny models: every stage, then correlation.json, the figure, the
    tables; a second run reuses every stage; ``pipeline.only`` runs one branch and does not correlate."""
    env = {
        **os.environ,
        "RMLAB_LOG_DIR": str(tmp_path / "logs"),
        "RMLAB_CACHE_DIR": str(tmp_path / "cache"),
        "RMLAB_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    train = [
        f"model={tiny_classifier_dir}",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "recipe.max_steps=1",
        "recipe.pairs_per_update=2",
        "recipe.micro_batch_pairs=2",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
        "bootstrap.n_boot=20",
    ]
    ppo = [
        "device=cpu",
        "prompts.heldout=3",
        "recipe.response_length=6",
        "recipe.rollouts_per_device_batch=2",
        "recipe.gradient_accumulation=2",
        "recipe.total_episodes=8",
        "recipe.rollout_forward_batch=2",
        "recipe.max_prompt_length=256",
        "recipe.ppo_epochs=1",
        "recipe.num_mini_batches=1",
        "recipe.lr=1e-3",
        "bootstrap.n_boot=20",
    ]
    cmd = [
        sys.executable,
        "scripts/run_experiment.py",
        "experiment=correlation_study_cpu",
        "pipeline.stage_logger=none",
        "~pipeline.reward_models.helpful_online",
        "~pipeline.reward_models.helpful_rejection_sampled",
        f"pipeline.sft_policy={tiny_lm_dir}",
        _quoted_list("pipeline.preference_overrides", ["preference.max_pairs=24", "preference.heldout_pairs=8"]),
        _quoted_list("pipeline.train_rm.overrides", train),
        _quoted_list("pipeline.ppo.overrides", ppo),
        _quoted_list("pipeline.rm_eval.benchmarks.rm_bench", ["benchmark.max_per_domain=1"]),
        _quoted_list("pipeline.rm_eval.benchmarks.reward_bench", ["benchmark.max_per_subset=2"]),
        _quoted_list("pipeline.rm_eval.overrides", ["device=cpu", "bootstrap.n_boot=0", "scoring.progress=false"]),
        _quoted_list("pipeline.policy_eval.overrides", ["device=cpu", *TINY_TASKS]),
        _quoted_list("pipeline.correlate.overrides", ["n_boot=50", "n_perm=50", *PARTIAL_REASONING]),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "correlation_study" / "runs").iterdir()
    stages = json.loads((run / "stages.json").read_text())
    assert len(stages) == 1 + 2 * 5 and not any(s["reused"] for s in stages)
    assert all(s["wall_seconds"] > 0 for s in stages)
    headline = json.loads((run / "correlation" / "correlation.json").read_text())  # the paper's reading
    assert (headline["policy_score"], headline["standardise_x"], headline["standardise_y"]) == (
        "improvement", "within_group", "none")  # fmt: skip
    assert headline["benchmarks"]["rm_bench"]["n"] == 4
    result = json.loads((run / "correlation_absolute_raw" / "correlation.json").read_text())  # scores as they are
    rmb = result["benchmarks"]["rm_bench"]
    # 2 reward models x 2 task groups (RM-Bench's math file is not local), each traced to the files it came from
    assert rmb["n"] == 4 and set(rmb["reward_models"]) == {"helpful_base", "harmless_base"}
    assert {p["group"] for p in rmb["points"]} == {"code", "safety"}
    for point in rmb["points"]:  # x and y are the numbers in the files the point names
        rm = json.loads(Path(point["rm_metrics"]).read_text())
        level = {"code": "normal", "safety": "hard"}[point["group"]]
        assert rm["benchmark"] == "rm_bench" and rm["model"] == point["reward_model"]
        assert point["x"] == rm["domains"][point["group"]][level]
        summary = json.loads(Path(point["policy_summary"]).read_text())
        group = [t["normalised"] for t in summary["tasks"] if t["group"] == point["group"]]
        assert point["y"] == pytest.approx(sum(group) / len(group))
    xs, ys = [p["x"] for p in rmb["points"]], [p["y"] for p in rmb["points"]]
    if len(set(xs)) > 1 and len(set(ys)) > 1:
        assert rmb["pearson_r"] == pytest.approx(stats.pearsonr(xs, ys).statistic)
    else:  # tiny random policies often score alike: then r is undefined, and the file says so instead of NaN
        assert rmb["pearson_r"] is None and "r is undefined" in rmb["undefined"]
    # locally RewardBench has only its Reasoning subset (math-prm), used as partial: math and code points only
    rwb = result["benchmarks"]["reward_bench"]
    assert {p["group"] for p in rwb["points"]} == {"math", "code"} and rwb["n"] == 4
    assert (run / "correlation" / "correlation.md").is_file()
    assert (result["policy_score"], result["standardise_x"]) == ("absolute", "none")
    x_global = json.loads((run / "correlation_x_global" / "correlation.json").read_text())
    assert x_global["standardise_x"] == "global" and x_global["benchmarks"]["rm_bench"]["n"] == 4
    assert "| helpful_base |" in (run / "tables" / "rm_bench.md").read_text()
    paper = (run / "tables" / "correlation.md").read_text()  # the paper table prints the power note too
    assert "Power:" in paper and "Power:" in (run / "correlation" / "correlation.md").read_text()
    assert "Power:" in (run / "tables" / "correlation.tex").read_text()
    policies = (run / "tables" / "policies.csv").read_text()
    assert policies.count("\n") == 1 + 3 and "ppo-helpful_base" in policies  # SFT + two PPO policies
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "logs" / "stages").rglob("*.json") if p.name != "stage.json"}

    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    second = max((tmp_path / "logs" / "correlation_study" / "runs").iterdir())
    assert all(s["reused"] for s in json.loads((second / "stages.json").read_text()))
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed
    assert (second / "correlation" / "correlation.md").read_text() == (
        run / "correlation" / "correlation.md"
    ).read_text()
    assert (second / "tables" / "rm_bench.md").read_text() == (run / "tables" / "rm_bench.md").read_text()

    # one branch, as a launcher's job would run it: its stages only (reused here), no correlation
    res = subprocess.run(
        [*cmd, "pipeline.only=harmless_base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    third = max((tmp_path / "logs" / "correlation_study" / "runs").iterdir())
    assert {s["branch"] for s in json.loads((third / "stages.json").read_text())} == {"harmless_base"}
    assert not (third / "correlation").exists()

    # a second optimizer: PPO's stages are reused, GRPO's run, and each optimizer gets its own correlation
    grpo = ["device=cpu", "prompts.heldout=3", "recipe.max_prompt_length=256", "recipe.response_length=6",
            "algo.max_completion_length=6", "algo.num_generations=2", "algo.per_device_train_batch_size=4",
            "algo.max_steps=1", "algo.gradient_checkpointing=false", "bootstrap.n_boot=20"]  # fmt: skip
    res = subprocess.run(
        [*cmd, "pipeline.algos=[ppo,grpo]", _quoted_list("pipeline.train_policy.overrides", grpo)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    fourth = max((tmp_path / "logs" / "correlation_study" / "runs").iterdir())
    rows = json.loads((fourth / "stages.json").read_text())
    assert {(r["step"], r["reused"]) for r in rows if r["branch"] == "helpful_base"} == {
        ("train_rm", True), ("eval_rm:rm_bench", True), ("eval_rm:reward_bench", True), ("train_ppo", True),
        ("eval_policy", True), ("train_grpo", False), ("eval_policy:grpo", False)}  # fmt: skip
    by_ppo = json.loads((fourth / "correlation_ppo" / "correlation.json").read_text())
    assert by_ppo["benchmarks"]["rm_bench"]["points"] == headline["benchmarks"]["rm_bench"]["points"]
    by_grpo = json.loads((fourth / "correlation_grpo" / "correlation.json").read_text())
    policies = {Path(p["policy_summary"]).parent.parent.name for p in by_grpo["benchmarks"]["rm_bench"]["points"]}
    assert all(name.startswith("train_grpo-") for name in policies) and len(policies) == 2
    assert "GRPO: r [CI]" in (fourth / "correlation_by_algo.md").read_text()
    assert (fourth / "tables" / "correlation_grpo.md").is_file()


def test_a_stage_with_a_launcher_runs_as_a_child_process(tmp_path, tiny_classifier_dir, rm_bench_dir, data_dir):
    """``launch`` (e.g. accelerate launch at scale) runs the stage as ``<launch> -m rmlab.cli <entry> <overrides>``
    in a child process, into the same directory, with its wall time recorded; a second call reuses it."""
    from rmlab.pipelines.stages import run_stage, stage_record

    over = [
        f"model={tiny_classifier_dir}",
        "benchmark=rm_bench",
        "benchmark.max_per_domain=1",
        "bootstrap.n_boot=0",
        "device=cpu",
        "scoring.progress=false",
    ]
    out = tmp_path / "stage"
    runtime = ["logger=none", f"paths.score_cache_dir={tmp_path / 'scores'}"]
    metrics = run_stage("eval_rm", over, out, runtime=runtime, launch=[sys.executable])
    assert metrics["benchmark"] == "rm_bench" and (out / ".hydra" / "overrides.yaml").is_file()  # the script ran
    record = stage_record(out)
    assert record["launch"] == [sys.executable] and record["overrides"] == over and record["wall_seconds"] > 0
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert run_stage("eval_rm", over, out, launch=[sys.executable]) == metrics
    assert [d["decision"] for d in stage_record(out)["decisions"]] == ["run", "reuse"]
    assert (out / "metrics.json").stat().st_mtime_ns == stamp


_LAUNCHER = """
import os, sys
# stands in for accelerate launch: --config_file <file> must name a file from wherever it runs, then the command
flag, config, *cmd = sys.argv[1:]
assert flag == "--config_file" and os.path.isabs(config) and os.path.isfile(config), config
os.execv(sys.executable, [sys.executable, *cmd])
"""


@pytest.mark.slow
def test_a_launched_stage_finds_its_launcher_config_from_another_directory(
    tmp_path, tiny_classifier_dir, rm_bench_dir, data_dir, monkeypatch
):
    """``launch: [accelerate, launch, --config_file, conf/accelerate/...]`` as the experiments spell it runs from a
    directory that is not the checkout, as from an installed wheel (the project root is then the working
    directory): the config file reaches the launcher as an absolute path into the configs rmlab ships."""
    from rmlab.pipelines import stages
    from rmlab.utils import config

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(config, "ROOT", elsewhere)  # what a wheel sets: the working directory
    launcher = tmp_path / "launcher.py"
    launcher.write_text(_LAUNCHER)
    launch = [sys.executable, str(launcher), "--config_file", "conf/accelerate/multi_cpu.yaml"]
    assert stages.launch_command(["--config_file=conf/accelerate/fsdp.yaml", "conf/nothing.yaml"]) == [
        f"--config_file={config.CONF_DIR / 'accelerate' / 'fsdp.yaml'}",
        "conf/nothing.yaml",  # not a shipped config: left as written
    ]
    over = [f"model={tiny_classifier_dir}", "benchmark=rm_bench", "benchmark.max_per_domain=1", "bootstrap.n_boot=0"]
    runtime = ["device=cpu", "scoring.progress=false", "logger=none", f"paths.score_cache_dir={tmp_path / 'scores'}"]
    metrics = stages.run_stage("eval_rm", over, tmp_path / "stage", runtime=runtime, launch=launch)
    assert metrics["benchmark"] == "rm_bench" and not (elsewhere / "conf").exists()
