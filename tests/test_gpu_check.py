"""The GPU check (scripts/gpu_check.py): its CPU path end to end on tiny models, its failure handling and reports,
the vLLM skip, the trainers' overrides; the CUDA run itself only where a GPU is present (``-m gpu``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rmlab.diagnostics import gpu_check_parts
from rmlab.diagnostics.gpu_check import gpu_check
from rmlab.diagnostics.gpu_check_parts import Skipped, training_overrides, vllm_ready
from rmlab.utils.config import compose_config, rewrite_model_overrides
from tests.conftest import ROOT, compose_eval_cfg

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TINY = [  # small enough for 2 CPU cores; the CUDA test uses them too, so it needs no model download
    "scoring.prompts_per_domain=1",
    "benchmark.domains=[chat,safety-refuse]",
    "throughput.prompts_per_domain=1",
    "throughput.matmul_size=128",
    "throughput.matmul_seconds=0.1",
    "throughput.repeats=2",
    "generation.prompts_per_domain=1",
    "generation.max_new_tokens=8",
]


def _run_script(tmp_path: Path, model_dir: Path, overrides: list[str]) -> tuple[dict, str, Path]:
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "RMLAB_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "scripts/gpu_check.py", f"model={model_dir}", *TINY, *overrides]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "gpu_check" / "runs").iterdir()
    return json.loads((run / "gpu_check.json").read_text()), res.stdout, run


def test_cpu_path_scores_against_cpu_float32_and_measures_throughput(tmp_path, tiny_lm_dir, data_dir):
    report, stdout, run = _run_script(tmp_path, tiny_lm_dir, ["device=cpu", "parts=[scoring,throughput]"])
    scoring, throughput = report["parts"]["scoring"], report["parts"]["throughput"]
    assert scoring["status"] == throughput["status"] == "ok", (scoring, throughput)
    assert scoring["prompts"] == 2 and scoring["pairs"] == 12
    assert set(scoring["scorers"]) == {"classifier", "implicit_ref_free", "implicit_with_reference"}
    for scorer in scoring["scorers"].values():
        base, bf16 = scorer["runs"]
        assert (base["device"], base["dtype"], bf16["dtype"]) == ("cpu", "float32", "bfloat16")
        assert "vs_cpu_float32" not in base and bf16["vs_cpu_float32"]["comparisons"] == 2 * 9
        assert 0 <= bf16["vs_cpu_float32"]["max_abs_diff"] < 1.0  # a tiny model in bf16 moves scores a little
    # the floor's arithmetic (a tiny model against a 128^3 product can land on either side of 1, so no bound)
    floor = throughput["tokens_per_second"] * 2 * throughput["matmul_params"] / throughput["matmul_flops_per_second"]
    # the script's own expression, in the same order, on JSON round-tripped (hence identical) floats: exact
    assert throughput["fraction_of_matmul_floor"] == floor and floor > 0
    assert len(throughput["tokens_per_second_passes"]) == 2 and throughput["tokens"] > 0
    # the with-reference scorer's reference is a seeded perturbation of the model, not the model itself
    (ref,) = (tmp_path / "cache" / "models" / "perturbed").iterdir()
    assert json.loads((ref / "rmlab_meta.json").read_text())["relative_std"] == 0.01
    # figures printed as they come, and the closing summary; the markdown report says the same
    assert "implicit_with_reference cpu/bfloat16" in stdout and "| scoring | ok |" in stdout
    md = (run / "gpu_check.md").read_text()
    assert "## scoring: ok" in md and "## throughput: ok" in md and "decisions flip" in md


@pytest.fixture
def check_cfg(tmp_path):
    def compose(overrides=()):
        overrides = ["model=wheel:smollm2-135m-instruct", *overrides]
        return compose_eval_cfg(tmp_path, overrides, "gpu_check", base=("device=cpu",))

    return compose


def test_a_failing_part_is_reported_and_the_next_one_runs(check_cfg, monkeypatch, capsys):
    before = torch.are_deterministic_algorithms_enabled()  # earlier tests in the process may have switched it on

    def boom(c):
        torch.use_deterministic_algorithms(not before)  # as Lightning's deterministic=True changes it process-wide
        raise RuntimeError("boom")

    monkeypatch.setitem(gpu_check_parts.PARTS, "scoring", boom)

    def measured(c):
        c.say("measured")
        return {"tokens_per_second": 1.0, "fraction_of_matmul_floor": 0.5}

    monkeypatch.setitem(gpu_check_parts.PARTS, "throughput", measured)
    cfg = check_cfg(["parts=[scoring,throughput]"])
    report = gpu_check(cfg)
    assert torch.are_deterministic_algorithms_enabled() == before  # restored after the part
    failed, ok = report["parts"]["scoring"], report["parts"]["throughput"]
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: boom" and "in boom" in failed["traceback"]
    assert ok["status"] == "ok" and ok["lines"] == ["measured"]
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "gpu_check.json").read_text())["parts"]["throughput"]["status"] == "ok"
    md = (out / "gpu_check.md").read_text()
    assert "## scoring: failed" in md and 'raise RuntimeError("boom")' in md and "50.0% of the 2PT" in md
    assert "| scoring | failed |" in capsys.readouterr().out


def test_parts_after_the_budget_are_skipped_and_unknown_parts_refused(check_cfg, monkeypatch):
    monkeypatch.setitem(gpu_check_parts.PARTS, "scoring", lambda c: pytest.fail("must not run"))
    skipped = gpu_check(check_cfg(["parts=[scoring]", "budget_seconds=-1"]))["parts"]["scoring"]
    assert skipped["status"] == "skipped" and "budget_seconds" in skipped["reason"]
    with pytest.raises(ValueError, match=r"parts: unknown \['scorring'\]"):
        gpu_check(check_cfg(["parts=[scorring]"]))


def test_vllm_is_skipped_unless_installed_or_asked_to_install(monkeypatch):
    real = gpu_check_parts.importlib.util.find_spec
    monkeypatch.setattr(gpu_check_parts.importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    with pytest.raises(Skipped, match="^vLLM needs a CUDA device$"):
        vllm_ready("cpu", install=True, timeout=1)
    with pytest.raises(Skipped, match=r"^vllm not installed \(install_vllm=true"):
        vllm_ready("cuda", install=False, timeout=1)
    calls = []

    def failing_pip(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for vllm")

    monkeypatch.setattr(gpu_check_parts.subprocess, "run", failing_pip)
    with pytest.raises(Skipped, match="pip install vllm` failed: ERROR: No matching distribution"):
        vllm_ready("cuda", install=True, timeout=1)
    assert calls == [[sys.executable, "-m", "pip", "install", "vllm"]]


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_training_overrides_compose_into_one_step_of_each_trainer(check_cfg, device):
    """Every key the check sets exists in the trainer's config (Hydra refuses unknown keys), at one step each."""
    cfg = check_cfg([f"device={device}"])
    bf16 = device == "cuda"
    for step, entry, group in [
        ("rm", "train_rm", "model"),
        ("dpo", "train_dpo", "model"),
        ("ppo", "train_ppo", "policy"),
    ]:
        composed = compose_config(entry, rewrite_model_overrides(training_overrides(cfg, step, device), (group,)))
        assert composed[group].pretrained == "wheel:smollm2-135m-instruct"
        assert composed.preference.files == ["helpful-base/*"] and composed.logger.type == "csv"
        assert composed.recipe.warmup_ratio == 0
        if step == "rm":
            precision = "bf16-mixed" if bf16 else "32-true"
            assert composed.recipe.max_steps == 1 and composed.trainer.precision == precision
        elif step == "dpo":
            assert composed.recipe.max_steps == 1 and composed.precision == ("bf16" if bf16 else "fp32")
        else:
            r = composed.recipe
            assert r.total_episodes == r.rollouts_per_device_batch * r.gradient_accumulation  # one update
            assert composed.reward_model == "wheel:smollm2-135m-instruct" and composed.device == device


@pytest.mark.slow
def test_cpu_path_of_training_and_generation(tmp_path, tiny_lm_dir, data_dir):
    report, _, _ = _run_script(tmp_path, tiny_lm_dir, ["device=cpu", "parts=[training,generation]"])
    steps = report["parts"]["training"]["steps"]
    assert {s: r["status"] for s, r in steps.items()} == {"rm": "ok", "dpo": "ok", "ppo": "ok"}, steps
    assert steps["rm"]["optimizer_steps"] == steps["dpo"]["optimizer_steps"] == steps["ppo"]["optimizer_steps"] == 1
    assert set(steps["ppo"]["loss"]) >= {"loss/policy_avg", "loss/value_avg"}
    gen = report["parts"]["generation"]
    assert gen["status"] == "ok" and gen["backends"]["vllm"]["status"] == "skipped"
    assert gen["backends"]["hf"]["new_tokens_per_second"] > 0 and "exact_match_rate" not in gen


@pytest.mark.gpu
@needs_cuda
def test_every_part_on_cuda(tmp_path, tiny_lm_dir, data_dir):
    """On a CUDA machine: every part runs on the device (vLLM compared when installed, else skipped)."""
    report, _, _ = _run_script(tmp_path, tiny_lm_dir, ["device=cuda", "throughput.matmul_size=4096"])
    assert report["about"]["bf16"] is True
    assert {n: p["status"] for n, p in report["parts"].items()} == dict.fromkeys(
        ["scoring", "throughput", "training", "generation"], "ok"
    ), report["parts"]
    for scorer in report["parts"]["scoring"]["scorers"].values():
        assert [(r["device"], r["dtype"]) for r in scorer["runs"]] == [
            ("cpu", "float32"),
            ("cuda", "float32"),
            ("cuda", "bfloat16"),
        ]
        # fp32 on CUDA: the same scores. Only partly derived (issue #30): 2 models x forward_diff(2048 tokens, one
        # token) = 9.4e-4 covers a per-token mean; a reference reward summed over up to 2048 tokens is bounded by ~1.9
        assert scorer["runs"][1]["vs_cpu_float32"]["max_abs_diff"] < 1e-3
    vllm = report["parts"]["generation"]["backends"]["vllm"]
    assert vllm["status"] == "ok" or vllm["reason"].startswith("vllm not installed")
