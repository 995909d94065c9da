"""RM-Bench Sec. 5.2 as one experiment: reward models, their PPO policies, both evaluated, then correlated.

For each reward model in ``pipeline.reward_models`` (a preference dataset and its settings):

1. ``train_rm``: a classifier reward model on the dataset's training split;
2. ``eval_rm``: that reward model on each benchmark in ``pipeline.rm_eval.benchmarks`` (RM-Bench, RewardBench);
3. ``train_ppo``: a policy PPO-trained from the SFT model against it, on prompts from the same split (Tulu-2.5);
   with ``pipeline.algos`` listing other optimizers (``[ppo, grpo]``; any of ``ppo``, ``grpo``, ``rloo``), also
   ``train_<algo>`` (``train_policy algo=<algo>``, ``pipeline.train_policy.overrides`` and ``.<algo>``);
4. ``eval_policy``: each policy on the downstream tasks;

and with ``pipeline.arena_hard`` set (its ``overrides`` of conf/arena_hard.yaml; null: off), every policy's
Arena-Hard-Auto v0.1 score with and without style control (``arena_hard``: RM-Bench Sec. 5.1's style-control
score, correlated with RM-Bench chat hard accuracy); plus ``eval_policy`` (and ``arena_hard``) of the SFT model itself (the baseline of ``policy_score=improvement``). A branch of
``pipeline.released`` (name -> ``reward_model`` and ``policy`` model specs) trains nothing: its released reward
model (a classifier) is evaluated on each benchmark and its released PPO policy on the tasks (the paper's own
setting: the Tulu-2.5 checkpoints); a study may mix trained and released branches. A released policy carries no
``rmlab_meta.json``, so the correlate step gets its links (``policy_links``) from here. Then the correlation
(:mod:`rmlab.analysis.correlation_study`) over exactly these runs, its headline and each variant in
``pipeline.correlate.variants``, and the tables (:mod:`rmlab.analysis.tables`). With several ``algos`` the
correlation runs once per optimizer (``correlation_<algo>/``, the SFT and reward-model evaluations shared) and
``correlation_by_algo.md`` sets each benchmark's r side by side: does the answer depend on the optimizer?

The plan is data (:func:`plan_study`): a list of stages whose directories are named by their identity (resolved
config and input fingerprints, :mod:`rmlab.pipelines.identity`), so every stage is reused when it already
finished with the same code, a changed default, data file or upstream stage never reuses a stale result, and a
killed study resumes at the first unfinished stage (inside it too, for the trainings: their stages run with
``resume=auto``, so their latest checkpoint is picked up). ``pipeline.code_change`` (``rerun``, the default, or
``reuse``) says what a finished stage computed by other code gets; each stage's ``stage.json`` says why it was
reused or run.
``pipeline.only=<branch>`` runs one reward model's branch (or ``sft``) without correlating, so a launcher can fan
the branches out (``-m pipeline.only=a,b,c,sft`` with ``hydra/launcher=slurm``); a last run without ``only``
then reuses them all and correlates. ``pipeline.dry_run=true`` writes the plan and stops.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from rmlab.pipelines.stages import STAGES, PipelineProgress, plan_stage, run_stage, stage_record, with_stage_overrides
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)

SFT = "sft"


@dataclass(frozen=True)
class Stage:
    branch: str  # the reward model's name, or "sft"
    step: str  # train_rm | eval_rm:<benchmark> | train_ppo | eval_policy | arena_hard
    entry: str  # conf/<entry>.yaml and scripts/<entry>.py
    overrides: tuple[str, ...]  # the settings of the stage (its identity is their resolved config)
    out_dir: str  # <parent>/<name>-<identity hash>
    launch: tuple[str, ...] = ()
    algo: str | None = None  # the policy optimizer of a policy's stages (None: the SFT policy's, the reward model's)
    runtime: tuple[str, ...] = field(default=(), compare=False)
    identity: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def done(self) -> str:
        return STAGES[self.entry].done

    @property
    def groups(self) -> tuple[str, ...]:
        return STAGES[self.entry].groups


def _list(node) -> list[str]:
    return [str(x) for x in (OmegaConf.to_container(node, resolve=True) if node is not None else [])]


def study_algos(node) -> list[str]:
    """``pipeline.algos`` (default ``[ppo]``): the policy optimizers, each checked (:func:`check_algo`)."""
    from rmlab.training.train_policy import check_algo

    algos = [node] if isinstance(node, str) else _list(node) if node is not None else ["ppo"]
    if "bon" in algos:
        raise ValueError(
            "pipeline.algos: bon trains no policy to evaluate on the downstream tasks; best-of-n is a method of the "
            "best-of-n study (experiments/bon_study_cpu.yaml, its pipeline.algos)"
        )
    if not algos or len(set(algos)) != len(algos):
        raise ValueError(f"pipeline.algos must list each policy optimizer once, got {algos}")
    return [check_algo(a) for a in algos]


def plan_study(cfg: DictConfig) -> list[Stage]:
    """Every stage of the study, in an order that respects their dependencies."""
    p = cfg.pipeline
    algos = study_algos(p.get("algos"))
    trained, released = p.get("reward_models") or {}, p.get("released") or {}
    if not trained and not released:
        raise ValueError(
            "pipeline.reward_models and pipeline.released are empty: name at least one reward model (a preference "
            "dataset to train on, or released checkpoints)"
        )
    for key, branches in (("reward_models", trained), ("released", released)):
        if SFT in branches:
            raise ValueError(f"pipeline.{key}: {SFT!r} names the SFT policy's branch; pick another name")
    if both := sorted(set(trained) & set(released)):
        raise ValueError(f"pipeline.reward_models and pipeline.released both name {both}: a branch is one or the other")
    root = Path(p.stages_dir).resolve()
    seed = f"seed={cfg.seed}"
    runtime = (f"logger={p.stage_logger}",)
    stages: list[Stage] = []

    def add(branch, step, entry, overrides, parent, name, launch=(), extra_runtime=(), algo=None):
        overrides = with_stage_overrides(p, entry, overrides)
        out_dir, identity = plan_stage(parent, name, entry, overrides, stages_root=root)
        stages.append(
            Stage(branch, step, entry, tuple(overrides), str(out_dir), tuple(launch), algo,
                  (*runtime, *extra_runtime), identity)
        )  # fmt: skip
        return out_dir

    def policy_eval(branch: str, policy: str, parent: Path, algo: str | None = None):
        over = [f"policy={policy}", *_list(p.policy_eval.overrides), seed]
        name = () if branch == SFT else (f"policy.name={algo}-{branch}",)
        tag = "" if algo in (None, "ppo") else f":{algo}"
        for step in ("eval_policy", "arena_hard"):
            spec = p.policy_eval if step == "eval_policy" else p.get("arena_hard")
            if spec is None:
                continue
            if step == "arena_hard":
                over = [f"policy={policy}", *_list(spec.get("overrides")), seed]
            add(branch, step + tag, step, over, parent, step, _list(spec.get("launch")), name, algo)

    def rm_evals(branch: str, model: list[str], parent: Path):
        for bench, bench_over in p.rm_eval.benchmarks.items():
            over = [*model, f"benchmark={bench}", *_list(bench_over), *_list(p.rm_eval.overrides), seed]
            add(branch, f"eval_rm:{bench}", "eval_rm", over, parent, f"eval_rm_{bench}", (), (f"model.name={branch}",))

    policy_eval(SFT, str(p.sft_policy), root / SFT)
    for name, spec in trained.items():
        data = [f"preference={spec.preference}", *_list(spec.get("overrides")), *_list(p.preference_overrides)]
        rm_over = [*data, *_list(p.train_rm.overrides), seed]
        rm_dir = add(
            name,
            "train_rm",
            "train_rm",
            rm_over,
            root / name,
            "train_rm",
            launch=_list(p.train_rm.get("launch")),
            extra_runtime=("resume=auto",),
        )
        rm_evals(name, [f"model={rm_dir / 'model'}"], rm_dir)
        base = [f"reward_model={rm_dir / 'model'}", f"policy={p.sft_policy}", *data]
        for algo in algos:
            if algo == "ppo":  # train-ppo, as this study always ran it (its stages keep their identity)
                entry, over, launch = "train_ppo", [*base, *_list(p.ppo.overrides)], _list(p.ppo.get("launch"))
            else:
                tp = p.get("train_policy") or {}
                entry, launch = "train_policy", _list(tp.get("launch"))
                over = [f"algo={algo}", *base, *_list(tp.get("overrides")), *_list(tp.get(algo))]
            step = f"train_{algo}"
            pol_dir = add(name, step, entry, [*over, seed], rm_dir, step, launch, ("resume=auto",), algo)
            policy_eval(name, str(pol_dir / "policy"), pol_dir, algo)
    for name, spec in released.items():
        _check_released(name, spec)
        rm_evals(name, [f"model={spec.reward_model}", "model.kind=classifier"], root / name)
        policy_eval(name, str(spec.policy), root / name, "ppo")  # the released policies are PPO's (Tulu 2.5)
    return stages


def _check_released(name: str, spec) -> None:
    for key in ("reward_model", "policy"):
        if not spec.get(key):
            raise ValueError(
                f"pipeline.released.{name}: needs reward_model and policy (model specs); {key!r} is missing"
            )


def _recorded_spec(entry: str, group: str, spec: str) -> str:
    """The spec an evaluation of ``spec`` records (``model_spec``, ``policy_spec``: ``<group>.pretrained``), so
    that a config name (``policy=tulu2_13b``) becomes the Hub id or directory it stands for."""
    from rmlab.utils.config import compose_config, rewrite_model_overrides

    return str(compose_config(entry, rewrite_model_overrides([f"{group}={spec}"], (group,)))[group].pretrained)


def released_links(cfg: DictConfig) -> dict[str, dict[str, str]]:
    """``policy_links`` (conf/correlate.yaml) of the released branches: each released policy -> its released reward
    model and the SFT model, as their evaluations record them."""
    p = cfg.pipeline
    sft = _recorded_spec("eval_policy", "policy", str(p.sft_policy))
    return {
        _recorded_spec("eval_policy", "policy", str(spec.policy)): {
            "reward_model": _recorded_spec("eval_rm", "model", str(spec.reward_model)),
            "sft_model": sft,
        }
        for spec in (p.get("released") or {}).values()
    }


def _selected(stages: list[Stage], only) -> list[Stage]:
    if only is None:
        return stages
    branches = {s.branch for s in stages}
    if str(only) not in branches:
        raise ValueError(f"pipeline.only={only!r}: not a branch of this study (one of {sorted(branches)})")
    return [s for s in stages if s.branch == str(only)]


EVALUATIONS = ("eval_rm", "eval_policy", "arena_hard")


def algo_evaluations(stages: list[Stage], algo: str) -> list[str]:
    """The runs one optimizer's correlation reads: every reward-model evaluation, the SFT policy's evaluations and
    those of the policies that optimizer trained (or, for ppo, the released PPO policies)."""
    return [s.out_dir for s in stages if s.entry in EVALUATIONS and s.algo in (None, algo)]


def _correlate(cfg: DictConfig, stages: list[Stage], out: Path) -> dict:
    """The correlation of each reading (headline and variants); with several policy optimizers, once per optimizer
    over its own policies (``correlation_<algo>[_<variant>]``) and the side-by-side table."""
    from rmlab.analysis.tables import make_tables
    from rmlab.utils.config import compose_config

    algos = study_algos(cfg.pipeline.get("algos"))
    evaluations = [s for s in stages if s.entry in EVALUATIONS]
    if len(algos) == 1:
        results = _readings(cfg, [s.out_dir for s in evaluations], out, "correlation")
    else:
        by_algo = {a: _readings(cfg, algo_evaluations(stages, a), out, f"correlation_{a}") for a in algos}
        results = {f"{a}/{name}": r for a, readings in by_algo.items() for name, r in readings.items()}
        write_text(out / "correlation_by_algo.md", by_algo_markdown({a: r["headline"] for a, r in by_algo.items()}))
        write_json(out / "correlation_by_algo.json", {a: r["headline"] for a, r in by_algo.items()})
    if cfg.pipeline.tables:
        tcfg = compose_config("make_tables", [])
        with open_dict(tcfg):
            tcfg.runs = [s.out_dir for s in evaluations]
            tcfg.paths.output_dir = str(out / "tables")
        make_tables(tcfg)
        for a in algos:
            key = "headline" if len(algos) == 1 else f"{a}/headline"
            _correlation_tables(results[key], out / "tables", "" if len(algos) == 1 else f"_{a}")
    return results


def _readings(cfg: DictConfig, runs: list[str], out: Path, stem: str) -> dict:
    """``correlate`` over ``runs``: the headline reading in ``<stem>/``, each variant in ``<stem>_<variant>/``."""
    from rmlab.analysis.correlation_study import correlate
    from rmlab.utils.config import compose_config

    links = released_links(cfg)
    variants = {"headline": [], **{k: _list(v) for k, v in (cfg.pipeline.correlate.variants or {}).items()}}
    results = {}
    for name, extra in variants.items():
        ccfg = compose_config("correlate", [*_list(cfg.pipeline.correlate.overrides), *extra, f"seed={cfg.seed}"])
        with open_dict(ccfg):
            ccfg.runs = runs
            if links:  # beside any the overrides give
                given = OmegaConf.to_container(ccfg.policy_links) if ccfg.policy_links else {}
                ccfg.policy_links = {**given, **links}
            ccfg.paths.output_dir = str(out / (stem if name == "headline" else f"{stem}_{name}"))
        results[name] = correlate(ccfg)
    return results


def by_algo_markdown(headlines: dict[str, dict]) -> str:
    """Each benchmark's r (interval, p, points) per policy optimizer, side by side."""
    from rmlab.analysis.benchmark_comparison import interval_text, p_text

    algos = list(headlines)
    benches = list(dict.fromkeys(b for r in headlines.values() for b in r["benchmarks"]))
    lines = [
        "Benchmark score vs policy score, per policy optimizer (the same reward models, SFT and readings; "
        + "each optimizer's own policies):",
        "",
        "| benchmark | " + " | ".join(f"{a.upper()}: r [CI] (p; points)" for a in algos) + " |",
        "|---|" + "---|" * len(algos),
    ]
    for b in benches:
        cells = []
        for a in algos:
            e = headlines[a]["benchmarks"].get(b)
            if not e or e.get("pearson_r") is None:
                cells.append("undefined" if e else "-")
            else:
                cells.append(f"{e['pearson_r']:.2f} {interval_text(e)} (p {p_text(e['pearson_p'])}; {e['n']})")
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _correlation_tables(result: dict, out: Path, suffix: str = "") -> None:
    """The headline correlation as a paper table beside the others, with the same power note as correlation.md."""
    from rmlab.analysis.correlation_markdown import correlation_table
    from rmlab.analysis.tables import to_csv, to_latex, to_markdown

    head, rows, note = correlation_table(result)
    caption = f"Benchmark score vs policy score (RM-Bench Sec. 5.2 reading{suffix.replace('_', ', ')}). {note}"
    write_text(out / f"correlation{suffix}.md", to_markdown(head, rows) + f"\n{note}\n")
    write_text(out / f"correlation{suffix}.csv", to_csv(head, rows))
    write_text(out / f"correlation{suffix}.tex", to_latex(head, rows, caption))


def stages_markdown(rows: list[dict]) -> str:
    lines = ["| branch | stage | wall time (min) | decision | why | directory |", "|---|---|---|---|---|---|"]
    for r in rows:
        wall = "-" if r["wall_seconds"] is None else f"{r['wall_seconds'] / 60:.1f}"
        lines.append(f"| {r['branch']} | {r['step']} | {wall} | {r['decision']} | {r['reason']} | {r['out_dir']} |")
    total = sum(r["wall_seconds"] or 0.0 for r in rows)
    lines.append(f"| all | | {total / 60:.1f} | | | |")
    return "\n".join(lines) + "\n"


def run_correlation_study(cfg: DictConfig) -> dict:
    """The body of ``run_experiment.py experiment=correlation_study``: ``plan.json``, ``stages.{md,json}``,
    ``correlation*/`` and ``tables/`` in the run directory."""
    out = Path(cfg.paths.output_dir)
    p = cfg.pipeline
    stages = plan_study(cfg)
    todo = _selected(stages, p.get("only"))
    write_json(out / "plan.json", [{**asdict(s), "done": s.done, "groups": list(s.groups)} for s in todo])
    if p.get("dry_run"):
        for s in todo:
            print(f"{s.branch:>24}  {s.step:<20} {s.out_dir}\n{'':>26}{' '.join(s.overrides)}")
        return {"plan": [{**asdict(s), "done": s.done} for s in todo]}
    rows = []
    progress = PipelineProgress(len(todo))
    for s in todo:
        start = time.perf_counter()
        run_stage(
            s.entry,
            s.overrides,
            Path(s.out_dir),
            identity=s.identity,
            runtime=s.runtime,
            launch=s.launch,
            code_change=str(p.get("code_change", "rerun")),
        )
        progress(f"{s.branch}/{s.step}", Path(s.out_dir), time.perf_counter() - start)
        record = stage_record(Path(s.out_dir))
        last = record["decisions"][-1]
        rows.append(
            {
                "branch": s.branch,
                "step": s.step,
                "out_dir": s.out_dir,
                "reused": last["decision"] == "reuse",
                "decision": last["decision"],
                "reason": last["reason"],
                "wall_seconds": record.get("wall_seconds"),
            }
        )
        # one table per finished stage, so a long study shows its progress and its costs as it goes
        write_json(out / "stages.json", rows)
        write_text(out / "stages.md", stages_markdown(rows))
    result = {"stages": rows}
    if p.get("only") is None:
        result["correlation"] = _correlate(cfg, stages, out)
    log.info("stages (wall time of the run that computed each):\n%s", stages_markdown(rows))
    return result
