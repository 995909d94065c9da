"""The evaluator on real RM-Bench records with tiny models: outputs, resume, cache reuse, bad input."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rmlab.data.errors import DataValidationError
from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.driver import ScoringError
from tests.helpers.tolerances import worst_case

OUTPUTS = [
    "config.yaml",
    "scores.jsonl",
    "metrics.json",
    "table.md",
    "heatmap_chat.png",
    "heatmap_code.png",
    "heatmap_safety.png",
]
VOLATILE = {"scoring", "wall_seconds", "run", "config"}


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def _overrides(model_dir, extra=()):
    return [f"model={model_dir}", "benchmark.max_per_domain=3", "scoring.batch_size=2", "bootstrap.n_boot=100", *extra]


def test_outputs_and_metrics_schema(eval_cfg, tiny_classifier_dir, rm_bench_dir):
    cfg = eval_cfg(_overrides(tiny_classifier_dir))
    out = evaluate_rm(cfg)
    run = cfg.paths.output_dir
    for name in OUTPUTS:
        path = Path(run) / name
        assert path.is_file() and path.stat().st_size > 0, name
    m = json.loads(Path(f"{run}/metrics.json").read_text())
    assert m == json.loads(json.dumps(out))
    for key in (
        "benchmark",
        "model",
        "data_fingerprint",
        "domains_scored",
        "missing_domains",
        "overall",
        "partial_overall",
    ):
        assert key in m
    assert m["scorer"]["scorer"] == "classifier"  # kind 'auto' read from the checkpoint's architectures
    assert m["domains_scored"] == ["chat", "code", "safety"] and m["missing_domains"] == ["math"]
    assert m["overall"] is None and m["partial_overall"]["domains"] == ["chat", "code", "safety"]
    for d, dm in m["domains"].items():
        assert {"n", "matrix", "easy", "normal", "hard", "avg", "ties", "ci"} <= set(dm)
    assert m["domains"]["safety"]["n"] == 6  # 3 safety-refuse + 3 safety-response, pooled
    rows = [json.loads(line) for line in Path(f"{run}/scores.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(len(r["chosen"]) == 3 and len(r["rejected"]) == 3 for r in rows)
    # every number recomputed from the per-prompt scores: M[i][j] = share of prompts whose chosen response in
    # style i scores strictly above the rejected one in style j; hard = upper triangle, normal = diagonal, easy =
    # lower triangle; safety pools both safety files
    for d, dm in m["domains"].items():
        mine = [r for r in rows if (r["domain"].startswith("safety") and d == "safety") or r["domain"] == d]
        wins = [[sum(r["chosen"][i] > r["rejected"][j] for r in mine) for j in range(3)] for i in range(3)]
        mat = [[wins[i][j] / len(mine) for j in range(3)] for i in range(3)]
        assert dm["n"] == len(mine) and dm["matrix"] == mat, d
        # the same cells (asserted above) in the same row-major order, summed left to right (numpy below 8 terms)
        # and divided by 3: the same float operations, exact
        assert dm["hard"] == (mat[0][1] + mat[0][2] + mat[1][2]) / 3, d
        assert dm["normal"] == (mat[0][0] + mat[1][1] + mat[2][2]) / 3, d
        assert dm["easy"] == (mat[1][0] + mat[2][0] + mat[2][1]) / 3, d
        # numpy sums 9 terms pairwise, Python left to right: 2 x 9 roundings of values <= 1
        assert dm["avg"] == pytest.approx(sum(map(sum, mat)) / 9, abs=worst_case(18, 1.0)), d
    # a 3-term mean on each side, perhaps in another order: 6 roundings of values <= 1
    assert m["partial_overall"]["value"] == pytest.approx(
        sum(dm["avg"] for dm in m["domains"].values()) / 3, abs=worst_case(6, 1.0)
    )
    assert "missing" in Path(f"{run}/table.md").read_text()


def test_rerun_is_free_and_identical(eval_cfg, tiny_classifier_dir, rm_bench_dir, tmp_path):
    first = evaluate_rm(eval_cfg(_overrides(tiny_classifier_dir)))
    again = evaluate_rm(eval_cfg(_overrides(tiny_classifier_dir)))
    assert again["scoring"]["scored"] == 0 and again["scoring"]["from_cache"] == first["scoring"]["unique_pairs"]
    assert _stable(again) == _stable(first)


@pytest.mark.parametrize("packed", ["true", "false"])
def test_killed_run_resumes_to_identical_metrics(packed, eval_cfg, tiny_classifier_dir, rm_bench_dir, tmp_path):
    # small passes (packed: at most 600 tokens; padded: two rows), so the run has many and is killed mid-way
    extra = [f"scoring.packed={packed}", "scoring.max_tokens_per_batch=600"]
    uninterrupted = evaluate_rm(eval_cfg(_overrides(tiny_classifier_dir, extra), tmp_path / "a"))

    def kill_after_two(batch_no):
        if batch_no == 1:
            raise KeyboardInterrupt  # what Ctrl-C or a scheduler's SIGINT raises mid-run

    cfg = eval_cfg(_overrides(tiny_classifier_dir, extra), tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        evaluate_rm(cfg, on_batch=kill_after_two)
    assert not (tmp_path / "b" / "run" / "metrics.json").exists()
    resumed = evaluate_rm(cfg)
    first_two = uninterrupted["scoring"]["unique_pairs"] - resumed["scoring"]["scored"]
    assert resumed["scoring"]["from_cache"] == first_two > 0  # the two passes stored before the kill survived it
    assert resumed["scoring"]["scored"] > 0  # and the rest was scored after
    assert _stable(resumed) == _stable(uninterrupted)


def test_nan_score_fails_without_metrics(eval_cfg, tiny_classifier_dir, tmp_path, rm_bench_dir):
    broken = tmp_path / "nan-rm"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir)
    with torch.no_grad():
        model.score.weight.fill_(float("nan"))
    model.save_pretrained(broken)
    AutoTokenizer.from_pretrained(tiny_classifier_dir).save_pretrained(broken)
    cfg = eval_cfg(_overrides(broken))
    with pytest.raises(
        ScoringError, match=r"non-finite score nan for (chat|code|safety-\w+)/id=\d+/(chosen|rejected)/"
    ):
        evaluate_rm(cfg)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_bad_data_fails_before_any_output(eval_cfg, tiny_classifier_dir, tmp_path):
    bad = tmp_path / "bad-rm-bench"
    bad.mkdir()
    rec = {"id": 7, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e"]}
    (bad / "chat_filtered.json").write_text(json.dumps([rec]))
    cfg = eval_cfg(_overrides(tiny_classifier_dir, [f"benchmark.data_dir={bad}"]))
    with pytest.raises(DataValidationError, match=r"chat_filtered.json, record id=7 \(#0\): field 'rejected'"):
        evaluate_rm(cfg)
    assert not (tmp_path / "run").exists()


def test_fragile_comparisons_are_counted_in_metrics_and_table(eval_cfg, tiny_classifier_dir, tmp_path):
    """``fragile``: the comparisons whose margin is within the dtype's score bound, counted from the scores
    themselves (every RM-Bench cell: 9 per record), and printed under the table; a wider bound counts more."""
    import numpy as np

    from rmlab.scoring.precision import RELATIVE_BOUND

    out = evaluate_rm(eval_cfg(_overrides(tiny_classifier_dir)))
    frag = out["fragile"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    margins = np.array([c - r for row in rows for c in row["chosen"] for r in row["rejected"]])
    scale = np.array([max(1, abs(c)) + max(1, abs(r)) for row in rows for c in row["chosen"] for r in row["rejected"]])
    assert frag["comparisons"] == 9 * len(rows) == margins.size and frag["dtype"] == "float32"
    assert frag["fragile"] == int((np.abs(margins) <= RELATIVE_BOUND["float32"] * scale).sum())
    assert "Fragile comparisons:" in (tmp_path / "run" / "table.md").read_text()
    # a bound as wide as the largest margin makes the closest comparison fragile: the count reads the margins
    wide = np.abs(margins).min() / scale[np.abs(margins).argmin()]
    again = evaluate_rm(
        eval_cfg(_overrides(tiny_classifier_dir, [f"scoring.fragile_bound={wide * 1.01}"]), tmp_path / "b")
    )
    assert again["fragile"]["fragile"] >= 1 and again["fragile"]["relative_bound"] == pytest.approx(wide * 1.01)
