"""The cluster launcher, run locally: Hydra's submitit plugin with its local executor (``hydra/launcher=
submitit_local``) takes the same path as ``submitit_slurm`` (pickled job, one process per job, results collected),
only without the queue. A ``-m`` sweep of reward models over two preference datasets; the correlation study fanned
out one branch per job (each branch's reward model trained by 2 DDP processes, as the paper's 8-GPU branch jobs
would), then the joining run that reuses every branch and correlates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rmlab.training.train_rm import train_reward_model
from tests.conftest import compose_train_cfg
from tests.helpers.launch import child_env, run_entry
from tests.helpers.overrides import tiny_ppo_recipe
from tests.test_correlation_pipeline import PARTIAL_REASONING, _quoted_list
from tests.test_eval_policy import TINY as TINY_TASKS

SUBMITIT = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=20"]
SUBSETS = ("helpful-base", "harmless-base")  # two preference datasets: the local HH-RLHF has four subsets


def _rm(model_dir: Path) -> list[str]:
    return [
        f"model={model_dir}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        "recipe.max_steps=2",
        "recipe.pairs_per_update=4",
        "recipe.micro_batch_pairs=2",
        "recipe.max_pair_tokens=256",
        "bootstrap.n_boot=20",
        "logger=csv",
        "trainer.enable_progress_bar=false",
    ]


@pytest.mark.slow
def test_a_sweep_over_two_preference_datasets_runs_one_submitit_job_each(tmp_path, tiny_classifier_dir, data_dir):
    files = ",".join(f"['{s}/*.jsonl.gz']" for s in SUBSETS)
    wall = run_entry(
        [
            sys.executable,
            "scripts/train_rm.py",
            "-m",
            *SUBMITIT,
            f"preference.files={files}",
            *_rm(tiny_classifier_dir),
        ],
        child_env(tmp_path),
    )
    (sweep,) = (tmp_path / "logs" / "train_rm" / "multiruns").iterdir()
    jobs = [sweep / str(i) for i in range(2)]
    metrics = [json.loads((j / "train_metrics.json").read_text()) for j in jobs]
    assert [m["data"]["files"][0].split("/")[-2] for m in metrics] == list(SUBSETS)
    assert metrics[0]["data"]["train_fingerprint"] != metrics[1]["data"]["train_fingerprint"]
    assert all((j / "model" / "rmlab_meta.json").is_file() for j in jobs)
    submitted = [p for p in (sweep / ".submitit").iterdir() if p.name != "%j"]
    assert len(submitted) == 2 and all(list(p.glob("*_result.pkl")) for p in submitted)  # one job per dataset
    summary = json.loads((sweep / "sweep_summary.json").read_text())  # written by the submitting process
    assert [r["job"] for r in summary] == [0, 1] and all(r["heldout_acc"] is not None for r in summary)
    print(f"\nsubmitit_local sweep, 2 reward models: {wall:.1f} s")


def _study(tiny_classifier_dir: Path, tiny_lm_dir: Path) -> list[str]:
    """The CPU study on two branches, tiny; each reward model trained by 2 DDP processes in a child process of
    its branch's job (``launch``), where Lightning can start its second rank by running scripts/train_rm.py."""
    train = [
        f"model={tiny_classifier_dir}",
        "trainer=ddp_cpu",
        "trainer.enable_progress_bar=false",
        "recipe.max_steps=1",
        "recipe.pairs_per_update=2",
        "recipe.micro_batch_pairs=1",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
        "bootstrap.n_boot=20",
    ]
    ppo = [
        "device=cpu",
        *tiny_ppo_recipe(),
        "bootstrap.n_boot=20",
    ]
    return [
        "experiment=correlation_study_cpu",
        "pipeline.stage_logger=none",
        "~pipeline.reward_models.helpful_online",
        "~pipeline.reward_models.helpful_rejection_sampled",
        f"pipeline.sft_policy={tiny_lm_dir}",
        _quoted_list("pipeline.preference_overrides", ["preference.max_pairs=24", "preference.heldout_pairs=8"]),
        _quoted_list("pipeline.train_rm.overrides", train),
        f"+pipeline.train_rm.launch=[{sys.executable}]",
        _quoted_list("pipeline.ppo.overrides", ppo),
        _quoted_list("pipeline.rm_eval.benchmarks.rm_bench", ["benchmark.max_per_domain=1"]),
        _quoted_list("pipeline.rm_eval.benchmarks.reward_bench", ["benchmark.max_per_subset=2"]),
        _quoted_list("pipeline.rm_eval.overrides", ["device=cpu", "bootstrap.n_boot=0", "scoring.progress=false"]),
        _quoted_list("pipeline.policy_eval.overrides", ["device=cpu", *TINY_TASKS]),
        _quoted_list("pipeline.correlate.overrides", ["n_boot=50", "n_perm=50", *PARTIAL_REASONING]),
    ]


@pytest.mark.slow
def test_the_study_fans_out_one_job_per_branch_and_the_join_reuses_them_all(
    tmp_path, tiny_classifier_dir, tiny_lm_dir, data_dir
):
    env = child_env(tmp_path, RMLAB_CACHE_DIR=str(tmp_path / "cache"), RMLAB_DATA_DIR=str(data_dir))
    study = _study(tiny_classifier_dir, tiny_lm_dir)
    branches = ["helpful_base", "harmless_base", "sft"]
    script = [sys.executable, "scripts/run_experiment.py"]
    fan_wall = run_entry([*script, "-m", *SUBMITIT, f"pipeline.only={','.join(branches)}", *study], env, timeout=900)
    logs = tmp_path / "logs"
    (sweep,) = (logs / "correlation_study" / "multiruns").iterdir()
    for i, branch in enumerate(branches):  # each job ran its branch's stages and did not correlate
        job = sweep / str(i)
        assert {s["branch"] for s in json.loads((job / "stages.json").read_text())} == {branch}
        assert not (job / "correlation").exists()
    assert len([p for p in (sweep / ".submitit").iterdir() if p.name != "%j"]) == 3
    for stage in (logs / "stages").glob("*/train_rm-*"):  # 2 ranks, started inside the branch's job
        assert json.loads((stage / "stage.json").read_text())["launch"] == [sys.executable]
        assert json.loads((stage / "train_metrics.json").read_text())["distributed"]["world_size"] == 2
    stamps = {p: p.stat().st_mtime_ns for p in (logs / "stages").rglob("*.json") if p.name != "stage.json"}
    assert len(stamps) > 10

    join_wall = run_entry([*script, *study], env, timeout=900)
    (run,) = (logs / "correlation_study" / "runs").iterdir()
    stages = json.loads((run / "stages.json").read_text())
    assert len(stages) == 1 + 2 * 5 and all(s["decision"] == "reuse" for s in stages)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed
    result = json.loads((run / "correlation_absolute_raw" / "correlation.json").read_text())
    assert result["benchmarks"]["rm_bench"]["n"] == 4  # 2 reward models x 2 task groups
    assert set(result["benchmarks"]["rm_bench"]["reward_models"]) == {"helpful_base", "harmless_base"}
    assert (run / "correlation" / "correlation.md").is_file() and (run / "tables" / "rm_bench.md").is_file()
    print(f"\nsubmitit_local fan-out, 3 branch jobs: {fan_wall:.1f} s; joining run (all reused): {join_wall:.1f} s")


def test_ranks_cannot_be_started_by_rerunning_a_program_that_is_not_train_rm(tmp_path, tiny_classifier_dir, data_dir):
    """In-process (here pytest; in a cluster job submitit's runner), Lightning would start rank 1 by running this
    program again: refused before any training, naming the ways that work."""
    cfg = compose_train_cfg(tmp_path, [*_rm(tiny_classifier_dir), "trainer=ddp_cpu", "logger=none"])
    with pytest.raises(RuntimeError, match=r"not scripts/train_rm.py on its own.*pipeline.train_rm.launch"):
        train_reward_model(cfg)
    assert not (Path(cfg.paths.output_dir) / "train_metrics.json").exists()
