"""Crash safety of the long stages, through their entry points: SIGKILL at a random point, the same command again,
and the final outputs equal an uninterrupted run's; a cache shard damaged meanwhile is reported and recomputed.

"A random point" is drawn from a seeded generator over the stage's observed progress: the run is killed once its
k-th cache shard is on disk, k drawn in [1, shards of an uninterrupted run - 1], so each test checks the same
thing every time while the seed picks where the kill lands. RM training and DPO have their kill tests under 2
processes (``test_distributed_rm.py``, ``test_distributed_dpo.py``), PPO under 1 and 2 (``test_train_ppo.py``,
``test_distributed_ppo.py``); the scorer and the generator are here.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.launch import child_env, run_entry

SEED = 20261205


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.rglob("shard-*.json"))


def _kill_at_shard(cmd: list[str], env: dict, cache: Path, k: int) -> None:
    """Start ``cmd``, SIGKILL its process group as soon as ``k`` cache shards exist; the run must not finish."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while len(_shards(cache)) < k and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    assert k <= len(_shards(cache))


def _damage_newest_shard(cache: Path) -> Path:
    """Cut the newest shard in half, as a disk error or a copy cut short would: it must not be read."""
    newest = _shards(cache)[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    return newest


def _run_logged(cmd: list[str], env: dict) -> str:
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    return res.stdout + res.stderr


def _scoring_cmd(model: Path, out: Path, cache: Path) -> list[str]:
    """RM-Bench, 1 prompt per domain, one pair per pass: a shard per pair."""
    return [
        sys.executable,
        "scripts/eval_rm.py",
        f"model={model}",
        "benchmark=rm_bench",
        "benchmark.max_per_domain=1",
        "scoring.batch_size=1",
        "scoring.packed=false",
        "scoring.progress=false",
        "bootstrap.n_boot=50",
        "device=cpu",
        "logger=none",
        f"paths.score_cache_dir={cache}",
        f"hydra.run.dir={out}",
    ]


def _generation_cmd(policy: Path, out: Path, cache: Path) -> list[str]:
    """GSM8k, 8 prompts sampled twice each (seeded per chunk) in chunks of 2: a shard per chunk."""
    return [
        sys.executable,
        "scripts/eval_policy.py",
        f"policy={policy}",
        "task=gsm8k",
        "task.gsm8k.max_examples=8",
        "task.gsm8k.decodings=[{name: t0.7, do_sample: true, temperature: 0.7, n: 2, max_new_tokens: 6}]",
        "generation.batch_size=2",
        "generation.chunk_size=2",
        "generation.progress=false",
        "bootstrap.n_boot=50",
        "device=cpu",
        "logger=none",
        f"paths.generation_cache_dir={cache}",
        f"hydra.run.dir={out}",
    ]


def _stable(doc: dict) -> dict:
    """A run's outputs without what differs between two runs of the same work (paths, timings, cache counts)."""
    return {k: v for k, v in doc.items() if k not in {"scoring", "wall_seconds", "run", "config", "generation"}}


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["scoring", "generation"])
def test_a_killed_stage_reruns_to_the_uninterrupted_outputs(
    stage, tmp_path, tiny_classifier_dir, tiny_lm_dir, data_dir
):
    """Uninterrupted run; then the same command killed at its k-th shard (k seeded), the newest shard cut in half,
    and the same command again: identical outputs, the damaged shard named in the log and recomputed, no shard
    left unreadable, no temporary file read (only ``shard-*.json`` are)."""
    cmd_of, model, done, rows = {
        "scoring": (_scoring_cmd, tiny_classifier_dir, "metrics.json", "scores.jsonl"),
        "generation": (_generation_cmd, tiny_lm_dir, "summary.json", "gsm8k/generations.jsonl"),
    }[stage]
    env = child_env(tmp_path)
    whole = tmp_path / "whole"
    run_entry(cmd_of(model, whole, tmp_path / "whole-cache"), env)
    n = len(_shards(tmp_path / "whole-cache"))
    assert n >= 4
    k = random.Random(f"{SEED}-{stage}").randint(1, n - 1)

    out, cache = tmp_path / "killed", tmp_path / "cache"
    cmd = cmd_of(model, out, cache)
    _kill_at_shard(cmd, env, cache, k)
    assert not (out / done).exists()
    damaged = _damage_newest_shard(cache)
    log = _run_logged(cmd, env)

    assert f"corrupt shard {damaged}" in log and damaged.with_name(damaged.name + ".corrupt").is_file()
    for shard in _shards(cache):  # every shard now on disk is whole
        assert json.loads(shard.read_text())["count"] > 0
    got, want = json.loads((out / done).read_text()), json.loads((whole / done).read_text())
    assert _stable(got) == _stable(want)
    assert (out / rows).read_text() == (whole / rows).read_text()
    print(f"\n{stage}: killed at shard {k} of {n}, shard {damaged.name} damaged; rerun equals the uninterrupted run")


def _finished_stages(stages: Path) -> int:
    """Stages of a pipeline that have finished (``stage.json`` gets its wall time last)."""
    return sum("wall_seconds" in json.loads(p.read_text()) for p in stages.rglob("stage.json"))


@pytest.mark.slow
def test_a_killed_experiment_reruns_to_the_uninterrupted_comparison(
    tmp_path, tiny_classifier_dir, tiny_lm_dir, data_dir
):
    """``experiment=dpo_vs_classifier`` (train an RM and a DPO model, 3 evaluations, a comparison) killed once its
    k-th stage of 5 has finished (k seeded), then the same command: the finished stages are reused, the others
    run, and the comparison equals an uninterrupted run's."""
    from tests.test_dpo_vs_classifier import pipeline_command

    def run(name: str) -> tuple[list[str], dict, Path]:
        env = child_env(tmp_path / name)
        return pipeline_command(tmp_path / name, tiny_classifier_dir, tiny_lm_dir), env, tmp_path / name / "logs"

    cmd, env, logs = run("whole")
    run_entry(cmd, env)
    (whole,) = (logs / "dpo_vs_classifier" / "runs").iterdir()
    k = random.Random(f"{SEED}-experiment").randint(1, 4)

    cmd, env, logs = run("killed")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and _finished_stages(logs / "stages") < k:
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    log = _run_logged(cmd, env)
    assert log.count("reusing") >= k  # what had finished is not computed again

    def rows(run_dir: Path) -> list[dict]:
        doc = json.loads((run_dir / "comparison.json").read_text())
        return [{key: v for key, v in r.items() if key != "source"} for r in doc["rows"]]

    resumed = max((logs / "dpo_vs_classifier" / "runs").iterdir())
    assert rows(resumed) == rows(whole) and len(rows(whole)) == 3
    print(f"\nexperiment: killed after stage {k} of 5; rerun equals the uninterrupted comparison")


_FULL_DISK = """
import errno, os, sys
real = os.write


def write(fd, data):  # the file system is full for the correlation's output, as ENOSPC from write(2)
    if ".correlation.json." in os.readlink(f"/proc/self/fd/{fd}"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(fd, data)


os.write = write
from rmlab.cli import main
main(sys.argv[1:])
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell which file a write goes to")
def test_a_full_disk_stops_a_command_with_one_line_naming_the_file(tmp_path):
    """``rmlab correlate`` whose output cannot be written: exit status 1 and one line naming the file, no
    traceback, no file and no temporary file left behind."""
    from tests.test_correlation_study import make_study_runs

    runs, out = make_study_runs(tmp_path), tmp_path / "out"
    cmd = [
        sys.executable,
        "-c",
        _FULL_DISK,
        "correlate",
        f"runs={runs}",
        "n_boot=20",
        "n_perm=20",
        f"hydra.run.dir={out}",
    ]
    res = subprocess.run(
        cmd, cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("rmlab correlate: no space left on device writing") and str(out / "correlation.json") in last
    assert "Traceback" not in res.stderr
    assert not list(out.glob("*correlation.json*"))
