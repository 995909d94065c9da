"""The report card: one model on several benchmarks in one row (complete / partial / no data), published reference
rows read from ../shared/reference, the multi-model table from run directories, and bad data still an error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rmlab.analysis.leaderboard import write_leaderboard
from rmlab.analysis.report_card import report_card
from rmlab.data.errors import DataValidationError
from rmlab.utils.config import compose_config


def _cfg(tmp_path: Path, overrides: list[str]):
    cfg = compose_config(
        "report_card",
        [
            "device=cpu",
            "scoring.progress=false",
            "bootstrap.n_boot=20",
            f"paths.root_dir={Path(__file__).parents[1]}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            *overrides,
        ],
    )
    cfg.paths.output_dir = str(tmp_path / "card")
    return cfg


def test_one_row_per_model_with_marks_and_published_rows(tmp_path, data_dir):
    cfg = _cfg(
        tmp_path,
        [
            "model=length_baseline",
            "benchmarks=[rm_bench,judgebench,reward_bench_2]",
            "benchmark_overrides.rm_bench=['benchmark.max_per_domain=3']",
            "reference_models=[Skywork-Reward-Llama-3.1-8B]",
        ],
    )
    out = report_card(cfg)
    run, ref = out["rows"]
    assert run["model"] == "length-baseline" and ref == {
        "model": "Skywork-Reward-Llama-3.1-8B",
        "kind": "published",
        "cells": [
            # reference/*.csv: RM-Bench avg 70.1 (RM-R1's reprint), JudgeBench Table 3 overall 62.29, RB2 average 73.1
            {"benchmark": "rm_bench", "value": pytest.approx(0.701, abs=1e-12), "ci": None, "mark": "published"},
            {"benchmark": "judgebench", "value": pytest.approx(0.6229, abs=1e-12), "ci": None, "mark": "published"},
            {"benchmark": "reward_bench_2", "value": pytest.approx(0.731, abs=1e-12), "ci": None, "mark": "published"},
        ],
    }
    rm, jb, rb2 = run["cells"]
    card = Path(cfg.paths.output_dir)
    jb_metrics = json.loads((card / "judgebench" / "metrics.json").read_text())
    rm_metrics = json.loads((card / "rm_bench" / "metrics.json").read_text())
    assert jb["value"] == jb_metrics["accuracy"] and jb["mark"] == "complete" and jb["ci"] == jb_metrics["ci"]
    assert rm["value"] == rm_metrics["partial_overall"]["value"] and rm["mark"].startswith("partial (domain math")
    assert rb2["value"] is None and rb2["mark"].startswith("no data (") and "reward-bench-2" in rb2["mark"]
    assert not (card / "reward_bench_2").exists()
    rows = list(csv.reader((card / "report_card.csv").open()))
    assert rows[0][:6] == ["model", "row", "rm_bench", "rm_bench_ci_low", "rm_bench_ci_high", "rm_bench_mark"]
    assert len(rows) == 3 and (card / "report_card.png").is_file()
    assert "| length-baseline | run |" in (card / "report_card.md").read_text()

    # the same runs, read back as the multi-model table (no scoring)
    again = report_card(
        _cfg(tmp_path / "b", [f"runs={card}", "benchmarks=[rm_bench,judgebench]", "reference_models=null"])
    )
    (row,) = again["rows"]
    assert row["model"] == "length-baseline" and [c["value"] for c in row["cells"]] == [rm["value"], jb["value"]]
    # and as `rmlab leaderboard runs=...`: the same table, with the published rows, under leaderboard.*
    lb_cfg = compose_config("leaderboard", [f"runs={card}", "benchmarks=[rm_bench,judgebench]"])
    lb_cfg.paths.output_dir = str(tmp_path / "lb")
    board = write_leaderboard(lb_cfg)
    assert board["rows"][0] == row and board["rows"][1]["kind"] == "published"
    assert [p.name for p in sorted((tmp_path / "lb").iterdir())] == [
        "leaderboard.csv", "leaderboard.json", "leaderboard.md", "leaderboard.png", "leaderboard_paired.json",
        "leaderboard_paired.md",
    ]  # fmt: skip


def test_bad_data_is_an_error_not_a_missing_cell(tmp_path):
    bad = tmp_path / "jb"
    bad.mkdir()
    (bad / "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl").write_text('{"pair_id": "p"}\n')
    cfg = _cfg(
        tmp_path,
        [
            "model=length_baseline",
            "benchmarks=[judgebench]",
            f"benchmark_overrides.judgebench=['benchmark.data_dir={bad}']",
        ],
    )
    with pytest.raises(DataValidationError, match=r"record #0 \(pair_id='p'\): field 'source'"):
        report_card(cfg)
