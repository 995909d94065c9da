"""The Arena-Hard stage end to end on CPU (RM-Bench Sec. 5.1): a tiny policy answers, a judge (the tiny model, or a
local server answering canned verdicts) compares each answer with the baseline's in both games, and the raw and
style-controlled scores are fitted; a rerun generates and judges nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import open_dict

from rmlab.data.arena_hard import Battle
from rmlab.policy_eval.arena_hard import evaluate_arena_hard, verdict_battles
from tests.conftest import compose_eval_cfg
from tests.test_judge import _ANSWER, KEY_ENV, ChatServer

pytest.importorskip("tiktoken")

BASELINE = "gpt-4-0314"
QUESTIONS = {  # question id -> text; the canned judge decides by the question's tag
    "q1": "Q1: explain the Bradley-Terry model.",
    "q2": "Q2: write a haiku about ranking.",
    "q3": "Q3: list three sorting algorithms.",
}
BASELINE_ANSWERS = {
    "q1": "BASELINE: # Bradley-Terry\n\nA model of **paired** comparisons.",
    "q2": "BASELINE: Scores rise and fall,\nranked by a quiet judge,\nties split the night.",
    "q3": "BASELINE:\n1. quicksort\n2. mergesort\n- heapsort",
}


def make_data(root: Path) -> Path:
    """An Arena-Hard-Auto v0.1 data folder in upstream's layout: three questions and the baseline's answers."""
    (root / "model_answer").mkdir(parents=True)
    rows = [{"question_id": q, "category": "arena-hard-v0.1", "turns": [{"content": t}]} for q, t in QUESTIONS.items()]
    (root / "question.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = [
        {
            "question_id": q,
            "answer_id": f"a-{q}",
            "model_id": BASELINE,
            "tstamp": 0,
            "choices": [{"index": 0, "turns": [{"content": a, "token_len": len(a.split())}]}],
        }
        for q, a in BASELINE_ANSWERS.items()
    ]
    (root / "model_answer" / f"{BASELINE}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in answers))
    return root


class ArenaJudge(ChatServer):
    """Canned verdicts by question: q1 the policy wins both games, q2 the baseline wins both, q3 a tie in game 1
    and no verdict in game 2. With rewardbench's prompt a verdict weighs 1: 2 wins, 2 losses, 1 tie."""

    @staticmethod
    def answer(body: dict) -> str:
        user = body["messages"][-1]["content"]
        if user == "Reply with OK.":
            return "OK"
        slots = dict(_ANSWER.findall(user))
        policy_slot = "B" if slots["A"].startswith("BASELINE") else "A"
        baseline_slot = "A" if policy_slot == "B" else "B"
        if "Q1:" in user:
            return f"The policy's answer is better. [[{policy_slot}]]"
        if "Q2:" in user:
            return f"The baseline is better. [[{baseline_slot}]]"
        return "Equally good. [[C]]" if baseline_slot == "A" else "I cannot decide."


@pytest.fixture
def judge_server(monkeypatch):
    from tests.test_judge import KEY

    monkeypatch.setenv(KEY_ENV, KEY)
    s = ArenaJudge()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def arena_cfg(tmp_path: Path, data: Path, policy: Path, overrides=()):
    cfg = compose_eval_cfg(
        tmp_path,
        [f"policy={policy}", f"data_dir={data}", "answer.max_new_tokens=8", "n_rounds=20", *overrides],
        "arena_hard",
        base=("device=cpu", "logger=none", "generation.progress=false"),
    )
    with open_dict(cfg):
        cfg.paths.generation_cache_dir = str(tmp_path / "generations")
    return cfg


def endpoint_overrides(server: ChatServer) -> list[str]:
    return [
        "model@judge=judge_endpoint",
        f"judge.judge.endpoint.base_url={server.base_url}",
        "judge.judge.endpoint.model=canned-judge",
        f"judge.judge.endpoint.api_key_env={KEY_ENV}",
        "judge.judge.endpoint.backoff_s=0.01",
        "judge.judge.chunk_size=2",
    ]


def test_verdicts_become_weighted_battle_rows():
    """Game 1: A = baseline; game 2 swapped; a strong verdict is three rows, an unparsed one none."""

    def rows(game: int, verdict: str | None) -> list[Battle]:
        return verdict_battles("q", game, verdict, baseline="base", policy="pol")

    win, loss, tie = (Battle("q", "base", "pol", w) for w in ("model_b", "model_a", "tie"))
    assert rows(1, "B") == [win] and rows(2, "A") == [win] and rows(1, "A") == [loss] and rows(2, "B") == [loss]
    assert rows(1, "B>>A") == [win] * 3 and rows(2, "A>>B") == [win] * 3 and rows(2, "B>A") == [loss]
    assert rows(1, "tie") == rows(2, "A=B") == [tie] and rows(1, None) == []
    with pytest.raises(ValueError, match="question_id=q, game 1: verdict 'C'"):
        rows(1, "C")


def test_tiny_judge_smoke_reports_unparsed_and_no_score(tmp_path, tiny_lm_dir):
    """The tiny random model as policy and judge: its verdicts are unreadable; the counts say so and no score is
    pretended."""
    data = make_data(tmp_path / "data")
    cfg = arena_cfg(
        tmp_path,
        data,
        tiny_lm_dir,
        [f"judge.pretrained={tiny_lm_dir}", "judge.judge.max_new_tokens=4", "judge.judge.local.batch_size=6"],
    )
    result = evaluate_arena_hard(cfg)
    run = tmp_path / "run"
    assert [p.name for p in sorted(run.iterdir())] == [
        "answers.jsonl",
        "arena_hard.json",
        "arena_hard.md",
        "judgements.jsonl",
    ]
    assert result["questions"] == 3 and result["verdicts"]["games"] == 6
    assert result["verdicts"]["counts"] == {"unparsed": 6} and result["verdicts"]["unparsed"] == 6
    assert result["policy_rows"]["rows"] == 0
    assert result["score"] is None and "no parsable verdict" in result["reason"]
    assert "No score: no parsable verdict" in (run / "arena_hard.md").read_text()
    assert result["judge"]["backend"] == "local" and result["judge"]["upstream_prompt"] is False
    assert json.loads((run / "arena_hard.json").read_text())["verdicts"] == result["verdicts"]


def test_fake_judge_scores_equal_a_hand_computation_and_rerun_is_cached(tmp_path, tiny_lm_dir, judge_server):
    data = make_data(tmp_path / "data")
    cfg = arena_cfg(tmp_path, data, tiny_lm_dir, endpoint_overrides(judge_server))
    result = evaluate_arena_hard(cfg)
    assert result["verdicts"]["counts"] == {"A": 2, "B": 2, "tie": 1, "unparsed": 1}
    assert result["policy_rows"] == {"rows": 5, "wins": 2, "ties": 1, "losses": 2, "raw_by_count": 50.0}
    score = result["score"]
    # SOURCES.md step 3: every battle is against the baseline, raw = 100 (wins + ties / 2) / rows
    assert score["raw"] == pytest.approx(100 * (2 + 1 / 2) / 5, abs=1e-6)
    assert score["relative_drop"] == pytest.approx((score["raw"] - score["sc"]) / score["raw"])
    assert len(score["raw_ci"]) == 2 and len(score["sc_ci"]) == 2
    assert result["pool"]["name"] == "policy+baseline" and result["pool"]["models"][1] == BASELINE
    assert result["judge"]["prompt"] == "rewardbench_pair_v2" and result["judge"]["model"] == "canned-judge"
    judged = [json.loads(x) for x in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    assert [(j["question_id"], j["game"]) for j in judged][:2] == [("q1", 1), ("q1", 2)]
    asked = len(judge_server.chat_requests())
    again = evaluate_arena_hard(cfg)  # resume: nothing generated, nothing judged
    assert again["generation"]["generated"] == 0 and again["judge"]["generated"] == 0
    assert len(judge_server.chat_requests()) == asked and again["score"] == score


def test_uneven_verdicts_give_a_score_away_from_one_half(tmp_path, tiny_lm_dir, judge_server):
    """Without q2 (the baseline's wins) the policy has 2 wins and 1 tie in 3 rows: raw = 100 * 2.5 / 3."""
    data = make_data(tmp_path / "data")
    questions = [json.loads(x) for x in (data / "question.jsonl").read_text().splitlines()]
    (data / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions if q["question_id"] != "q2"))
    result = evaluate_arena_hard(arena_cfg(tmp_path, data, tiny_lm_dir, endpoint_overrides(judge_server)))
    assert result["score"]["raw"] == pytest.approx(100 * 2.5 / 3, abs=1e-6)
    assert result["score"]["sc"] != pytest.approx(result["score"]["raw"])


# ----------------------------------------------------------------------------------------------------------------
# RM-Bench Sec. 5.1: chat hard accuracy against the policies' style-control scores
# ----------------------------------------------------------------------------------------------------------------

CHAT_HARD = {"rm-a": 0.30, "rm-b": 0.45, "rm-c": 0.60, "rm-d": 0.20}
RAW_SC = {"rm-a": (40.0, 36.0), "rm-b": (30.0, 28.5), "rm-c": (20.0, 19.8), "rm-d": (50.0, 40.0)}


def arena_json(spec: str, raw: float | None, sc: float | None, pool: str = "policy+baseline") -> dict:
    score = None if raw is None else {"raw": raw, "sc": sc, "relative_drop": (raw - sc) / raw}
    return {
        "policy_spec": spec,
        "score": score,
        "reason": None if raw is not None else "no parsable verdict: no battle row to fit",
        "pool": {"name": pool, "battle_sets": {}},
        "data_fingerprint": "questions-500",
        "run": {"time_utc": "2026-11-28T00:00:00+00:00"},
    }


def make_style_runs(tmp_path: Path) -> Path:
    """tests/test_correlation_study.py's runs, with RM-Bench chat scores and an Arena-Hard result per policy."""
    from tests.test_correlation_study import make_study_runs

    runs = make_study_runs(tmp_path)
    for rm, hard in CHAT_HARD.items():
        path = runs / f"eval_rm/{rm}-rmb/metrics.json"
        doc = json.loads(path.read_text())
        doc["domains"]["chat"] = {"hard": hard, "normal": 0.8, "avg": 0.6}
        path.write_text(json.dumps(doc))
        spec = str(tmp_path / f"ppo/{rm}/policy")
        (runs / f"arena_hard/{rm}").mkdir(parents=True)
        (runs / f"arena_hard/{rm}/arena_hard.json").write_text(json.dumps(arena_json(spec, *RAW_SC[rm])))
    (runs / "arena_hard/sft").mkdir()  # the SFT policy's score: reported by its stage, no point (no reward model)
    (runs / "arena_hard/sft/arena_hard.json").write_text(json.dumps(arena_json(str(tmp_path / "sft"), 35.0, 30.0)))
    return runs


def correlate_cfg(tmp_path: Path, runs: Path, *overrides: str):
    from omegaconf import OmegaConf

    from rmlab.utils.config import compose_config

    cfg = compose_config("correlate", [f"runs={runs}", *overrides])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(tmp_path / "out")
    cfg.n_boot, cfg.n_perm = 200, 500
    return cfg


def test_style_control_correlation_on_synthetic_runs(tmp_path, monkeypatch):
    from scipy import stats

    from rmlab.analysis.correlation_study import correlate
    from tests.conftest import ROOT

    monkeypatch.setenv("RMLAB_ROOT", str(ROOT))
    runs = make_style_runs(tmp_path)
    res = correlate(correlate_cfg(tmp_path, runs))
    sc = res["style_control"]
    assert sc["n"] == 4 and sc["pool"] == {"name": "policy+baseline", "battle_sets": []}
    xs, ys = [p["x"] for p in sc["points"]], [p["y"] for p in sc["points"]]
    assert xs == [CHAT_HARD[rm] for rm in sorted(CHAT_HARD)]
    assert ys == pytest.approx([(r - s) / r for r, s in (RAW_SC[rm] for rm in sorted(RAW_SC))])
    assert sc["pearson_r"] == pytest.approx(stats.pearsonr(xs, ys).statistic)
    assert res["benchmarks"]["rm_bench"]["n"] == 12  # Sec. 5.2 unchanged beside it
    md = (tmp_path / "out" / "correlation.md").read_text()
    assert "RM-Bench Sec. 5.1, style control" in md and "pool policy+baseline" in md

    # a policy without a score is left out, not counted as a drop of 0
    (runs / "arena_hard/rm-a/arena_hard.json").write_text(
        json.dumps(arena_json(str(tmp_path / "ppo/rm-a/policy"), None, None))
    )
    res = correlate(correlate_cfg(tmp_path, runs))
    assert [p["reward_model"] for p in res["style_control"]["points"]] == ["rm-b", "rm-c", "rm-d"]
    # scores from different pools are never correlated together
    (runs / "arena_hard/rm-b/arena_hard.json").write_text(
        json.dumps(arena_json(str(tmp_path / "ppo/rm-b/policy"), 30.0, 28.5, pool="with-leaderboard"))
    )
    with pytest.raises(ValueError, match="different pools"):
        correlate(correlate_cfg(tmp_path, runs))
    off = correlate(correlate_cfg(tmp_path, runs, "style_control=null"))
    assert "style_control" not in off


class PositionJudge(ChatServer):
    """Always the first slot: the baseline wins game 1 and the policy game 2, whatever the answers."""

    @staticmethod
    def answer(body: dict) -> str:
        return "OK" if body["messages"][-1]["content"] == "Reply with OK." else "Assistant A is better. [[A]]"


def test_pool_with_the_local_leaderboard_battles(tmp_path, tiny_lm_dir, data_dir, monkeypatch):
    """The real data folder, 3 questions, the pool widened by upstream's own battles: the policy's raw score is its
    share of its rows (1 win, 1 loss per question), gpt-4-0613's is the published 37.90, and the pool is named."""
    from tests.test_judge import KEY

    arena = data_dir / "arena-hard-auto"
    if not (arena / "question.jsonl").is_file():
        if os.environ.get("RMLAB_REQUIRE_DATA") == "1":
            pytest.fail(f"Arena-Hard-Auto data expected at {arena} (RMLAB_REQUIRE_DATA=1)")
        pytest.skip(f"no Arena-Hard-Auto data folder at {arena}")
    monkeypatch.setenv(KEY_ENV, KEY)
    server = PositionJudge()
    server.thread.start()
    try:
        leaderboard = {
            "file": "battles/battles_gpt-4-0613_gpt-3.5-turbo-0125.jsonl",
            "models": ["gpt-4-0613", "gpt-3.5-turbo-0125"],
        }
        cfg = arena_cfg(
            tmp_path, arena, tiny_lm_dir, [*endpoint_overrides(server), "max_examples=3", "pool.name=with-leaderboard"]
        )
        with open_dict(cfg):
            cfg.pool.battles = {"leaderboard": leaderboard}
        result = evaluate_arena_hard(cfg)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert result["questions"] == 3 and result["policy_rows"] == {
        "rows": 6, "wins": 3, "ties": 0, "losses": 3, "raw_by_count": 50.0}  # fmt: skip
    score = result["score"]
    assert score["raw"] == pytest.approx(50.0, abs=1e-6)
    assert round(score["pool_scores"]["gpt-4-0613"]["raw"], 2) == 37.90
    pool = result["pool"]
    assert pool["name"] == "with-leaderboard" and pool["models"][2:] == leaderboard["models"]
    assert pool["battle_sets"]["leaderboard"]["rows"] == 2658 and pool["rows"] == 2658 + 6


def test_a_policy_named_like_the_baseline_is_refused_before_any_work(tmp_path, tiny_lm_dir):
    cfg = arena_cfg(tmp_path, make_data(tmp_path / "data"), tiny_lm_dir, [f"policy.name={BASELINE}"])
    with pytest.raises(ValueError, match="policy.name='gpt-4-0314' names another model of the pool"):
        evaluate_arena_hard(cfg)
    assert not (tmp_path / "generations").exists()
