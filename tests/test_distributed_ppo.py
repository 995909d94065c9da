"""PPO (``trl.experimental.ppo``) under ``accelerate launch`` on 2 CPU processes (``conf/accelerate/multi_cpu.yaml``).

One run directory, one policy, one W&B run from rank 0; a run killed after its first checkpoint resumes to exactly
the policy of an uninterrupted run (each rank's RNG state is in the checkpoint, so the rollouts are the same).
There is no 1-process comparison: each rank samples its rollouts from its own generator, so 2 processes draw
other responses than 1 process with twice the batch, and PPO's updates depend on the samples.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import ROOT
from tests.helpers.launch import child_env, max_abs_diff, run_entry
from tests.helpers.overrides import tiny_ppo_recipe
from tests.helpers.tolerances import training_agreement
from tests.test_distributed_dpo import ACCELERATE, _kill_tree


def _overrides(policy: Path, reward_model: Path, run: Path, extra=()) -> list[str]:
    """3 updates of 8 rollouts (2 ranks x 2 prompts x 2 accumulation steps), a checkpoint after each."""
    return [
        f"policy={policy}",
        f"reward_model={reward_model}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        *tiny_ppo_recipe(total_episodes=24),
        "recipe.save_every=1",
        "bootstrap.n_boot=50",
        "device=cpu",
        "logger=none",
        f"hydra.run.dir={run}",
        *extra,
    ]


@pytest.mark.slow
def test_two_process_ppo_writes_once_and_a_killed_run_resumes_to_the_same_policy(
    tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir
):
    env = child_env(tmp_path, TRL_EXPERIMENTAL_SILENCE="1")
    whole = tmp_path / "whole"
    wall = run_entry(
        [*ACCELERATE, "scripts/train_ppo.py", *_overrides(tiny_lm_dir, tiny_classifier_dir, whole, ["logger=wandb"])],
        env,
    )
    metrics = json.loads((whole / "train_metrics.json").read_text())
    assert (metrics["train"]["processes"], metrics["train"]["updates"], metrics["train"]["episodes"]) == (2, 3, 24)
    assert len(list((whole / "wandb").glob("offline-run-*"))) == 1
    assert json.loads((whole / "policy" / "rmlab_meta.json").read_text())["kind"] == "policy"
    assert not (whole / "checkpoints").exists()  # removed by rank 0 once the policy is saved

    killed = tmp_path / "killed"
    cmd = [*ACCELERATE, "scripts/train_ppo.py", *_overrides(tiny_lm_dir, tiny_classifier_dir, killed)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pointer = killed / "checkpoints" / "last"  # renamed into place once every rank has saved its state
    deadline = time.monotonic() + 300
    while not pointer.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_tree(proc)
    assert pointer.is_file(), proc.stderr.read().decode()[-3000:]
    checkpoint = killed / "checkpoints" / pointer.read_text().strip()
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in checkpoint.iterdir()}

    run_entry([*cmd, "resume=last"], env)
    resumed = json.loads((killed / "train_metrics.json").read_text())["train"]
    assert resumed["resume"]["mode"] == "last" and resumed["updates"] == 3 and 0 < resumed["resumed_at_update"] < 3
    init = load_file(tiny_lm_dir / "model.safetensors")
    a, b = load_file(whole / "policy" / "model.safetensors"), load_file(killed / "policy" / "model.safetensors")
    # 3 updates of one epoch and one mini-batch: 3 optimizer steps at recipe.lr=1e-3 (tiny_ppo_recipe)
    agreement = training_agreement(a, b, init, lr=1e-3, steps=3, betas=(0.9, 0.999))  # TRL default AdamW
    print(
        f"\nPPO, 2 processes: {wall:.1f} s for 3 updates; killed after update {resumed['resumed_at_update']}, "
        f"resumed: {agreement} (max |policy weight diff| {max_abs_diff(a, b):.2e})"
    )
    assert agreement["agree"], agreement
