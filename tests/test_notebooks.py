"""Every notebook executes top to bottom on run outputs made here, so the notebooks never rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rmlab.evaluation.rm_eval import evaluate_rm
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, tiny_classifier_dir, rm_bench_dir):
    from tests.conftest import compose_eval_cfg

    base = tmp_path_factory.mktemp("nb-runs")
    for seed in (0, 1):
        cfg = compose_eval_cfg(base / f"seed{seed}", [f"model={tiny_classifier_dir}", "benchmark.max_per_domain=2",
                                                      "bootstrap.n_boot=0", f"seed={seed}"])
        evaluate_rm(cfg)
    return base


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, runs_dir, monkeypatch):
    monkeypatch.setenv("RMLAB_RUNS", str(runs_dir))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "2 RM-Bench run(s)" in printed
    assert printed.count("| tiny-rm") == 2  # one table row per run, labelled by model
