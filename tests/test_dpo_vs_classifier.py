"""The DPO-vs-classifier comparison: the table builder on synthetic metrics files, and the pipeline end to end on
tiny models (every stage reused on a second run)."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rmlab.analysis.dpo_vs_classifier import comparison_csv, comparison_figure, comparison_markdown, comparison_row
from rmlab.metrics.rm_bench import rm_bench_metrics
from tests.conftest import ROOT


def _metrics(seed: int, domains=("chat", "code", "safety")) -> dict:
    rng = np.random.default_rng(seed)
    scores = {d: (rng.normal(0.3, 1, (12, 3)), rng.normal(0, 1, (12, 3))) for d in domains}
    return {"benchmark": "rm_bench", "model": f"m{seed}", **rm_bench_metrics(scores, n_boot=50, seed=seed)}


def test_table_rows_come_from_the_metrics_files(tmp_path):
    files = {v: _metrics(i) for i, v in enumerate(("classifier", "dpo_ref", "dpo_ref_free"))}
    rows = [comparison_row("hh_rlhf", v, m, f"/runs/{v}/metrics.json", "rm_bench") for v, m in files.items()]
    for row, m in zip(rows, files.values()):
        assert row["avg"] == m["partial_overall"]["value"] and not row["complete"]
        assert row["hard"] == m["difficulty"]["hard"]
        assert row["code_normal"] == m["domains"]["code"]["normal"] and row["math"] is None
    md = comparison_markdown(rows)
    assert "| hh_rlhf | DPO (with reference) | " + f"{100 * rows[1]['avg']:.1f}" in md
    assert "domain not scored" in md  # no math domain here, and the table says so
    parsed = list(csv.DictReader(io.StringIO(comparison_csv(rows))))
    assert [r["variant"] for r in parsed] == ["classifier", "dpo_ref", "dpo_ref_free"]
    assert float(parsed[2]["safety_hard"]) == pytest.approx(rows[2]["safety_hard"])
    assert parsed[0]["math"] == "" and parsed[0]["source"] == "/runs/classifier/metrics.json"
    assert comparison_figure(rows, tmp_path / "fig.png").stat().st_size > 0


def test_table_rejects_other_benchmarks_and_variants():
    with pytest.raises(ValueError, match="not a rm_bench metrics file"):
        comparison_row("hh_rlhf", "classifier", {"benchmark": "reward_bench"}, "x/metrics.json", "rm_bench")
    with pytest.raises(ValueError, match="unknown variant"):
        comparison_row("hh_rlhf", "ppo", _metrics(0), "x/metrics.json", "rm_bench")


def _list(key: str, items: list[str]) -> str:
    """A Hydra list override whose items contain '=' (each item quoted)."""
    return f"{key}=[" + ",".join(f"'{i}'" for i in items) + "]"


def pipeline_command(tmp_path: Path, classifier: Path, lm: Path) -> list[str]:
    """``experiment=dpo_vs_classifier`` on tiny models: one optimizer step each, one RM-Bench prompt per domain."""
    train = [
        "recipe.max_steps=1",
        "recipe.pairs_per_update=2",
        "recipe.micro_batch_pairs=2",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
    ]
    return [
        sys.executable,
        "scripts/run_experiment.py",
        "experiment=dpo_vs_classifier",
        "pipeline.stage_logger=none",
        _list(
            "pipeline.preference_overrides",
            ["preference.max_pairs=16", "preference.heldout_pairs=6", "bootstrap.n_boot=20"],
        ),
        _list("pipeline.classifier.overrides", [f"model={classifier}", "trainer.enable_progress_bar=false", *train]),
        _list("pipeline.dpo.overrides", [f"model={lm}", "precision=fp32", "device=cpu", *train]),
        _list(
            "pipeline.eval.overrides",
            ["benchmark.max_per_domain=1", "bootstrap.n_boot=0", "scoring.progress=false", "device=cpu"],
        ),
        f"paths.score_cache_dir={tmp_path / 'scores'}",
    ]


@pytest.mark.slow
def test_pipeline_end_to_end_and_reuse(tmp_path, tiny_classifier_dir, tiny_lm_dir, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1"}
    cmd = pipeline_command(tmp_path, tiny_classifier_dir, tiny_lm_dir)
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "dpo_vs_classifier" / "runs").iterdir()
    out = json.loads((run / "comparison.json").read_text())
    assert [r["variant"] for r in out["rows"]] == ["classifier", "dpo_ref", "dpo_ref_free"]
    by = {r["variant"]: json.loads(Path(r["source"]).read_text()) for r in out["rows"]}
    assert by["classifier"]["scorer"]["scorer"] == "classifier"
    assert "reference" in by["dpo_ref"]["scorer"] and by["dpo_ref_free"]["scorer"]["ref_free_mode"] == "avg"
    assert (run / "comparison.md").is_file() and (run / "comparison.png").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "logs" / "stages").rglob("*.json") if p.name != "stage.json"}

    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (res.stdout + res.stderr).count("stage eval_rm: reusing") == 3
    assert (res.stdout + res.stderr).count("reusing") == 5  # 2 trainings + 3 evaluations
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed
    records = [json.loads(p.read_text()) for p in (tmp_path / "logs" / "stages").rglob("stage.json")]
    assert len(records) == 5 and all(r["decisions"][-1]["decision"] == "reuse" for r in records)
    second = max((tmp_path / "logs" / "dpo_vs_classifier" / "runs").iterdir())
    assert (second / "comparison.md").read_text() == (run / "comparison.md").read_text()
