"""The Arena-Hard stage end to end on CPU (RM-Bench Sec. 5.1): a tiny policy answers, a judge (the tiny model, or a
local server answering canned verdicts) compares each answer with the baseline's in both games, and the raw and
style-controlled scores are fitted; a rerun generates and judges nothing."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
from omegaconf import open_dict

from rmlab.data.arena_hard import Battle
from rmlab.policy_eval.judging.arena_hard import evaluate_arena_hard, verdict_battles
from rmlab.scoring.judge_prompts import JUDGE_PROMPTS
from tests.conftest import compose_eval_cfg
from tests.helpers import tolerances as tol
from tests.test_judge import KEY_ENV, ChatServer

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


UPSTREAM = JUDGE_PROMPTS["arena_hard_v0.1"]
_ARENA_ANSWER = re.compile(
    r"<\|The Start of Assistant ([AB])'s Answer\|>\n(.*?)\n<\|The End of Assistant \1's Answer\|>", re.DOTALL
)


class ArenaJudge(ChatServer):
    """Canned verdicts in upstream's format, by question. q1: the policy wins, strongly in game 1 and slightly in
    game 2 (3 + 1 rows); q2: the baseline wins both games slightly (2 rows); q3: a tie in game 1 (1 row), and in
    game 2 no verdict tag, then, asked to finish, two different labels (no verdict, no third attempt: 0 rows)."""

    @staticmethod
    def answer(body: dict) -> str:
        messages = body["messages"]
        user = next(m["content"] for m in messages if m["role"] == "user")
        if user == "Reply with OK.":
            return "OK"
        if messages[-1]["content"] == UPSTREAM.follow_up.prompt:
            return "Having compared them again: it is either [[A>B]] or [[B>A]]."
        slots = dict(_ARENA_ANSWER.findall(user))
        policy_first = not slots["A"].startswith("BASELINE")  # game 2
        if "Q1:" in user:
            if policy_first:
                return "**My final verdict is Assistant A is slightly better: [[A>B]]**"
            return "My own answer: ...\n\nAssistant B is far more complete.\n\nMy final verdict is: [[B>>A]]"
        if "Q2:" in user:
            return f"My final verdict is: [[{'B>A' if policy_first else 'A>B'}]]"
        return "I need to weigh both answers further." if policy_first else "My final verdict is tie: [[A=B]]"


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
    judge = result["judge"]
    assert judge["backend"] == "local" and judge["upstream_prompt"] is True and judge["prompt"] == "arena_hard_v0.1"
    # no tag in any first answer: each game asked once more, as upstream does (gen_judgment.py:95-114)
    assert judge["verdict_reading"] == "generate" and judge["second_attempts"] == 6 and judge["generated"] == 12
    judged = [json.loads(x) for x in (run / "judgements.jsonl").read_text().splitlines()]
    assert all(j["attempts"] == 2 and j["verdict"] is None for j in judged)
    assert json.loads((run / "arena_hard.json").read_text())["verdicts"] == result["verdicts"]
    # another registered prompt may judge, and says it is not upstream's
    other = evaluate_arena_hard(
        arena_cfg(
            tmp_path / "other",
            data,
            tiny_lm_dir,
            [
                f"judge.pretrained={tiny_lm_dir}",
                "judge.judge.max_new_tokens=4",
                "judge.judge.prompt=rewardbench_pair_v2",
            ],
        )
    )
    assert other["judge"]["upstream_prompt"] is False and other["judge"]["second_attempts"] == 0
    assert "rewardbench_pair_v2 (not upstream's prompt)" in (tmp_path / "other" / "run" / "arena_hard.md").read_text()


def test_tiny_judge_read_from_label_logprobs_gives_graded_verdicts(tmp_path, tiny_lm_dir):
    """``judge.judge.verdict=logprob``: every game gets the likeliest of upstream's five labels after ``[[``, and
    its battle rows weigh as upstream weighs that label."""
    data = make_data(tmp_path / "data")
    overrides = [f"judge.pretrained={tiny_lm_dir}", "judge.judge.verdict=logprob", "judge.judge.local.batch_size=6"]
    result = evaluate_arena_hard(arena_cfg(tmp_path, data, tiny_lm_dir, overrides))
    judge = result["judge"]
    assert judge["verdict_reading"] == "logprob" and judge["upstream_prompt"] is True
    assert judge["second_attempts"] == 0 and result["verdicts"]["unparsed"] == 0
    judged = [json.loads(x) for x in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    weights = {"A>>B": 3, "A>B": 1, "A=B": 1, "B>A": 1, "B>>A": 3}
    for j in judged:
        lp = j["logprobs"]
        assert list(lp) == [f"{label}]]" for label in weights] and j["verdict"] == max(lp, key=lp.get)[:-2]
    assert result["policy_rows"]["rows"] == sum(weights[j["verdict"]] for j in judged)
    assert "verdicts read from the labels' log-probabilities" in (tmp_path / "run" / "arena_hard.md").read_text()


def test_fake_judge_scores_equal_a_hand_computation_and_rerun_is_cached(tmp_path, tiny_lm_dir, judge_server):
    data = make_data(tmp_path / "data")
    cfg = arena_cfg(tmp_path, data, tiny_lm_dir, endpoint_overrides(judge_server))
    result = evaluate_arena_hard(cfg)
    assert result["verdicts"]["counts"] == {"A=B": 1, "A>B": 2, "B>A": 1, "B>>A": 1, "unparsed": 1}
    # q1: 3 + 1 wins; q2: 2 losses; q3: 1 tie, and game 2's conflicting labels make no row
    # raw_by_count: 100.0 * (4 + 1 / 2) / 7, the same two roundings as 100 * 4.5 / 7: exact
    rows = {"rows": 7, "wins": 4, "ties": 1, "losses": 2, "raw_by_count": 100 * 4.5 / 7}
    assert result["policy_rows"] == rows
    score = result["score"]
    # SOURCES.md step 3: every battle is against the baseline, raw = 100 (wins + ties / 2) / rows
    # the fit's certified gradient (tolerances.bradley_terry_star) plus the closed form's 2 roundings of <= 100
    bound = tol.bradley_terry_star(result["pool"]["rows"], 7) + tol.worst_case(2, 100)
    assert score["raw"] == pytest.approx(100 * (4 + 1 / 2) / 7, abs=bound)
    assert score["relative_drop"] == (score["raw"] - score["sc"]) / score["raw"]  # style_control_drop's own: exact
    assert len(score["raw_ci"]) == 2 and len(score["sc_ci"]) == 2
    assert result["pool"]["name"] == "policy+baseline" and result["pool"]["models"][1] == BASELINE
    judge = result["judge"]
    assert (judge["prompt"], judge["upstream_prompt"], judge["model"]) == ("arena_hard_v0.1", True, "canned-judge")
    assert judge["second_attempts"] == 1 and judge["generated"] == 7
    # upstream's request: its system prompt and template, temperature 0, 4096 tokens; the follow-up carries the
    # first answer and upstream's request to finish
    chats = judge_server.chat_requests()
    assert all(r["body"]["temperature"] == 0 and r["body"]["max_tokens"] == 4096 for r in chats)
    first = next(r["body"]["messages"] for r in chats if len(r["body"]["messages"]) == 2)
    assert first[0] == {"role": "system", "content": UPSTREAM.system} and first[1]["content"].startswith(
        "<|User Prompt|>"
    )
    follow = [r["body"]["messages"] for r in chats if len(r["body"]["messages"]) == 4]
    assert len(follow) == 1 and [m["role"] for m in follow[0]] == ["system", "user", "assistant", "user"]
    assert follow[0][2]["content"] == "I need to weigh both answers further."
    judged = [json.loads(x) for x in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    assert [(j["question_id"], j["game"]) for j in judged][:2] == [("q1", 1), ("q1", 2)]
    assert judged[-1]["attempts"] == 2 and judged[-1]["judgement"] == (
        "I need to weigh both answers further.\nHaving compared them again: it is either [[A>B]] or [[B>A]]."
    )
    asked = len(judge_server.chat_requests())
    again = evaluate_arena_hard(cfg)  # resume: nothing generated, nothing judged
    assert again["generation"]["generated"] == 0 and again["judge"]["generated"] == 0
    assert len(judge_server.chat_requests()) == asked and again["score"] == score


def test_uneven_verdicts_give_a_score_away_from_one_half(tmp_path, tiny_lm_dir, judge_server):
    """Without q2 (the baseline's wins) the policy has 4 wins and 1 tie in 5 rows: raw = 100 * 4.5 / 5."""
    data = make_data(tmp_path / "data")
    questions = [json.loads(x) for x in (data / "question.jsonl").read_text().splitlines()]
    (data / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions if q["question_id"] != "q2"))
    result = evaluate_arena_hard(arena_cfg(tmp_path, data, tiny_lm_dir, endpoint_overrides(judge_server)))
    raw_bound = tol.bradley_terry_star(result["pool"]["rows"], 5) + tol.worst_case(2, 100)
    assert result["score"]["raw"] == pytest.approx(100 * 4.5 / 5, abs=raw_bound)
    # the SC fit (2 models + 4 style coefficients, ridge 1 / (C 2 rows), C = 1) is 1 / (C 2 rows)-strongly convex:
    # its certified gradient puts beta within sqrt(6) 1e-8 C 2 rows of the optimum; SC differs by more than both
    sc_bound = tol.win_rate_from_coef_error(math.sqrt(6) * tol.BT_GRAD_MAX * 1.0 * 2 * result["pool"]["rows"])
    assert result["score"]["sc"] != pytest.approx(result["score"]["raw"], abs=raw_bound + sc_bound)


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
    assert ys == [(r - s) / r for r, s in (RAW_SC[rm] for rm in sorted(RAW_SC))]  # arena_json's own: exact
    # the moment formula against scipy's: tolerances.pearson_diff
    assert sc["pearson_r"] == pytest.approx(stats.pearsonr(xs, ys).statistic, abs=tol.pearson_diff(xs, ys))
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
        return "OK" if body["messages"][-1]["content"] == "Reply with OK." else "Assistant A is better. [[A>B]]"


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
    # the policy's 6 rows among the pool's: the fit's certified gradient (tolerances.bradley_terry_star)
    assert score["raw"] == pytest.approx(50.0, abs=tol.bradley_terry_star(result["pool"]["rows"], 6))
    assert round(score["pool_scores"]["gpt-4-0613"]["raw"], 2) == 37.90
    pool = result["pool"]
    assert pool["name"] == "with-leaderboard" and pool["models"][2:] == leaderboard["models"]
    assert pool["battle_sets"]["leaderboard"]["rows"] == 2658 and pool["rows"] == 2658 + 6


def test_a_policy_named_like_the_baseline_is_refused_before_any_work(tmp_path, tiny_lm_dir):
    cfg = arena_cfg(tmp_path, make_data(tmp_path / "data"), tiny_lm_dir, [f"policy.name={BASELINE}"])
    with pytest.raises(ValueError, match="policy.name='gpt-4-0314' names another model of the pool"):
        evaluate_arena_hard(cfg)
    assert not (tmp_path / "generations").exists()
