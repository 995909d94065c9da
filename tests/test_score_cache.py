"""The score cache under concurrent writers: no shard lost or replaced, and a resumed run bit-identical."""

import errno
import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rmlab.scoring.cache import ScoreCache
from rmlab.utils.io import DiskFullError, write_json

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


def _shards(cache: ScoreCache) -> list[Path]:
    return sorted(cache.dir.glob("shard-*.json"))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),  # a copy cut short: no longer JSON
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b.replace(b"0.25", b"0.75"), id="value-changed"),  # still JSON: the checksum
        pytest.param(lambda b: b.replace(b'"count": 2', b'"count": 3'), id="count-changed"),
    ],
)
def test_a_damaged_shard_is_reported_set_aside_and_recomputed(tmp_path, caplog, damage):
    """A shard that is not what was written is never read: the run names it, sets it aside, scores its pairs
    again, and every later reader sees the recomputed values only."""
    writer = ScoreCache(tmp_path, "k")
    writer.add({"a": 0.5})
    writer.add({"b": 0.25, "c": 1.0})
    bad = _shards(writer)[1]
    bad.write_bytes(damage(bad.read_bytes()))

    with caplog.at_level("WARNING", logger="rmlab.scoring.cache"):
        reader = ScoreCache(tmp_path, "k")
    assert "a" in reader and "b" not in reader and "c" not in reader  # the whole damaged shard is left out
    assert reader.corrupt == [str(bad)] and str(bad) in caplog.text
    assert not bad.exists() and bad.with_name(bad.name + ".corrupt").is_file()
    reader.add({"b": 0.25, "c": 1.0})  # recomputed
    again = ScoreCache(tmp_path, "k")
    assert again.corrupt == [] and {k: again.get(k) for k in "abc"} == {"a": 0.5, "b": 0.25, "c": 1.0}


def test_a_shard_from_before_the_checksum_is_still_read(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "shard-00000000000000000001-host-1-abc.json").write_text(json.dumps({"x": 2.0}))
    cache = ScoreCache(tmp_path, "k")
    assert cache.get("x") == 2.0 and cache.corrupt == []


def _fail_writes_with_enospc(monkeypatch, after: int = 0):
    """``os.write`` (which :func:`rmlab.utils.io.write_bytes` writes through) fails as on a full disk after ``after``
    successful calls."""
    real, calls = os.write, []

    def write(fd, data):
        calls.append(fd)
        if len(calls) > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_is_one_line_naming_the_file_and_the_cache_stays_valid(tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path, "k")
    cache.add({"a": 0.5})
    _fail_writes_with_enospc(monkeypatch)
    with pytest.raises(DiskFullError) as info:
        cache.add({"b": 0.25})
    message = str(info.value)
    assert "\n" not in message and str(cache.dir / "shard-") in message and "no space left" in message
    assert info.value.errno == errno.ENOSPC and info.value.path.parent == cache.dir
    assert sorted(p.name for p in cache.dir.iterdir()) == [_shards(cache)[0].name]  # no temporary file left
    monkeypatch.undo()  # space freed: the cache reads as before and takes the lost batch again
    reread = ScoreCache(tmp_path, "k")
    assert reread.corrupt == [] and len(reread) == 1 and "b" not in reread
    reread.add({"b": 0.25})
    assert ScoreCache(tmp_path, "k").get("b") == 0.25


def test_a_full_disk_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    """An atomic rewrite that runs out of space part-way keeps the old content (the temp file took the hit)."""
    target = write_json(tmp_path / "metrics.json", {"overall": 0.5})
    _fail_writes_with_enospc(monkeypatch, after=0)
    with pytest.raises(DiskFullError, match="metrics.json"):
        write_json(target, {"overall": 0.75, "pad": "x" * 100_000})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"overall": 0.5} and [p.name for p in tmp_path.iterdir()] == [target.name]
