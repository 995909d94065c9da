"""AlpacaEval: the local reference sets, alpaca_eval's per-instruction order switch undone, win rates from judges
whose verdicts are known, the three ways a judge's answer is read (a local model's p(m) / p(M), an endpoint's
top_logprobs, a generated ranking), the length-controlled GLM's fallback without the Hub, and bad records named."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.judging.judges import PreferenceJudge
from rmlab.policy_eval.tasks import TASKS
from rmlab.policy_eval.tasks.alpaca_eval import annotator_spec, length_controlled
from rmlab.policy_eval.tasks.base import ScoreContext
from tests.conftest import ROOT


def _task(data_dir, **over):
    cfg = OmegaConf.load(ROOT / "conf" / "task" / "alpaca_eval.yaml")
    for k, v in over.items():
        OmegaConf.update(cfg, k, v)
    return TASKS["alpaca_eval"](cfg, data_dir)


@pytest.fixture(scope="module")
def both(data_dir):
    return {v: _task(data_dir, version=v).load() for v in (1, 2)}


def test_both_reference_sets_are_local_with_the_same_805_instructions(both):
    (v1, p1), (v2, p2) = both[1], both[2]
    # ../shared/data/alpaca-eval/SOURCES.md: 805 rows each, same instructions in the same order
    assert len(v1) == len(v2) == 805 and [e.user for e in v1] == [e.user for e in v2]
    assert v2[0].reference["reference_generator"] == "gpt4_1106_preview" and p2["files"][0].endswith(".json.gz")
    assert v1[0].reference["reference_generator"] == "text_davinci_003" and p1["files"][0].endswith(".jsonl")
    assert v1[0].reference["reference"] != v2[0].reference["reference"]


def _switched(instruction: str, seed: int = 0) -> bool:
    # alpaca_eval's RandomSwitchTwoColumnsProcessor: random.Random(<switch column> + instruction + seed).choices
    return random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]


def _shown_first(messages) -> str:
    """The text of the output shown first (as m / model_1) in an annotator prompt."""
    user = messages[-1]["content"]
    start = user.index('"""', user.index("_identifier" if "model_identifier" in user else '"answer"')) + 3
    return user[start : user.index('"""', start)]


def test_the_order_switch_is_undone(data_dir, both):
    """A judge that always prefers the output it sees first: the policy wins exactly where alpaca_eval switched the
    pair (it then sits first), so the win rate is the switched share."""
    examples = both[2][0][:40]
    task = _task(data_dir, lc_glm="length_controlled_minimal")
    judge = PreferenceJudge("first", "logprob", first_token_probs=lambda messages, tokens: (1.0, 0.0))
    gens = {"greedy": {e.id: [f"policy answer {i}"] for i, e in enumerate(examples)}}
    rows, m = task.score(examples, gens, ScoreContext(n_boot=0, judge=judge))
    expected = [_switched(e.user) for e in examples]
    assert [r["switched"] for r in rows] == expected
    assert [r["preference"] for r in rows] == [2.0 if s else 1.0 for s in expected]
    # alpaca_eval reports percent (x 100) and the task divides by 100: a few roundings of numbers <= 100, each at most
    # one ulp of 100 (1.4e-14), so 1e-13 bounds them
    assert m["win_rate"] == pytest.approx(sum(expected) / 40, abs=1e-13)
    assert m["discrete_win_rate"] == pytest.approx(m["win_rate"], abs=1e-13)
    assert m["unparsed"] == 0 and m["n"] == 40 and m["annotator"] == "weighted_alpaca_eval_gpt4_turbo"


def test_a_judge_that_always_picks_the_policy(data_dir, both):
    examples = both[1][0][:4]
    task = _task(data_dir, version=1)
    policy = {e.id: f"POLICY-{e.id}" for e in examples}

    def ranking(messages, n):
        first_is_policy = _shown_first(messages).startswith("POLICY-")
        r1, r2 = (1, 2) if first_is_policy else (2, 1)
        return f"[{{'model': 'model_1', 'rank': {r1}}}, {{'model': 'model_2', 'rank': {r2}}}]"

    judge = PreferenceJudge("policy-lover", "ranking", complete=ranking)
    rows, m = task.score(examples, {"greedy": {k: [v] for k, v in policy.items()}}, ScoreContext(n_boot=0, judge=judge))
    assert m["metric"] == "discrete_win_rate" and m["value"] == 1.0 and m["win_rate"] == 1.0
    assert all(r["preference"] == 2.0 for r in rows)
    # fewer than five annotations: no length-controlled rate, and the reason says so
    assert m["length_controlled"]["value"] is None and "at least 5" in m["length_controlled"]["why"]


def test_how_a_judge_answer_is_read():
    # p(m) = 0.2, p(M) = 0.6: AlpacaEval 2's preference 2 - p(m) / (p(m) + p(M)) = 1.75
    local = PreferenceJudge("local", "logprob", first_token_probs=lambda messages, tokens: (0.2, 0.6))
    # 2 - 0.2 / 0.8 in float64: three roundings of numbers <= 2, each at most one ulp of 2 (4.4e-16)
    assert local([{"role": "user", "content": "x"}]) == pytest.approx(1.75, abs=2e-15)
    top = [{"token": "M", "logprob": math.log(0.6)}, {"token": "m", "logprob": math.log(0.2)},
           {"token": "The", "logprob": math.log(0.1)}]  # fmt: skip
    endpoint = PreferenceJudge("endpoint", "logprob", top_logprobs=lambda messages: top)
    # via exp(log p - logsumexp(...)): exp / log each within a few ulps (numpy), of numbers <= 2: 1e-14 bounds them
    assert endpoint([{"role": "user", "content": "x"}]) == pytest.approx(1.75, abs=1e-14)  # alpaca_eval's parser
    ranking = PreferenceJudge("r", "ranking", complete=lambda messages, n: "I prefer the second one.")
    assert math.isnan(ranking([{"role": "user", "content": "x"}])) and ranking.unparsed == 1
    with pytest.raises(ValueError, match="mode"):
        PreferenceJudge("x", "pairwise")


def test_annotators_come_from_the_package():
    template, mode = annotator_spec("weighted_alpaca_eval_gpt4_turbo")
    assert mode == "logprob" and "{output_1}" in template and "m or M" in template
    template, mode = annotator_spec("alpaca_eval_gpt4")
    assert mode == "ranking" and "model_1" in template


def test_length_control_discounts_wins_that_come_with_length():
    """Thirty annotations where the policy wins exactly when its output is longer, twenty of them: the raw win
    rate is 2/3; the GLM at equal length must come out nearer to one half than that."""
    rng = np.random.default_rng(0)
    extra = np.r_[rng.integers(50, 500, 20), -rng.integers(50, 500, 10)]
    df = pd.DataFrame({
        "output_1": ["r" * 600] * 30, "output_2": ["p" * int(600 + e) for e in extra],
        "preference": [2.0 if e > 0 else 1.0 for e in extra], "generator_1": "ref", "generator_2": "policy",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
    })  # fmt: skip
    # HF_HUB_OFFLINE=1 in the tests: the v1 GLM's difficulty table is unreadable, so the minimal GLM is fitted
    lc = length_controlled(df, "length_controlled_v1")
    assert lc["glm"] == "length_controlled_minimal" and "df_gamed.csv" in lc["why"]
    assert abs(lc["value"] - 0.5) < abs(2 / 3 - 0.5)
    with pytest.raises(ValueError, match="lc_glm"):
        length_controlled(df, "length_controlled_v9")


def test_bad_records_are_named(tmp_path):
    folder = tmp_path / "alpaca-eval"
    folder.mkdir()
    rows = [{"instruction": "Say hi.", "output": "Hi.", "dataset": "x"}, {"instruction": "Say bye.", "output": ""}]
    (folder / "alpaca_eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataValidationError, match=r"alpaca_eval\.jsonl, record 1: field 'output'"):
        _task(tmp_path, version=1).load()
