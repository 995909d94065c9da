"""The score cache under concurrent writers: no shard lost or replaced, and a resumed run bit-identical."""

import json
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest

from rmlab.scoring.cache import ScoreCache

ROOT = Path(__file__).resolve().parents[1]


def _writer(root: str, tag: str, barrier, n: int) -> None:
    cache = ScoreCache(root, "k")  # both open the (empty) cache before either writes
    barrier.wait()
    for i in range(n):
        cache.add({f"{tag}-{i}": float(i), "shared": 1.0})


def test_two_writers_at_once_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tag, barrier, 25)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = ScoreCache(tmp_path, "k")
    assert len(list((tmp_path / "k").glob("shard-*.json"))) == 50
    assert len(cache) == 51
    assert all(cache.get(f"{tag}-{i}") == float(i) for tag in ("a", "b") for i in range(25))


def test_refresh_sees_another_writers_shards(tmp_path):
    a, b = ScoreCache(tmp_path, "k"), ScoreCache(tmp_path, "k")
    a.add({"x": 1.0})
    assert "x" not in b and b.refresh() == 1 and b.get("x") == 1.0
    b.add({"x": 2.0, "y": 3.0})  # a second value for a key: the first one written wins for every reader
    assert ScoreCache(tmp_path, "k").get("x") == 1.0 and b.get("x") == 1.0


_EVAL = """
import json, sys
from pathlib import Path
from tests.conftest import compose_eval_cfg
from rmlab.rm_eval.evaluate import evaluate_rm
model, out, scores, n = sys.argv[1:5]
cfg = compose_eval_cfg(Path(out), [f"model={model}", f"benchmark.max_per_domain={n}", "scoring.batch_size=1",
                                   "scoring.packed=false", "bootstrap.n_boot=50"])
cfg.paths.score_cache_dir = scores
evaluate_rm(cfg)
"""


@pytest.mark.slow
def test_concurrent_evaluations_then_resume_match_a_single_run(tiny_classifier_dir, rm_bench_dir, tmp_path):
    """Two evaluations of one model write one cache at the same time (different subsets, one batch per pair, so
    their shards interleave); a third run then scores nothing and its metrics equal a run on a cache of its own.

    One pair per pass (``scoring.packed=false scoring.batch_size=1``) makes every score independent of the
    other pairs a run has, so the equality is exact; in packed passes a score depends on its pass at float
    rounding (about 1e-8 here), which runs over different subsets do not share."""
    shared = tmp_path / "shared-scores"

    def launch(name, n, scores):
        return subprocess.Popen(
            [sys.executable, "-c", _EVAL, str(tiny_classifier_dir), str(tmp_path / name), str(scores), str(n)], cwd=ROOT
        )

    procs = [launch("a", 3, shared), launch("b", 4, shared)]
    assert [p.wait(600) for p in procs] == [0, 0]
    assert launch("resumed", 4, shared).wait(600) == 0
    assert launch("single", 4, tmp_path / "own-scores").wait(600) == 0

    def metrics(name):
        m = json.loads((tmp_path / name / "run" / "metrics.json").read_text())
        return m, {k: v for k, v in m.items() if k not in {"scoring", "wall_seconds", "run", "config"}}

    resumed, resumed_stable = metrics("resumed")
    single, single_stable = metrics("single")
    assert resumed["scoring"]["scored"] == 0
    assert resumed["scoring"]["from_cache"] == single["scoring"]["unique_pairs"]
    assert resumed_stable == single_stable
