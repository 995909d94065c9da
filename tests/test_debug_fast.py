"""``debug=fast`` for every entry point: each ``rmlab`` command runs end to end with it, on tiny random models
(SmolLM2's tokenizer) and the local data, in one shared log directory, so the analysis commands read what the
others wrote. In-process (the same code path as the console script, without a Python start per command)."""

from __future__ import annotations

import json
import time
import traceback

from hydra.core.global_hydra import GlobalHydra

from rmlab.cli import ENTRIES, run_entry
from rmlab.utils.config import CONF_DIR

# not marked slow: this is the end-to-end path on tiny inputs that `make test` (CI) runs for every entry point


def test_every_entry_point_has_debug_fast():
    missing = [e.config for e in ENTRIES.values() if not (CONF_DIR / "debug" / e.config / "fast.yaml").is_file()]
    assert not missing, f"no conf/debug/<entry>/fast.yaml for {missing}"


def _overrides(tmp, lm, rm) -> dict[str, list[str]]:
    """Each command's own inputs: the tiny models, and the runs of the commands before it."""
    logs = tmp / "logs"
    return {
        "eval-rm": [f"model={rm}"],
        "train-rm": [f"model={rm}", "evaluate.benchmarks=[rm_bench]"],
        "train-dpo": [f"model={lm}"],
        "train-ppo": [f"policy={lm}", f"reward_model={rm}"],
        "train-policy": [f"policy={lm}", f"reward_model={rm}", "algo=grpo"],
        "eval-policy": [f"policy={lm}", "task=all"],
        "best-of-n": [f"policy={lm}", f"+reward_models.rm={rm}"],
        "arena-hard": [f"policy={lm}", f"judge.pretrained={lm}"],
        "reward-signal": [f"policy={lm}", f"reward_model={rm}", "recipe.max_prompt_length=256"],
        "run-experiment": [
            "experiment=dpo_vs_classifier",
            f"pipeline.classifier.overrides=['model={rm}']",
            f"pipeline.dpo.overrides=['model={lm}']",
            f"pipeline.stages_dir={tmp / 'stages'}",
        ],
        "correlate": [f"runs={logs}", "policy_score=absolute"],
        "make-tables": [f"runs={logs}"],
        "compare-benchmarks": [f"runs={logs}/eval_rm"],
        "report-card": [f"model={rm}"],
        "leaderboard": [],
        "arena-hard-fidelity": [],
        "xstest-agreement": [],
        "bench-scoring": [f"model={rm}", f"implicit={lm}"],
        "bench-generation": [f"policy={lm}"],
        "bench-train-rm": [f"model={rm}"],
        "measure-score-bounds": [f"model={rm}", f"implicit={lm}"],
        "gpu-check": [f"model={lm}"],
    }


# Commands that read no other command's runs, in two files of their own so that `make test`'s workers (pytest-xdist,
# whole files per worker) run them beside this chain: the stages (tests/test_debug_fast_stages.py) and the benches and
# checks (tests/test_debug_fast_tools.py).
STANDALONE_STAGES = (
    "train-policy",
    "best-of-n",
    "arena-hard",
    "reward-signal",
    "run-experiment",
    "arena-hard-fidelity",
    "xstest-agreement",
)
STANDALONE_TOOLS = ("bench-scoring", "bench-generation", "bench-train-rm", "measure-score-bounds", "gpu-check")
STANDALONE = STANDALONE_STAGES + STANDALONE_TOOLS


def test_every_entry_point_runs_in_one_of_the_three_files(tmp_path):
    overrides = _overrides(tmp_path, "lm", "rm")
    assert set(overrides) == set(ENTRIES), "every entry point runs here"
    assert set(STANDALONE) < set(overrides)


def test_the_chain_of_entry_points_runs_with_debug_fast(
    tmp_path, monkeypatch, tiny_lm_dir, tiny_classifier_dir, data_dir
):
    """Training, evaluation, and the analysis commands that read those runs (correlate, make-tables, ...)."""
    overrides = _overrides(tmp_path, tiny_lm_dir, tiny_classifier_dir)
    run_debug_fast({c: o for c, o in overrides.items() if c not in STANDALONE}, tmp_path, monkeypatch, data_dir)
    for stage in ("train_rm", "train_dpo", "train_ppo"):  # curves beside the metrics, whatever the logger
        (run,) = (tmp_path / "logs" / stage / "runs").iterdir()
        assert (run / "curves.png").is_file() and "curves" in json.loads((run / "train_metrics.json").read_text())


def run_debug_fast(overrides: dict[str, list[str]], tmp_path, monkeypatch, data_dir) -> None:
    """Run each command with ``debug=fast`` in one log directory; every failure reported together."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the exception itself, not SystemExit(1)
    monkeypatch.setenv("RMLAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RMLAB_DATA_DIR", str(data_dir))
    failed, seconds = {}, {}
    for command, extra in overrides.items():
        GlobalHydra.instance().clear()
        runs = _runs(tmp_path / "logs")
        start = time.perf_counter()
        try:
            run_entry(ENTRIES[command], [*extra, *(["device=cpu"] if _has_device(command) else []), "debug=fast"])
            if not _runs(tmp_path / "logs") - runs:
                failed[command] = "wrote no run directory"
        except (Exception, SystemExit) as e:  # noqa: BLE001 - collect them all, then report
            failed[command] = "".join(traceback.format_exception(e)[-3:])[-600:]
        seconds[command] = round(time.perf_counter() - start, 1)
    print("seconds per command:", seconds)
    assert not failed, "\n".join(f"rmlab {c} debug=fast: {tb}" for c, tb in failed.items())


def _runs(logs) -> set:
    return {p for p in logs.glob("*/runs/*") if p.is_dir()}


def _has_device(command: str) -> bool:
    from omegaconf import OmegaConf

    return "device" in OmegaConf.load(CONF_DIR / f"{ENTRIES[command].config}.yaml")
