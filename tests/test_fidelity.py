"""The papers' protocols as the paper-scale experiments compose them: each value pinned here is a row of
docs/fidelity.md, with its source there."""

from __future__ import annotations

import pytest

from rmlab.pipelines.correlation_study import plan_study
from rmlab.training.rm_module import linear_with_floor
from tests.test_correlation_pipeline import _run_experiment_cfg, _stage_cfg, assert_paper_arena_hard


@pytest.fixture(scope="module")
def paper_stages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    stages = plan_study(_run_experiment_cfg(["experiment=correlation_study"]))
    return {s.entry: _stage_cfg(tmp, s) for s in stages}


def test_rm_recipe_is_tulu25(paper_stages):
    r = paper_stages["train_rm"].recipe
    assert (r.lr, r.final_lr, r.scheduler, r.warmup_ratio, r.epochs, r.pairs_per_update) == (
        1e-5, 1e-6, "linear", 0.03, 1, 512)  # fmt: skip
    assert (list(r.betas), r.weight_decay, r.clip_grad_norm, r.max_pair_tokens) == ([0.9, 0.95], 0.0, 1.0, 4096)


def test_rm_schedule_decays_linearly_to_the_final_lr():
    """EasyLM: 0 -> lr over the warmup, then linear to end_lr; multipliers of lr (floor = 1e-6 / 1e-5)."""
    f = [linear_with_floor(s, warmup=3, total=103, floor=0.1) for s in (0, 1, 3, 53, 103, 200)]
    assert f == pytest.approx([0.0, 1 / 3, 1.0, 0.55, 0.1, 0.1])


def test_ppo_recipe_is_tulu25(paper_stages, tmp_path):
    from rmlab.training.ppo_parts import missing_eos_treatment
    from rmlab.training.train_ppo import ppo_config

    cfg = paper_stages["train_ppo"]
    r = cfg.recipe
    assert (r.lr, r.scheduler, r.warmup_ratio, r.ppo_epochs, r.num_mini_batches) == (
        1e-6, "constant_with_warmup", 0.1, 1, 8)  # fmt: skip
    assert (r.kl_coef, r.temperature, r.gamma, r.lam, r.cliprange, r.vf_coef) == (0.05, 0.7, 1.0, 0.95, 0.2, 0.1)
    assert r.rollouts_per_device_batch * r.gradient_accumulation * 8 == 512  # 8 GPUs: 512 rollouts per batch
    args = ppo_config(cfg, tmp_path, "cpu", [])
    assert (args.num_ppo_epochs, args.num_mini_batches, str(args.lr_scheduler_type)) == (
        1, 8, "SchedulerType.CONSTANT_WITH_WARMUP")  # fmt: skip
    # a rollout without EOS gets reward -10 (replaced, EasyLM llama_train_ppo.py:254-258), so TRL subtracts nothing
    assert missing_eos_treatment(r) == {"replace_by": -10.0, "penalty": None}
    assert args.missing_eos_penalty is None
    # EasyLM's AdamW (optimizers.py:127-137): b2 0.95, no weight decay; TRL's PPOConfig would give b2 0.999
    assert (args.adam_beta1, args.adam_beta2, args.weight_decay) == (0.9, 0.95, 0.0)


def test_dpo_recipe_is_tulu25(tmp_path):
    from tests.conftest import compose_eval_cfg

    r = compose_eval_cfg(tmp_path, [], "train_dpo", base=("device=cpu", "logger=none")).recipe
    assert (r.lr, r.epochs, r.beta, r.warmup_ratio, r.pairs_per_update, list(r.betas)) == (
        5e-7, 3, 0.1, 0.1, 32, [0.9, 0.95])  # fmt: skip


def test_reward_bench_weights_are_the_current_leaderboards(tmp_path):
    from rmlab.metrics.reward_bench import EXAMPLE_COUNTS
    from tests.conftest import compose_eval_cfg

    assert compose_eval_cfg(tmp_path, ["benchmark=reward_bench"]).benchmark.xstest_weights == "current"
    assert (EXAMPLE_COUNTS["xstest-should-refuse"], EXAMPLE_COUNTS["xstest-should-respond"]) == (154, 250)


def test_task_decodings_as_open_instruct(paper_stages):
    from rmlab.generation.backends import gen_kwargs
    from rmlab.generation.decoding import Decoding

    task = paper_stages["eval_policy"].task
    code = [Decoding.from_cfg(d) for d in task.humaneval_plus.decodings]
    assert [(d.temperature, d.top_p, d.n, d.max_new_tokens) for d in code] == [
        (0.1, 0.95, 20, 512),
        (0.8, 0.95, 20, 512),
    ]
    assert gen_kwargs(code[0], "vllm")["top_p"] == 0.95 and gen_kwargs(code[0], "hf")["top_k"] == 0
    mbpp = [Decoding.from_cfg(d) for d in task.mbpp_plus.decodings]
    assert [d.top_p for d in mbpp] == [1.0, 1.0]  # open-instruct's MBPP sampling sets no top_p
    assert task.xstest.decodings[0].max_new_tokens == 2048
    assert (task.gsm8k.max_examples, task.gsm8k.n_shot, task.bbh.max_per_task) == (200, 8, 40)
    assert (task.toxigen.max_per_group, task.toxigen.decodings[0].max_new_tokens) == (500, 512)
    # a decoding without top_p keeps its cache key; one with top_p gets its own
    assert "top_p" not in mbpp[0].describe() and code[0].describe()["top_p"] == 0.95


def test_paper_scale_reward_model_evaluations_read_the_whole_benchmarks(tmp_path):
    stages = [s for s in plan_study(_run_experiment_cfg(["experiment=correlation_study"])) if s.entry == "eval_rm"]
    for s in stages:
        b = _stage_cfg(tmp_path, s).benchmark
        assert b.data_dir is None and b.require_complete is True and b.hub_id, s.step


def test_partial_data_is_an_error_when_the_whole_benchmark_is_asked_for(tmp_path, tiny_classifier_dir, rm_bench_dir):
    """The local RM-Bench has no math file: with require_complete the run stops before scoring; without, the
    outputs say what is missing."""
    from pathlib import Path

    from rmlab.rm_eval.evaluate import IncompleteBenchmarkError, evaluate_rm
    from tests.conftest import compose_eval_cfg

    over = [f"model={tiny_classifier_dir}", "benchmark.max_per_domain=1", "bootstrap.n_boot=0"]
    cfg = compose_eval_cfg(tmp_path / "strict", [*over, "benchmark.require_complete=true"])
    with pytest.raises(
        IncompleteBenchmarkError,
        match=r"rm_bench: the data from .* \(missing: domain math, "
        r"max_per_domain=1\); this run asks for the whole benchmark",
    ):
        evaluate_rm(cfg)
    assert not Path(cfg.paths.output_dir, "metrics.json").exists()
    m = evaluate_rm(compose_eval_cfg(tmp_path / "lenient", over))
    assert m["complete"] is False and m["incomplete_because"] == ["domain math", "max_per_domain=1"]


def test_mbpp_plus_prompts_and_split_as_open_instruct(paper_stages, data_dir):
    """open-instruct (eval/mbpp/run_eval.py): problems 100.. of evalplus/mbppplus, the chat prompt
    "Complete the following python function.\n\n\n" + problem + the reference code up to its first colon."""
    import gzip
    import json

    from rmlab.policy_eval.tasks import TASKS

    cfg = paper_stages["eval_policy"].task.mbpp_plus
    assert [list(d.stop) for d in cfg.decodings] == [["```"], ["```"]] and cfg.holdout_first == 100
    with gzip.open(data_dir / "mbpp-plus" / cfg.file, "rt") as fh:
        raw = [json.loads(line) for line in fh]
    examples, _ = TASKS[cfg.kind](cfg, data_dir).load()
    assert [e.id for e in examples] == [f"Mbpp/{r['task_id']}" for r in raw[100:]]
    first = raw[100]
    assert (
        examples[0].user
        == "Complete the following python function.\n\n\n" + first["prompt"] + first["code"].split(":")[0]
    )
    assert examples[0].answer_prefix == "Here is the completed function:\n\n\n```python\n"


def test_rm_bench_sec_4_2_scores_the_released_tulu25_checkpoints(tmp_path, data_dir):
    """experiments/rmbench_dpo_vs_classifier_tulu25.yaml: per dataset, the released classifier, the released DPO
    model with tulu-2-13b as reference, and reference-free (avg); tulu format, whole benchmark from the Hub."""
    import csv

    from rmlab.pipelines.dpo_vs_classifier import released_evals
    from tests.conftest import compose_eval_cfg

    cfg = _run_experiment_cfg(["experiment=rmbench_dpo_vs_classifier_tulu25"])
    rows = [r for r in csv.DictReader(
        line for line in (data_dir.parent / "reference" / "tulu25-model-ids.csv").open() if not line.startswith("#")
    )]  # fmt: skip
    assert list(cfg.pipeline.datasets) == [r["split"] for r in rows]
    for r in rows:
        evals, prov = released_evals(cfg, r["split"])
        assert prov["released"] == {"classifier": r["reward_model_seq_classifier"], "dpo": r["dpo_model"],
                                    "reference": r["sft_start_and_dpo_reference"]}  # fmt: skip
        for variant, over in evals.items():
            m = compose_eval_cfg(tmp_path, over)
            assert (m.model.chat_template, m.model.dtype, m.model.quantization, m.device) == (
                "rewardbench", "float16", "8bit", "cuda")  # fmt: skip
            assert m.benchmark.data_dir is None and m.benchmark.require_complete is True
            if variant == "classifier":
                assert (m.model.pretrained, m.model.kind) == (r["reward_model_seq_classifier"], "classifier")
            else:
                assert (m.model.pretrained, m.model.kind) == (r["dpo_model"], "implicit")
                want = r["sft_start_and_dpo_reference"] if variant == "dpo_ref" else None
                assert m.model.reference == want
                assert variant == "dpo_ref" or m.model.ref_free_mode == "avg"


def test_rm_bench_sec_5_2_evaluates_the_released_tulu25_checkpoints(tmp_path, data_dir):
    """experiments/rmbench_correlation_tulu25.yaml: the four released classifier RMs on the whole RM-Bench and
    RewardBench, their four released PPO policies and tulu-2-13b on the six tasks (vLLM), all in the tulu format;
    nothing trained; each policy linked to its RM and to tulu-2-13b for the correlate step."""
    import csv

    from rmlab.pipelines.correlation_study import released_links

    rows = [r for r in csv.DictReader(
        line for line in (data_dir.parent / "reference" / "tulu25-model-ids.csv").open() if not line.startswith("#")
    )]  # fmt: skip
    (sft,) = {r["sft_start_and_dpo_reference"] for r in rows}
    cfg = _run_experiment_cfg(["experiment=rmbench_correlation_tulu25"])
    stages = plan_study(cfg)
    planned = []
    for s in stages:
        c = _stage_cfg(tmp_path, s)
        if s.entry == "eval_rm":
            assert (c.model.kind, c.model.chat_template, c.model.dtype, c.model.quantization, c.device) == (
                "classifier", "rewardbench", "float16", "8bit", "cuda")  # fmt: skip
            assert c.benchmark.data_dir is None and c.benchmark.require_complete is True and c.benchmark.hub_id
            planned.append((s.step, c.model.pretrained))
        elif s.entry == "arena_hard":  # RM-Bench Sec. 5.1, every policy
            assert_paper_arena_hard(c)
            assert (c.policy.chat_template, c.policy.dtype) == ("tulu", "bfloat16")
            planned.append((s.step, c.policy.pretrained))
        else:
            assert s.entry == "eval_policy", s  # no train_rm, no train_ppo
            assert (c.policy.chat_template, c.policy.dtype, c.device, c.generation.backend) == (
                "tulu", "bfloat16", "cuda", "vllm")  # fmt: skip
            assert set(c.task) == {"gsm8k", "bbh", "humaneval_plus", "mbpp_plus", "toxigen", "xstest"}
            x = c.task.xstest  # open-instruct's labels (classify_refusal.py:32-40) and primary score (run_eval.py:169)
            assert (x.labeler, x.judge.kind, x.judge.model, x.judge.prompt, x.headline) == (
                "judge", "endpoint", "gpt-4-0613", "xstest_refusal_detect", "refusal_f1")  # fmt: skip
            # open-instruct's T=0.8 job reports pass@10 (codex_humaneval/run_eval.py:184-189, mbpp/run_eval.py:196-199)
            assert c.task.humaneval_plus.headline == c.task.mbpp_plus.headline == "t0.8/pass@10"
            planned.append((s.step, c.policy.pretrained))
    want = [(f"eval_rm:{b}", r["reward_model_seq_classifier"]) for r in rows for b in ("rm_bench", "reward_bench")]
    want += [(step, r["ppo_policy"]) for r in rows for step in ("eval_policy", "arena_hard")]
    want += [("eval_policy", sft), ("arena_hard", sft)]
    assert sorted(planned) == sorted(want)
    assert released_links(cfg) == {
        r["ppo_policy"]: {"reward_model": r["reward_model_seq_classifier"], "sft_model": sft} for r in rows
    }


def test_8bit_loading_as_rm_bench_is_an_error_naming_the_switch_without_cuda(tmp_path, tiny_classifier_dir):
    """RM-Bench loads every non-Llama-3 model in 8-bit with fp16 (scripts/run_rm.py, run_dpo.py: load_in_8bit);
    bitsandbytes needs CUDA, so here the paper setting must fail at once, naming the switch, never load silently
    in full precision; the 8-bit scores get their own cache key."""
    from omegaconf import OmegaConf

    from rmlab.models.loading import quantization_kwargs
    from rmlab.scoring.build import plan_scorer

    spec = {"pretrained": str(tiny_classifier_dir), "kind": "classifier", "dtype": "float16", "chat_template": "tulu"}
    with pytest.raises(RuntimeError, match=r"needs a CUDA device.*model\.quantization=null"):
        plan_scorer(OmegaConf.create({**spec, "quantization": "8bit"}), cache_dir=str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="model.quantization='4bit': unknown"):
        quantization_kwargs("4bit", "cuda")
    assert quantization_kwargs(None, "cpu") == {}
    plain = plan_scorer(OmegaConf.create({**spec, "quantization": None}), cache_dir=str(tmp_path), device="cpu")
    assert "quantization" not in plain.describe  # full precision keeps the keys it always had
