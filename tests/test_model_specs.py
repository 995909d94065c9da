"""A mistyped model name, dtype or device fails at once with the valid values, never as a Hub download."""

from pathlib import Path

import pytest

from rmlab.models.loading import pick_device, torch_dtype
from rmlab.utils.config import rewrite_model_overrides


@pytest.mark.parametrize(
    "typo, suggestion",
    [("smolm2", None), ("smollm2_135m_instruc", "smollm2_135m_instruct"), ("minilm-rm", "minilm_rm")],
)
def test_a_name_that_is_no_config_and_no_hub_id_fails_with_suggestions(typo, suggestion):
    with pytest.raises(SystemExit) as err:
        rewrite_model_overrides([f"model={typo}"])
    msg = str(err.value)
    assert f"model={typo}: not a config in conf/model/" in msg and "smollm2_135m_rm" in msg  # the configs listed
    if suggestion:
        assert f"did you mean {suggestion}" in msg


def test_policy_group_suggests_from_its_own_configs():
    with pytest.raises(SystemExit, match=r"policy=tulu2-13b: .*did you mean tulu2_13b"):
        rewrite_model_overrides(["policy=tulu2-13b"], ("model", "policy"))


@pytest.mark.parametrize(
    "spec",
    [
        "allenai/tulu-v2.5-13b-hh-rlhf-60k-rm",
        "wheel:smollm2",
        "/no/such/dir/model",
        "./runs/model",
        "~/models/rm",
        "runs/a/model",
    ],
)
def test_specs_of_every_kind_pass_through(spec):
    assert rewrite_model_overrides([f"model={spec}"]) == ["model=auto", f"model.pretrained='{spec}'"]


def test_config_names_pass_unchanged():
    assert rewrite_model_overrides(["model=smollm2_135m_rm", "seed=1"]) == ["model=smollm2_135m_rm", "seed=1"]


def test_unknown_dtype_and_device_are_one_line_errors():
    with pytest.raises(ValueError, match=r"^dtype='bf61': unknown; valid values: float32, fp32, bfloat16, bf16"):
        torch_dtype("bf61")
    with pytest.raises(ValueError, match=r"^device='gpu': unknown; valid values: auto, cpu, cuda, cuda:<n>, mps$"):
        pick_device("gpu")
    assert pick_device("cpu") == "cpu" and pick_device("cuda:1") == "cuda:1"


def test_eval_rm_rejects_a_bad_dtype_before_loading(eval_cfg, tiny_classifier_dir):
    from rmlab.rm_eval.evaluate import evaluate_rm

    cfg = eval_cfg([f"model={tiny_classifier_dir}", "model.dtype=float23"])
    with pytest.raises(ValueError, match="dtype='float23': unknown"):
        evaluate_rm(cfg)
    assert not Path(cfg.paths.output_dir, "metrics.json").exists()


def test_one_rule_states_what_a_spec_can_be(tmp_path):
    from rmlab.models.loading import resolve_model
    from rmlab.utils.specs import spec_shape

    shapes = {"wheel:smollm2-135m-instruct": "wheel", "./models/rm": "path", "~/rm": "path", "a/b/c": "path",
              str(tmp_path): "path", "allenai/tulu-2-13b": "hub", "smollm2_135m_rm": None, "smolm2": None}  # fmt: skip
    assert {v: spec_shape(v) for v in shapes} == shapes
    with pytest.raises(FileNotFoundError, match="no such directory"):  # written as a path: never tried on the Hub
        resolve_model(str(tmp_path / "missing" / "rm"), cache_dir=tmp_path)
