"""End to end through the Hydra entry point: real wheel-shipped models on real RM-Bench records."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.slow


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1", "WANDB_SILENT": "true"}
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    cmd = [
        sys.executable,
        "scripts/eval_rm.py",
        *flags,
        f"paths.score_cache_dir={tmp_path / 'scores'}",
        "scoring.progress=false",
        *overrides,
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.mark.numeric
def test_quickstart_smollm2_implicit_reward_with_wandb_offline(tmp_path, rm_bench_dir):
    _run(
        [
            "experiment=quickstart",
            "benchmark.max_per_domain=2",
            "bootstrap.n_boot=200",
            "logger=wandb",
            "logger.mode=offline",
        ],
        tmp_path,
    )
    (run,) = (tmp_path / "logs" / "eval_rm" / "runs").iterdir()
    for name in (
        "config.yaml",
        "scores.jsonl",
        "metrics.json",
        "table.md",
        "heatmap_chat.png",
        "heatmap_code.png",
        "heatmap_safety.png",
        "eval_rm.log",
    ):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m["model"] == "smollm2-135m-instruct" and m["scorer"]["scorer"] == "implicit"
    assert m["scorer"]["ref_free_mode"] == "avg" and "reference" not in m["scorer"]
    assert m["domains_scored"] == ["chat", "code", "safety"] and m["overall"] is None
    assert m["n_records"] == 8 and m["scoring"]["scored"] == m["scoring"]["unique_pairs"] > 40
    # the partial mean recomputed from the per-prompt scores: per metric domain (safety pools both safety files)
    # the mean of the 9 cells M[i][j] = share of prompts with chosen style i strictly above rejected style j
    rows = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    avgs = []
    for d in ("chat", "code", "safety"):
        mine = [r for r in rows if r["domain"] == d or (d == "safety" and r["domain"].startswith("safety"))]
        wins = sum(r["chosen"][i] > r["rejected"][j] for r in mine for i in range(3) for j in range(3))
        avgs.append(wins / (9 * len(mine)))
        # 9 cells wins_ij / n (1 rounding each) and their mean (9) against one division (1): 11 roundings of <= 1
        assert m["domains"][d]["avg"] == pytest.approx(avgs[-1], abs=worst_case(11, 1.0)), d
    # the domains' own errors (11) plus a 3-term mean on each side (3 + 3): 17 roundings of values <= 1
    assert m["partial_overall"]["value"] == pytest.approx(sum(avgs) / 3, abs=worst_case(17, 1.0))
    assert list((run / "wandb").glob("offline-run-*")), "W&B offline run directory missing"


def test_multirun_over_two_classifiers(tmp_path, rm_bench_dir):
    _run(
        ["-m", "model=minilm_rm,smollm2_135m_rm", "benchmark.max_per_domain=1", "bootstrap.n_boot=0", "logger=csv"],
        tmp_path,
    )
    (sweep,) = (tmp_path / "logs" / "eval_rm" / "multiruns").iterdir()
    models = set()
    for job in ("0", "1"):
        m = json.loads((sweep / job / "metrics.json").read_text())
        assert m["scorer"]["scorer"] == "classifier" and m["scorer"]["new_head_seed"] == 0
        assert (sweep / job / "metrics.csv").read_text().startswith("name,value")
        models.add(m["model"])
    assert models == {"all-minilm-l6-v2-rm", "smollm2-135m-rm"}
    summary = json.loads((sweep / "sweep_summary.json").read_text())  # written by the SweepSummary callback
    assert [r["job"] for r in summary] == [0, 1] and all(r["benchmark"] == "rm_bench" for r in summary)
    assert "model=minilm_rm" in summary[0]["overrides"] and (sweep / "sweep_summary.md").is_file()


def test_smollm2_on_reward_bench_math_and_reward_math_sample(tmp_path, data_dir):
    _run(["benchmark=reward_bench", "benchmark.max_per_subset=4", "bootstrap.n_boot=100", "logger=csv"], tmp_path)
    _run(["benchmark=reward_math_sample", "bootstrap.n_boot=100", "logger=csv"], tmp_path)
    runs = sorted((tmp_path / "logs" / "eval_rm" / "runs").iterdir())
    rb, rmath = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert rb["benchmark"] == "reward_bench" and rb["subsets"]["math-prm"]["n"] == 4
    assert rmath["benchmark"] == "reward_math" and rmath["n"] == 2
    assert rmath["scoring"]["unique_pairs"] == 20 and rmath["model"] == "smollm2-135m-instruct"
