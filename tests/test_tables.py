"""Tables from run outputs: RM-Bench's layout with missing domains marked, sources traceable, byte-identical
when regenerated, LaTeX that escapes what it must."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from rmlab.analysis.tables import make_tables, to_latex
from rmlab.rm_eval.evaluate import evaluate_rm
from tests.conftest import compose_eval_cfg
from tests.test_correlation_study import make_study_runs


def _cfg(runs: Path, out: Path):
    return OmegaConf.create({"runs": str(runs), "paths": {"output_dir": str(out)}})


def test_tables_from_real_runs(tmp_path, tiny_classifier_dir, rm_bench_dir):
    runs = tmp_path / "runs"
    cfg = compose_eval_cfg(
        runs / "rmb", [f"model={tiny_classifier_dir}", "benchmark.max_per_domain=2", "bootstrap.n_boot=0"]
    )
    evaluate_rm(cfg)
    make_study_runs(runs / "study")  # policy summaries (and hand-made RM metrics in the same layout)
    counts = make_tables(_cfg(runs, tmp_path / "out"))
    assert counts["rm_bench"] == 5 and counts["policies"] == 5 and counts["reward_math"] == 0
    md = (tmp_path / "out" / "rm_bench.md").read_text()
    tiny = next(line for line in md.splitlines() if line.startswith("| tiny-rm"))
    cells = [c.strip() for c in tiny.strip("|").split("|")]
    assert cells[2] == "—"  # math: not in the local data, marked missing
    assert "partial: chat+code+safety" in cells[8]
    assert cells[9].endswith("metrics.json") and Path(cells[9]).is_file()  # traceable
    assert not (tmp_path / "out" / "reward_math.md").exists()
    # the real run's style-substance matrices: one per scored domain and their mean
    assert counts["heatmaps"] == 4
    (heatmaps,) = [d for d in (tmp_path / "out" / "heatmaps").iterdir() if d.name.startswith("tiny-rm")]
    assert sorted(p.name for p in heatmaps.iterdir()) == ["chat.png", "code.png", "mean.png", "safety.png"]
    first = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.*") if p.suffix in (".md", ".csv", ".tex")}
    make_tables(_cfg(runs, tmp_path / "out"))
    assert {p: p.read_bytes() for p in first} == first


def test_latex_escapes_and_drops_the_source_column():
    tex = to_latex(["model", "chat", "source"], [["rm_a & b", "50.0%", "/x/metrics.json"]], "A caption_1")
    assert r"rm\_a \& b & 50.0\% \\" in tex and "/x/metrics.json" not in tex and r"A caption\_1" in tex


def test_dpo_vs_classifier_table_from_comparison_files(tmp_path):
    import json

    from rmlab.analysis.dpo_vs_classifier import comparison_row
    from tests.test_dpo_vs_classifier import _metrics

    runs = tmp_path / "runs"
    for i, dataset in enumerate(("stack_exchange", "hh_rlhf")):
        rows = [
            comparison_row(dataset, v, _metrics(3 * i + j), f"/runs/{dataset}/{v}/metrics.json", "rm_bench")
            for j, v in enumerate(("dpo_ref_free", "classifier", "dpo_ref"))
        ]
        (runs / dataset).mkdir(parents=True)
        (runs / dataset / "comparison.json").write_text(json.dumps({"rows": rows}))
    counts = make_tables(
        OmegaConf.create({"runs": str(runs), "paths": {"output_dir": str(tmp_path / "out")}, "heatmaps": False})
    )
    assert counts["dpo_vs_classifier"] == 6
    lines = (tmp_path / "out" / "dpo_vs_classifier.md").read_text().splitlines()[2:]
    # datasets in order, and the paper's order of variants within each
    assert [tuple(c.strip() for c in line.strip("|").split("|")[:2]) for line in lines] == [
        (d, v)
        for d in ("hh_rlhf", "stack_exchange")
        for v in ("Sequence classifier", "DPO (with reference)", "DPO (reference-free)")
    ]
    first = [c.strip() for c in lines[0].strip("|").split("|")]
    assert first[2].endswith("*") and first[-1] == "/runs/hh_rlhf/classifier/metrics.json"  # partial, traceable
