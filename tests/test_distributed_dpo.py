"""DPO with TRL under ``accelerate launch`` on 2 CPU processes (``conf/accelerate/multi_cpu.yaml``, gloo).

One run directory, one model, one W&B run and one ``train_metrics.json`` from rank 0; the saved model's implicit
rewards equal those of 1 process with twice the micro-batch (same pairs per step); a run killed after its first
checkpoint resumes (``resume=last``) to the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

from rmlab.data.preference import load_preferences
from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.scorers import ImplicitRewardScorer
from rmlab.training.train_dpo import heldout_rewards, tokenize_dpo_pairs, train_dpo
from tests.conftest import ROOT, compose_eval_cfg
from tests.helpers import tolerances as tol
from tests.helpers.launch import child_env, run_entry
from tests.helpers.tolerances import training_agreement

LR, BETAS = 1e-3, (0.9, 0.95)  # the tests' learning rate; recipe/dpo.yaml's AdamW betas
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "conf/accelerate/multi_cpu.yaml"]


def _overrides(model_dir: Path, micro_batch_pairs: int, extra=()) -> list[str]:
    """3 optimizer steps of 4 pairs, no warmup (every step moves the weights), a checkpoint after each."""
    return [
        f"model={model_dir}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        "recipe.pairs_per_update=4",
        f"recipe.micro_batch_pairs={micro_batch_pairs}",
        "recipe.max_pair_tokens=256",
        f"recipe.lr={LR}",
        "recipe.warmup_ratio=0.0",
        "recipe.max_steps=3",
        "recipe.checkpoint_every_n_steps=1",
        "bootstrap.n_boot=50",
        "precision=fp32",
        "device=cpu",
        "logger=none",
        *extra,
    ]


def _losses(run: Path) -> list[float]:
    """TRL's logged training loss at every step (averaged over the processes)."""
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    return [h["loss"] for h in history if "loss" in h]


def _implicit_rewards(model_dir: Path, reference_dir: Path, tokenizer, cfg) -> np.ndarray:
    """(pairs, 2) implicit rewards of the run's held-out pairs under the saved model and its reference."""
    scorer = ImplicitRewardScorer(
        AutoModelForCausalLM.from_pretrained(model_dir).eval(),
        tokenizer,
        ChatFormatter(tokenizer),
        max_length=10**9,
        device="cpu",
        reference=AutoModelForCausalLM.from_pretrained(reference_dir).eval(),
    )
    rows, _ = tokenize_dpo_pairs(load_preferences(cfg.preference, seed=0).heldout, scorer, max_length=256)
    return heldout_rewards(scorer, rows, batch_pairs=4)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_lm_dir, data_dir) -> tuple[Path, float]:
    """An uninterrupted 2-process run, 1 pair per rank per micro-batch, W&B offline, in the run directory Hydra
    names (no ``hydra.run.dir``): rank 1 leaves no directory of its own, beside it or in its scratch space."""
    tmp = tmp_path_factory.mktemp("dpo2")
    scratch = tmp / "tmp"
    scratch.mkdir()
    args = _overrides(tiny_lm_dir, 1, ["logger=wandb"])
    wall = run_entry([*ACCELERATE, "scripts/train_dpo.py", *args], child_env(tmp, TMPDIR=str(scratch)))
    (run,) = (tmp / "logs" / "train_dpo" / "runs").iterdir()  # rank 0's alone
    assert not list(scratch.glob("rmlab-rank*"))
    return run, wall


@pytest.mark.slow
@pytest.mark.numeric
def test_two_processes_write_once_and_match_one_process(two_process_run, tmp_path, tiny_lm_dir, tokenizer):
    run, two_wall = two_process_run
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert metrics["train"]["processes"] == 2 and metrics["train"]["global_steps"] == 3
    assert metrics["train"]["accumulate_grad_batches"] == 2  # 4 pairs per step = 2 ranks x 1 pair x 2
    assert {p.name for p in run.iterdir()} == {
        ".hydra", "checkpoints", "curves.png", "log_history.jsonl", "model", "train_dpo.log", "train_metrics.json",
        "wandb"}  # fmt: skip
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run, started by rank 0
    (ckpt,) = (run / "checkpoints").glob("checkpoint-*")  # save_total_limit=1; both ranks' RNG states in it
    assert {"rng_state_0.pth", "rng_state_1.pth", "trainer_state.json"} <= {p.name for p in ckpt.iterdir()}

    t0 = time.perf_counter()
    one_cfg = compose_eval_cfg(tmp_path, _overrides(tiny_lm_dir, 2), "train_dpo")
    one = train_dpo(one_cfg)
    one_wall = time.perf_counter() - t0
    assert one["train"]["processes"] == 1 and one["train"]["accumulate_grad_batches"] == 2  # 1 x 2 pairs x 2
    two_losses, one_losses = _losses(run), _losses(Path(one["model_dir"]).parent)
    loss_diff = max(abs(a - b) for a, b in zip(two_losses, one_losses, strict=True))
    init = load_file(tiny_lm_dir / "model.safetensors")
    two_w = load_file(run / "model" / "model.safetensors")
    one_w = load_file(Path(one["model_dir"]) / "model.safetensors")
    two_r = _implicit_rewards(run / "model", tiny_lm_dir, tokenizer, one_cfg)
    one_r = _implicit_rewards(Path(one["model_dir"]), tiny_lm_dir, tokenizer, one_cfg)
    reward_diff = float(np.abs(two_r - one_r).max())
    agreement = training_agreement(two_w, one_w, init, lr=LR, steps=3, betas=BETAS)
    print(
        f"\nDPO 2 processes x 1 pair vs 1 process x 2 pairs, 3 steps: max |loss diff| {loss_diff:.2e}, "
        f"weights {agreement}, max |implicit reward diff| {reward_diff:.2e} over {two_r.size} rewards "
        f"(|reward| up to {np.abs(one_r).max():.3f}); wall {two_wall:.1f} s (accelerate) vs {one_wall:.1f} s (in-process)"
    )
    assert np.abs(one_r).max() > 1e-3  # the policy moved away from the reference (>1e4 x fp32 u on O(1) rewards)
    assert agreement["agree"], agreement
    # the first step's loss comes from the initial weights in both runs, so only the forward's reduction order
    # differs: -logsigmoid(beta (x - y)) is beta-Lipschitz in each of the four log-probability sums (policy and
    # reference, chosen and rejected), each a sum over at most 256 tokens of per-token log-softmax values
    cfg = AutoConfig.from_pretrained(tiny_lm_dir)
    step0 = 4 * 0.1 * tol.forward_diff(cfg, 256, "logprob", tokens=256)  # recipe.beta = 0.1
    assert abs(two_losses[0] - one_losses[0]) <= step0, step0
    # negative control: the same comparison fails for a run that stopped one batch short
    short = train_dpo(
        compose_eval_cfg(tmp_path / "short", _overrides(tiny_lm_dir, 2, ["recipe.max_steps=2"]), "train_dpo")
    )
    short_w = load_file(Path(short["model_dir"]) / "model.safetensors")
    skipped = training_agreement(short_w, one_w, init, lr=LR, steps=3, betas=BETAS)
    print(f"one batch short: {skipped}")
    assert not skipped["agree"], skipped
    assert metrics["heldout"]["accuracy"] == one["heldout"]["accuracy"]


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL to the launcher and every process under it (torchrun starts each rank in a session of its own)."""
    parent = psutil.Process(proc.pid)
    for p in [*parent.children(recursive=True), parent]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=60)


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_uninterrupted_weights(two_process_run, tmp_path, tiny_lm_dir):
    run, _ = two_process_run
    killed = tmp_path / "killed"
    args = _overrides(tiny_lm_dir, 1, [f"hydra.run.dir={killed}"])
    env = child_env(tmp_path)
    cmd = [*ACCELERATE, "scripts/train_dpo.py", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = killed / "checkpoints" / "checkpoint-1" / "trainer_state.json"  # written last
    deadline = time.monotonic() + 300
    while not done.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill_tree(proc)
    assert done.is_file(), proc.stderr.read().decode()[-3000:]
    assert not (killed / "train_metrics.json").exists()

    run_entry([*cmd, "resume=last"], env)
    resumed = json.loads((killed / "train_metrics.json").read_text())
    assert resumed["resume"]["mode"] == "last" and resumed["train"]["global_steps"] == 3
    stopped_at = int(Path(resumed["resume"]["resumed_from"]).name.split("-")[-1])
    init = load_file(tiny_lm_dir / "model.safetensors")
    whole, again = load_file(run / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    agreement = training_agreement(whole, again, init, lr=LR, steps=3, betas=BETAS)
    print(f"\nDPO killed after checkpoint {stopped_at} of 3, resumed: {agreement}")
    assert stopped_at in (1, 2) and agreement["agree"], agreement
