"""Reward-model training: loss, data, the Lightning loop on a tiny model, resume, determinism, entry point."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from rmlab.data.errors import DataValidationError
from rmlab.data.preference import load_preferences
from rmlab.training.rm_module import bradley_terry_loss, pair_metrics
from rmlab.training.train_rm import train_reward_model
from tests.conftest import ROOT, compose_train_cfg
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)


def test_loss_and_metrics_on_hand_made_rewards():
    """r_c = (2, 0, 1), r_r = (0, 0, 3): differences (2, 0, -2).

    loss = mean(-log s(2), -log s(0), -log s(-2)) = mean(0.1269, 0.6931, 2.1269) = 0.9823;
    accuracy = 1/3 (the tie loses); margin = 0.
    """
    c, r = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 3.0])
    # the closed form in float64 against torch's float32: the exact differences, 3 logsigmoids (taken as within
    # 1 ulp: 2 roundings each), 2 additions and a division: 9 float32 roundings of terms <= 2.13 (Higham Lemma 3.1)
    closed = (math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert bradley_terry_loss(c, r).item() == pytest.approx(closed, abs=worst_case(9, 2.13, torch.float32))
    m = pair_metrics(c, r)
    # (1 + 0 + 0) / 3 in float32 is that one division; the margins 2, 0, -2 sum to 0 exactly: both exact
    assert m["accuracy"].item() == (torch.tensor(1.0) / 3).item() and m["margin"].item() == 0.0


def test_real_hh_rlhf_split_is_deterministic(tmp_path, data_dir):
    cfg = compose_train_cfg(tmp_path, ["preference.max_pairs=100", "preference.heldout_pairs=50"])
    a = load_preferences(cfg.preference, seed=0)
    assert len(a.train) == 100 and len(a.heldout) == 50
    assert a.info["pairs_available"] + a.info["malformed_rows"] == 8552  # every local HH-RLHF test row
    assert a.info["malformed_rows"] > 0 and a.info["malformed_examples"][0]["reason"]
    with open_dict(cfg):
        cfg.preference.max_pairs = 300
    b = load_preferences(cfg.preference, seed=0)
    assert b.info["heldout_fingerprint"] == a.info["heldout_fingerprint"]  # held-out set independent of max_pairs
    assert {e.id for e in a.train} <= {e.id for e in b.train}
    assert not {e.id for e in b.train} & {e.id for e in b.heldout}
    with open_dict(cfg):
        cfg.preference.skip_malformed = False
    with pytest.raises(DataValidationError, match=r"test.jsonl.gz, row #\d+: .*skip_malformed=true"):
        load_preferences(cfg.preference, seed=0)


def _tiny_overrides(model_dir, extra=()):
    return [
        f"model={model_dir}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        "recipe.pairs_per_update=4",
        "recipe.micro_batch_pairs=2",
        "recipe.max_pair_tokens=256",
        "recipe.lr=1e-3",
        "recipe.checkpoint_every_n_steps=1",
        "bootstrap.n_boot=50",
        *extra,
    ]


def _losses(run_dir: Path) -> list[float]:
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").read_text().splitlines()))
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


def test_same_seed_same_loss_curve_and_weights_move(tmp_path, tiny_classifier_dir, data_dir):
    runs = []
    for name in ("a", "b"):
        cfg = compose_train_cfg(
            tmp_path / name, _tiny_overrides(tiny_classifier_dir, ["logger=csv", "recipe.max_steps=3"])
        )
        runs.append((train_reward_model(cfg), Path(cfg.paths.output_dir)))
    (m1, d1), (m2, d2) = runs
    assert m1["train"]["global_steps"] == 3
    assert _losses(d1) == _losses(d2) and len(_losses(d1)) == 3  # one logged loss per optimizer step
    assert m1["heldout"]["accuracy"] == m2["heldout"]["accuracy"]
    from safetensors.torch import load_file

    before, after = load_file(tiny_classifier_dir / "model.safetensors"), load_file(d1 / "model" / "model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"


def test_resume_continues_the_step_count(tmp_path, tiny_classifier_dir, data_dir):
    cfg = compose_train_cfg(tmp_path, _tiny_overrides(tiny_classifier_dir, ["recipe.max_steps=2"]))
    first = train_reward_model(cfg)
    assert first["train"]["global_steps"] == 2
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()
    cfg2 = compose_train_cfg(tmp_path, _tiny_overrides(tiny_classifier_dir, ["recipe.max_steps=4", "resume=last"]))
    second = train_reward_model(cfg2)
    assert second["train"]["global_steps"] == 4
    assert second["train"]["tokens_seen"] < first["train"]["tokens_seen"] * 1.5  # only steps 3-4 were trained


@pytest.mark.slow
def test_entry_point_trains_and_the_evaluator_loads_the_model(tmp_path, tiny_classifier_dir, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "scripts/train_rm.py",
        *_tiny_overrides(
            tiny_classifier_dir,
            [
                "recipe.max_steps=2",
                "logger=csv",
                "trainer.enable_progress_bar=false",
                "scoring.progress=false",
                f"paths.score_cache_dir={tmp_path / 'scores'}",
                "evaluate.benchmarks=[rm_bench]",
                "evaluate.overrides=['benchmark.max_per_domain=1','bootstrap.n_boot=0']",
            ],
        ),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train_rm" / "runs").iterdir()
    meta = json.loads((run / "model" / "rmlab_meta.json").read_text())
    assert meta["kind"] == "classifier" and meta["data"]["train_fingerprint"] and meta["seed"] == 0
    ev = json.loads((run / "eval_rm_bench" / "metrics.json").read_text())
    assert ev["scorer"]["scorer"] == "classifier" and "new_head_seed" not in ev["scorer"]  # the trained head
    assert ev["domains_scored"] == ["chat", "code", "safety"]


def test_length_grouped_batches_cover_every_pair_once():
    from rmlab.training.rm_data import SeededBatches

    lengths = [5, 100, 7, 98, 6, 99, 50, 51]
    sampler = SeededBatches(lengths, batch=2, mega=4, seed=0, group_by_length=True)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(8)) and len(batches) == len(sampler) == 4
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread < sum(abs(lengths[i] - lengths[i + 1]) for i in range(0, 8, 2))  # less padding than input order
    assert list(sampler) == batches  # the order is a function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order every epoch
    sampler.set_epoch(0)
    sampler.resume_at(0, 3)
    assert list(sampler) == batches[3:] and list(sampler) == batches  # skipped once, after a resume


def test_lora_training_saves_a_merged_model(tmp_path, tiny_classifier_dir, data_dir):
    cfg = compose_train_cfg(
        tmp_path,
        _tiny_overrides(
            tiny_classifier_dir,
            [
                "recipe.max_steps=1",
                "recipe.trainable=lora",
                "recipe.lora.r=4",
                "recipe.lora.alpha=8",
                "recipe.lora.target_modules=[q_proj,v_proj]",
            ],
        ),
    )
    out = train_reward_model(cfg)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out["model_dir"])  # a plain model: adapters merged
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert out["train"]["global_steps"] == 1


def test_bf16_mixed_precision_with_clipping(tmp_path, tiny_classifier_dir, data_dir):
    cfg = compose_train_cfg(
        tmp_path, _tiny_overrides(tiny_classifier_dir, ["recipe.max_steps=1", "trainer.precision=bf16-mixed"])
    )
    out = train_reward_model(cfg)
    assert out["train"]["global_steps"] == 1 and out["heldout"]["n"] > 0


@pytest.mark.slow
def test_throughput_benchmark_runs_both_trainers_on_the_same_work(tmp_path, tiny_classifier_dir, data_dir):
    from hydra.core.global_hydra import GlobalHydra

    from rmlab.diagnostics.training_throughput import benchmark
    from rmlab.utils.config import compose_config, rewrite_model_overrides

    GlobalHydra.instance().clear()
    cfg = compose_config(
        "bench_train_rm",
        rewrite_model_overrides(
            [
                f"model={tiny_classifier_dir}",
                "bench.steps=3",
                "bench.pairs_per_step=2",
                "preference.max_pairs=12",
                "recipe.max_pair_tokens=256",
            ]
        ),
    )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    report = benchmark(cfg)
    assert report["ours"]["steps"] == report["trl"]["steps"] == 3
    # the same pairs and padding-free token counts: both trainers saw the same real tokens
    assert report["ours"]["tokens"] == report["trl"]["tokens"] > 0
    # bench.order=same: the same batches, so the same tokens including padding
    assert report["order"] == "same" and report["ours"]["padded_tokens"] == report["trl"]["padded_tokens"]
    assert report["ours"]["padded_tokens"] >= report["ours"]["tokens"]
    for side in ("ours", "trl"):
        assert 0 < report[side]["startup_and_first_step_seconds"] < report[side]["seconds"]
        assert report[side]["steady_tokens_per_second"] > 0
    assert (tmp_path / "run" / "bench_train.json").is_file()


def test_resume_last_without_a_checkpoint_fails_naming_the_directory(tmp_path, tiny_classifier_dir, data_dir):
    cfg = compose_train_cfg(tmp_path, _tiny_overrides(tiny_classifier_dir, ["recipe.max_steps=1", "resume=last"]))
    searched = Path(cfg.paths.output_dir) / "checkpoints"
    with pytest.raises(FileNotFoundError, match=rf"resume=last: no Lightning checkpoint in {searched}; resume=auto"):
        train_reward_model(cfg)
    assert not (Path(cfg.paths.output_dir) / "train_metrics.json").exists()


def test_resume_auto_starts_fresh_and_says_so(tmp_path, tiny_classifier_dir, data_dir):
    cfg = compose_train_cfg(tmp_path, _tiny_overrides(tiny_classifier_dir, ["recipe.max_steps=1", "resume=auto"]))
    out = train_reward_model(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "train_metrics.json").read_text())["resume"]
    assert (
        out["resume"]
        == record
        == {
            "mode": "auto",
            "resumed_from": None,
            "started_fresh": True,
            "searched": str(Path(cfg.paths.output_dir) / "checkpoints"),
        }
    )


class _Kill(RuntimeError):
    pass


def _model_state(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_resumed_mid_epoch_ends_with_the_weights_of_an_uninterrupted_run(
    tmp_path, tiny_classifier_dir, data_dir, monkeypatch
):
    """One epoch of 4 optimizer steps (13 pairs within max_length, 4 per update); a run killed after step 2 and resumed with
    ``resume=last`` must end with exactly the weights of a run that was never interrupted."""
    import pytorch_lightning as pl

    from rmlab.training import train_rm

    over = _tiny_overrides(tiny_classifier_dir, ["recipe.group_by_length=true"])
    whole_cfg = compose_train_cfg(tmp_path / "whole", over)
    whole = train_reward_model(whole_cfg)
    assert whole["train"]["global_steps"] == 4 and whole["train"]["pairs"] == 13

    class KillAfter(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2 and (Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt").is_file():
                raise _Kill

    real = train_rm.build_callbacks
    monkeypatch.setattr(train_rm, "build_callbacks", lambda cfg, run_dir: [*real(cfg, run_dir), KillAfter()])
    killed_cfg = compose_train_cfg(tmp_path / "killed", over)
    with pytest.raises(_Kill):
        train_reward_model(killed_cfg)
    monkeypatch.setattr(train_rm, "build_callbacks", real)
    ckpt = torch.load(Path(killed_cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    assert 0 < ckpt["global_step"] < 4  # the checkpoint is mid-epoch
    resumed = train_reward_model(compose_train_cfg(tmp_path / "killed", [*over, "resume=last"]))
    a, b = _model_state(Path(whole_cfg.paths.output_dir)), _model_state(Path(killed_cfg.paths.output_dir))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    assert resumed["train"]["global_steps"] == 4 and resumed["resume"]["mode"] == "last"
    assert resumed["heldout"]["accuracy"] == whole["heldout"]["accuracy"]
