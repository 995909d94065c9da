"""LLM judges as reward models: verdict parsing, both-orders agreement, one-vs-nine, and ``evaluate_rm`` end to end
with a judge: a local tiny model through the generation backends, and an OpenAI-compatible endpoint played by a
local server that answers with canned verdicts (none is reachable here).

The server's verdict is a known function of the two answers it is shown (:func:`canned_pairwise`), symmetric in
A and B except where it is meant to show position bias, so the outcome of every comparison is computed here by
hand from the raw responses (:func:`expected_outcome`) and compared with ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from rmlab.benchmarks import BENCHMARKS
from rmlab.data.rm_bench import STYLES
from rmlab.generation.endpoint import ChatEndpoint, EndpointError, EndpointSettings
from rmlab.metrics.judge import OUTCOMES, flip_positions, pairwise_outcome, rating_outcome, wins_and_ties
from rmlab.metrics.reward_math import pairwise_outcomes, problem_outcomes, summarize
from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.judge_prompts import (
    JUDGE_PROMPTS,
    has_no_arena_hard_tag,
    parse_arena_hard_verdict,
    parse_boxed_verdict,
    parse_labelled_rating,
    parse_trailing_rating,
)

KEY_ENV, KEY = "RMLAB_TEST_JUDGE_KEY", "sk-test-0123456789abcdef-never-write-me"
VOLATILE = {"scoring", "wall_seconds", "run", "config"}

# ----------------------------------------------------------------------------------------------------------------
# verdict parsing
# ----------------------------------------------------------------------------------------------------------------

RB_PAIR = JUDGE_PROMPTS["rewardbench_pair_v2"].parse
RMATH_PAIR = JUDGE_PROMPTS["rewardmath_pair"].parse


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Assistant A is more accurate and complete.\n\n[[A]]", "A"),
        ("Both are fluent, but B answers the question.\n[[B]]", "B"),
        ("They are equally good. [[C]]", "tie"),  # MT-Bench's tie tag
        ("[[ B ]]", "B"),
        # the judge quotes the format before giving its verdict: the last tag counts (rewardbench reads A)
        ('I must output "[[A]]" if A is better, "[[B]]" if B is better. Final verdict: [[B]]', "B"),
        ("Assistant B is better.", None),  # no tag
        ("[A]", None),
        ("[[D]]", None),
        ("", None),
    ],
)
def test_rewardbench_pairwise_verdicts(text, want):
    assert RB_PAIR(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Solution A makes an arithmetic error in step 3.\nJudgement: [[B]]", "B"),
        ("Judgement: B", "B"),  # a bare letter right after the anchor
        ("Judgement: **A**", "A"),
        # RewardMATH reads the first capital A or B after the anchor: "Assistant B" would be A
        ("Judgement: Assistant B is better.", None),
        ("Early on I thought Judgement: [[A]], but on reflection, Judgement: [[B]]", "B"),
        ("Solution A is right. [[A]]", "A"),  # no anchor: the tag alone
        ("No verdict here.", None),
    ],
)
def test_rewardmath_pairwise_verdicts(text, want):
    assert RMATH_PAIR(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("A thorough analysis shows A is better: \\boxed{A>>B}", "A"),
        ("\\boxed{A>B}", "A"),
        ("\\boxed{A=B}", "tie"),
        ("\\boxed{B > A}", "B"),
        ("first \\boxed{A>B}, then on reflection \\boxed{B>>A}", "B"),
        ("\\boxed{A}", None),
        ("B is better", None),
    ],
)
def test_rmbench_boxed_verdicts(text, want):
    assert parse_boxed_verdict(text) == want


@pytest.mark.parametrize(
    ("text", "trailing", "labelled"),
    [
        ("The response is accurate and well organised.\n\n9", 9, None),
        ("Clear and correct.\n10\n", 10, None),
        ("Rating: [[7]]", 7, 7),  # RewardMATH's format; rewardbench's rule also reads a bracketed final number
        ("Rating: 8. The steps are mostly right.", None, 8),  # text after the rating: rewardbench reads nothing
        ("Rating: [[7]] ... on reflection, Rating: [[4]]", 4, 4),
        ("I give it 11", None, None),  # out of range
        ("Rating: [[0]]", None, None),
        ("Rating: excellent", None, None),
        ("A solid answer.", None, None),
        ("Score: 7/10", 10, None),  # a trailing 10 is what rewardbench's regular expression sees
    ],
)
def test_rating_verdicts(text, trailing, labelled):
    assert parse_trailing_rating(text) == trailing
    assert parse_labelled_rating(text) == labelled


@pytest.mark.parametrize(
    ("text", "want", "follow_up"),
    [
        # each of the five labels, after an explanation as gpt-4-1106-preview writes one
        (
            "My answer: 2 + 2 = 4.\n\nAssistant A is correct and B is not.\n\nMy final verdict is: [[A>>B]]",
            "A>>B",
            False,
        ),
        (
            "Both are right; A is a little clearer.\n\nMy final verdict is Assistant A is slightly better: [[A>B]]",
            "A>B",
            False,
        ),
        ("My final verdict is tie: [[A=B]]", "A=B", False),
        ("B adds an example.\n\nMy final verdict is Assistant B is slightly better: [[B>A]].", "B>A", False),
        ("A contains a factual error.\n\nMy final verdict is: [[B>>A]]", "B>>A", False),
        # markdown around the tag
        ("### Verdict\n**My final verdict is: [[B>A]]**", "B>A", False),
        ("Final verdict: `[[A=B]]`", "A=B", False),
        ("My final verdict is tie: [[A=B]]. To repeat: [[A=B]]", "A=B", False),  # the same label twice is fine
        # no verdict tag at all: upstream asks once more
        ("Assistant A is better.", None, True),
        ("", None, True),
        ("My final verdict is [[ A>B ]]", None, True),  # upstream's pattern takes no spaces
        ("My final verdict is $\\boxed{A>B}$", None, True),
        # two different labels: no verdict, and no second attempt (upstream's get_score returns try_again=False)
        ("At first glance [[A>B]], but after checking the math, [[B>A]].", None, False),
        ("The options are [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]. Mine: [[B>A]]", None, False),
        # a tag the pattern matches that is none of the five: upstream weighs it 0
        ("My final verdict: [[A]]", None, False),
        ("My final verdict: [[A>>>B]]", None, False),
    ],
)
def test_arena_hard_verdicts_are_read_as_upstream_reads_them(text, want, follow_up):
    """lmarena/arena-hard-auto@3071ef9 gen_judgment.py:22-32 (exactly one distinct match of
    ``\\[\\[([AB<>=]+)\\]\\]``) and show_result.py:33-46 (only the five labels count)."""
    assert parse_arena_hard_verdict(text) == want
    assert JUDGE_PROMPTS["arena_hard_v0.1"].parse(text) == want
    assert has_no_arena_hard_tag(text) is follow_up


ARENA_SYSTEM_SHA256 = "03f68010febd7a6405102ef882b4dd5a9700c56b2e1ff286d3b38f5d3a929bbf"  # judge_config.yaml:19


def test_arena_hard_prompt_renders_as_upstream_composes_it():
    """gen_judgment.py:66-93 at 3071ef9: the system prompt, then the template of judge_config.yaml:21 with the
    question as question_1 and the two answers as answer_1 (A) and answer_2 (B). An answer's own braces stay."""
    import hashlib

    template = JUDGE_PROMPTS["arena_hard_v0.1"]
    code = "def f():\n    return {'answer_2': 1}"
    system, user = template.messages("What is 2+2?", "4", code)
    assert user == {
        "role": "user",
        "content": (
            "<|User Prompt|>\nWhat is 2+2?\n\n"
            "<|The Start of Assistant A's Answer|>\n4\n<|The End of Assistant A's Answer|>\n\n"
            "<|The Start of Assistant B's Answer|>\ndef f():\n    return {'answer_2': 1}\n"
            "<|The End of Assistant B's Answer|>"
        ),
    }
    assert system["role"] == "system" and hashlib.sha256(system["content"].encode()).hexdigest() == ARENA_SYSTEM_SHA256
    assert system["content"].startswith("Please act as an impartial judge and evaluate the quality of the responses")
    assert system["content"].endswith(
        '5. Assistant B is significantly better: [[B>>A]]\n\nExample output: "My final verdict is tie: [[A=B]]".'
    )
    assert template.follow_up.prompt == "continue your judgment and finish by outputting a final verdict label"
    assert "lmarena/arena-hard-auto@3071ef9" in template.source


def test_prompts_render_the_sources_text():
    """Each template fills its placeholders and keeps the source's verdict instructions."""
    pair = JUDGE_PROMPTS["rewardbench_pair_v2"].messages("Q?", "first", "second")
    assert [m["role"] for m in pair] == ["system", "user"]
    assert pair[0]["content"].endswith('"[[A]]" if assistant A is better, "[[B]]" if assistant B is better.')
    assert "[The Start of Assistant A's Answer]\nfirst\n[The End of Assistant A's Answer]" in pair[1]["content"]
    rating = JUDGE_PROMPTS["rewardbench_rating"].messages("Q?", "an answer")
    assert [m["role"] for m in rating] == ["user"] and rating[0]["content"].endswith("[Your judgement]")
    math = JUDGE_PROMPTS["rewardmath_rating"].messages("1+1?", "1. 1+1=2")
    assert "Solution:\n1. 1+1=2\n[The End of Assistant\u2019s Answer]" in math[1]["content"]
    assert '"Rating: [[5]]"' in math[0]["content"]
    boxed = JUDGE_PROMPTS["rmbench_boxed"].messages("Q?", "a", "b")
    assert len(boxed) == 1 and "\\boxed{A>>B}" in boxed[0]["content"] and "{{" not in boxed[0]["content"]
    assert {JUDGE_PROMPTS[n].mode for n in JUDGE_PROMPTS.names()} == {"pairwise", "rating"}


# ----------------------------------------------------------------------------------------------------------------
# both orders, ratings, one-vs-nine
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen_first", "rejected_first", "want"),
    [
        ("A", "B", "win"),  # chosen preferred in both orders
        ("B", "A", "loss"),
        ("tie", "tie", "tie"),
        ("A", "A", "position_flip"),  # always the first slot: position bias
        ("B", "B", "position_flip"),
        ("A", "tie", "position_flip"),  # the orders disagree
        ("tie", "B", "position_flip"),
        ("A", None, "unparsed"),
        (None, "B", "unparsed"),
        (None, None, "unparsed"),
    ],
)
def test_both_orders_must_agree(chosen_first, rejected_first, want):
    assert pairwise_outcome(chosen_first, rejected_first) == want


def test_graded_verdicts_count_by_their_side():
    """Arena-Hard's five labels: only the side counts for a comparison (the strength weighs in its battles)."""
    assert pairwise_outcome("A>>B", "B>A") == "win" and pairwise_outcome("B>A", "A>>B") == "loss"
    assert pairwise_outcome("A=B", "tie") == "tie" and pairwise_outcome("A>B", "A>>B") == "position_flip"
    assert pairwise_outcome("A>B", None) == "unparsed"
    assert flip_positions(["A>B", "B>>A", "A"], ["A>>B", "B", "B>A"]) == {"A_both_orders": 1, "B_both_orders": 1}


def test_ratings_and_what_counts_for_the_metrics():
    got = [rating_outcome(7, 3), rating_outcome(3, 7), rating_outcome(5, 5), rating_outcome(None, 2)]
    assert got == ["win", "loss", "tie", "unparsed"]
    wins, ties = wins_and_ties(["win", "loss", "tie", "position_flip", "unparsed"])
    assert wins.tolist() == [True, False, False, False, False]  # an unparsed verdict never wins
    assert ties.tolist() == [False, False, True, True, False]
    assert flip_positions(["A", "B", "A", None], ["A", "B", "B", None]) == {"A_both_orders": 1, "B_both_orders": 1}
    with pytest.raises(ValueError, match="unknown judge outcome"):
        wins_and_ties(["won"])


def test_one_vs_nine():
    """Three problems, k = 3 pairs each (RewardMATH: a problem is won only if all its pairs are).

    P1: win, win, win -> won, rank 1. P2: win, tie, win -> lost; won with ties; rank 1 + 1 = 2.
    P3: win, position flip, unparsed -> lost, not even with ties; rank 3.
    accuracy 1/3, with ties 2/3, MRR (1 + 1/2 + 1/3) / 3.
    """
    outcomes = np.array([["win"] * 3, ["win", "tie", "win"], ["win", "position_flip", "unparsed"]])
    won, tied = wins_and_ties(outcomes.ravel())
    s = summarize(pairwise_outcomes(won.reshape(3, 3), tied.reshape(3, 3)), k=3, n_boot=0)
    assert (s["accuracy"], s["accuracy_with_ties"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert s["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_rating_mode_is_the_benchmarks_own_comparison_of_scores(tmp_path, rm_bench_dir):
    """Ratings compared per comparison give exactly what the benchmark computes from the same numbers as scores,
    ties included (RM-Bench: strictly higher wins)."""
    from tests.conftest import compose_eval_cfg

    bench = BENCHMARKS["rm_bench"](compose_eval_cfg(tmp_path, ["benchmark.max_per_domain=4"]).benchmark)
    items, _ = bench.load()
    rng = np.random.default_rng(0)
    ratings = {(it.domain, it.id): rng.integers(1, 4, size=(2, 3)) for it in items}  # 1-3: many ties
    outcomes = [
        rating_outcome(int(ratings[(it.domain, it.id)][0, i]), int(ratings[(it.domain, it.id)][1, j]))
        for it in items
        for i in range(3)
        for j in range(3)
    ]
    from_judge, _ = bench.compute_comparisons(items, outcomes, n_boot=50, confidence=0.95, seed=0)
    scores = np.concatenate([ratings[(it.domain, it.id)].ravel() for it in items]).astype(float)
    from_scores, _ = bench.compute(items, scores, n_boot=50, confidence=0.95, seed=0)
    from_scores.pop("style_bias")  # the style diagnostic regresses scalar rewards; verdicts have none
    assert from_judge == from_scores
    math_bench = BENCHMARKS["reward_math"](compose_eval_cfg(tmp_path, ["benchmark=reward_math_sample"]).benchmark)
    problems, _ = math_bench.load()
    s = rng.integers(1, 4, size=(len(problems), 10)).astype(float)
    math_outcomes = [rating_outcome(int(row[0]), int(x)) for row in s for x in row[1:]]
    got, _ = math_bench.compute_comparisons(problems, math_outcomes, n_boot=0, confidence=0.95, seed=0)
    want = summarize(problem_outcomes(s[:, 0], s[:, 1:]), k=9, n_boot=0)
    assert (got["accuracy"], got["accuracy_with_ties"], got["mrr"]) == (
        want["accuracy"], want["accuracy_with_ties"], want["mrr"])  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# an OpenAI-compatible endpoint, played by a local server
# ----------------------------------------------------------------------------------------------------------------

_ANSWER = re.compile(
    r"\[The Start of Assistant ([AB])'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]", re.DOTALL
)


def canned_pairwise(a: str, b: str) -> str:
    """The server's pairwise answer: by ``(len(a) + len(b)) % 6`` (the same in both orders), always the first
    slot (position bias), a tie, no verdict, or the longer answer (quoting the format first, once)."""
    h = (len(a) + len(b)) % 6
    if h == 0:
        return "Assistant A answers first, so it is better.\nJudgement: [[A]]"
    if h == 1:
        return "Both answers are equally good.\nJudgement: [[C]]"
    if h == 2:
        return "I cannot decide between the two answers."
    slot = "A" if len(a) > len(b) else ("B" if len(b) > len(a) else "C")
    if h == 3:
        return f'The format is "[[A]]" if A is better, "[[B]]" if B is better. My verdict: Judgement: [[{slot}]]'
    return f"Assistant {slot} is more detailed.\n\nJudgement: [[{slot}]]"


def expected_outcome(chosen: str, rejected: str) -> str:
    """What :func:`canned_pairwise` asked in both orders must come to."""
    h = (len(chosen) + len(rejected)) % 6
    if h in (0, 1, 2):
        return ("position_flip", "tie", "unparsed")[h]
    return "win" if len(chosen) > len(rejected) else ("loss" if len(chosen) < len(rejected) else "tie")


def canned_rating(answer: str) -> str:
    """1 + len % 10, or no rating when len % 7 == 0; in rewardbench's format (the number ends the text)."""
    if len(answer) % 7 == 0:
        return "A reasonable answer overall."
    return f"The answer is adequate.\n\n{1 + len(answer) % 10}"


class ChatServer:
    """A threaded HTTP server answering ``POST /v1/chat/completions`` like a judge; records every request.

    The first chat request (not the preflight) is answered with HTTP 429 once; a wrong key gets HTTP 401 with a
    message echoing the Authorization header (as some servers do), to check that errors never carry the key."""

    def __init__(self):
        self.requests: list[dict] = []
        self.rate_limited = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization")
                with server._lock:
                    server.requests.append({"path": self.path, "authorization": auth, "body": body})
                    first_chat = server.rate_limited == 0 and body["max_tokens"] > 1
                    if first_chat:
                        server.rate_limited += 1
                if auth != f"Bearer {KEY}":
                    return self._send(401, {"error": {"message": f"Incorrect API key provided: {auth}"}})
                if first_chat:
                    return self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": server.answer(body)}}]})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    @staticmethod
    def answer(body: dict) -> str:
        user = body["messages"][-1]["content"]
        if user == "Reply with OK.":
            return "OK"
        answers = dict(_ANSWER.findall(user))
        if answers:
            return canned_pairwise(answers["A"], answers["B"])
        return canned_rating(user.split("[Response]\n", 1)[1].rsplit("\n\n[Your judgement]", 1)[0])

    def chat_requests(self) -> list[dict]:
        """Requests that asked for a verdict (not the preflight), answered or not."""
        return [r for r in self.requests if r["body"]["max_tokens"] > 1]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    s = ChatServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _endpoint_overrides(server: ChatServer, extra=(), data=("benchmark.max_per_domain=1",)) -> list[str]:
    return [
        "model=judge_endpoint",
        f"model.judge.endpoint.base_url={server.base_url}",
        "model.judge.endpoint.model=canned-judge",
        f"model.judge.endpoint.api_key_env={KEY_ENV}",
        "model.judge.endpoint.backoff_s=0.01",
        "model.judge.endpoint.concurrency=2",
        "model.judge.chunk_size=8",
        "bootstrap.n_boot=0",
        *data,
        *extra,
    ]


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_endpoint_judge_on_rm_bench(eval_cfg, server, rm_bench_dir, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    cfg = eval_cfg(_endpoint_overrides(server))
    m = evaluate_rm(cfg)
    items, _ = BENCHMARKS["rm_bench"](cfg.benchmark).load()

    # every comparison's outcome, by hand from the raw responses; the 3x3 matrix and tie counts from them
    want = {it.key: [[expected_outcome(c, r) for r in it.rejected] for c in it.chosen] for it in items}
    rows = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    assert {(r["domain"], r["id"]): r["outcome"] for r in rows} == want
    for d, dm in m["domains"].items():
        mine = [want[it.key] for it in items if it.metric_domain == d]
        matrix = [[sum(o[i][j] == "win" for o in mine) / len(mine) for j in range(3)] for i in range(3)]
        ties = sum(o[i][j] in ("tie", "position_flip") for o in mine for i in range(3) for j in range(3))
        assert dm["matrix"] == matrix and dm["n_ties"] == ties, d
    flat = [o for v in want.values() for row in v for o in row]
    assert m["judge"]["outcomes"] == {k: flat.count(k) for k in OUTCOMES}
    assert all(m["judge"]["outcomes"][k] > 0 for k in OUTCOMES)  # the canned answers exercise every outcome
    assert (m["judge"]["mode"], m["judge"]["prompt"]) == ("pairwise", "rewardbench_pair_v2")
    assert m["judge"]["position_flips"] == flat.count("position_flip") and m["judge"]["ties"] == flat.count("tie")
    assert m["judge"]["position_flips_same_slot"]["A_both_orders"] == flat.count("position_flip")
    assert m["scorer"]["model"] == "canned-judge" and m["model"] == "canned-judge"
    o = m["judge"]["outcomes"]
    table = (tmp_path / "run" / "table.md").read_text()
    assert f"| {len(flat)} | {o['win']} | {o['loss']} | {o['tie']} | {o['position_flip']} | {o['unparsed']} |" in table

    # both orders asked, greedily, through the chat-completions protocol, with the key in the header only
    chats = server.chat_requests()
    assert server.rate_limited == 1 and len(chats) == m["scoring"]["generated"] + 1  # one 429, then the retry
    assert all(r["path"] == "/v1/chat/completions" and r["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert all(r["body"]["temperature"] == 0 and r["body"]["max_tokens"] == 2048 for r in chats)
    assert [msg["role"] for msg in chats[0]["body"]["messages"]] == ["system", "user"]
    judged = [json.loads(line) for line in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    assert len(judged) == 9 * len(items) and all(len(j["judgements"]) == 2 for j in judged)

    # the key is nowhere on disk (run dir, score cache) nor in the log; its variable's name is in the config
    written = _files_text(tmp_path)
    assert KEY not in written and KEY not in caplog.text
    assert KEY_ENV in (tmp_path / "run" / "config.yaml").read_text()

    # a re-run answers from the cache: no request at all, not even the preflight, and no key needed
    monkeypatch.delenv(KEY_ENV)
    before = len(server.requests)
    again = evaluate_rm(eval_cfg(_endpoint_overrides(server)))
    assert len(server.requests) == before and again["scoring"]["generated"] == 0
    assert _stable(again) == _stable(m)


def test_killed_endpoint_run_resends_only_what_was_not_answered(eval_cfg, server, rm_bench_dir, tmp_path):
    uninterrupted = evaluate_rm(eval_cfg(_endpoint_overrides(server), tmp_path / "a"))
    unique = uninterrupted["scoring"]["generated"]

    def kill_after_two_chunks(chunk_no):
        if chunk_no == 1:
            raise KeyboardInterrupt

    sent = len(server.chat_requests())
    cfg = eval_cfg(_endpoint_overrides(server), tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        evaluate_rm(cfg, on_batch=kill_after_two_chunks)
    assert len(server.chat_requests()) - sent == 16  # two chunks of 8
    assert not (tmp_path / "b" / "run" / "metrics.json").exists()
    sent = len(server.chat_requests())
    resumed = evaluate_rm(cfg)
    assert len(server.chat_requests()) - sent == unique - 16  # only what was never answered
    assert resumed["scoring"]["from_cache"] == uninterrupted["scoring"]["requests"] - (unique - 16)
    assert _stable(resumed) == _stable(uninterrupted)


def test_endpoint_rating_mode_on_rm_bench(eval_cfg, server, rm_bench_dir, tmp_path):
    m = evaluate_rm(eval_cfg(_endpoint_overrides(server, ["model.judge.mode=rating"])))
    items, _ = BENCHMARKS["rm_bench"](eval_cfg(_endpoint_overrides(server)).benchmark).load()

    def rating(text):
        return None if len(text) % 7 == 0 else 1 + len(text) % 10

    flat = [rating_outcome(rating(c), rating(r)) for it in items for c in it.chosen for r in it.rejected]
    assert m["judge"]["outcomes"] == {k: flat.count(k) for k in OUTCOMES}
    assert (m["judge"]["mode"], m["judge"]["prompt"]) == ("rating", "rewardbench_rating")
    assert m["judge"]["requests"] == len({(it.prompt, t) for it in items for t in (*it.chosen, *it.rejected)})
    assert m["judge"]["position_flips"] == 0


def test_endpoint_judge_one_vs_nine_on_reward_math(eval_cfg, server, data_dir, tmp_path):
    """RewardMATH's sample: a problem counts only if the correct solution wins all nine pairs; solutions are
    shown as numbered steps, the prompt is the authors' pairwise prompt."""
    m = evaluate_rm(eval_cfg(_endpoint_overrides(server, data=["benchmark=reward_math_sample"])))
    problems, _ = BENCHMARKS["reward_math"](eval_cfg(["benchmark=reward_math_sample"]).benchmark).load()

    def numbered(sol):
        return "\n".join(f"{i}. {s}" for i, s in enumerate(sol.steps, start=1))

    per_problem = [[expected_outcome(numbered(p.correct), numbered(w)) for w in p.incorrect] for p in problems]
    won = [all(o == "win" for o in row) for row in per_problem]
    assert m["accuracy"] == sum(won) / len(won)
    losses = [sum(o != "win" for o in row) for row in per_problem]
    assert m["mrr"] == pytest.approx(np.mean([1 / (1 + n) for n in losses]))
    assert m["judge"]["prompt"] == "rewardmath_pair" and m["judge"]["comparisons"] == 9 * len(problems)
    assert "Judgement: [[A]]" in server.chat_requests()[0]["body"]["messages"][0]["content"]
    assert "\n1. " in server.chat_requests()[0]["body"]["messages"][1]["content"]


def test_unreachable_endpoint_fails_before_any_work(eval_cfg, monkeypatch, rm_bench_dir, tmp_path):
    monkeypatch.setenv(KEY_ENV, KEY)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = eval_cfg(
        [
            "model=judge_endpoint",
            f"model.judge.endpoint.base_url=http://127.0.0.1:{port}/v1",
            "model.judge.endpoint.model=m",
            f"model.judge.endpoint.api_key_env={KEY_ENV}",
            "benchmark.max_per_domain=1",
        ]
    )
    with pytest.raises(EndpointError, match=rf"cannot reach http://127.0.0.1:{port}/v1/chat/completions"):
        evaluate_rm(cfg)
    assert not (tmp_path / "run").exists()


def test_endpoint_errors_name_the_problem_without_the_key(server, monkeypatch):
    settings = EndpointSettings(server.base_url, "canned-judge", api_key_env=KEY_ENV, backoff_s=0.0)
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-also-secret")
    with pytest.raises(EndpointError, match=r"HTTP 401") as err:
        ChatEndpoint(settings).preflight()
    assert "sk-wrong-key-also-secret" not in str(err.value) and "<redacted>" in str(err.value)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EndpointError, match=rf"environment variable {KEY_ENV} .* is not set"):
        ChatEndpoint(settings)


# ----------------------------------------------------------------------------------------------------------------
# a local model through the generation backends
# ----------------------------------------------------------------------------------------------------------------


def test_local_judge_end_to_end(eval_cfg, tiny_lm_dir, rm_bench_dir, tmp_path):
    """The tiny random model writes no verdict (it answers blank lines): every comparison is unparsed, counted, and
    none is a win."""
    from rmlab.rm_eval.judge import build_chat

    overrides = [
        "model=judge_local",
        f"model.pretrained={tiny_lm_dir}",
        "model.judge.max_new_tokens=4",
        "model.judge.local.batch_size=6",
        "benchmark.domains=[chat,safety-refuse]",
        "benchmark.max_per_domain=1",
        "bootstrap.n_boot=0",
    ]
    m = evaluate_rm(eval_cfg(overrides))
    run = tmp_path / "run"
    for name in ("metrics.json", "scores.jsonl", "judgements.jsonl", "table.md", "heatmap_chat.png"):
        assert (run / name).is_file(), name
    assert m["judge"]["backend"] == "local" and m["judge"]["comparisons"] == 18
    assert m["judge"]["outcomes"]["unparsed"] == 18 and m["judge"]["unparsed_verdicts"] == 36
    assert all(dm["avg"] == 0.0 and dm["n_ties"] == 0 for dm in m["domains"].values())
    assert m["scorer"]["backend"] == "local" and m["scorer"]["decoding"]["max_new_tokens"] == 4
    assert m["scorer"]["generator"] == {"engine": "hf", "dtype": "float32", "max_length": None, "batch_size": 6}
    assert 0 < m["scoring"]["generated"] <= m["judge"]["requests"] == 36  # both orders (repeats asked once)
    judged = [json.loads(line) for line in (run / "judgements.jsonl").read_text().splitlines()]
    assert len(judged) == 18 and [j["comparison"].split("/", 2)[2] for j in judged[:3]] == [
        f"chosen=concise/rejected={s}" for s in STYLES
    ]
    # the judge prompt in the model's own chat template, its system message first, up to the assistant turn
    chat = build_chat(eval_cfg(overrides))
    context = chat.context(JUDGE_PROMPTS["rewardbench_pair_v2"].messages("Q?", "a", "b"))
    assert context.startswith("<|im_start|>system\nPlease act as an impartial judge")
    assert context.endswith("[The End of Assistant B's Answer]<|im_end|>\n<|im_start|>assistant\n")
    again = evaluate_rm(eval_cfg(overrides))  # from the cache: no model loaded, nothing generated
    assert again["scoring"]["generated"] == 0 and _stable(again) == _stable(m)
    rating = evaluate_rm(eval_cfg([*overrides, "model.judge.mode=rating"], tmp_path / "rating"))
    assert rating["score_cache_key"] != m["score_cache_key"] and rating["judge"]["prompt"] == "rewardbench_rating"
    assert rating["judge"]["requests"] <= 12  # each distinct response rated once


def _loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """log p(continuation | context) by one forward pass: the pair tokenised together, split where the context's
    own tokens end (lm-eval's rule), no special tokens added (SmolLM2's template writes its own)."""
    import torch

    whole = tokenizer(context + continuation, add_special_tokens=False).input_ids
    n = len(tokenizer(context, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
    return float(sum(logp[i - 1, whole[i]] for i in range(n, len(whole))))


def test_local_judge_reads_verdicts_from_label_logprobs(eval_cfg, tiny_lm_dir, rm_bench_dir, tmp_path):
    """``model.judge.verdict=logprob``: nothing is generated; each order's verdict is the likelier of ``A]]`` and
    ``B]]`` after the judge prompt and ``[[`` (checked against a direct forward pass), both orders must still agree,
    and the reading is in the outputs and the cache key."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmlab.rm_eval.judge import build_chat

    overrides = [
        "model=judge_local",
        f"model.pretrained={tiny_lm_dir}",
        "model.judge.verdict=logprob",
        "model.judge.local.batch_size=6",
        "benchmark.domains=[chat,safety-refuse]",
        "benchmark.max_per_domain=1",
        "bootstrap.n_boot=0",
    ]
    m = evaluate_rm(eval_cfg(overrides))
    judge = m["judge"]
    assert judge["verdict_reading"] == "logprob" and judge["comparisons"] == 18
    assert judge["unparsed_verdicts"] == 0 and judge["outcomes"]["unparsed"] == 0
    assert m["scorer"]["verdict"] == "logprob" and m["scorer"]["decoding"] is None
    assert "read from the labels' log-probabilities" in (tmp_path / "run" / "table.md").read_text()
    judged = [json.loads(line) for line in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    for j in judged:
        for verdict, text, detail in zip(j["verdicts"], j["judgements"], j["details"]):
            lp = detail["logprobs"]
            assert set(lp) == {"A]]", "B]]"} and verdict == ("A" if lp["A]]"] > lp["B]]"] else "B")
            assert text == f"[[{verdict}]]"
        assert j["outcome"] == pairwise_outcome(*j["verdicts"])  # a win only if both orders prefer chosen
    assert sum(j["outcome"] == "win" for j in judged) == judge["outcomes"]["win"]

    # the first comparison's two orders, scored directly
    cfg = eval_cfg(overrides)
    bench = BENCHMARKS["rm_bench"](cfg.benchmark)
    first = bench.comparisons(bench.load()[0])[0]
    chat, template = build_chat(cfg), JUDGE_PROMPTS["rewardbench_pair_v2"]
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    for order, detail in zip(
        [(first.chosen, first.rejected), (first.rejected, first.chosen)], judged[0]["details"], strict=True
    ):
        context = chat.context(template.messages(first.prompt, *order)) + "[["
        for label, got in detail["logprobs"].items():
            assert got == pytest.approx(_loglikelihood(model, tok, context, label), abs=1e-4)

    again = evaluate_rm(eval_cfg(overrides))  # from the cache: no model loaded
    assert again["scoring"]["generated"] == 0 and _stable(again) == _stable(m)
    with pytest.raises(ValueError, match="reads pairwise verdicts only"):
        evaluate_rm(eval_cfg([*overrides, "model.judge.mode=rating"], tmp_path / "rating"))


def test_judge_configs_and_errors(eval_cfg, tmp_path):
    from rmlab.rm_eval.judge import build_chat, judge_prompt

    cfg = eval_cfg(["model=judge_local"])
    assert judge_prompt(cfg).id == "rewardbench_pair_v2"
    assert judge_prompt(eval_cfg(["model=judge_local", "benchmark=reward_math"])).id == "rewardmath_pair"
    assert judge_prompt(eval_cfg(["model=judge_local", "model.judge.prompt=rmbench_boxed"])).id == "rmbench_boxed"
    with pytest.raises(ValueError, match="'rewardbench_rating' is a rating prompt, but model.judge.mode='pairwise'"):
        judge_prompt(eval_cfg(["model=judge_local", "model.judge.prompt=rewardbench_rating"]))
    with pytest.raises(KeyError, match="Did you mean: rewardbench_pair_v2"):
        judge_prompt(eval_cfg(["model=judge_local", "model.judge.prompt=rewardbench_pair_v3"]))
    with pytest.raises(ValueError, match="model.judge.mode='ranking'"):
        judge_prompt(eval_cfg(["model=judge_local", "model.judge.mode=ranking"]))
    with pytest.raises(ValueError, match="judge.verdict='sample': choose one of"):
        build_chat(eval_cfg(["model=judge_local", "model.judge.verdict=sample"]))
    with pytest.raises(ValueError, match="judge.verdict='logprob' needs a local judge"):
        build_chat(eval_cfg(["model=judge_endpoint", "model.judge.endpoint.model=m", "model.judge.verdict=logprob"]))


def test_cache_key_covers_what_changes_a_verdict(eval_cfg, tiny_lm_dir, monkeypatch):
    """The cache directory's key changes with the judge's weights, formatting, decoding and backend settings (or
    endpoint and model), mode, prompt and verdict reading; never with the key or the name of its variable. A
    generated verdict's key has no reading field, so caches written before the option existed stay valid."""
    from rmlab.rm_eval.judge import build_chat, judge_prompt

    def key(overrides):
        cfg = eval_cfg(overrides)
        t = judge_prompt(cfg)
        return str({"mode": t.mode, "prompt": t.id, **build_chat(cfg).describe})

    local = ["model=judge_local", f"model.pretrained={tiny_lm_dir}"]
    variants = [
        [],
        ["model.judge.max_new_tokens=64"],
        ["model.judge.local.batch_size=2"],
        ["model.chat_template=plain"],
        ["model.dtype=bfloat16"],
        ["model.judge.mode=rating"],
        ["model.judge.prompt=rmbench_boxed"],
        ["model.pretrained=wheel:smollm2-135m-instruct"],
        ["model.judge.verdict=logprob"],
    ]
    assert len({key(local + v) for v in variants}) == len(variants)
    assert "verdict" not in key(local) and key([*local, "model.judge.verdict=generate"]) == key(local)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("OTHER_KEY", "sk-other")
    endpoint = ["model=judge_endpoint", "model.judge.endpoint.model=m", f"model.judge.endpoint.api_key_env={KEY_ENV}"]
    e = {
        v: key(endpoint + list(v))
        for v in [(), ("model.judge.endpoint.model=m2",), ("model.judge.endpoint.base_url=http://h/v1",)]
    }
    assert len(set(e.values())) == 3
    assert key([*endpoint, "model.judge.endpoint.api_key_env=OTHER_KEY"]) == e[()] and KEY not in e[()]
