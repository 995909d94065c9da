"""Reward-model training with Lightning's DDP on CPUs (2 processes, gloo), through the Hydra entry point.

The data-parallel invariants: every rank holds the same weights after every step; rank 0 alone writes the model,
``train_metrics.json``, the logger's run and the checkpoints; the held-out pairs are scored once; 2 processes with
``b`` pairs each train exactly as 1 process with ``2b`` (same pairs per step, dropout off), up to fp32 reduction
order; and a killed 2-process run resumes to the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig

from rmlab.training.train_rm import train_reward_model
from tests.conftest import ROOT, compose_train_cfg
from tests.helpers import tolerances as tol
from tests.helpers.launch import child_env, csv_column, max_abs_diff, run_entry
from tests.helpers.tolerances import training_agreement

DDP = ["trainer=cpu", "trainer.devices=2", "trainer.strategy=ddp"]  # as trainer=ddp_cpu spells it


def _overrides(model_dir: Path, micro_batch_pairs: int, extra=()) -> list[str]:
    """About 26 training pairs within 256 tokens: 7 optimizer steps of 4 pairs, the last one short."""
    return [
        f"model={model_dir}",
        "preference.max_pairs=48",
        "preference.heldout_pairs=16",
        "recipe.pairs_per_update=4",
        f"recipe.micro_batch_pairs={micro_batch_pairs}",
        "recipe.eval_batch_pairs=4",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
        "recipe.checkpoint_every_n_steps=1",
        "bootstrap.n_boot=50",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


@pytest.mark.parametrize("group_by_length", [False, True])
def test_ranks_share_out_the_batches_of_one_process_with_the_world_batch(group_by_length):
    """13 pairs, world batches of 4: the ranks' shares of each batch, put together, are one process's batches;
    the last batch (1 pair) is padded with itself so both ranks get one pair (a repeat, not a different pair)."""
    from rmlab.training.rm_data import SeededBatches

    lengths = [5, 100, 7, 98, 6, 99, 50, 51, 3, 4, 77, 12, 13]
    kw = {"seed": 0, "group_by_length": group_by_length, "mega": 2}
    one = SeededBatches(lengths, 4, **kw).batches(0)
    ranks = [SeededBatches(lengths, 2, num_replicas=2, rank=r, **kw).batches(0) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == len(SeededBatches(lengths, 2, num_replicas=2, **kw)) == 4
    for batch, a, b in zip(one, *ranks):
        assert len(a) == len(b) > 0 and (a + b == batch or (len(batch) == 1 and a == b == batch))
    assert sorted(i for b in one for i in b) == list(range(13))


def _train_rm(args: list[str]) -> list[str]:
    return [sys.executable, "scripts/train_rm.py", *args]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_classifier_dir, data_dir) -> tuple[Path, float]:
    """One uninterrupted 2-process run, 2 pairs per rank per step, with the replica check on."""
    tmp = tmp_path_factory.mktemp("ddp")
    wall = run_entry(_train_rm(_overrides(tiny_classifier_dir, 2, [*DDP, "check_replicas=true"])), child_env(tmp))
    (run,) = (tmp / "logs" / "train_rm" / "runs").iterdir()  # the child rank wrote into the parent's directory
    return run, wall


@pytest.mark.slow
@pytest.mark.numeric
def test_two_processes_write_once_and_train_as_one_process_with_twice_the_batch(ddp_run, tmp_path, tiny_classifier_dir):
    run, ddp_wall = ddp_run
    metrics = json.loads((run / "train_metrics.json").read_text())
    dist = metrics["distributed"]
    assert (dist["strategy"], dist["world_size"]) == ("DDPStrategy", 2)
    steps = metrics["train"]["global_steps"]
    assert steps >= 5 and dist["replica_checks"] == {"steps_checked": steps, "identical": True}
    # rank 0 wrote each output once, atomically (no temporary files left), and rank 1 nothing of its own
    assert {p.name for p in run.iterdir()} == {
        ".hydra",
        "checkpoints",
        "csv",
        "curves.png",
        "model",
        "train_history.jsonl",
        "train_metrics.json",
        "train_rm.log",
    }
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert json.loads((run / "model" / "rmlab_meta.json").read_text())["kind"] == "classifier"
    losses = csv_column(run / "csv" / "metrics.csv", "train/loss")
    assert [s for s, _ in losses] == list(range(steps))  # one logged loss per step, not one per rank
    (val,) = csv_column(run / "csv" / "metrics.csv", "val/loss")  # the held-out pairs scored once, at the end
    assert val[0] == steps - 1  # Lightning logs it with the last training step

    t0 = time.perf_counter()
    one_cfg = compose_train_cfg(tmp_path, _overrides(tiny_classifier_dir, 4))
    one = train_reward_model(one_cfg)
    one_wall = time.perf_counter() - t0
    one_dir = Path(one_cfg.paths.output_dir)
    assert one["train"]["global_steps"] == steps and one["distributed"]["world_size"] == 1
    one_losses = csv_column(one_dir / "csv" / "metrics.csv", "train/loss")
    loss_diff = max(abs(a - b) for (_, a), (_, b) in zip(losses, one_losses, strict=True))
    (one_val,) = csv_column(one_dir / "csv" / "metrics.csv", "val/loss")
    print(
        f"\n2 processes x 2 pairs vs 1 process x 4 pairs, {steps} steps: max |loss diff| {loss_diff:.2e}, "
        f"held-out loss diff {abs(val[1] - one_val[1]):.2e}; "
        f"wall {ddp_wall:.1f} s (2 processes, subprocess) vs {one_wall:.1f} s (1 process, in-process)"
    )
    init, lr, betas = load_file(tiny_classifier_dir / "model.safetensors"), 1e-3, (0.9, 0.95)  # recipe.lr, betas
    two_w, one_w = load_file(run / "model" / "model.safetensors"), load_file(one_dir / "model" / "model.safetensors")
    agreement = training_agreement(two_w, one_w, init, lr=lr, steps=steps, betas=betas)
    print(f"agreement: {agreement}")
    assert agreement["agree"], agreement
    # the first step's loss comes from the initial weights in both: only the forward's reduction order differs. The
    # BT loss is 1-Lipschitz in each of the two rewards; a reward w.h is at most |w| sqrt(hidden) max|norm gain|
    # (Cauchy-Schwarz, h RMS-normalised), the magnitude of the read-out's bound over pairs of up to 256 tokens
    cfg = AutoConfig.from_pretrained(tiny_classifier_dir)
    reward_scale = float(init["score.weight"].norm() * init["model.norm.weight"].abs().max()) * cfg.hidden_size**0.5
    step0 = 2 * tol.forward_diff(cfg, 256, "classifier", magnitude=reward_scale)
    assert abs(losses[0][1] - one_losses[0][1]) <= step0, step0
    # negative control: the same comparison fails for a run that stopped one batch short
    short_cfg = compose_train_cfg(
        tmp_path / "short", _overrides(tiny_classifier_dir, 4, [f"recipe.max_steps={steps - 1}"])
    )
    train_reward_model(short_cfg)
    short_w = load_file(Path(short_cfg.paths.output_dir) / "model" / "model.safetensors")
    skipped = training_agreement(short_w, one_w, init, lr=lr, steps=steps, betas=betas)
    print(f"one batch short: {skipped}")
    assert not skipped["agree"], skipped
    assert metrics["heldout"]["n"] == one["heldout"]["n"] > 2  # every held-out pair once, none twice
    assert metrics["heldout"]["accuracy"] == one["heldout"]["accuracy"]


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_uninterrupted_weights(ddp_run, tmp_path, tiny_classifier_dir):
    """SIGKILL to both processes once the first checkpoint exists, then ``resume=last`` in the same directory: the
    final weights are those of the uninterrupted run (same batches, same optimizer state)."""
    run, _ = ddp_run
    steps = json.loads((run / "train_metrics.json").read_text())["train"]["global_steps"]
    killed = tmp_path / "killed"
    args = _overrides(tiny_classifier_dir, 2, [*DDP, f"hydra.run.dir={killed}"])
    env = child_env(tmp_path)
    proc = subprocess.Popen(
        _train_rm(args), cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ckpt = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the rank it started
    proc.wait(timeout=60)
    assert ckpt.is_file(), proc.stderr.read().decode()[-3000:]
    stopped_at = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < stopped_at < steps and not (killed / "train_metrics.json").exists()

    run_entry(_train_rm([*args, "resume=last", "logger=wandb"]), env)
    resumed = json.loads((killed / "train_metrics.json").read_text())
    assert resumed["resume"]["mode"] == "last" and resumed["train"]["global_steps"] == steps
    assert len(list((killed / "wandb").glob("offline-run-*"))) == 1  # one W&B run for the launch, from rank 0
    init = load_file(tiny_classifier_dir / "model.safetensors")
    whole, again = load_file(run / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    agreement = training_agreement(whole, again, init, lr=1e-3, steps=steps, betas=(0.9, 0.95))  # recipe.lr, betas
    print(
        f"\nkilled after step {stopped_at} of {steps}, resumed: {agreement} (max |diff| {max_abs_diff(whole, again):.2e})"
    )
    assert agreement["agree"], agreement
