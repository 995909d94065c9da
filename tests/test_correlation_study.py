"""The correlation study over run outputs: reward models linked to their policies by fingerprint (our PPO
policies' rmlab_meta.json) or by spec (``policy_links``, for released policies), one point per (reward model, task
group), the statistics equal scipy's on the same points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats

from rmlab.analysis.correlation_study import correlate
from tests.conftest import ROOT
from tests.helpers import tolerances as tol

RMB = {"rm-a": (0.40, 0.60, 0.30), "rm-b": (0.55, 0.70, 0.45), "rm-c": (0.62, 0.66, 0.58), "rm-d": (0.35, 0.50, 0.20)}
RB = {"rm-a": (0.70, 0.80), "rm-b": (0.65, 0.85), "rm-c": (0.90, 0.60), "rm-d": (0.50, 0.75)}
POLICY = {
    "rm-a": (0.20, 0.10, 0.80),
    "rm-b": (0.26, 0.14, 0.85),
    "rm-c": (0.30, 0.12, 0.92),
    "rm-d": (0.18, 0.08, 0.70),
}
SFT = (0.15, 0.05, 0.75)
# the released layout (make_study_runs(released=True)): Hub-like specs, no rmlab_meta.json, links in the config
RELEASED_LINKS = {f"org/policy-{rm}": {"reward_model": f"org/{rm}", "sft_model": "org/sft"} for rm in RMB}


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _summary(name, fp, spec, scores):
    math, code, safety = scores
    tasks = [
        {"task": "gsm8k", "metric": "exact_match", "group": "math", "normalised": math},
        {"task": "bbh", "metric": "exact_match", "group": "math", "normalised": math},
        {"task": "humaneval_plus", "metric": "t0.1/pass@1", "group": "code", "normalised": code},
        {"task": "toxigen", "metric": "toxic_rate", "group": "safety", "normalised": safety - 0.05},
        {"task": "xstest", "metric": "accuracy", "group": "safety", "normalised": safety + 0.05},
    ]
    for t in tasks:  # the raw metric; ToxiGen's is the toxic rate, lower is better
        t["value"] = 1 - t["normalised"] if t["task"] == "toxigen" else t["normalised"]
        t["instrument"] = "alt-profanity-check" if t["task"] == "toxigen" else None
        t["higher_is_better"] = t["task"] != "toxigen"
    return {"policy": name, "policy_spec": str(spec), "policy_fingerprint": fp, "tasks": tasks}


@pytest.fixture
def runs(tmp_path) -> Path:
    return make_study_runs(tmp_path)


def make_study_runs(tmp_path: Path, *, released: bool = False) -> Path:
    """Evaluations of 4 reward models (RM-Bench, RewardBench), their PPO policies and the SFT policy: as our
    training writes them (model directories, each PPO policy's rmlab_meta.json naming its reward model and SFT
    model), or ``released``: the same scores under Hub-like specs, linked only by :data:`RELEASED_LINKS`."""
    root = tmp_path / "runs"
    for rm, (math_hard, code_normal, safety_hard) in RMB.items():
        run = {"time_utc": "2026-11-28T00:00:00+00:00"}
        rm_spec = f"org/{rm}" if released else str(tmp_path / f"train/{rm}/model")
        _write(
            root / f"eval_rm/{rm}-rmb/metrics.json",
            {
                "benchmark": "rm_bench",
                "model": rm,
                "model_spec": rm_spec,
                "scorer": {"model": f"fp-{rm}"},
                "run": run,
                "domains": {
                    "math": {"hard": math_hard, "normal": 0.9, "avg": 0.7},
                    "code": {"hard": 0.1, "normal": code_normal, "avg": 0.5},
                    "safety": {"hard": safety_hard, "normal": 0.9, "avg": 0.8},
                },
                "difficulty": {"easy": 0.9, "normal": 0.8, "hard": 0.3},
                "overall": None,
                "partial_overall": {"value": 0.667, "domains": ["math", "code", "safety"]},
            },
        )
        reasoning, safety = RB[rm]
        sections = {s: {"score": None, "partial_score": None} for s in ("Chat", "Chat Hard")}
        sections |= {"Reasoning": {"score": reasoning}, "Safety": {"score": safety}}
        _write(
            root / f"eval_rm/{rm}-rb/metrics.json",
            {
                "benchmark": "reward_bench",
                "model": rm,
                "model_spec": rm_spec,
                "scorer": {"model": f"fp-{rm}"},
                "run": run,
                "sections": sections,
                "prior_sets": None,
                "overall": None,
            },
        )
        policy_spec = f"org/policy-{rm}" if released else tmp_path / f"ppo/{rm}/policy"
        if not released:
            _write(
                policy_spec / "rmlab_meta.json",
                {
                    "reward_model": rm,
                    "reward_model_fingerprint": f"fp-{rm}",
                    "sft_model": "sft",
                    "sft_fingerprint": "fp-sft",
                },
            )
        _write(
            root / f"eval_policy/{rm}/summary.json",
            _summary(f"policy-{rm}", f"fp-policy-{rm}", policy_spec, POLICY[rm]),
        )
    sft_spec = "org/sft" if released else tmp_path / "sft"
    _write(root / "eval_policy/sft/summary.json", _summary("sft", "fp-sft", sft_spec, SFT))
    return root


def _cfg(tmp_path, runs, **kw):
    from rmlab.utils.config import compose_config

    cfg = compose_config("correlate", [f"runs={runs}", *(f"{k}={v}" for k, v in kw.items())])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(tmp_path / "out")
    cfg.n_boot, cfg.n_perm = 200, 500
    return cfg


def test_points_and_statistics(tmp_path, runs, monkeypatch):
    monkeypatch.setenv("RMLAB_ROOT", str(ROOT))
    res = correlate(_cfg(tmp_path, runs, policy_score="absolute", standardise_x="none"))
    rmb = res["benchmarks"]["rm_bench"]
    assert rmb["n"] == 12 and sorted(rmb["reward_models"]) == sorted(RMB)
    xs = [p["x"] for p in rmb["points"]]
    ys = [p["y"] for p in rmb["points"]]
    ref = stats.pearsonr(xs, ys)
    # no standardisation: the report calls scipy's pearsonr on these very x and y: exact
    assert rmb["pearson_r"] == ref.statistic and rmb["pearson_p_t"] == ref.pvalue
    ci = ref.confidence_interval()  # Fisher z by default, and the p of the same test beside it
    # ours and scipy's tanh(atanh r -/+ q se) from the same r: tolerances.fisher_interval_diff
    bound = tol.fisher_interval_diff(ref.statistic, len(xs))
    assert rmb["pearson_ci"] == pytest.approx([ci.low, ci.high], abs=bound)
    assert (rmb["pearson_p"] < 0.05) == (ci.low > 0)
    assert rmb["n_reward_models"] == 4 and rmb["power"]["underpowered"]
    pair = res["comparison"]["pairs"][0]  # the same 4 reward models and 12 points in both benchmarks
    assert (pair["a"], pair["b"], pair["n_points"]) == ("reward_bench", "rm_bench", 12)
    # the moment formula on the same points (in another order) against scipy's: tolerances.pearson_diff
    assert pair["r_b"] == pytest.approx(ref.statistic, abs=tol.pearson_diff(xs, ys))
    assert pair["p_holm"] == pair["p"]  # one pair: nothing to adjust
    from rmlab.pipelines.correlation_study import _correlation_tables

    _correlation_tables(res, tmp_path / "tables")  # the paper table carries the same power note as correlation.md
    note = next(line for line in (tmp_path / "out" / "correlation.md").read_text().splitlines() if "Power:" in line)
    assert note in (tmp_path / "tables" / "correlation.md").read_text() and "underpowered" in note.lower()
    assert "Power:" in (tmp_path / "tables" / "correlation.tex").read_text()
    point = next(p for p in rmb["points"] if p["reward_model"] == "rm-c" and p["group"] == "code")
    # normal accuracy on code; HumanEval+ score, the group's only task: the stored float itself
    assert point["x"] == 0.66 and point["y"] == 0.12
    assert point["rm_metrics"].endswith("rm-c-rmb/metrics.json")  # traceable to its file
    safety = next(p for p in rmb["points"] if p["reward_model"] == "rm-a" and p["group"] == "safety")
    # mean of ToxiGen (normalised) and XSTest: s -/+ 0.05 (2 roundings), their sum (1) and halving: 4 of <= 1
    assert safety["y"] == pytest.approx(0.80, abs=tol.worst_case(4, 1.0))
    assert res["benchmarks"]["reward_bench"]["n"] == 12
    out = tmp_path / "out"
    assert (out / "correlation.png").stat().st_size > 0
    first = (out / "correlation.md").read_bytes()
    correlate(_cfg(tmp_path, runs, policy_score="absolute", standardise_x="none"))
    assert (out / "correlation.md").read_bytes() == first  # byte-identical when regenerated


def test_improvement_over_the_sft_policy(tmp_path, runs):
    res = correlate(_cfg(tmp_path, runs, policy_score="improvement"))
    p = next(p for p in res["benchmarks"]["rm_bench"]["points"] if p["reward_model"] == "rm-b" and p["group"] == "math")
    # the group's two equal task scores average to themselves exactly (x + x, halved); then the same subtraction
    assert p["y"] == 0.26 - 0.15
    (runs / "eval_policy/sft/summary.json").unlink()
    with pytest.raises(ValueError, match="SFT model"):
        correlate(_cfg(tmp_path, runs, policy_score="improvement"))


def test_within_group_standardisation_differs_from_global(tmp_path, runs):
    def rmb(**kw):
        return correlate(_cfg(tmp_path, runs, policy_score="absolute", **kw))["benchmarks"]["rm_bench"]

    g = rmb(standardise_x="global", standardise_y="global")
    w = rmb(standardise_x="within_group", standardise_y="within_group")
    n = rmb(standardise_x="none", standardise_y="none")
    # one affine map of x and y: r unchanged, up to two evaluations on the raw points and on standardised ones,
    # whose centring and scaling round like a Pearson evaluation's own (tolerances.pearson_diff, twice)
    xs, ys = np.array([p["x"] for p in n["points"]]), np.array([p["y"] for p in n["points"]])
    zx, zy = (xs - xs.mean()) / xs.std(), (ys - ys.mean()) / ys.std()
    assert g["pearson_r"] == pytest.approx(n["pearson_r"], abs=tol.pearson_diff(xs, ys) + tol.pearson_diff(zx, zy))
    # a change of r far above any rounding (0.05 is > 1e14 u)
    assert abs(w["pearson_r"] - g["pearson_r"]) > 0.05  # per-group rescaling changes it


def test_toxigen_direction_and_group_tasks_are_choices(tmp_path, runs):
    """ToxiGen enters as 1 - toxic rate by default, as its raw toxic rate with lower_is_better=raw; group_tasks
    picks which tasks make a group's score."""

    def safety_y(**kw):
        res = correlate(_cfg(tmp_path, runs, policy_score="absolute", **kw))
        return {p["reward_model"]: p["y"] for p in res["benchmarks"]["rm_bench"]["points"] if p["group"] == "safety"}

    s = {rm: scores[2] for rm, scores in POLICY.items()}
    # mean of (s - 0.05) and (s + 0.05): 2 roundings in the fixture, the sum's 1 and an exact halving: 4 of <= 1
    assert safety_y() == pytest.approx(s, abs=tol.worst_case(4, 1.0))
    raw = safety_y(lower_is_better="raw")  # mean of the toxic rate 1 - (s - 0.05) and XSTest's s + 0.05
    # <= 5 roundings of values <= 2 on each side
    assert raw == pytest.approx(
        {rm: ((1 - (v - 0.05)) + (v + 0.05)) / 2 for rm, v in s.items()}, abs=tol.worst_case(10, 2.0)
    )
    only_xstest = safety_y(group_tasks="{safety: [xstest]}")
    assert only_xstest == {rm: v + 0.05 for rm, v in s.items()}  # the fixture's stored v + 0.05 itself: exact
    res = correlate(_cfg(tmp_path, runs, lower_is_better="raw"))
    assert res["lower_is_better"] == "raw"


def _second_rm_bench_run(runs: Path, name: str, *, time_utc: str, data: str | None, math_hard: float) -> Path:
    src = json.loads((runs / "eval_rm/rm-c-rmb/metrics.json").read_text())
    src["run"] = {"time_utc": time_utc}
    src["data_fingerprint"] = data
    src["domains"]["math"]["hard"] = math_hard
    _write(runs / f"eval_rm/{name}/metrics.json", src)
    return runs / f"eval_rm/{name}/metrics.json"


def test_the_newest_run_of_a_model_on_the_same_data_is_read_and_recorded(tmp_path, runs, monkeypatch):
    """Two evaluations of rm-c on the same data: the newer one counts (not the one whose path sorts last), and the
    output names both files."""
    monkeypatch.setenv("RMLAB_ROOT", str(ROOT))
    newer = _second_rm_bench_run(runs, "a-newer", time_utc="2026-11-29T00:00:00+00:00", data=None, math_hard=0.99)
    _second_rm_bench_run(runs, "z-older", time_utc="2026-11-27T00:00:00+00:00", data=None, math_hard=0.01)
    res = correlate(_cfg(tmp_path, runs))
    point = next(
        p for p in res["benchmarks"]["rm_bench"]["points"] if p["reward_model"] == "rm-c" and p["group"] == "math"
    )
    assert point["x"] == 0.99 and point["rm_metrics"] == str(newer)
    chosen = res["chosen_runs"]["reward_models"]["fp-rm-c|rm_bench"]
    assert chosen["chosen"] == str(newer)
    assert sorted(Path(p).parent.name for p in chosen["passed_over"]) == ["rm-c-rmb", "z-older"]
    saved = json.loads((tmp_path / "out" / "correlation.json").read_text())
    assert saved["chosen_runs"]["reward_models"]["fp-rm-c|rm_bench"]["chosen"] == str(newer)


def test_runs_of_one_model_on_different_data_are_an_error(tmp_path, runs, monkeypatch):
    """A subsampled evaluation beside the full one must not silently replace it (it did: the path sorting last won)."""
    monkeypatch.setenv("RMLAB_ROOT", str(ROOT))
    _second_rm_bench_run(
        runs, "zz-subsample", time_utc="2026-11-29T00:00:00+00:00", data="fp-subsample", math_hard=0.99
    )
    with pytest.raises(
        ValueError,
        match=r"reward model\|benchmark fp-rm-c\|rm_bench: its runs were evaluated on "
        r"different data \(data null: .*rm-c-rmb/metrics.json; data \"fp-subsample\"",
    ):
        correlate(_cfg(tmp_path, runs))
    assert not (tmp_path / "out" / "correlation.json").exists()


def test_policy_runs_on_different_tasks_are_an_error(tmp_path, runs, monkeypatch):
    monkeypatch.setenv("RMLAB_ROOT", str(ROOT))
    summary = json.loads((runs / "eval_policy/rm-a/summary.json").read_text())
    summary["tasks"] = summary["tasks"][:1]  # an evaluation on GSM8k only
    _write(runs / "eval_policy/rm-a-gsm8k-only/summary.json", summary)
    with pytest.raises(ValueError, match=r"policy .*ppo/rm-a/policy: its runs were evaluated on different data"):
        correlate(_cfg(tmp_path, runs))


def test_the_paper_reading_by_hand(tmp_path, runs):
    """RM-Bench Sec. 5.2 as the defaults read it: y = each policy's group score minus the SFT model's, x = the
    reward model's group accuracy z-scored over the four reward models within each group; r by the textbook
    formula, in a loop of its own."""
    res = correlate(_cfg(tmp_path, runs))
    rmb = res["benchmarks"]["rm_bench"]
    assert (res["policy_score"], res["standardise_x"], res["standardise_y"]) == ("improvement", "within_group", "none")
    xs, ys = [], []
    for g, col in (("math", 0), ("code", 1), ("safety", 2)):
        raw = [RMB[rm][col] for rm in sorted(RMB)]
        mean = sum(raw) / 4
        sd = (sum((v - mean) ** 2 for v in raw) / 4) ** 0.5
        for rm, v in zip(sorted(RMB), raw):
            xs.append((v - mean) / sd)
            ys.append(POLICY[rm][col] - SFT[col])  # safety: (s - .05 + s + .05) / 2 = s for policy and SFT alike
    mx, my = sum(xs) / 12, sum(ys) / 12
    r = (
        sum((a - mx) * (b - my) for a, b in zip(xs, ys))
        / (sum((a - mx) ** 2 for a in xs) * sum((b - my) ** 2 for b in ys)) ** 0.5
    )
    # scipy's r on numpy's within-group z-scores against this hand-written one: two Pearson evaluations
    # (tolerances.pearson_diff) plus two standardisations, which round like a Pearson evaluation's centring and
    # scaling of the raw scores (pearson_diff of the raw values)
    raw_x = [RMB[rm][col] for col in range(3) for rm in sorted(RMB)]
    bound = tol.pearson_diff(xs, ys) + tol.pearson_diff(raw_x, ys)
    assert rmb["n"] == 12 and rmb["pearson_r"] == pytest.approx(r, abs=bound)


def _points(res: dict, bench: str) -> list[tuple]:
    return [(p["reward_model"], p["group"], p["x"], p["y"]) for p in res["benchmarks"][bench]["points"]]


@pytest.mark.parametrize("policy_score", ["improvement", "absolute"])
def test_policy_links_give_the_points_of_rmlab_meta(tmp_path, runs, policy_score):
    """Released policies (no rmlab_meta.json) linked by ``policy_links`` to their reward models' and the SFT
    model's evaluations by spec: the same points and r as the same scores linked by rmlab_meta.json."""
    by_meta = correlate(_cfg(tmp_path / "meta", runs, policy_score=policy_score))
    released = make_study_runs(tmp_path / "released", released=True)
    cfg = _cfg(tmp_path / "links", released, policy_score=policy_score)
    cfg.policy_links = RELEASED_LINKS
    by_links = correlate(cfg)
    assert by_links["policy_links"] == RELEASED_LINKS
    for bench in ("rm_bench", "reward_bench"):
        assert _points(by_links, bench) == _points(by_meta, bench) and len(_points(by_meta, bench)) == 12
        # the same points in the same order (asserted above): the same scipy call, exact
        assert by_links["benchmarks"][bench]["pearson_r"] == by_meta["benchmarks"][bench]["pearson_r"]
    # without the links nothing ties a released policy to its reward model: no points
    assert correlate(_cfg(tmp_path / "none", released))["benchmarks"]["rm_bench"]["points"] == []


def test_policy_links_as_a_command_line_override(tmp_path):
    """Hub ids (slashes, dots) are keys the override grammar takes as they are."""
    released = make_study_runs(tmp_path, released=True)
    links = ",".join(
        f"{p}: {{reward_model: {v['reward_model']}, sft_model: {v['sft_model']}}}" for p, v in RELEASED_LINKS.items()
    )
    res = correlate(_cfg(tmp_path, released, policy_links="{" + links + "}"))
    assert res["policy_links"] == RELEASED_LINKS and res["benchmarks"]["rm_bench"]["n"] == 12


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "reward_model",
            "org/rm-z",
            r"policy org/policy-rm-b: its reward model org/rm-z has no evaluation among the runs",
        ),
        ("sft_model", "org/sft-z", r"policy org/policy-rm-b: its SFT model org/sft-z has no evaluation among the runs"),
    ],
)
def test_a_link_to_a_model_without_evaluation_is_an_error(tmp_path, field, value, message):
    released = make_study_runs(tmp_path, released=True)
    cfg = _cfg(tmp_path, released)
    cfg.policy_links = {**RELEASED_LINKS, "org/policy-rm-b": {**RELEASED_LINKS["org/policy-rm-b"], field: value}}
    with pytest.raises(ValueError, match=message):
        correlate(cfg)
    assert not (tmp_path / "out" / "correlation.json").exists()


def test_a_link_that_contradicts_rmlab_meta_is_an_error(tmp_path, runs):
    """A policy with rmlab_meta.json may be linked in the config too, but only to the same models."""
    policy = str(tmp_path / "ppo/rm-a/policy")
    sft = str(tmp_path / "sft")
    cfg = _cfg(tmp_path, runs, policy_score="absolute")
    cfg.policy_links = {policy: {"reward_model": str(tmp_path / "train/rm-a/model"), "sft_model": sft}}
    assert correlate(cfg)["benchmarks"]["rm_bench"]["n"] == 12  # agrees: the same points
    cfg.policy_links = {policy: {"reward_model": str(tmp_path / "train/rm-b/model"), "sft_model": sft}}
    with pytest.raises(ValueError, match=rf"policy {policy}: its rmlab_meta.json links it to reward model rm-a"):
        correlate(cfg)


def test_one_set_of_weights_under_two_chat_templates_is_two_reward_models(tmp_path, runs):
    """The four reward models given the same weights, told apart only by their formatting's fingerprint (as two
    chat templates on one checkpoint would be): the correlation keeps four reward models with their own scores,
    each policy linked to the one it was trained with, instead of merging them under one fingerprint."""
    expected = correlate(_cfg(tmp_path / "by-weights", runs))
    for rm in RMB:
        for bench in ("rmb", "rb"):
            path = runs / f"eval_rm/{rm}-{bench}/metrics.json"
            m = json.loads(path.read_text())
            m["scorer"] = {"model": "fp-same-weights", "formatting": f"fmt-{rm}"}
            path.write_text(json.dumps(m))
        meta_path = tmp_path / f"ppo/{rm}/policy/rmlab_meta.json"
        meta = json.loads(meta_path.read_text())
        meta |= {"reward_model_fingerprint": "fp-same-weights", "reward_model_formatting_fingerprint": f"fmt-{rm}"}
        meta_path.write_text(json.dumps(meta))
    result = correlate(_cfg(tmp_path / "by-formatting", runs))
    for bench in ("rm_bench", "reward_bench"):
        got, want = result["benchmarks"][bench], expected["benchmarks"][bench]
        assert len(got["points"]) == len(want["points"]) == 12
        assert [(p["reward_model"], p["x"], p["y"]) for p in got["points"]] == [
            (p["reward_model"], p["x"], p["y"]) for p in want["points"]
        ]
        assert got["pearson_r"] == want["pearson_r"]
    assert len(result["chosen_runs"]["reward_models"]) == 8  # 4 reward models x 2 benchmarks, none merged


def test_a_policy_record_without_the_formatting_is_ambiguous_between_two_evaluated_formattings(tmp_path, runs):
    """rm-a's weights evaluated under two formattings (rm-b's evaluations carry rm-a's weights), and rm-a's policy
    recorded before the formatting was: which evaluation it goes with is unknown, an error, not a guess."""
    for name, fmt in (("rm-a", "fmt-1"), ("rm-b", "fmt-2")):
        for bench in ("rmb", "rb"):
            path = runs / f"eval_rm/{name}-{bench}/metrics.json"
            m = json.loads(path.read_text())
            m["scorer"] = {"model": "fp-rm-a", "formatting": fmt}
            path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="evaluated under 2 formattings"):
        correlate(_cfg(tmp_path, runs))
