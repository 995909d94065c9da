"""A stage's identity is what determines its result: a changed default, data file, upstream stage or code reruns
exactly the stages it feeds, and an unchanged plan reuses everything (stage directories compared plan to plan)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rmlab.pipelines.correlation_study import plan_study
from tests.conftest import ROOT
from tests.test_correlation_pipeline import _run_experiment_cfg

BRANCHES = ("helpful_base", "harmless_base", "helpful_online", "helpful_rejection_sampled")
RM_STEPS = ("train_rm", "eval_rm:rm_bench", "eval_rm:reward_bench", "train_ppo", "eval_policy")


def _plan(overrides=()) -> dict:
    return {
        (s.branch, s.step): s.out_dir
        for s in plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu", *overrides]))
    }


def _moved(a: dict, b: dict) -> set:
    assert a.keys() == b.keys()
    return {k for k in a if a[k] != b[k]}


@pytest.fixture
def conf_copy(tmp_path, monkeypatch):
    """A copy of conf/ (and experiments/, which conf/experiment links to) that the test may edit."""
    from rmlab.utils import config

    shutil.copytree(ROOT / "conf", tmp_path / "conf", symlinks=True)
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.setattr(config, "CONF_DIR", tmp_path / "conf")
    return tmp_path / "conf"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


def test_an_unchanged_plan_names_the_same_stages(data_dir):
    assert _plan() == _plan()


def test_a_changed_recipe_default_moves_the_trainings_and_what_they_feed(conf_copy, data_dir):
    before = _plan()
    _edit(conf_copy / "recipe" / "rm.yaml", "weight_decay: 0.0", "weight_decay: 0.01")
    assert _moved(before, _plan()) == {(b, step) for b in BRANCHES for step in RM_STEPS}  # not the SFT evaluation
    _edit(conf_copy / "recipe" / "rm.yaml", "weight_decay: 0.01", "weight_decay: 0.0")
    assert _plan() == before
    text = (conf_copy / "recipe" / "ppo.yaml").read_text()
    (conf_copy / "recipe" / "ppo.yaml").write_text(text + "\n# a comment changes nothing\n")
    assert _plan() == before
    ppo = conf_copy / "recipe" / "ppo.yaml"
    line = next(ln for ln in ppo.read_text().splitlines() if ln.startswith("kl_coef:"))
    _edit(ppo, line, "kl_coef: 0.123")
    assert _moved(before, _plan()) == {(b, step) for b in BRANCHES for step in ("train_ppo", "eval_policy")}


def test_a_changed_task_file_moves_every_policy_evaluation_only(conf_copy, data_dir):
    before = _plan()
    gsm8k = conf_copy / "task" / "gsm8k.yaml"
    _edit(gsm8k, "    max_new_tokens: 512", "    max_new_tokens: 256")  # overridden by the experiment: no effect
    assert _plan() == before
    _edit(gsm8k, "instruction: Answer the following questions.", "instruction: Answer these questions.")
    assert _moved(before, _plan()) == {("sft", "eval_policy"), *((b, "eval_policy") for b in BRANCHES)}


def test_a_changed_data_file_moves_exactly_the_stages_that_read_it(tmp_path, data_dir, monkeypatch):
    shutil.copytree(data_dir / "rm-bench", tmp_path / "rm-bench")
    shutil.copytree(data_dir / "hh-rlhf", tmp_path / "hh-rlhf")
    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path / "rm-bench"))
    monkeypatch.setenv("HH_RLHF_DATA_DIR", str(tmp_path / "hh-rlhf"))
    before = _plan()
    chat = tmp_path / "rm-bench" / "chat_filtered.json"
    chat.write_text(chat.read_text() + "\n")
    assert _moved(before, _plan()) == {(b, "eval_rm:rm_bench") for b in BRANCHES}
    (data_file,) = (tmp_path / "hh-rlhf" / "harmless-base").glob("*.jsonl.gz")
    data_file.write_bytes(data_file.read_bytes() + b"\0")  # one branch's training data; the others read other files
    moved = _moved(before, _plan())
    assert moved == {(b, "eval_rm:rm_bench") for b in BRANCHES} | {("harmless_base", step) for step in RM_STEPS}


def test_a_moved_copy_of_the_same_data_is_the_same_stage(tmp_path, data_dir, monkeypatch):
    before = _plan()
    shutil.copytree(data_dir / "rm-bench", tmp_path / "rm-bench")
    monkeypatch.setenv("RMBENCH_DATA_DIR", str(tmp_path / "rm-bench"))
    assert _plan() == before


def test_a_changed_upstream_stage_moves_its_branch_only(data_dir):
    before = _plan()
    changed = _plan(
        [
            (
                "pipeline.reward_models.harmless_base.overrides=['preference.files=[\"harmless-base/*.jsonl.gz\"]',"
                "'preference.hub_data_dir=harmless-base','preference.hub_id=other/hh-rlhf']"
            )
        ]
    )
    assert _moved(before, changed) == {("harmless_base", step) for step in RM_STEPS}


def test_changed_code_reruns_by_default_and_is_reused_on_request(
    tmp_path, tiny_classifier_dir, rm_bench_dir, monkeypatch
):
    from rmlab.pipelines import identity, stages

    over = [
        f"model={tiny_classifier_dir}",
        "benchmark=rm_bench",
        "benchmark.max_per_domain=1",
        "bootstrap.n_boot=0",
        "device=cpu",
        "scoring.progress=false",
    ]
    runtime = ["logger=none", f"paths.score_cache_dir={tmp_path / 'scores'}"]
    out, ident = stages.plan_stage(tmp_path / "stages", "eval", "eval_rm", over, stages_root=tmp_path / "stages")
    first = stages.run_stage("eval_rm", over, out, identity=ident, runtime=runtime)
    stamp = (out / "metrics.json").stat().st_mtime_ns
    stages.run_stage("eval_rm", over, out, identity=ident, runtime=runtime)
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    assert stages.stage_record(out)["decisions"][-1]["reason"] == "identical config, inputs and code"

    now = identity.code_version()
    monkeypatch.setattr(stages, "code_version", lambda: {**now, "source": "0" * 16})
    reused = stages.run_stage("eval_rm", over, out, identity=ident, runtime=runtime, code_change="reuse")
    assert reused == first and (out / "metrics.json").stat().st_mtime_ns == stamp
    last = stages.stage_record(out)["decisions"][-1]
    assert last["decision"] == "reuse" and last["reason"].startswith(f"code changed (source {now['source']} -> 0000")
    assert last["reason"].endswith("reused: code_change=reuse")

    rerun = stages.run_stage("eval_rm", over, out, identity=ident, runtime=runtime)
    record = stages.stage_record(out)
    assert record["code"]["source"] == "0" * 16 and record["decisions"][-1]["decision"] == "rerun"
    old = Path(record["decisions"][-1]["previous"])
    assert old.parent == out.parent and json.loads((old / "metrics.json").read_text()) == first  # kept, not lost
    assert (out / "metrics.json").stat().st_mtime_ns != stamp and rerun["overall"] == first["overall"]
    with pytest.raises(ValueError, match="code_change='maybe'; valid values: rerun, reuse"):
        stages.run_stage("eval_rm", over, out, identity=ident, runtime=runtime, code_change="maybe")


def test_the_identity_leaves_out_what_cannot_change_a_result(data_dir):
    (a,) = [s for s in plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu"])) if s.branch == "sft"]
    (b,) = [
        s
        for s in plan_study(
            _run_experiment_cfg(
                ["experiment=correlation_study_cpu", "pipeline.stage_logger=none", "paths.log_dir=/elsewhere"]
            )
        )
        if s.branch == "sft"
    ]
    assert Path(a.out_dir).name == Path(b.out_dir).name
    config = a.identity["config"]
    assert "paths" not in config and "logger" not in config and "progress" not in config["generation"]
    assert a.identity["inputs"]["task.gsm8k.local_dir"]["fingerprint"].startswith("tree:")
