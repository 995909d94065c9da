"""PPE: the loaders on records shaped as the Hub dataset cards document them (parquet, as the Hub ships them, and
JSON lines), the two metrics hand-worked through the whole evaluator with exact scores (the length baseline), the
judge reduction, the Hub path when offline, and bad records named by file, record and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rmlab.benchmarks import BENCHMARKS
from rmlab.data.errors import DataUnavailableError, DataValidationError
from rmlab.data.ppe import CORRECTNESS, HUMAN_HUB_ID, K, load_correctness, load_human, validate_best_of_k
from rmlab.rm_eval.evaluate import evaluate_rm


def words(n: int) -> str:
    """A response of exactly n cl100k_base tokens ("a", then " a" each one token): the length baseline's score."""
    return " ".join(["a"] * n)


def human_record(qid: str, winner: str, n1: int, n2: int, **flags) -> dict:
    """Every field of lmarena-ai/PPE-Human-Preference-V1's card, nested ones included."""
    return {
        "question_id": qid, "model_a": "gpt-4o", "model_b": "llama-3-70b", "winner": winner,
        "prompt": f"question {qid}", "response_1": words(n1), "response_2": words(n2), "language": "English",
        "conv_metadata": {"context_a_tokens": 5, "context_b_tokens": 5, "sum_assistant_a_tokens": n1,
                          "sum_assistant_b_tokens": n2, "sum_user_tokens": 3, "turns": 1},
        "is_code": flags.get("is_code", False), "is_refusal": False,
        "category_tag": {"criteria_v0.1": {"complexity": False, "creativity": True, "domain_knowledge": False,
                                           "problem_solving": False, "real_world": True, "specificity": False,
                                           "technical_accuracy": False},
                         "if_v0.1": {"if": False, "score": 1}, "math_v0.1": {"math": False}},
        "sim": 0.5, "length_a": n1, "length_b": n2, "token_diff": 0.1, "longer_won": "yes",
        "hard_prompt": flags.get("hard_prompt", False), "easy_prompt": not flags.get("hard_prompt", False),
        "if_prompt": flags.get("if_prompt", False), "math_prompt": flags.get("math_prompt", False),
    }  # fmt: skip


# (winner, tokens of response_1, of response_2, flags) -> the length baseline is right when the winner is longer
HUMAN = [
    ("model_a", 5, 3, {"hard_prompt": True}),  # right
    ("model_b", 5, 3, {"hard_prompt": True, "is_code": True}),  # wrong
    ("model_b", 2, 9, {"math_prompt": True}),  # right
    ("model_a", 4, 4, {}),  # equal rewards: wrong (rm_ties)
    ("tie", 1, 8, {}),  # no winner: left out
    ("tie (bothbad)", 8, 1, {"hard_prompt": True}),  # left out
]


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def human_dir(tmp_path) -> Path:
    rows = [human_record(f"q{i}", w, a, b, **f) for i, (w, a, b, f) in enumerate(HUMAN)]
    write_parquet(tmp_path / "human" / "test-00000-of-00001.parquet", rows)
    return tmp_path / "human"


def bok_record(qid: str, correct: list[bool], lengths: list[int], pairs: list[list[int]]) -> dict:
    """lmarena-ai/PPE-MATH-Best-of-K's card fields: 32 responses, ``scores``, the conflict pairs."""
    row = {"question_id": qid, "model_name": "gpt-4o-mini-2024-07-18", "prompt": f"problem {qid}",
           "problem": f"problem {qid}", "level": "Level 3", "type": "Algebra", "solution": "42",
           "sanitized_solution": "42", "parsed_outputs": ["42"] * K, "scores": correct,
           "mean_score": float(np.mean(correct)), "conflict_pairs": pairs, "sampled_conflict_pairs": pairs}  # fmt: skip
    row |= {f"response_{j + 1}": words(n) for j, n in enumerate(lengths)}
    return row


def bok_rows() -> list[dict]:
    # row 1: response 3 (correct) is the longest alone -> best-of-32 = 1; pairs (3 vs 0): right, (1 vs 5): 6 vs 6 tie
    lengths = [4] * K
    lengths[3], lengths[1], lengths[5] = 10, 6, 6
    correct = [False] * K
    correct[3] = correct[1] = True
    r1 = bok_record("m1", correct, lengths, [[3, 0], [5, 1]])  # the incorrect index first in the second pair
    # row 2: a 3-way tie at the top (responses 0, 1, 2; one of them correct) -> best-of-32 = 1/3; pair (0 vs 31):
    # the correct response is longer -> right
    lengths2, correct2 = [2] * K, [False] * K
    lengths2[0] = lengths2[1] = lengths2[2] = 7
    correct2[0] = True
    r2 = bok_record("m2", correct2, lengths2, [[0, 31]])
    return [r1, r2]


def test_human_preference_loader_and_metric_end_to_end(eval_cfg, human_dir):
    pairs, prov = load_human(data_dir=str(human_dir), hub_id=None)
    assert [p.tie for p in pairs] == [False] * 4 + [True] * 2 and prov["files"][0].endswith(".parquet")
    cfg = eval_cfg(["model=length_baseline", "benchmark=ppe_preference", f"benchmark.data_dir={human_dir}",
                    "bootstrap.n_boot=0"])  # fmt: skip
    m = evaluate_rm(cfg)
    # hand-worked from HUMAN: 4 battles with a winner, 2 right; the equal pair counts as wrong
    assert (m["n"], m["accuracy"], m["rm_ties"], m["human_ties_excluded"]) == (4, 0.5, 1, 2)
    assert m["subsets"]["hard_prompt"] == {"n": 2, "accuracy": 0.5, "ci": None}  # the tie's flag is not counted
    assert m["subsets"]["math_prompt"]["accuracy"] == 1.0 and m["subsets"]["is_code"]["accuracy"] == 0.0
    assert m["subsets"]["if_prompt"] == {"n": 0, "accuracy": None, "ci": None}
    assert BENCHMARKS["ppe_preference"].headline(m) == (0.5, False)  # 6 of the card's 16,038 battles
    assert "6 loaded (2 human ties left out" in (Path(cfg.paths.output_dir) / "table.md").read_text()


def test_correctness_loader_and_metric_end_to_end(eval_cfg, tmp_path):
    rows = bok_rows()
    (tmp_path / "ppe" / "math").mkdir(parents=True)
    (tmp_path / "ppe" / "math" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_parquet(tmp_path / "ppe" / "gpqa" / "train-00000-of-00001.parquet", rows)
    cfg = eval_cfg(["model=length_baseline", "benchmark=ppe_correctness", f"benchmark.data_dir={tmp_path / 'ppe'}",
                    "benchmark.sets=[math,gpqa]", "bootstrap.n_boot=0"])  # fmt: skip
    m = evaluate_rm(cfg)
    for name in ("math", "gpqa"):  # the same rows as JSON lines and as parquet
        s = m["sets"][name]
        # pairs: (3 vs 0) right, (1 vs 5) a tie -> wrong, (0 vs 31) right -> 2 of 3; best-of-32: (1 + 1/3) / 2
        assert (s["rows"], s["pairs"], s["pairwise_accuracy"]) == (2, 3, pytest.approx(2 / 3, abs=1e-15))
        assert s["best_of_k_accuracy"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-15)
        assert s["random_pick"] == pytest.approx((2 / 32 + 1 / 32) / 2, abs=1e-15) and not s["complete"]
    assert m["overall"] is None and m["partial_overall"] == pytest.approx(2 / 3, abs=1e-15)
    assert BENCHMARKS["ppe_correctness"].headline(m) == (m["partial_overall"], False)


def test_judge_reduction_counts_wins():
    bench = BENCHMARKS["ppe_correctness"]({"sets": ["math"]})
    items = validate_best_of_k([("f", i, r) for i, r in enumerate(bok_rows())], "math")
    comps = bench.comparisons(items)
    assert [c.chosen_label.rsplit("/", 1)[1] for c in comps] == ["response_4", "response_2", "response_1"]
    m, _ = bench.compute_comparisons(items, ["win", "tie", "win"], n_boot=0, confidence=0.95, seed=0)
    assert m["sets"]["math"]["pairwise_accuracy"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["sets"]["math"]["best_of_k_accuracy"] is None


def test_the_hub_path_is_the_real_one_and_offline_is_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from rmlab.utils.config import compose_config

    cfg = compose_config("eval_rm", ["benchmark=ppe_preference"])
    assert cfg.benchmark.hub_id == HUMAN_HUB_ID == "lmarena-ai/PPE-Human-Preference-V1"
    assert {k: v[0] for k, v in CORRECTNESS.items()}["math"] == "lmarena-ai/PPE-MATH-Best-of-K"
    with pytest.raises(DataUnavailableError, match="lmarena-ai/PPE-Human-Preference-V1"):
        load_human(data_dir=str(tmp_path / "absent"), hub_id=HUMAN_HUB_ID)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("winner", "", "field 'winner' must be a non-empty string"),
        ("response_2", None, "field 'response_2' must be a non-empty string"),
        ("hard_prompt", "yes", "field 'hard_prompt' must be true or false"),
    ],
)
def test_a_bad_human_record_is_named_and_nothing_is_written(eval_cfg, tmp_path, field, value, message):
    rows = [human_record("q0", "model_a", 3, 2), human_record("q1", "model_b", 3, 2)]
    rows[1][field] = value
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = eval_cfg(["model=length_baseline", "benchmark=ppe_preference", f"benchmark.data_dir={tmp_path / 'h'}"])
    with pytest.raises(DataValidationError, match=rf"test.jsonl, record #1 \(question_id='q1'\): {message}"):
        evaluate_rm(cfg)
    assert not Path(cfg.paths.output_dir).exists() or not any(Path(cfg.paths.output_dir).iterdir())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(scores=r["scores"][:31]), "field 'scores' must be a list of 32 true/false values"),
        (lambda r: r.pop("response_17"), "field 'response_17' must be a non-empty string"),
        (lambda r: r.update(sampled_conflict_pairs=[[3, 1]]), r"field 'sampled_conflict_pairs' #0 is \[3, 1\]"),
        (lambda r: r.update(sampled_conflict_pairs=[[3, 32]]), r"field 'sampled_conflict_pairs' #0 is \[3, 32\]"),
    ],
)
def test_a_bad_best_of_k_record_is_named(tmp_path, change, message):
    rows = bok_rows()
    change(rows[0])
    (tmp_path / "math").mkdir(exist_ok=True)
    (tmp_path / "math" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataValidationError, match=rf"train.jsonl, record #0 \(question_id='m1'\): {message}"):
        load_correctness(data_dir=str(tmp_path), sets=["math"])
