"""Released branches of the correlation study (``pipeline.released``): evaluated, never trained, beside trained
ones; their policies linked to their reward models for the correlate step by the pipeline itself."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import open_dict

from rmlab.analysis.correlation_study import correlate
from rmlab.pipelines.correlation_study import SFT, _correlate, plan_study, released_links
from tests.test_correlation_pipeline import _run_experiment_cfg
from tests.test_correlation_study import RMB, _cfg, _points, make_study_runs

RELEASED = "+pipeline.released={rel: {reward_model: org/rm-x, policy: org/policy-x}}"


def test_a_mixed_study_trains_only_its_trained_branches():
    cfg = _run_experiment_cfg(["experiment=correlation_study_cpu", RELEASED])
    stages = plan_study(cfg)
    steps = {b: [s.step for s in stages if s.branch == b] for b in {s.branch for s in stages}}
    assert steps["rel"] == ["eval_rm:rm_bench", "eval_rm:reward_bench", "eval_policy"]
    assert steps["helpful_base"] == ["train_rm", "eval_rm:rm_bench", "eval_rm:reward_bench", "train_ppo", "eval_policy"]
    rel = {s.step: s for s in stages if s.branch == "rel"}
    assert rel["eval_rm:rm_bench"].overrides[:3] == ("model=org/rm-x", "model.kind=classifier", "benchmark=rm_bench")
    assert rel["eval_policy"].overrides[0] == "policy=org/policy-x"
    assert "policy.name=ppo-rel" in rel["eval_policy"].runtime and "model.name=rel" in rel["eval_rm:rm_bench"].runtime
    # the SFT model given as a config name is linked by the Hub id or directory its evaluation records
    assert released_links(cfg) == {
        "org/policy-x": {"reward_model": "org/rm-x", "sft_model": "wheel:smollm2-135m-instruct"}
    }
    assert released_links(_run_experiment_cfg(["experiment=correlation_study_cpu"])) == {}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+pipeline.released={helpful_base: {reward_model: a/b, policy: c/d}}", "both name \\['helpful_base'\\]"),
        ("+pipeline.released={sft: {reward_model: a/b, policy: c/d}}", "pipeline.released: 'sft' names the SFT"),
        ("+pipeline.released={rel: {reward_model: a/b}}", "pipeline.released.rel: needs reward_model and policy"),
    ],
)
def test_released_branches_are_checked(override, message):
    with pytest.raises(ValueError, match=message):
        plan_study(_run_experiment_cfg(["experiment=correlation_study_cpu", override]))


def test_the_pipeline_links_its_released_policies_for_the_correlate_step(tmp_path):
    """The correlate step of a released study, run on evaluations written as its stages would (hand-made here):
    the pipeline's links give the points and r of the same scores linked by rmlab_meta.json."""
    runs = make_study_runs(tmp_path / "released", released=True)
    cfg = _run_experiment_cfg(["experiment=rmbench_correlation_tulu25"])
    with open_dict(cfg):
        cfg.pipeline.sft_policy = "org/sft"
        cfg.pipeline.released = {rm: {"reward_model": f"org/{rm}", "policy": f"org/policy-{rm}"} for rm in RMB}
        cfg.pipeline.correlate = {"overrides": ["n_boot=50", "n_perm=50"], "variants": None}
        cfg.pipeline.tables = False
        cfg.pipeline.arena_hard = None  # Sec. 5.2 only (tests/test_arena_hard_stage.py covers Sec. 5.1)
    where = {(SFT, "eval_policy"): runs / "eval_policy/sft"}
    for rm in RMB:
        where |= {
            (rm, "eval_rm:rm_bench"): runs / f"eval_rm/{rm}-rmb",
            (rm, "eval_rm:reward_bench"): runs / f"eval_rm/{rm}-rb",
        }
        where[(rm, "eval_policy")] = runs / f"eval_policy/{rm}"
    stages = [dataclasses.replace(s, out_dir=str(where[(s.branch, s.step)])) for s in plan_study(cfg)]
    assert len(stages) == len(where)
    res = _correlate(cfg, stages, tmp_path / "out")["headline"]
    by_meta = correlate(_cfg(tmp_path / "meta", make_study_runs(tmp_path / "trained")))
    for bench in ("rm_bench", "reward_bench"):
        assert _points(res, bench) == _points(by_meta, bench) and res["benchmarks"][bench]["n"] == 12
        assert res["benchmarks"][bench]["pearson_r"] == pytest.approx(by_meta["benchmarks"][bench]["pearson_r"])
