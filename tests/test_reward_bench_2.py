"""RewardBench 2: the metric against rewardbench 0.1.4's own scoring functions on generated score dumps of every
shape, hand-worked examples, the loader on records shaped as the dataset card documents, the evaluator end to end,
and bad records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rmlab.benchmarks import BENCHMARKS
from rmlab.data.errors import DataValidationError
from rmlab.data.reward_bench_2 import SUBSETS, load_reward_bench_2
from rmlab.metrics.reward_bench_2 import best_of_n_credit, credit_from_outcomes, ties_score
from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.peers import rewardbench_functions
from tests.helpers.tolerances import worst_case


@pytest.fixture(scope="module")
def upstream():
    from datasets import Dataset

    return rewardbench_functions(
        "utils.py",
        ["reroll_and_score_dataset", "sample_stats", "process_single_model"],
        {"np": np, "pd": pd, "math": math, "Dataset": Dataset},
    )


def _scores(rng, n: int, ties: bool) -> list[float]:
    """Scores on a coarse grid when ``ties`` (so the top is often shared), else continuous."""
    return (rng.integers(0, 4, n) / 2).tolist() if ties else rng.normal(size=n).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_best_of_4_credit_equals_upstream_reroll(upstream, seed):
    """``reroll_and_score_dataset``: the correct completion first, 1 / (#at the top) if it is at the top."""
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    groups = [_scores(rng, 4, ties=bool(k % 2)) for k in range(40)]
    unrolled = [{"text": f"t{k}.{i}", "scores": s, "id": str(k)} for k, g in enumerate(groups) for i, s in enumerate(g)]
    got = upstream["reroll_and_score_dataset"](Dataset.from_list(unrolled), [4] * len(groups))
    ours = [best_of_n_credit(g) for g in groups]
    assert ours == list(got["results"])  # the same comparisons and one division: exact
    assert any(0 < c < 1 for c in ours), "the draw must include ties at the top"


def _ties_rows(rng, numbers: int, *, drop_ref=(), single_correct=(), equal_correct=()) -> list[dict]:
    rows = []
    for n in range(numbers):
        for kind in ("ref", "tied"):
            if kind == "ref" and n in drop_ref:
                continue
            k_correct = 1 if kind == "ref" or n in single_correct else int(rng.integers(2, 5))
            k_bad = int(rng.integers(1, 5))
            good = (np.full(k_correct, 1.0) if n in equal_correct else rng.normal(1, 1, k_correct)).tolist()
            rows.append(
                {"id": f"{kind}:{n}", "scores": good + rng.normal(0, 1, k_bad).tolist(), "num_correct": k_correct}
            )
    return rows


@pytest.mark.parametrize(
    "shape",
    [
        {},  # every number with a ref and a tied group, several correct answers in each tied one
        {"drop_ref": (1, 4)},  # tied groups without their ref
        {"single_correct": (0, 2)},  # tied groups with one correct answer: no different-correct margin
        {"equal_correct": (3,)},  # a zero different-correct margin (left out of the tanh term)
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_ties_score_equals_upstream(upstream, shape, seed):
    from datasets import Dataset

    rows = _ties_rows(np.random.default_rng(seed), 8, **shape)
    _, expected = upstream["process_single_model"](Dataset.from_list(rows))
    groups = {(r["id"].split(":")[0], int(r["id"].split(":")[1])): (r["scores"], r["num_correct"]) for r in rows}
    # the same per-group comparisons; the means (<= 8 terms each) and the five weighted terms round differently:
    # at most 8 + 10 roundings of values <= 1.01
    assert ties_score(groups) == pytest.approx(float(expected), abs=worst_case(18, 1.01))


def test_ties_by_hand():
    """One number: ref (1 correct at 3, incorrect 1, 2) and tied (correct 5, 4; incorrect 3.5, 1): both accurate
    (3 > 2, 4 > 3.5); tied c-i margin 0.5 vs d-c margin 1: not preferred; min(1, 0.5) = 0.5 < 1: not hard;
    tanh(0.5 / 1 - 1) = tanh(-0.5). Ties = 0.3 + 0.3 + 0 + 0 + 0.01 tanh(-0.5)."""
    groups = {("ref", 0): ([3.0, 1.0, 2.0], 1), ("tied", 0): ([5.0, 4.0, 3.5, 1.0], 2)}
    assert ties_score(groups) == pytest.approx(0.6 + 0.01 * math.tanh(-0.5), abs=worst_case(6, 1.0))


def test_best_of_4_by_hand_and_judge_credit():
    assert best_of_n_credit([2, 1, 1, 1]) == 1.0
    assert best_of_n_credit([2, 2, 1, 2]) == 1 / 3  # a three-way tie at the top
    assert best_of_n_credit([1, 2, 1, 1]) == 0.0
    assert credit_from_outcomes(["win", "tie", "win"]) == 0.5
    assert credit_from_outcomes(["win", "win", "loss"]) == 0.0
    assert credit_from_outcomes(["win", "unparsed", "win"]) == 0.0


def _card_rows() -> list[dict]:
    """Records shaped as the dataset card documents them: every field, lists, Ties ids ``ref:<n>`` / ``tied:<n>``."""
    meta = {"category": None, "correct": None, "index": None, "instruction_id_list": None, "label": None}
    rows = []
    for k, subset in enumerate(SUBSETS[:-1]):
        for j in range(2):
            rows.append(
                {
                    "id": str(2 * k + j),
                    "prompt": f"{subset} question {j}?",
                    "chosen": [f"right {j}"],
                    "rejected": [f"wrong {j}.{i} {'x' * i}" for i in range(3)],
                    "num_correct": 1,
                    "num_incorrect": 3,
                    "total_completions": 4,
                    "models": ["m0", "m1", "m2", "m3"],
                    "subset": subset,
                    "additional_metadata": {**meta, "method": "natural"},
                }
            )
    for kind, n_good in (("ref", 1), ("tied", 3)):
        rows.append(
            {
                "id": f"{kind}:0",
                "prompt": "Name a prime number.",
                "chosen": ["2", "3", "5"][:n_good],
                "rejected": ["4", "9"],
                "num_correct": n_good,
                "num_incorrect": 2,
                "total_completions": n_good + 2,
                "models": ["m"] * (n_good + 2),
                "subset": "Ties",
                "additional_metadata": meta,
            }
        )
    return rows


def test_loader_reads_parquet_and_jsonl_shaped_as_the_card(tmp_path):
    rows = _card_rows()
    (tmp_path / "pq").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "pq" / "test-00000-of-00001.parquet")
    (tmp_path / "jl").mkdir()
    (tmp_path / "jl" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, prov_a = load_reward_bench_2(data_dir=str(tmp_path / "pq"), hub_id=None)
    b, prov_b = load_reward_bench_2(data_dir=str(tmp_path / "jl"), hub_id=None)
    assert a == b and prov_a["data_fingerprint"] == prov_b["data_fingerprint"] and len(a) == 12
    tied = next(p for p in a if p.id == "tied:0")
    assert tied.completions == ("2", "3", "5", "4", "9")


def test_hub_path_is_the_real_one(data_dir, monkeypatch):
    """No local files (../shared holds only SOURCES.md): the loader asks the Hub for ``allenai/reward-bench-2``
    split ``test`` (the call is intercepted, so the test holds with or without a network)."""
    import datasets
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "benchmark" / "reward_bench_2.yaml")
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or _card_rows())
    prompts, prov = load_reward_bench_2(data_dir=str(data_dir / "reward-bench-2"), hub_id=cfg.hub_id, split=cfg.split)
    assert calls == [(("allenai/reward-bench-2",), {"split": "test"})] and len(prompts) == 12
    assert prov["source"] == "allenai/reward-bench-2 (test)"


def test_evaluator_end_to_end_matches_upstream(eval_cfg, tiny_classifier_dir, tmp_path, upstream):
    """The real tiny classifier on card-shaped records: per-prompt credits and the Ties score recomputed from
    ``scores.jsonl`` with rewardbench's functions; the overall is the mean of the six."""
    from datasets import Dataset

    data = tmp_path / "rb2"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _card_rows()))
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=reward_bench_2", f"benchmark.data_dir={data}"])
    m = evaluate_rm(cfg)
    out = [json.loads(x) for x in (Path(cfg.paths.output_dir) / "scores.jsonl").read_text().splitlines()]
    for s in SUBSETS[:-1]:
        rows = [r for r in out if r["subset"] == s]
        unrolled = [{"text": "", "scores": v, "id": r["id"]} for r in rows for v in r["scores"]]
        got = upstream["reroll_and_score_dataset"](Dataset.from_list(unrolled), [len(r["scores"]) for r in rows])
        assert m["subsets"][s]["score"] == pytest.approx(np.mean(got["results"]), abs=worst_case(2, 1.0))
    ties = [
        {"id": r["id"], "scores": r["scores"], "num_correct": r["num_correct"]} for r in out if r["subset"] == "Ties"
    ]
    _, expected = upstream["process_single_model"](Dataset.from_list(ties))
    assert m["subsets"]["Ties"]["score"] == pytest.approx(float(expected), abs=worst_case(12, 1.01))
    six = [m["subsets"][s]["score"] for s in SUBSETS]
    assert m["overall"] == pytest.approx(sum(six) / 6, abs=worst_case(7, 1.01))
    assert not m["complete"] and "473 of 475 prompts of Factuality" in m["incomplete_because"]
    assert m["fragile"]["comparisons"] == 5 * 2 * 3 + 1 * 2 + 3 * 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"subset": "Precise-IF"}, r"record #1 \(id='1'\): field 'subset' is 'Precise-IF'"),
        ({"chosen": []}, r"record #1 \(id='1'\): field 'chosen' must be a non-empty list of strings"),
        ({"num_correct": 2}, r"record #1 \(id='1'\): field 'num_correct' is 2 but 'chosen' has 1"),
        ({"subset": "Ties"}, r"record #1 \(id='1'\): field 'id' of a Ties row must be"),
    ],
)
def test_bad_record_names_file_record_and_field_and_writes_nothing(
    eval_cfg, tiny_classifier_dir, tmp_path, edit, message
):
    rows = _card_rows()[:2]
    rows[1] = {**rows[1], **edit}
    data = tmp_path / "rb2"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=reward_bench_2", f"benchmark.data_dir={data}"])
    with pytest.raises(DataValidationError, match=f"test.jsonl, {message}"):
        evaluate_rm(cfg)
    assert not Path(cfg.paths.output_dir).exists()


def test_judge_reduction_leaves_ties_out_and_says_why(tmp_path):
    rows = _card_rows()
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = BENCHMARKS["reward_bench_2"]({"data_dir": str(tmp_path)})
    items, _ = bench.load()
    comps = bench.comparisons(items)
    outcomes = ["win"] * len(comps)
    outcomes[1] = "tie"  # the first prompt: win, tie, win -> 1/2
    m, rows_out = bench.compute_comparisons(items, outcomes, n_boot=0, confidence=0.95, seed=0)
    assert rows_out[0]["credit"] == 0.5 and m["subsets"][SUBSETS[0]]["score"] == 0.75
    assert m["overall"] is None and "Ties" in m["missing_subsets"] and "ratings" in m["missing_reasons"]["Ties"]
