"""`rmlab train-policy algo=grpo|rloo`: TRL's GRPO and RLOO with the lab's reward model as the reward function,
end to end on tiny models (the policy, its record, curves, the held-out comparison), and bad input refused before
any training step: an unknown algo (with a suggestion), a reward model of another kind, a context too short."""

from __future__ import annotations

import json
import shutil

import pytest

from rmlab.training.train_policy import check_algo, train_policy
from rmlab.utils.config import compose_config, rewrite_model_overrides
from tests.conftest import ROOT


def _cfg(tmp_path, lm, rm, *extra):
    args = rewrite_model_overrides(
        [f"paths.root_dir={ROOT}", f"paths.cache_dir={tmp_path / 'cache'}", "debug=fast", f"policy={lm}",
         f"reward_model={rm}", *extra], groups=("model", "policy"),
    )  # fmt: skip
    cfg = compose_config("train_policy", args)
    cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_grpo_and_rloo_end_to_end(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir, algo):
    out = train_policy(_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, f"algo={algo}"))
    assert out["algo"] == algo and out["train"]["steps"] == 1
    # every completion of the step was scored by the reward function: prompts x num_generations (debug: 4 = 2 x 2)
    assert out["train"]["completions_scored"] == 4 and out["train"]["reward_calls"] >= 1
    meta = json.loads((tmp_path / "run" / "policy" / "rmlab_meta.json").read_text())
    assert meta["kind"] == "policy" and meta["algo"] == algo and meta["reward_model"] == str(tiny_classifier_dir)
    assert out["heldout"]["difference"]["paired_over_prompts"] == 2 and (tmp_path / "run" / "curves.png").is_file()


def test_bad_input_is_refused_before_training(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    with pytest.raises(ValueError, match="did you mean grpo"):
        check_algo("grop")
    dpo = tmp_path / "dpo"
    shutil.copytree(tiny_classifier_dir, dpo)
    (dpo / "rmlab_meta.json").write_text(json.dumps({"kind": "dpo"}))
    with pytest.raises(ValueError, match="a dpo model cannot serve as a reward function"):
        train_policy(_cfg(tmp_path, tiny_lm_dir, dpo))
    limit = json.loads((tiny_lm_dir / "config.json").read_text())["max_position_embeddings"]
    with pytest.raises(ValueError, match="exceed the policy's context"):
        train_policy(_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, f"algo.max_completion_length={limit}"))
    with pytest.raises(ValueError, match="multiple of algo.num_generations"):
        train_policy(_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, "algo.num_generations=3"))
    with pytest.raises(ValueError, match="the null control runs with algo=grpo or algo=rloo"):
        train_policy(_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, "algo=ppo", "shuffle_rewards=true"))


def test_the_gpu_experiment_composes_into_trl_configs(tmp_path):
    """experiments/grpo_tulu2_13b.yaml on CPU: the config composes, and TRL's GRPOConfig / RLOOConfig accept what
    it asks for (vLLM colocated, 8 completions per prompt)."""
    from rmlab.training.train_policy import trainer_config

    for algo in ("grpo", "rloo"):
        args = rewrite_model_overrides(
            [f"paths.root_dir={ROOT}", "experiment=grpo_tulu2_13b", f"algo={algo}", "algo.use_vllm=true"],
            groups=("model", "policy"),
        )
        cfg = compose_config("train_policy", args)
        assert cfg.policy.pretrained == "allenai/tulu-2-13b" and cfg.reward_model.startswith("allenai/tulu-v2.5")
        made = trainer_config(cfg, algo, tmp_path, "cpu")  # "cpu": no GPU here to validate bf16 against
        assert made.use_vllm and made.vllm_mode == "colocate" and made.num_generations == cfg.algo.num_generations
