"""Every model is evaluated, trained on and generated from in the format it was trained with: the model directory
records its formatting, and whoever opens it gets that formatting unless a key overrides it (and says so)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from rmlab.models.handle import resolve_formatting
from rmlab.pipelines.correlation_study import SFT, plan_study
from tests.conftest import compose_eval_cfg
from tests.test_correlation_pipeline import _run_experiment_cfg, _stage_cfg


def test_paper_plan_formats_every_evaluation_as_its_training(tmp_path):
    """train_rm -> eval_rm, and SFT -> train_ppo -> eval_policy, in the paper-scale correlation study: the
    formatting each stage would use, given what the upstream stage records in its model directory."""
    stages = plan_study(_run_experiment_cfg(["experiment=correlation_study"]))
    written: dict[str, dict] = {}  # model directory -> its rmlab_meta.json formatting, as the trainers write it
    checked = {"eval_rm": 0, "train_ppo": 0, "eval_policy": 0, "arena_hard": 0}
    for s in stages:
        c = _stage_cfg(tmp_path, s)
        if s.entry == "train_rm":
            fmt, _ = resolve_formatting(c.model, {})  # a Hub base model: no record
            assert fmt["chat_template"] == "tulu"  # the paper trains its RMs in the Tulu format
            written[f"{s.out_dir}/model"] = {"formatting": fmt}
        elif s.entry == "eval_rm":
            meta = written[c.model.pretrained]
            fmt, record = resolve_formatting(c.model, meta)
            assert fmt == meta["formatting"] and record["overrides"] == {}, s
            assert record["source"]["chat_template"] == "model_dir"
            checked["eval_rm"] += 1
        elif s.entry == "train_ppo":
            sft_fmt, _ = resolve_formatting(c.policy, {})
            rm_fmt, record = resolve_formatting(None, written[c.reward_model], sft_fmt)
            assert rm_fmt == written[c.reward_model]["formatting"] and record["overrides"] == {}
            written[f"{s.out_dir}/policy"] = {"formatting": sft_fmt}
            checked["train_ppo"] += 1
        else:  # eval_policy and arena_hard generate with the policy
            assert s.entry in ("eval_policy", "arena_hard"), s.entry
            sft_cfg = _stage_cfg(tmp_path, next(x for x in stages if x.entry == "train_ppo")).policy
            if s.branch == SFT:
                fmt, _ = resolve_formatting(c.policy, {})
            else:
                meta = written[c.policy.pretrained]
                fmt, record = resolve_formatting(c.policy, meta)
                assert fmt == meta["formatting"] and record["overrides"] == {}
            assert fmt == resolve_formatting(sft_cfg, {})[0]  # every policy generates in the SFT model's format
            checked[s.entry] += 1
    assert checked == {"eval_rm": 8, "train_ppo": 4, "eval_policy": 5, "arena_hard": 5}


def test_dpo_vs_classifier_evaluates_in_the_training_format(tmp_path):
    cfg = _run_experiment_cfg(["experiment=dpo_vs_classifier"])
    p = cfg.pipeline
    shared = [f"preference={p.datasets[0]}", *p.preference_overrides]
    dpo_over = [*p.dpo.overrides, "model.chat_template=tulu"]  # a DPO model trained in another format than its base
    for entry, over in (("train_rm", p.classifier.overrides), ("train_dpo", dpo_over)):
        train = compose_eval_cfg(tmp_path, [*shared, *over], entry, base=("device=cpu", "logger=none"))
        trained = {"formatting": resolve_formatting(train.model, {})[0]}
        ev = compose_eval_cfg(tmp_path, [f"model={tmp_path}/{entry}/model", "benchmark=rm_bench", *p.eval.overrides])
        fmt, record = resolve_formatting(ev.model, trained)
        assert fmt == trained["formatting"] and record["overrides"] == {}
    assert trained["formatting"]["chat_template"] == "tulu"


def test_a_trained_model_directory_carries_its_formatting(tmp_path, tiny_classifier_dir, data_dir):
    """Train with a system prompt; ``model=<dir>`` then scores with it with no key repeated, and an explicit
    ``model.chat_template`` overrides the template (dropping the system prompt that went with it), recorded in
    metrics.json."""
    from rmlab.rm_eval.evaluate import evaluate_rm
    from rmlab.training.train_rm import train_reward_model
    from tests.conftest import compose_train_cfg
    from tests.test_train_rm import _tiny_overrides

    cfg = compose_train_cfg(
        tmp_path / "train",
        _tiny_overrides(
            tiny_classifier_dir,
            ["recipe.max_steps=1", "model.chat_template=tokenizer", "model.system_prompt=Be brief."],
        ),
    )
    train_reward_model(cfg)
    model_dir = Path(cfg.paths.output_dir) / "model"
    meta = json.loads((model_dir / "rmlab_meta.json").read_text())
    assert meta["formatting"] == {"chat_template": "tokenizer", "system_prompt": "Be brief."}

    over = [f"model={model_dir}", "benchmark.max_per_domain=1", "bootstrap.n_boot=0"]
    m = evaluate_rm(compose_eval_cfg(tmp_path / "a", over))
    assert m["model_formatting"]["formatting"] == meta["formatting"]
    assert m["model_formatting"]["formatting_source"] == {"chat_template": "model_dir", "system_prompt": "model_dir"}
    m2 = evaluate_rm(compose_eval_cfg(tmp_path / "b", [*over, "model.chat_template=tulu"]))
    assert m2["model_formatting"]["formatting_overrides"] == {
        "chat_template": {"model_dir": "tokenizer", "config": "tulu"}
    }
    assert m2["model_formatting"]["formatting"] == {"chat_template": "tulu", "system_prompt": None}
    assert m2["scorer"]["formatting"] != m["scorer"]["formatting"]  # a different format is a different cache key
    assert OmegaConf.to_container(compose_eval_cfg(tmp_path / "c", over).model)["chat_template"] is None
