"""One evaluator, three benchmarks: RewardBench-math and RewardMATH through evaluate_rm, and the comparison."""

import json
from pathlib import Path

import pytest

from rmlab.analysis.compare import compare
from rmlab.evaluation.rm_eval import evaluate_rm
from tests.helpers.models import build_tiny_classifier


def test_reward_bench_math_pairs(eval_cfg, tiny_classifier_dir, data_dir, tmp_path):
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=reward_bench", "benchmark.max_per_subset=6",
                    "bootstrap.n_boot=50"])
    m = evaluate_rm(cfg)
    assert m["subsets"]["math-prm"]["n"] == 6 and m["overall"] is None
    assert len(m["missing_subsets"]) == 22 and m["sections"]["Reasoning"]["score"] is None
    assert m["sections"]["Reasoning"]["partial_score"] == m["subsets"]["math-prm"]["accuracy"]
    rows = [json.loads(x) for x in open(Path(cfg.paths.output_dir) / "scores.jsonl")]
    assert len(rows) == 6 and {"chosen", "rejected", "subset"} <= set(rows[0])
    assert "Missing subsets (22)" in (Path(cfg.paths.output_dir) / "table.md").read_text()


def test_reward_math_sample(eval_cfg, tiny_classifier_dir, data_dir):
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark=reward_math_sample", "bootstrap.n_boot=0"])
    m = evaluate_rm(cfg)
    assert m["n"] == 2 and m["benchmark"] == "reward_math"
    assert 0 <= m["accuracy"] <= m["accuracy_with_ties"] <= 1 and 0.1 <= m["mrr"] <= 1
    assert m["random_baseline"]["mrr"] == pytest.approx(0.2929, abs=1e-4)
    assert set(m["by_subject"]) == {"Algebra"} or m["by_subject"]
    rows = [json.loads(x) for x in open(Path(cfg.paths.output_dir) / "scores.jsonl")]
    assert rows[0]["solution_reference"][0] == "human_to_GPT-4" and len(rows[0]["score"]) == 10


def test_comparison_across_benchmarks(tmp_path, tokenizer, rm_bench_dir, data_dir):
    from tests.conftest import compose_eval_cfg

    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        model = build_tiny_classifier(tmp_path / f"rm-{seed}", tokenizer, seed=seed)
        for bench in ("rm_bench", "reward_bench", "reward_math_sample"):
            cfg = compose_eval_cfg(runs / f"{seed}-{bench}", [f"model={model}", f"benchmark={bench}",
                                   "benchmark.max_per_subset=10" if bench == "reward_bench" else
                                   ("benchmark.max_per_domain=2" if bench == "rm_bench" else "seed=0"),
                                   "bootstrap.n_boot=0"])
            evaluate_rm(cfg)
    out = compare(runs, tmp_path / "cmp", n_boot=100)
    assert out["models"] == ["rm-1", "rm-2", "rm-3"]
    corr = out["rank_correlations"]
    assert set(corr) == {"rm_bench~reward_bench", "rm_bench~reward_math", "reward_bench~reward_math"}
    for c in corr.values():
        assert c["n_models"] == 3
        assert (c["spearman"] is None and "note" in c) or (-1 <= c["spearman"] <= 1 and -1 <= c["kendall"] <= 1)
    assert corr["rm_bench~reward_bench"]["spearman"] is not None
    assert out["summary_scores"]["rm_bench"]["rm-1"]["complete"] is False  # math is missing locally
    for name in ("comparison.json", "comparison.md", "comparison.png"):
        assert (tmp_path / "cmp" / name).is_file()
