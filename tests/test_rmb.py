"""RMB: the local copy's counts against the paper's, the pairwise and best-of-N rules recomputed by plain loops over
the raw files through the whole evaluator, partial sections said so, the judge reduction, bad records."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rmlab.benchmarks import BENCHMARKS
from rmlab.data.errors import DataValidationError
from rmlab.data.rmb import load_rmb
from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.scorers import SCORERS
from tests.helpers.tolerances import worst_case


@pytest.fixture(scope="module")
def rmb_dir(data_dir: Path) -> Path:
    return data_dir / "rmb"


def test_local_counts_and_what_is_missing(rmb_dir):
    """SOURCES.md: the BoN halves complete, the pairwise halves short by three absent files."""
    bench = BENCHMARKS["rmb"]({"data_dir": str(rmb_dir)})
    items, prov = bench.load()
    assert len(prov["files"]) == 95
    assert bench.missing(items) == ["Pairwise Helpfulness: 8456 of 10067", "Pairwise Harmlessness: 6087 of 7064"]
    multi = [i for i in items if len(i.conversation) > 1]
    assert multi and all(i.conversation[-1][0] == "user" for i in multi)


def _score(text: str) -> float:
    """Pseudo-random in the text, with ties about 1 in 7: the rules' strictness is exercised."""
    return float(sum(map(ord, text)) % 7)


@dataclass(frozen=True)
class _Encoded:
    input_ids: list
    response_start: int
    score: float


def test_rules_recomputed_from_raw_files(eval_cfg, tiny_classifier_dir, rmb_dir, monkeypatch):
    class TextScorer:
        def __init__(self, model, tokenizer, formatter, *, max_length, device):
            pass

        def encode(self, prompt, response):
            assert isinstance(prompt, tuple) and prompt[-1][0] == "user"
            return _Encoded([0] * (1 + len(response) // 64), 0, _score(prompt[-1][1] + response))

        def __call__(self, batch):
            return np.array([e.score for e in batch], dtype=np.float64)

    monkeypatch.setitem(SCORERS._items, "classifier", TextScorer)
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=rmb", "benchmark.max_per_file=3", "bootstrap.n_boot=0"])
    m = evaluate_rm(cfg)
    # by hand: every file, its first 3 records, strictly greater than the (every) loser
    expected: dict[str, list[bool]] = {}
    root = rmb_dir / "RMB_dataset"
    for path in sorted(root.rglob("*.json.gz")):
        rows = json.loads(gzip.decompress(path.read_bytes()))[:3]
        kind, goal = path.relative_to(root).parts[:2]
        section = f"{'Pairwise' if kind == 'Pairwise_set' else 'BoN'} {goal}"
        for r in rows:
            last = r["conversation_input"][-1]["content"]
            best = r["chosen"] if "chosen" in r else r["bon_best"]
            losers = [r["reject"]] if "reject" in r else r["loser_list"]
            ok = all(_score(last + best["answer"]) > _score(last + x["answer"]) for x in losers)
            expected.setdefault(section, []).append(ok)
    assert set(expected) == set(m["sections"])
    for section, oks in expected.items():
        got = m["sections"][section]
        assert got["n"] == len(oks) and not got["complete"]
        # one mean of <= 111 zeros and ones, in another order: 111 roundings of values <= 1
        assert got["accuracy"] == pytest.approx(sum(oks) / len(oks), abs=worst_case(len(oks), 1.0))
    assert 0 < m["partial_overall"] < 1 and m["overall"] is None and not m["complete"]
    table = (Path(cfg.paths.output_dir) / "table.md").read_text()
    assert "(partial: " in table and "not comparable with published" in table


def test_judge_reduction_needs_every_win(rmb_dir):
    bench = BENCHMARKS["rmb"]({"data_dir": str(rmb_dir), "sets": ["bon"], "goals": ["Harmlessness"], "max_per_file": 1})
    items, _ = bench.load()
    comps = bench.comparisons(items)
    outcomes = ["win"] * len(comps)
    outcomes[0] = "tie"  # the first list loses its credit
    m, rows = bench.compute_comparisons(items, outcomes, n_boot=0, confidence=0.95, seed=0)
    assert [r["correct"] for r in rows] == [False] + [True] * (len(items) - 1)
    assert m["sections"]["BoN Harmlessness"]["accuracy"] == (len(items) - 1) / len(items)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"reject": {"llm_name": "x"}}, r"record #1 \(pair_uid='u1'\): field 'reject' must be an object"),
        ({"conversation_input": []}, r"record #1 \(pair_uid='u1'\): field 'conversation_input' must be a non-empty"),
        ({"category_path": "BoN_set/Helpfulness/Chat"}, r"record #1 \(pair_uid='u1'\): field 'category_path'"),
    ],
)
def test_bad_record_names_file_record_and_field_and_writes_nothing(
    eval_cfg, tiny_classifier_dir, tmp_path, edit, message
):
    good = {
        "conversation_input": [{"role": "user", "content": "hi", "language": "English"}],
        "chosen": {"llm_name": "a", "answer": "hello"},
        "reject": {"llm_name": "b", "answer": "go away"},
        "category_path": "Pairwise_set/Helpfulness/Chat/Discussion",
    }
    where = tmp_path / "rmb" / "RMB_dataset" / "Pairwise_set" / "Helpfulness" / "Chat"
    where.mkdir(parents=True)
    rows = [{**good, "pair_uid": "u0"}, {**good, "pair_uid": "u1", **edit}]
    (where / "Discussion.json").write_text(json.dumps(rows))
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=rmb", f"benchmark.data_dir={tmp_path / 'rmb'}"])
    with pytest.raises(DataValidationError, match=f"Discussion.json, {message}"):
        evaluate_rm(cfg)
    assert not Path(cfg.paths.output_dir).exists()


def test_no_data_names_where_to_get_it(tmp_path):
    with pytest.raises(DataValidationError, match="Zhou-Zoey/RMB-Reward-Model-Benchmark"):
        load_rmb(data_dir=str(tmp_path), sets=["pairwise"], goals=["Helpfulness"])
