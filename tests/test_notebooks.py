"""Every notebook executes top to bottom on run outputs made here, so the notebooks never rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rmlab.rm_eval.evaluate import evaluate_rm
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_every_notebook_is_tested():
    assert {p.name for p in NOTEBOOKS} == {"rm_bench_results.ipynb", "correlation_study.ipynb"}


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(
            not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
        ), path.name


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory, tiny_classifier_dir, rm_bench_dir):
    from tests.conftest import compose_eval_cfg

    base = tmp_path_factory.mktemp("nb-runs")
    for seed in (0, 1):
        cfg = compose_eval_cfg(
            base / f"seed{seed}",
            [f"model={tiny_classifier_dir}", "benchmark.max_per_domain=2", "bootstrap.n_boot=0", f"seed={seed}"],
        )
        evaluate_rm(cfg)
    return base


def test_rm_bench_notebook_runs(runs_dir, monkeypatch):
    monkeypatch.setenv("RMLAB_RUNS", str(runs_dir))
    printed = _execute(ROOT / "notebooks" / "rm_bench_results.ipynb")
    assert "2 RM-Bench run(s)" in printed
    assert printed.count("| tiny-rm") == 2  # one table row per run, labelled by model


def test_correlation_notebook_runs(tmp_path, monkeypatch):
    """On the run outputs the correlation-study tests build (4 reward models, their policies, the SFT policy)."""
    from tests.test_correlation_study import make_study_runs

    runs = make_study_runs(tmp_path)
    monkeypatch.setenv("RMLAB_RUNS", str(runs))
    monkeypatch.setenv("RMLAB_NOTEBOOK_OUT", str(tmp_path))
    printed = _execute(ROOT / "notebooks" / "correlation_study.ipynb")
    assert "4 evaluated reward model(s), 5 evaluated polic(ies)" in printed
    assert "rm_bench: 12 point(s)" in printed and "reward_bench: 12 point(s)" in printed
    assert printed.count("| within_group | 12 |") == 2
    assert (tmp_path / "correlation_notebook.png").stat().st_size > 0
