"""One evaluator, three benchmarks: RewardBench-math and RewardMATH through evaluate_rm, and the comparison."""

import json
from pathlib import Path

import pytest
from scipy.stats import kendalltau, spearmanr

from rmlab.analysis.compare import compare
from rmlab.rm_eval.evaluate import evaluate_rm
from tests.helpers.models import build_tiny_classifier
from tests.helpers.tolerances import worst_case


def test_reward_bench_math_pairs(eval_cfg, tiny_classifier_dir, data_dir, tmp_path):
    cfg = eval_cfg(
        [f"model={tiny_classifier_dir}", "benchmark=reward_bench", "benchmark.max_per_subset=6", "bootstrap.n_boot=50"]
    )
    m = evaluate_rm(cfg)
    assert m["subsets"]["math-prm"]["n"] == 6 and m["overall"] is None
    assert len(m["missing_subsets"]) == 22 and m["sections"]["Reasoning"]["score"] is None
    rows = [json.loads(x) for x in (Path(cfg.paths.output_dir) / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"chosen", "rejected", "subset"} <= set(rows[0])
    # the first 6 problems of the file, in file order; accuracy recomputed from the per-pair scores (ties lose)
    raw = json.loads((data_dir / "reward-math" / "rewardbench-math" / "RewardBench_math.json").read_text())
    assert [r["id"] for r in rows] == list(dict.fromkeys(r["problem_id"] for r in raw))[:6]
    wins = sum(r["chosen"] > r["rejected"] for r in rows)
    assert m["subsets"]["math-prm"]["accuracy"] == wins / 6
    assert m["subsets"]["math-prm"]["ties"] == sum(r["chosen"] == r["rejected"] for r in rows)
    # its only subset: the example-weighted mean w * acc / w rounds twice from the accuracy (<= 1)
    assert m["sections"]["Reasoning"]["partial_score"] == pytest.approx(wins / 6, abs=worst_case(2, 1.0))
    assert "Missing subsets (22)" in (Path(cfg.paths.output_dir) / "table.md").read_text()


def test_reward_math_sample(eval_cfg, tiny_classifier_dir, data_dir):
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=reward_math_sample", "bootstrap.n_boot=0"])
    m = evaluate_rm(cfg)
    assert m["n"] == 2 and m["benchmark"] == "reward_math"
    # random baselines with 1 correct among 10: accuracy 1/10, MRR = H_10 / 10 = 7381/25200 (29.29%)
    assert m["random_baseline"]["accuracy"] == 0.1  # 1 / 10 is correctly rounded, as is the literal: exact
    # 10 reciprocals, 9 additions and a division against one division: 21 roundings of values below 1
    assert m["random_baseline"]["mrr"] == pytest.approx(7381 / 25200, abs=worst_case(21, 1.0))
    assert set(m["by_subject"]) == {"Algebra"} and set(m["by_level"]) == {"1", "5"}  # both sample problems
    rows = [json.loads(x) for x in (Path(cfg.paths.output_dir) / "scores.jsonl").read_text().splitlines()]
    assert rows[0]["solution_reference"][0] == "human_to_GPT-4" and len(rows[0]["score"]) == 10
    # recomputed from the per-problem scores: correct strictly above all 9 / at least as high as all 9, and
    # reciprocal rank with pessimistic ties, 1 / (1 + incorrect scoring >= correct)
    assert [r["problem_id"] for r in rows] == [0, 399]
    win = [all(r["score"][0] > s for s in r["score"][1:]) for r in rows]
    win_ties = [all(r["score"][0] >= s for s in r["score"][1:]) for r in rows]
    rr = [1 / (1 + sum(s >= r["score"][0] for s in r["score"][1:])) for r in rows]
    assert m["accuracy"] == sum(win) / 2 and m["accuracy_with_ties"] == sum(win_ties) / 2
    # the same reciprocals 1 / (1 + count), then the same one addition and division (a mean of one is exact): exact
    assert m["mrr"] == sum(rr) / 2
    assert m["by_level"]["1"]["mrr"] == rr[0]
    assert m["by_level"]["5"]["mrr"] == rr[1]


def test_comparison_across_benchmarks(tmp_path, tokenizer, rm_bench_dir, data_dir):
    from tests.conftest import compose_eval_cfg

    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        model = build_tiny_classifier(tmp_path / f"rm-{seed}", tokenizer, seed=seed)
        for bench in ("rm_bench", "reward_bench", "reward_math_sample"):
            cfg = compose_eval_cfg(
                runs / f"{seed}-{bench}",
                [
                    f"model={model}",
                    f"benchmark={bench}",
                    "benchmark.max_per_subset=10"
                    if bench == "reward_bench"
                    else ("benchmark.max_per_domain=2" if bench == "rm_bench" else "seed=0"),
                    "bootstrap.n_boot=0",
                ],
            )
            evaluate_rm(cfg)
    out = compare(runs, tmp_path / "cmp", n_boot=100)
    assert out["models"] == ["rm-1", "rm-2", "rm-3"]
    corr = out["rank_correlations"]
    assert set(corr) == {"rm_bench~reward_bench", "rm_bench~reward_math", "reward_bench~reward_math"}
    # each model's headline number read from its own metrics.json: RM-Bench's partial mean (math is missing),
    # RewardBench's mean of the sections present (only Reasoning, i.e. math-prm), RewardMATH's accuracy
    summary = {"rm_bench": [], "reward_bench": [], "reward_math": []}
    for seed in (1, 2, 3):
        m = {
            b: json.loads((runs / f"{seed}-{b}" / "run" / "metrics.json").read_text())
            for b in ("rm_bench", "reward_bench", "reward_math_sample")
        }
        summary["rm_bench"].append(m["rm_bench"]["partial_overall"]["value"])
        summary["reward_bench"].append(m["reward_bench"]["subsets"]["math-prm"]["accuracy"])
        summary["reward_math"].append(m["reward_math_sample"]["accuracy"])
    for b, values in summary.items():
        # RewardBench's partial score is w * acc / w (2 roundings of a value <= 1); the others are read as stored
        tol = worst_case(2, 1.0) if b == "reward_bench" else 0.0
        assert [out["summary_scores"][b][f"rm-{seed}"]["score"] for seed in (1, 2, 3)] == pytest.approx(
            values, rel=0, abs=tol
        )
    for name, c in corr.items():
        a, b = name.split("~")
        assert c["n_models"] == 3
        if len(set(summary[a])) < 2 or len(set(summary[b])) < 2:  # a constant benchmark has no rank correlation
            assert c["spearman"] is None and c["kendall"] is None and "note" in c, name
        else:
            # rounding is monotone and the accuracies are >= 1/10 apart, so the ranks are the same: the same scipy
            # call on the same ranks gives the same float: exact
            assert c["spearman"] == spearmanr(summary[a], summary[b]).statistic, name
            assert c["kendall"] == kendalltau(summary[a], summary[b]).statistic, name
    assert corr["rm_bench~reward_bench"]["spearman"] is not None
    assert out["summary_scores"]["rm_bench"]["rm-1"]["complete"] is False  # math is missing locally
    for name in ("comparison.json", "comparison.md", "comparison.png"):
        assert (tmp_path / "cmp" / name).is_file()
