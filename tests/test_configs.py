"""Every config composes; every model config resolves; `model=<spec>` is rewritten to the `auto` config."""

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rmlab.benchmarks import BENCHMARKS
from rmlab.models.chat_format import TEMPLATES
from rmlab.rm_eval.judge import JUDGE_KIND
from rmlab.scoring.scorers import SCORERS
from rmlab.scoring.style_baselines import STYLE_KINDS
from rmlab.utils.config import rewrite_model_overrides
from tests.conftest import ROOT, compose_eval_cfg

MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("model", MODELS)
def test_model_configs_compose(tmp_path, model):
    overrides = [f"model={model}"] + (["model.pretrained=some/hub-id"] if model == "auto" else [])
    cfg = compose_eval_cfg(tmp_path, overrides)
    OmegaConf.resolve(cfg)
    assert cfg.model.kind in {"auto", JUDGE_KIND, *SCORERS.names()}
    endpoint_judge = cfg.model.kind == JUDGE_KIND and cfg.model.judge.backend == "endpoint"
    no_formatting = model == "auto" or endpoint_judge or cfg.model.kind in STYLE_KINDS  # a style count reads no chat
    assert cfg.model.get("chat_template") in ({*TEMPLATES, None} if no_formatting else set(TEMPLATES))
    assert cfg.benchmark.name in BENCHMARKS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(tmp_path, experiment):
    """Each experiment starts with ``# @package _global_``, declares its entry point (``entry:``) and names the
    command that runs it, which must compose."""
    from rmlab.cli.entries import by_config
    from rmlab.cli.experiments import declared_entries

    path = ROOT / "experiments" / f"{experiment}.yaml"
    text = path.read_text()
    assert text.splitlines()[0] == "# @package _global_"
    declared = declared_entries(path)
    assert declared, f"{experiment}.yaml declares no entry point (entry: <conf/*.yaml name>)"
    entry = declared[0]
    command = f"rmlab {by_config(entry).command} experiment={experiment}"
    assert re.search(rf"{command}\b", text), f"{experiment}.yaml does not give the command that runs it: {command}"
    assert (ROOT / "scripts" / f"{entry}.py").is_file() and (ROOT / "conf" / f"{entry}.yaml").is_file()
    if entry == "run_experiment":  # a pipeline: its own config, and every stage's config with its overrides
        _check_pipeline(tmp_path, experiment)
        return
    if entry in ("train_ppo", "train_policy"):  # the reward model is given on the command line
        cfg = compose_eval_cfg(
            tmp_path,
            [f"experiment={experiment}", "reward_model=/some/rm"],
            config_name=entry,
            base=("device=cpu", "logger=none"),
        )
    elif entry == "eval_policy":
        cfg = compose_eval_cfg(
            tmp_path, [f"experiment={experiment}"], config_name=entry, base=("device=cpu", "logger=none")
        )
    else:
        cfg = compose_eval_cfg(tmp_path, [f"experiment={experiment}"], config_name=entry)
    OmegaConf.resolve(cfg)


def _check_pipeline(tmp_path, experiment):
    from hydra.core.global_hydra import GlobalHydra

    from rmlab.pipelines.registry import PIPELINES
    from rmlab.utils.config import compose_config

    GlobalHydra.instance().clear()
    cfg = compose_config("run_experiment", [f"experiment={experiment}"])
    assert cfg.pipeline.name in PIPELINES
    p = cfg.pipeline
    if p.name == "correlation_study":  # every planned stage, with its own overrides
        from rmlab.pipelines.correlation_study import plan_study

        stages = [(s.entry, list(s.overrides), s.groups) for s in plan_study(cfg)]
    elif p.name == "bon_study":  # the training samples, each reward model, its evaluations, best-of-n
        from rmlab.pipelines.bon_study import bon_overrides, eval_overrides

        base = [f"policy={p.policy}", f"task={p.task}"]
        data = ["preference=policy_samples", "preference.data_dir=/some/samples"]
        stages = [("best_of_n", [*base, *p.samples.overrides], ("policy",))] if p.reward_models else []
        stages += [("train_rm", [*data, *o, *p.train_rm.overrides], ("model",)) for o in p.reward_models.values()]
        stages += [("eval_rm", o, ("model",)) for o in eval_overrides(cfg, "/some/run/model").values()]
        stages.append(("best_of_n", bon_overrides(cfg, {"rm": "/some/run/model"}), ("policy",)))
    elif p.name == "preference_ablation":  # the optional samples, each set's training, every evaluation
        stages = []
        if p.get("policy_samples"):
            ps = p.policy_samples
            stages.append(("best_of_n", [f"policy={ps.policy}", f"task={ps.task}", *ps.overrides], ("policy",)))
        stages += [("train_rm", [*o, *p.train_rm.overrides], ("model",)) for o in p.sets.values()]
        stages += [("eval_rm", ["model=/some/run/model", f"benchmark={b}", *o, *p.rm_eval.overrides], ("model",))
                   for b, o in p.rm_eval.benchmarks.items()]  # fmt: skip
    else:
        stages = [
            ("train_rm", [*p.preference_overrides, *p.classifier.overrides], ("model",)),
            ("train_dpo", [*p.preference_overrides, *p.dpo.overrides], ("model",)),
            ("eval_rm", ["model=/some/run/model", *p.eval.overrides], ("model",)),
        ]
    for entry, overrides, groups in stages:
        base = ("device=cpu", "logger=none") + (("scoring.progress=false",) if entry in ("train_rm", "eval_rm") else ())
        stage = compose_eval_cfg(
            tmp_path, rewrite_model_overrides(list(overrides), groups), config_name=entry, base=base
        )
        OmegaConf.resolve(stage)


def test_paths_come_from_the_paths_config(tmp_path):
    cfg = compose_eval_cfg(tmp_path)
    assert Path(cfg.paths.root_dir) == ROOT
    assert cfg.benchmark.data_dir == f"{cfg.paths.data_dir}/rm-bench"


def test_model_spec_rewrite():
    assert rewrite_model_overrides(["model=smollm2_135m_rm", "seed=1"]) == ["model=smollm2_135m_rm", "seed=1"]
    assert rewrite_model_overrides(["model=allenai/tulu-v2.5-13b-hh-rlhf-60k-rm"]) == [
        "model=auto",
        "model.pretrained='allenai/tulu-v2.5-13b-hh-rlhf-60k-rm'",
    ]
    assert rewrite_model_overrides(["model=/runs/a,/runs/b"]) == ["model=auto", "model.pretrained='/runs/a','/runs/b'"]
    assert rewrite_model_overrides(["model.dtype=bfloat16"]) == ["model.dtype=bfloat16"]
    with pytest.raises(SystemExit, match="mix of config names and model specs"):
        rewrite_model_overrides(["model=smollm2_135m_rm,/runs/a"])


def test_wheel_spec_composes(tmp_path):
    cfg = compose_eval_cfg(tmp_path, ["model=wheel:all-minilm-l6-v2"])
    assert cfg.model.pretrained == "wheel:all-minilm-l6-v2" and cfg.model.kind == "auto"


def test_unknown_scorer_names_the_choices():
    with pytest.raises(KeyError, match=r"Unknown scorer 'clasifier'. Did you mean: classifier\?"):
        SCORERS["clasifier"]


@pytest.mark.parametrize("name", ["deepspeed_zero3", "fsdp"])
def test_accelerate_configs_load(name):
    """The multi-GPU launch configs are valid accelerate configs (as ``accelerate launch --config_file`` reads them)."""
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "conf" / "accelerate" / f"{name}.yaml"))
    assert cfg.distributed_type.value == {"deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP"}[name]
    assert cfg.num_processes == 8 and cfg.mixed_precision == "bf16"


def test_a_scorer_kind_without_a_plan_builder_is_refused_by_name(tmp_path, tiny_classifier_dir):
    """Every scorer kind with weights has its own plan builder; a kind with none is an error listing the known ones,
    never built as another kind."""
    from omegaconf import OmegaConf

    from rmlab.scoring.build import PLAN_BUILDERS, plan_scorer

    assert PLAN_BUILDERS.names() == ["classifier", "implicit"]
    cfg = OmegaConf.create({"pretrained": str(tiny_classifier_dir), "kind": "length_penalised", "dtype": "float32"})
    with pytest.raises(KeyError, match=r"Unknown scorer kind 'length_penalised'.*Available: classifier, implicit"):
        plan_scorer(cfg, cache_dir=str(tmp_path), device="cpu")
