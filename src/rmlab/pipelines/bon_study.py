"""A best-of-n study: do reward-model benchmarks predict what a reward model does for best-of-n sampling?

RewardMATH's validation design (Kim et al. 2024, Sec. 5) at any scale, with reward models of graded quality so
that a positive result is expected and its absence reveals a bug (:mod:`rmlab.analysis.bon_study`):

1. ``samples`` (``best_of_n`` on the task's training split, no reward models): the policy's own samples with
   their gold scores, the training data of the reward models (``preference=policy_samples``);
2. ``train_rm`` per reward model in ``pipeline.reward_models`` (each with its own overrides, e.g. a label-noise
   rate or a number of pairs): classifiers of graded quality;
3. ``eval_rm`` of each on every benchmark in ``pipeline.rm_eval.benchmarks``;
4. ``bon`` (``best_of_n`` on the task's test split, N samples per prompt, every reward model as a proxy);
5. the analysis: one row per reward model (its pairwise accuracy on the best-of-n samples, its held-out accuracy,
   its benchmark accuracies, gold@n) and the correlation of each quality measure with the best-of-N gold gain.

With ``pipeline.algos`` (default ``[bon]``) listing policy optimizers too (``[bon, grpo]``, any of ``ppo``,
``grpo``, ``rloo``), each reward model also trains a policy from the study's policy with that optimizer
(``train_policy algo=<a>``, on the prompts of the reward model's own training pairs, the task's gold check logged
as a curve), and each trained policy is sampled on the best-of-n prompts as the SFT policy was (``gold_<a>``); the
method's gain is the trained policy's gold@1 minus the SFT policy's, paired over prompts. The correlations are then
reported per method, side by side (does the answer depend on the optimizer?), and ``pipeline.controls``
(``{positive: <rm>, negative: <rm>, shuffled: <rm>}``) checks that a policy trained against the good reward model gains,
that one trained against the bad one does not (valid only if the bad one's pairwise accuracy on the best-of-n samples
is not above chance: a reward model trained on flipped labels need not be signal-free), and that one paid the
``shuffled`` reward model's rewards permuted within each prompt's group (``train_policy shuffle_rewards=true``: no
information about the completion, by construction) does not.

Or, with ``pipeline.released`` (name -> a reward model spec), released reward models are used as they are (no
training; the paper-scale variant). Stages are named by their identity and reused when finished, like every
pipeline here (:mod:`rmlab.pipelines.stages`). Writes ``study.md``, ``study.json`` and the best-of-n curves.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.analysis.bon_study import (
    benchmark_comparison,
    positive_control,
    study_correlations,
    study_markdown,
    study_rows,
)
from rmlab.analysis.policy_methods import (
    admit_negative_pool,
    method_controls,
    methods_markdown,
    negative_pool,
    policy_gain,
    pooled_pairwise_accuracy,
)
from rmlab.pipelines.stages import StageRunner
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)


def _list(node) -> list[str]:
    return [str(x) for x in (OmegaConf.to_container(node, resolve=True) if node is not None else [])]


def _hydra_value(v) -> str:
    return "null" if v is None else f"'{v}'" if isinstance(v, str) else str(v)


def eval_overrides(cfg: DictConfig, spec: str) -> dict[str, list[str]]:
    """Per benchmark, the ``eval_rm`` overrides of one reward model."""
    p = cfg.pipeline
    return {
        bench: [f"model={spec}", f"benchmark={bench}", *_list(over), *_list(p.rm_eval.overrides), f"seed={cfg.seed}"]
        for bench, over in (p.rm_eval.benchmarks or {}).items()
    }


def bon_overrides(cfg: DictConfig, models: dict[str, str]) -> list[str]:
    """The ``best_of_n`` overrides of the study's best-of-n stage: every reward model a proxy."""
    p = cfg.pipeline
    keys = OmegaConf.to_container(p.bon.get("reward_model") or {}, resolve=True)  # conf/model keys of every proxy
    extra = "".join(f", {k}: {_hydra_value(v)}" for k, v in keys.items())
    proxies = [f"+reward_models.{name}={{pretrained: '{spec}'{extra}}}" for name, spec in models.items()]
    return [f"policy={p.policy}", f"task={p.task}", f"seed={cfg.seed}", *_list(p.bon.overrides), *proxies]


ALGOS = ("bon", "ppo", "grpo", "rloo")


def check_algos(node) -> list[str]:
    """``pipeline.algos`` as a list of known methods (one name or a list), with a suggestion for a typo."""
    import difflib

    algos = [node] if isinstance(node, str) else _list(node) if node is not None else ["bon"]
    for a in algos:
        if a not in ALGOS:
            close = difflib.get_close_matches(a, ALGOS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"pipeline.algos: {a!r} is not one of {ALGOS}{hint}")
    if len(set(algos)) != len(algos):
        raise ValueError(f"pipeline.algos lists a method twice: {algos}")
    return algos


def policy_overrides(cfg: DictConfig, algo: str, spec: str, samples_dir: Path) -> list[str]:
    """The ``train_policy`` overrides of one reward model's policy: the study's policy, its task's gold check as
    the monitor, the prompts of the reward models' training pairs (same split as the reward model's)."""
    p = cfg.pipeline
    tp = p.get("train_policy") or {}
    return [
        f"algo={algo}", f"reward_model={spec}", f"policy={p.policy}", f"task={p.task}", "preference=policy_samples",
        f"preference.data_dir={samples_dir}", *_list(p.train_rm.get("preference_overrides")),
        *_list(tp.get("overrides")), *_list(tp.get(algo)), f"seed={cfg.seed}",
    ]  # fmt: skip


def run_bon_study(cfg: DictConfig) -> dict:
    """The study's stages in order (samples, reward models, their evaluations, best-of-n, the policies), then
    ``study.md`` / ``study.json``."""
    p = cfg.pipeline
    root, out = Path(p.stages_dir).resolve(), Path(cfg.paths.output_dir)
    algos = check_algos(p.get("algos"))
    trainers = [a for a in algos if a != "bon"]
    stage = StageRunner(p, root, [f"logger={p.stage_logger}"], record_to=out)
    models, train_runs, samples_dir = _reward_models(cfg, stage, root, need_samples=bool(trainers))
    evals: dict[str, dict[str, dict]] = {}
    for name, spec in models.items():
        for bench, over in eval_overrides(cfg, spec).items():
            _, metrics = stage("eval_rm", over, root / name, f"eval_rm_{bench}", [f"model.name={name}"])
            evals.setdefault(name, {})[bench] = metrics
    bon_dir, bon = stage("best_of_n", bon_overrides(cfg, models), root, "bon")
    pool = _negative_pool(cfg, models, bon)
    gains, control_gains, policy_runs = _policies(cfg, stage, root, models, trainers, samples_dir, bon_dir, pool[0])
    n = int(p.gain_n or bon["ns"][-1])
    rows = study_rows(bon, evals, train_runs, n, gains)
    return _write_study(cfg, out, rows, bon, bon_dir, n, algos, policy_runs, control_gains, pool)


def _negative_pool(cfg: DictConfig, models: dict, bon: dict) -> tuple[list[str], dict]:
    """A pooled negative control's members (``pipeline.controls.negative`` a list): the signal-free ones, by each
    model's pairwise accuracy on the best-of-n samples, and the ones set aside (:func:`admit_negative_pool`); with
    every member set aside, all of them (the control then reads INVALID)."""
    pool = negative_pool(cfg.pipeline.get("controls"))
    unknown = [n for n in pool if n not in models]
    if unknown:
        raise ValueError(f"pipeline.controls.negative: {unknown} not reward models of this study ({sorted(models)})")
    members, set_aside = admit_negative_pool(
        {n: bon["reward_models"][n]["pairwise_accuracy"] for n in pool}, pool
    )  # fmt: skip
    for name, a in set_aside.items():
        log.warning("pooled negative control: %s set aside, pairwise accuracy %s %s chance", name, a["ci"], a["side"])
    return members, set_aside


def _reward_models(cfg: DictConfig, stage: StageRunner, root: Path, need_samples: bool):
    """The released reward models as given, and each of ``pipeline.reward_models`` trained on the policy's own
    gold-scored samples (the ``samples`` stage, run when something trains: reward models or policies)."""
    p = cfg.pipeline
    released, trained = dict(p.get("released") or {}), dict(p.get("reward_models") or {})
    if not released and not trained:
        raise ValueError("pipeline.reward_models (trained) or pipeline.released (given) must name reward models")
    clash = sorted(set(released) & set(trained))
    if clash:
        raise ValueError(f"reward models {clash} are both trained and released; give each a distinct name")
    models: dict[str, str] = {name: str(spec) for name, spec in released.items()}
    train_runs: dict[str, dict] = {}
    samples_dir = None
    if trained or need_samples:  # the policy's own samples: the reward models' pairs, the policies' training prompts
        base = [f"policy={p.policy}", f"task={p.task}", f"seed={cfg.seed}"]
        samples_dir, samples = stage("best_of_n", [*base, *_list(p.samples.overrides)], root, "samples")
        log.info("training samples: %d prompts, mean gold %.3f", samples["n_prompts"], samples["gold_mean"])
        for name in trained:
            rm_dir, metrics = stage("train_rm", rm_overrides(cfg, name, samples_dir), root / name, "train_rm",
                                    ["resume=auto"])  # fmt: skip
            models[name], train_runs[name] = str(rm_dir / "model"), metrics
    return models, train_runs, samples_dir


def rm_overrides(cfg: DictConfig, name: str, samples_dir: Path) -> list[str]:
    """The ``train_rm`` overrides of one of ``pipeline.reward_models``, trained on the ``samples`` stage's pairs. The
    study's seed comes first, so that the reward model's own ``seed=`` (e.g. another draw of flipped labels) wins."""
    p = cfg.pipeline
    return [
        "preference=policy_samples", f"preference.data_dir={samples_dir}", f"seed={cfg.seed}",
        *_list(p.reward_models[name]), *_list(p.train_rm.get("preference_overrides")), *_list(p.train_rm.overrides),
    ]  # fmt: skip


def greedy_overrides(cfg: DictConfig) -> list[str] | None:
    """With ``pipeline.greedy``: the ``best_of_n`` overrides of a greedy read-out on the best-of-n stage's prompts
    (one greedy decode per prompt, gold-scored); else None."""
    p = cfg.pipeline
    if not p.get("greedy"):
        return None
    return [f"task={p.task}", f"seed={cfg.seed}", *_list(p.bon.overrides), "n_samples=1", "sampling.temperature=0",
            "ns=[1]"]  # fmt: skip


def _policy_arms(cfg: DictConfig, models: dict) -> list[tuple[str, str, str, list[str]]]:
    """(reward model, its spec, stage suffix, extra ``train_policy`` overrides): one arm per reward model, and with
    ``pipeline.controls.shuffled=<rm>`` that model's rewards permuted within each prompt's group (the shuffled arm)."""
    arms = [(name, spec, "", []) for name, spec in models.items()]
    shuffled = (cfg.pipeline.get("controls") or {}).get("shuffled")
    if shuffled is not None:
        if shuffled not in models:
            raise ValueError(
                f"pipeline.controls.shuffled={shuffled!r}: not a reward model of this study ({sorted(models)})"
            )
        arms.append((str(shuffled), models[shuffled], "_shuffled", ["shuffle_rewards=true"]))
    return arms


def _policies(
    cfg: DictConfig, stage: StageRunner, root: Path, models: dict, trainers: list, samples_dir, bon_dir, pool: list
):
    """Per policy optimizer and reward model (and the shuffled arm): the trained policy, that policy sampled as the SFT
    policy was in the ``bon`` stage, and its gold@1 gain over the SFT policy paired over prompts (with
    ``pipeline.greedy``, also greedy-decoded on the same prompts: ``gain["greedy"]``). The controls' own gains are
    returned apart (``control_gains``: kind -> method -> gain): the shuffled arm's, which is not a reward model of
    the study, and a pooled negative control's (``pool``: its members, :func:`_negative_pool`; the mean gain of their
    arms)."""
    p = cfg.pipeline
    gains: dict[str, dict[str, dict]] = {}
    control_gains: dict[str, dict[str, dict]] = {}
    policy_runs: dict[str, dict[str, dict]] = {}
    greedy = greedy_overrides(cfg)
    sft_greedy = greedy and stage("best_of_n", [f"policy={p.policy}", *greedy], root, "greedy")[0]
    boot = {"n_boot": int(p.n_boot), "seed": int(cfg.seed)}
    for algo in trainers:
        for name, spec, suffix, extra in _policy_arms(cfg, models):
            parent = root / name
            over = [*policy_overrides(cfg, algo, spec, samples_dir), *extra]
            pol_dir, pol = stage("train_policy", over, parent, f"train_{algo}{suffix}")
            gold_over = [f"policy={pol_dir / 'policy'}", f"task={p.task}", f"seed={cfg.seed}", *_list(p.bon.overrides)]
            gold_dir, _ = stage("best_of_n", gold_over, parent, f"gold_{algo}{suffix}")
            gain = policy_gain(bon_dir / "samples.jsonl", gold_dir / "samples.jsonl", **boot)
            if greedy:  # the same policy's mode: its gain without the sharpening that sampling at T=1 rewards
                mode_dir, _ = stage(
                    "best_of_n", [f"policy={pol_dir / 'policy'}", *greedy], parent, f"greedy_{algo}{suffix}"
                )
                gain["greedy"] = policy_gain(sft_greedy / "samples.jsonl", mode_dir / "samples.jsonl", **boot)
            if suffix:
                control_gains.setdefault("shuffled", {})[algo] = gain
            else:
                gains.setdefault(algo, {})[name] = gain
            policy_runs.setdefault(algo, {})[name + suffix] = {"train": str(pol_dir), "gold": str(gold_dir),
                                                               "fit_seconds": pol["train"]["fit_seconds"]}  # fmt: skip
            if greedy:
                policy_runs[algo][name + suffix]["greedy"] = str(mode_dir)
        if pool:  # the pooled negative control: its arms' mean gold@1 per prompt, paired with the SFT policy's
            runs = [policy_runs[algo][n] for n in pool]
            gain = policy_gain(bon_dir / "samples.jsonl", [Path(r["gold"]) / "samples.jsonl" for r in runs], **boot)
            if greedy:
                gain["greedy"] = policy_gain(
                    sft_greedy / "samples.jsonl", [Path(r["greedy"]) / "samples.jsonl" for r in runs], **boot
                )
            control_gains.setdefault("negative", {})[algo] = gain
    return gains, control_gains, policy_runs


def _write_study(
    cfg: DictConfig,
    out: Path,
    rows,
    bon: dict,
    bon_dir: Path,
    n: int,
    algos: list,
    policy_runs,
    control_gains=None,
    pool: tuple[list[str], dict] = ([], {}),
) -> dict:
    """The correlations per method, the controls, ``study.md`` and ``study.json``."""
    p = cfg.pipeline
    trainers = [a for a in algos if a != "bon"]
    stats = {"n_boot": int(p.n_boot), "n_perm": int(p.n_perm), "seed": int(cfg.seed),
             "interval": str(p.get("interval", "fisher"))}  # fmt: skip
    by_method = {a: study_correlations(rows, method=a, **stats) for a in algos}
    correlations = by_method[algos[0]]
    control = positive_control(correlations)
    comparison = benchmark_comparison(rows, method=algos[0])
    members, set_aside = pool
    samples = bon_dir / "samples.jsonl"
    boot = {"n_boot": int(p.n_boot), "seed": int(cfg.seed)}
    pooled_accuracy = pooled_pairwise_accuracy(samples, members, **boot) if members else None
    controls = method_controls(rows, p.get("controls"), trainers, control_gains, pooled_accuracy, set_aside)
    table = study_markdown(rows, correlations, control, bon["ns"], n, comparison, method=algos[0])
    if len(algos) > 1 or trainers:
        table += "\n" + methods_markdown(rows, by_method, algos, n, controls)
    header = (
        f"# Best-of-n study: {len(rows)} reward models, {bon['task']}, {bon['n_prompts']} prompts x "
        f"{bon['n_samples']} samples of {bon['policy']}\n\n"
    )
    write_text(out / "study.md", header + table)
    for f in ("bon.md", "curves.png"):
        shutil.copyfile(bon_dir / f, out / f)
    result = {"rows": rows, "correlations": correlations, "correlations_by_method": by_method,
              "benchmark_comparison": comparison, "positive_control": control, "method_controls": controls,
              "control_gains": control_gains or {}, "pooled_negative_accuracy": pooled_accuracy,
              "pooled_negative_set_aside": set_aside}  # fmt: skip
    write_json(out / "study.json", {**result, "algos": algos, "policy_runs": policy_runs, "gain_n": n,
                                    "bon_run": str(bon_dir)})  # fmt: skip
    log.info("wrote %s\n%s", out, table)
    print(header + table)
    if not control["passed"]:
        log.warning("positive control failed: %s", json.dumps(control))
    for c in controls:
        if not c["passed"]:
            log.warning("%s control of %s: %s: %s", c["kind"], c["algo"], c["verdict"], json.dumps(c))
    return result
