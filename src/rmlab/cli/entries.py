"""The entry points, once: each subcommand of ``rmlab``, its root config, the library function it calls and the
config groups that take a model spec. ``scripts/<config>.py`` are aliases of these subcommands."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from rmlab.pipelines.stages import STAGES


@dataclass(frozen=True)
class Entry:
    config: str  # conf/<config>.yaml (and scripts/<script>.py)
    function: str  # "module:function" called with the composed config
    summary: str  # one line for `rmlab --help`
    usage: str  # the typical command line after `rmlab <command>`
    groups: tuple[str, ...] = ("model",)  # config groups that take a model spec (model=<dir>, policy=<hub id>)
    script: str | None = None  # scripts/<script>.py when it is not named like the config

    @property
    def command(self) -> str:
        return (self.script or self.config).replace("_", "-")

    def fn(self) -> Callable[[DictConfig], object]:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)


_POLICY = ("policy",)


def _stage(config: str, summary: str, usage: str) -> Entry:
    """The entry of a pipeline stage: its function and model groups are the stage table's (``STAGES``), so the
    command and the stage cannot drift apart."""
    kind = STAGES[config]
    return Entry(config, kind.function, summary, usage, kind.groups)


ENTRIES: dict[str, Entry] = {
    e.command: e
    for e in (
        # reward models
        _stage(
            "eval_rm",
            "score a reward model on one benchmark (RM-Bench, RewardBench (2), RewardMATH, JudgeBench, RMB)",
            "model=<name | hub id | dir> benchmark=rm_bench",
        ),
        _stage(
            "train_rm",
            "train a classifier reward model (Bradley-Terry, PyTorch Lightning)",
            "preference=hh_rlhf model=<backbone>",
        ),
        _stage(
            "train_dpo", "train a DPO model with TRL (an implicit reward model)", "preference=hh_rlhf model=<sft model>"
        ),
        _stage(
            "train_ppo",
            "PPO-train a policy against a reward model with TRL",
            "reward_model=<RM dir> policy=<sft model>",
        ),
        _stage(
            "train_policy",
            "train a policy against a reward model: algo=grpo | rloo (TRL, the RM as reward function) | ppo",
            "algo=grpo reward_model=<RM dir> policy=<sft model>",
        ),
        # policies
        _stage(
            "eval_policy",
            "evaluate a policy on GSM8k, BBH, HumanEval+, MBPP+, ToxiGen, XSTest",
            "policy=<hub id | dir | name> task=<task | all>",
        ),
        _stage(
            "best_of_n",
            "best-of-n sampling and reward overoptimization curves",
            "policy=<spec> task=arithmetic reward_models.<name>=<spec>",
        ),
        _stage(
            "arena_hard",
            "a policy's Arena-Hard-Auto v0.1 score, raw and style-controlled",
            "policy=<hub id | dir | name> max_examples=20",
        ),
        Entry(
            "reward_signal",
            "rmlab.diagnostics.reward_signal:reward_signal",
            "spread of a reward model's scores over a policy's own samples",
            "reward_model=<RM dir> [policy=<dir>]",
            _POLICY,
        ),
        # experiments and analysis
        Entry(
            "run_experiment",
            "rmlab.cli.adapters:run_pipeline",
            "run a multi-stage experiment (train, evaluate, correlate; finished stages reused)",
            "experiment=dpo_vs_classifier",
        ),
        Entry(
            "correlate",
            "rmlab.analysis.correlation_study:correlate",
            "reward-model benchmark scores vs their policies' downstream scores",
            "runs=<dir or glob>",
        ),
        Entry(
            "make_tables",
            "rmlab.analysis.tables:make_tables",
            "the papers' tables (md, CSV, LaTeX) and heatmaps from run outputs",
            "runs=<dir or glob>",
        ),
        Entry(
            "compare",
            "rmlab.cli.adapters:compare_benchmarks",
            "reward models side by side on every benchmark they were evaluated on, with rank correlations",
            "runs=<dir or glob>",
            script="compare_benchmarks",
        ),
        Entry(
            "report_card",
            "rmlab.analysis.report_card:report_card",
            "one reward model on every benchmark, one row (or, with runs=, one row per evaluated model)",
            "model=<name | hub id | dir> [benchmarks=[...]] | runs=<dir>",
        ),
        Entry(
            "leaderboard",
            "rmlab.analysis.leaderboard:write_leaderboard",
            "reward models x benchmarks from eval_rm runs (runs=), or the RewardMATH score-dump leaderboard",
            "runs=<dir or glob> | [dumps_dir=<dir>]",
        ),
        Entry(
            "arena_hard_fidelity",
            "rmlab.analysis.arena_hard:write_arena_hard_fidelity",
            "Arena-Hard-Auto v0.1 scores from local verdicts vs the published ones",
            "[n_rounds=1000]",
        ),
        Entry(
            "xstest_agreement",
            "rmlab.policy_eval.judging.refusal_fidelity:report_agreement",
            "agreement of a refusal labeler with the XSTest authors' labels",
            "[labeler=judge]",
        ),
        # measurements
        Entry(
            "bench_scoring",
            "rmlab.diagnostics.scoring_throughput:benchmark",
            "scoring throughput vs a RewardBench-style pipeline and the matmul rate",
            "[bench.prompts_per_domain=20]",
            ("model", "implicit"),
        ),
        Entry(
            "bench_generation",
            "rmlab.diagnostics.generation_bench:benchmark",
            "batched generation vs per-prompt generate; sandbox overhead",
            "[bench.n_prompts=32]",
            _POLICY,
        ),
        Entry(
            "bench_train_rm",
            "rmlab.diagnostics.training_throughput:benchmark",
            "RM training throughput, ours vs TRL's RewardTrainer",
            "[bench.steps=8]",
        ),
        Entry(
            "measure_score_bounds",
            "rmlab.scoring.score_bounds:measure_score_bounds",
            "how far scores move with batch size, packing and order (the fragile-count bounds)",
            "[measure.dtypes=[float32]]",
            ("model", "implicit"),
        ),
        Entry(
            "gpu_check",
            "rmlab.diagnostics.gpu_check:gpu_check",
            "a few minutes on a GPU: scoring, generation, training and throughput checks",
            "[model=<dir>]",
        ),
    )
}


def find_entry(name: str) -> Entry:
    """The entry point called ``name`` (``eval-rm``, ``eval_rm`` or a script's name), or a SystemExit that lists
    the commands and the closest ones."""
    import difflib

    key = name.replace("_", "-").removesuffix(".py")
    if key in ENTRIES:
        return ENTRIES[key]
    close = difflib.get_close_matches(key, list(ENTRIES), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise SystemExit(f"rmlab: no command {name!r}.{hint} Commands: {', '.join(ENTRIES)} (rmlab --help)")


def by_config(config: str) -> Entry:
    """The entry point whose root config is ``conf/<config>.yaml``."""
    return next(e for e in ENTRIES.values() if e.config == config)
