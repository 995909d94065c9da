"""Paired comparison of reward models: McNemar's exact test against hand-computed binomial tails, the paired
difference and its cluster bootstrap, Holm's adjustment by hand, and the table `rmlab compare` / `rmlab leaderboard`
write for two real (style-baseline) reward models, checked against their own per-item rows."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pytest

from rmlab.analysis.leaderboard import write_leaderboard
from rmlab.analysis.report_card import report_card
from rmlab.metrics.dependent_correlations import holm
from rmlab.metrics.paired import mcnemar_exact, paired_difference
from rmlab.utils.config import compose_config
from tests.test_report_card import _cfg


def _two_sided_binomial(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair trials (the smaller tail doubled, capped at 1), by hand."""
    tail = sum(comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_mcnemar_exact_against_the_binomial_tail():
    # 9 items only a gets right, 2 only b, 30 both, 5 neither: p = 2 * (C(11,0)+C(11,1)+C(11,2)) / 2^11 = 134/2048
    a = [1] * 9 + [0] * 2 + [1] * 30 + [0] * 5
    b = [0] * 9 + [1] * 2 + [1] * 30 + [0] * 5
    got = mcnemar_exact(a, b)
    # rel 1e-12: scipy sums at most 12 binomial pmf terms, each within a few ulps (2.2e-16) of exact
    assert (got["a_only"], got["b_only"]) == (9, 2) and got["p"] == pytest.approx(134 / 2048, rel=1e-12)
    assert got["p"] == pytest.approx(_two_sided_binomial(9, 11), rel=1e-12)
    assert mcnemar_exact(b, a)["p"] == got["p"]  # symmetric
    assert mcnemar_exact([1, 0], [1, 0])["p"] == 1.0  # no discordant item: no evidence


def test_pairing_sees_a_difference_that_two_accuracies_hide():
    """51% vs 49% on 500 items looks like noise, but if the 10 items they split all go to a, the paired test says
    p = 2 / 2^10; the difference is 2 points with an interval above zero."""
    a = {(f"q{i}", ""): float(i < 255) for i in range(500)}
    b = {(f"q{i}", ""): float(i < 245) for i in range(500)}
    got = paired_difference(a, b, n_boot=2000, seed=0)
    # a sum of 500 values in {-1, 0, 1} is exact in float64; one division rounds once (ulp of 0.02 ~ 3.5e-18)
    assert got["n_items"] == 500 and got["difference"] == pytest.approx(0.02, abs=1e-15)
    assert got["mcnemar"]["p"] == pytest.approx(2 / 2**10, rel=1e-12)
    assert got["ci"][0] > 0  # every resample of 500 items keeps some of the 10 and never a reversal


def test_shared_items_clusters_and_shares():
    a = {("p1", "x"): 1.0, ("p1", "y"): 0.0, ("p2", "x"): 0.5, ("p3", "x"): 1.0}
    b = {("p1", "x"): 0.0, ("p1", "y"): 0.0, ("p2", "x"): 1.0, ("p4", "x"): 1.0}
    got = paired_difference(a, b, n_boot=200, seed=0)
    # shared: p1/x (1 vs 0), p1/y (0 vs 0), p2/x (0.5 vs 1): mean difference (1 + 0 - 0.5) / 3
    assert got["n_items"] == 3 and got["n_clusters"] == 2 and (got["only_a"], got["only_b"]) == (1, 1)
    assert got["difference"] == pytest.approx(0.5 / 3, abs=1e-15)  # exact sum of halves, one division
    # a share (0.5) is not a binary outcome: McNemar reads the two binary items only
    assert got["mcnemar"]["n_binary"] == 2 and (got["mcnemar"]["a_only"], got["mcnemar"]["b_only"]) == (1, 0)
    assert paired_difference(a, {("z", ""): 1.0})["difference"] is None


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    # one multiplication each of numbers < 0.1: one rounding, under 1.4e-17
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-15)


def test_the_leaderboard_pairs_two_real_models_item_by_item(tmp_path, data_dir):
    """length_baseline and markdown_baseline on three RM-Bench prompts per domain and all of JudgeBench; the paired
    rows must be what their own scores.jsonl rows give."""
    runs = tmp_path / "runs"
    for model in ("length_baseline", "markdown_baseline"):
        cfg = _cfg(tmp_path / model, [f"model={model}", "benchmarks=[rm_bench,judgebench]",
                                       "benchmark_overrides.rm_bench=['benchmark.max_per_domain=3']",
                                       "reference_models=null"])  # fmt: skip
        cfg.paths.output_dir = str(runs / model)
        report_card(cfg)
    lb = compose_config("leaderboard", [f"runs={runs}", "benchmarks=[rm_bench,judgebench]", "n_boot=200"])
    lb.paths.output_dir = str(tmp_path / "lb")
    board = write_leaderboard(lb)
    by_bench = {r["benchmark"]: r for r in board["paired"]}
    assert set(by_bench) == {"rm_bench", "judgebench"}

    def rows(model, bench):
        return [json.loads(x) for x in (runs / model / bench / "scores.jsonl").read_text().splitlines()]

    jb = by_bench["judgebench"]
    a, b = (rows(m, "judgebench") for m in (jb["model_a"].replace("-", "_"), jb["model_b"].replace("-", "_")))
    ca, cb = ({r["pair_id"]: r["correct"] for r in x} for x in (a, b))
    a_only = sum(ca[k] and not cb[k] for k in ca)
    b_only = sum(cb[k] and not ca[k] for k in ca)
    assert jb["n_items"] == len(ca) == 350 and (jb["mcnemar"]["a_only"], jb["mcnemar"]["b_only"]) == (a_only, b_only)
    # rel 1e-9: scipy's pmf sum against exact integer arithmetic over up to ~350 terms, a few ulps each (<< 1e-9)
    assert jb["mcnemar"]["p"] == pytest.approx(_two_sided_binomial(a_only, a_only + b_only), rel=1e-9)
    rm = by_bench["rm_bench"]
    n_prompts = len(rows("length_baseline", "rm_bench"))
    assert rm["n_items"] == 9 * n_prompts and rm["n_clusters"] == n_prompts
    # the same function on the same inputs: equal
    assert [r["holm_p"] for r in board["paired"]] == holm([r["mcnemar"]["p"] for r in board["paired"]])
    text = (tmp_path / "lb" / "leaderboard_paired.md").read_text()
    assert "| JudgeBench |" in text and "Holm" in text
    assert json.loads((tmp_path / "lb" / "leaderboard_paired.json").read_text())["rows"][0]["benchmark"] == "rm_bench"
    assert Path(lb.paths.output_dir, "leaderboard.md").is_file()


@pytest.mark.parametrize(
    "bench, rows, expected",
    [
        # a classifier's scores and a judge's outcomes, each read by the benchmark's own rule (a tie is no win)
        ("reward_bench", [{"subset": "math-prm", "id": 3, "chosen": 2.0, "rejected": 2.0},
                          {"subset": "math-prm", "id": 4, "outcome": "win"}],
         {("math-prm/id=3", ""): 0.0, ("math-prm/id=4", ""): 1.0}),
        ("reward_math", [{"problem_id": 7, "score": [3.0, 1.0, 2.0]}, {"problem_id": 8, "score": [3.0, 3.0, 2.0]},
                         {"problem_id": 9, "outcome": ["win", "tie"]}],
         {("problem=7", ""): 1.0, ("problem=8", ""): 0.0, ("problem=9", ""): 0.0}),
        ("rmb", [{"set": "bon", "category_path": "a/b", "uid": "1", "correct": True}], {("bon/a/b/1", ""): 1.0}),
        ("reward_bench_2", [{"subset": "Math", "id": 1, "credit": 0.5}, {"subset": "Ties", "id": 2}],
         {("Math/id=1", ""): 0.5}),
        ("ppe_preference", [{"question_id": "q", "correct": False}], {("q", ""): 0.0}),
        ("ppe_correctness", [{"set": "math", "question_id": "q", "model_name": "m", "pairs_correct": [True, False]}],
         {("math/q/m", "0"): 1.0, ("math/q/m", "1"): 0.0}),
    ],
)  # fmt: skip
def test_each_benchmark_reads_its_own_rows(bench, rows, expected):
    from rmlab.benchmarks import BENCHMARKS

    assert BENCHMARKS[bench].item_outcomes(rows) == expected
