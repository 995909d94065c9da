"""Tables from run outputs: RM-Bench's layout with missing domains marked, sources traceable, byte-identical
when regenerated, LaTeX that escapes what it must."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from rmlab.analysis.tables import make_tables, to_latex
from rmlab.evaluation.rm_eval import evaluate_rm
from tests.conftest import compose_eval_cfg
from tests.test_correlation_study import make_study_runs


def _cfg(runs: Path, out: Path):
    return OmegaConf.create({"runs": str(runs), "paths": {"output_dir": str(out)}})


def test_tables_from_real_runs(tmp_path, tiny_classifier_dir, rm_bench_dir):
    runs = tmp_path / "runs"
    cfg = compose_eval_cfg(runs / "rmb", [f"model={tiny_classifier_dir}", "benchmark.max_per_domain=2",
                                          "bootstrap.n_boot=0"])
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
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    make_tables(_cfg(runs, tmp_path / "out"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == first


def test_latex_escapes_and_drops_the_source_column():
    tex = to_latex(["model", "chat", "source"], [["rm_a & b", "50.0%", "/x/metrics.json"]], "A caption_1")
    assert r"rm\_a \& b & 50.0\% \\" in tex and "/x/metrics.json" not in tex and r"A caption\_1" in tex
