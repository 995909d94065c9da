"""Benchmarks are plug-ins end to end: the analysis layer names none of them, a benchmark registered inside a test
shows up in every analysis output with no other edit, and a run of an unregistered benchmark is an error."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from rmlab.analysis.bon_study import benchmark_accuracy
from rmlab.analysis.compare import compare
from rmlab.analysis.correlation_study import rm_group_score
from rmlab.analysis.leaderboard import write_leaderboard
from rmlab.analysis.runs import UnknownBenchmarkError
from rmlab.analysis.tables import make_tables
from rmlab.benchmarks import BENCHMARKS, ScoreRequest
from rmlab.benchmarks.base import pct
from rmlab.rm_eval.evaluate import evaluate_rm
from tests.conftest import compose_eval_cfg
from tests.helpers.models import build_tiny_classifier

SRC = Path(__file__).parents[1] / "src" / "rmlab"


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings (f-string pieces included)."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_analysis_and_pipelines_name_no_benchmark():
    """What a benchmark means lives in its module: the analysis entry points and pipelines dispatch through
    ``BENCHMARKS`` (a name in a config, a test or a docstring is fine)."""
    names = BENCHMARKS.names()
    assert {
        "rm_bench",
        "reward_bench",
        "reward_math",
        "judgebench",
        "reward_bench_2",
        "rmb",
        "ppe_preference",
        "ppe_correctness",
    } <= set(names)
    found = []
    for folder in ("analysis", "pipelines"):
        for path in sorted((SRC / folder).glob("*.py")):
            for line, text in _code_strings(path):
                found += [f"{path.name}:{line}: {text!r}" for n in names if re.search(rf"\b{n}\b", text)]
    assert not found, "\n".join(found)


class Toy:
    """A benchmark written inside this test: each item is a prompt with a good and a bad answer."""

    title = "Toy"
    caption = "Toy accuracy (%)."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self):
        items = [(f"What is {k} + {k}?", str(2 * k), str(2 * k + 1 + k % 3)) for k in range(6)]
        return items, {"source": "in the test", "files": [], "data_fingerprint": "toy-v1"}

    def missing(self, items):
        return []

    @staticmethod
    def requests(items):
        return [ScoreRequest(q, a, f"{k}/{side}") for k, (q, *ans) in enumerate(items) for side, a in zip("gb", ans)]

    def compute(self, items, scores, *, n_boot, confidence, seed):
        s = np.asarray(scores).reshape(len(items), 2)
        wins = (s[:, 0] > s[:, 1]).tolist()
        return {"accuracy": float(np.mean(wins)), "half": float(np.mean(wins[:3]))}, [{"win": w} for w in wins]

    @staticmethod
    def comparisons(items):
        from rmlab.benchmarks import Comparison

        return [Comparison(q, a, b, str(k), f"{k}/g", f"{k}/b") for k, (q, a, b) in enumerate(items)]

    def compute_comparisons(self, items, outcomes, *, n_boot, confidence, seed, preferences=None):
        raise NotImplementedError

    @staticmethod
    def table(metrics, model_name):
        return f"| {model_name} | {metrics['accuracy']} |\n"

    @staticmethod
    def figures(metrics, model_name, out_dir):
        return []

    @staticmethod
    def log_scalars(metrics):
        return {"toy/accuracy": metrics["accuracy"]}

    @staticmethod
    def headline(metrics):
        return metrics["accuracy"], True

    @staticmethod
    def columns(metrics):
        return {"toy accuracy": pct(metrics["accuracy"]), "first half": pct(metrics["half"])}

    @staticmethod
    def group_score(metrics, spec):
        return metrics[spec["part"]]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(BENCHMARKS._items, "toy", Toy)


def test_a_toy_benchmark_appears_in_every_analysis_output(toy, tmp_path, tokenizer, data_dir):
    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        model = build_tiny_classifier(tmp_path / f"rm-{seed}", tokenizer, seed=seed)
        for bench, extra in (("toy", ["benchmark=judgebench", "benchmark.name=toy"]), ("jb", ["benchmark=judgebench"])):
            cfg = compose_eval_cfg(
                runs / f"{seed}-{bench}", [f"model={model}", *extra, "benchmark.max_pairs=4", "bootstrap.n_boot=0"]
            )
            evaluate_rm(cfg)
    toy_metrics = {s: json.loads((runs / f"{s}-toy" / "run" / "metrics.json").read_text()) for s in (1, 2, 3)}
    assert all(m["benchmark"] == "toy" for m in toy_metrics.values())

    out = compare(runs, tmp_path / "cmp", n_boot=20)
    assert {m: v["score"] for m, v in out["summary_scores"]["toy"].items()} == {
        f"rm-{s}": toy_metrics[s]["accuracy"] for s in (1, 2, 3)
    }
    assert "judgebench~toy" in out["rank_correlations"]  # the toy comes after every benchmark with an order
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "Toy toy accuracy" in md and "Toy first half" in md and "JudgeBench overall" in md

    cfg = OmegaConf.create({"runs": str(runs), "paths": {"output_dir": str(tmp_path / "tables")}})
    counts = make_tables(cfg)
    assert counts["toy"] == 3 and counts["judgebench"] == 3
    table = (tmp_path / "tables" / "toy.md").read_text()
    assert table.startswith("| model | toy accuracy | first half | source |")
    assert r"\caption{Toy accuracy (\%).}" in (tmp_path / "tables" / "toy.tex").read_text()

    # the leaderboard (the report card's table, one row per model, read from the runs)
    lb = write_leaderboard(OmegaConf.create({"runs": str(runs), "paths": {"output_dir": str(tmp_path / "lb")}}))
    assert lb["benchmarks"][-1] == "toy" and [r["model"] for r in lb["rows"]] == [f"rm-{s}" for s in (1, 2, 3)]
    for row, s in zip(lb["rows"], (1, 2, 3)):
        cells = {c["benchmark"]: c for c in row["cells"]}
        assert cells["toy"]["value"] == toy_metrics[s]["accuracy"] and cells["toy"]["mark"] == "complete"
        assert cells["rm_bench"] == {
            "benchmark": "rm_bench",
            "value": None,
            "ci": None,
            "mark": "no data (not evaluated)",
        }
    assert (tmp_path / "lb" / "leaderboard.md").read_text().splitlines()[0].endswith("| Toy |")

    assert benchmark_accuracy(toy_metrics[1]) == toy_metrics[1]["accuracy"]  # the best-of-n study's reading
    assert rm_group_score(toy_metrics[2], {"part": "half"}) == toy_metrics[2]["half"]  # the correlation study's


def test_a_run_of_an_unregistered_benchmark_is_an_error(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"benchmark": "nope", "model": "m", "data_fingerprint": "x"}))
    (tmp_path / "runs" / "b").mkdir()  # another stage's metrics.json names no benchmark: not an evaluation
    (tmp_path / "runs" / "b" / "metrics.json").write_text(json.dumps({"loss": 0.1}))
    with pytest.raises(UnknownBenchmarkError, match=r"a/metrics.json: benchmark 'nope' is not registered"):
        compare(tmp_path / "runs", tmp_path / "cmp")
    with pytest.raises(UnknownBenchmarkError, match="'nope'"):
        write_leaderboard(OmegaConf.create({"runs": str(tmp_path / "runs"), "paths": {"output_dir": str(tmp_path)}}))
    with pytest.raises(UnknownBenchmarkError, match="'nope'"):
        make_tables(OmegaConf.create({"runs": str(tmp_path / "runs"), "paths": {"output_dir": str(tmp_path / "t")}}))
