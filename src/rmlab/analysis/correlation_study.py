"""The reward-vs-policy correlation study (RM-Bench Sec. 5.2, Fig. 5) over whatever run outputs exist.

Inputs are run directories, found under ``runs`` (a directory or a glob):

- reward-model evaluations (``scripts/eval_rm.py``): ``metrics.json`` of any registered benchmark (the study's
  config names which benchmarks and groups it reads; each benchmark's ``group_score`` reads them); the reward model is identified by its weights' fingerprint and its formatting's
  (``scorer.model``, ``scorer.formatting``: :func:`rm_key`), so one set of weights evaluated under two chat
  templates is two reward models;
- policy evaluations (``scripts/eval_policy.py``): ``summary.json`` with the policy's fingerprint and spec
  (``policy_spec``: its directory or Hub id).
  A PPO policy our ``train_ppo`` wrote holds ``rmlab_meta.json`` naming its reward model (weights and formatting)
  and SFT model by fingerprint, which links the policy to the reward model's evaluations and to the SFT policy's evaluation. A
  released policy (a Hub id) has no such file: ``policy_links`` (policy spec -> ``{reward_model, sft_model}``)
  links it instead, by the specs the evaluations record (``model_spec`` of an RM evaluation, ``policy_spec`` of
  the SFT model's). A link to a model with no evaluation, or one that contradicts ``rmlab_meta.json``, is an
  error: a silently dropped policy would change r.

One point per (reward model, task group): x = the reward model's benchmark score for the group
(``benchmarks.<name>.groups``: RM-Bench hard accuracy for math and safety, normal accuracy for code; RewardBench
Reasoning for math and code, Safety for safety: the paper's reading), y = its policy's group score (the mean of
the group's tasks' ``normalised`` values, higher is better, so ToxiGen enters as 1 - toxic rate), optionally as
the improvement over the SFT policy (``policy_score: improvement``).

RM-Bench Sec. 5.1 (``style_control``, null: off; :mod:`rmlab.analysis.style_control`), when some policy under
``runs`` has an Arena-Hard result: one point per reward model, x = its RM-Bench chat hard accuracy, y = its PPO
policy's style-control score (the relative drop (raw - SC) / raw), every point from one named pool.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from rmlab.analysis.benchmark_comparison import compare_benchmarks
from rmlab.analysis.correlation import Point, correlation_figure, correlation_report
from rmlab.analysis.correlation_markdown import correlation_markdown
from rmlab.analysis.runs import benchmark_of, choose_runs, eval_runs, find_runs, runs_value
from rmlab.analysis.style_control import arena_hard_runs, style_control_entry

log = logging.getLogger(__name__)

GROUPS = ("math", "code", "safety")


def _policy_runs(pattern: str) -> list[Path]:
    return find_runs(pattern, marker="summary.json")


def rm_group_score(metrics: dict, spec) -> float | None:
    """The benchmark score a reward model gets for one task group, per the group's spec (None if not scored): the
    benchmark's own ``group_score`` (RM-Bench ``{domain, level}``, RewardBench ``{section, partial}``, ...)."""
    return benchmark_of(metrics).group_score(metrics, spec)


def policy_group_scores(summary: dict, *, lower_is_better: str = "invert", group_tasks=None) -> dict[str, float]:
    """Each task group's score: the mean over the group's tasks (``group_tasks[group]``, a list of task names, or
    every task tagged with the group) of the task's ``normalised`` value (higher is better: a lower-is-better
    task such as ToxiGen enters as 1 - its value), or with ``lower_is_better="raw"`` of its value as reported."""
    if lower_is_better not in ("invert", "raw"):
        raise ValueError(f"lower_is_better must be 'invert' or 'raw', got {lower_is_better!r}")
    by_group: dict[str, list[float]] = {}
    for t in summary["tasks"]:
        chosen = (group_tasks or {}).get(t["group"])
        if chosen is not None and t["task"] not in chosen:
            continue
        raw = lower_is_better == "raw" and t.get("higher_is_better") is False
        by_group.setdefault(t["group"], []).append(float(t["value"] if raw else t["normalised"]))
    return {g: float(np.mean(v)) for g, v in by_group.items()}


def rm_key(weights: str, formatting: str | None) -> str:
    """A reward model's key among the evaluations: its weights' fingerprint and, where recorded, its formatting's
    (chat template, system prompt: :attr:`rmlab.models.chat_format.ChatFormatter.fingerprint`)."""
    return weights if formatting is None else f"{weights}+{formatting}"


def _meta_rm_key(rms: dict, meta: dict) -> str:
    """The key of the reward model a PPO policy's ``rmlab_meta.json`` names. A record without the formatting's
    fingerprint (written before it was recorded) matches by weights alone, if only one formatting was evaluated."""
    fp, formatting = meta["reward_model_fingerprint"], meta.get("reward_model_formatting_fingerprint")
    if formatting is not None:
        key = rm_key(fp, formatting)
        return fp if key not in rms and fp in rms else key  # evaluations from before formatting was recorded
    if fp in rms:
        return fp
    keys = sorted(k for k in rms if k.split("+")[0] == fp)
    if len(keys) > 1:
        raise ValueError(
            f"reward model {meta.get('reward_model')} (weights {fp}) was evaluated under {len(keys)} formattings "
            f"({', '.join(keys)}) and the policy's rmlab_meta.json does not say which one it was trained with"
        )
    return keys[0] if keys else fp


def _read(marker: Path) -> dict:
    try:
        return json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{marker}: unreadable run output ({err})") from err


def collect(runs, links=None) -> tuple[dict[str, dict[str, dict]], dict[str, dict], dict]:
    """Reward-model evaluations by :func:`rm_key` and benchmark; policy evaluations by policy (its directory or spec),
    each linked to its reward model and SFT model (``_link``, :func:`link_policies`, with ``links`` as
    ``policy_links``); and which file was chosen for each (:func:`rmlab.analysis.runs.choose_runs`: the newest run
    of each model on one data fingerprint; runs of a model on different data are an error)."""
    rm_candidates = []
    for run, m in eval_runs(runs):
        if isinstance(m.get("scorer"), dict):  # a scored reward model (a judge's scorer is a description too)
            m["_run"] = str(run)
            key = rm_key(m["scorer"]["model"], m["scorer"].get("formatting"))
            rm_candidates.append((f"{key}|{m['benchmark']}", run / "metrics.json", m))
    chosen_rms = choose_runs(rm_candidates, data_of=lambda m: m.get("data_fingerprint"), what="reward model|benchmark")
    rms: dict[str, dict[str, dict]] = {}
    for key, c in chosen_rms.items():
        fp, bench = key.rsplit("|", 1)
        rms.setdefault(fp, {})[bench] = c["doc"]
    pol_candidates = []
    for run in _policy_runs(runs):
        s = _read(run / "summary.json")
        meta_path = Path(s["policy_spec"]) / "rmlab_meta.json"
        s["_meta"] = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        s["_run"] = str(run)
        # by directory, not weights: a PPO policy may equal its SFT model
        pol_candidates.append((s["policy_spec"], run / "summary.json", s))
    chosen_pols = choose_runs(
        pol_candidates,
        what="policy",
        data_of=lambda s: sorted((t["task"], t.get("data_fingerprint")) for t in s["tasks"]),
    )
    policies = {spec: c["doc"] for spec, c in chosen_pols.items()}
    link_policies(rms, policies, links or {})
    chosen = {
        "reward_models": {k: {kk: vv for kk, vv in c.items() if kk != "doc"} for k, c in chosen_rms.items()},
        "policies": {k: {kk: vv for kk, vv in c.items() if kk != "doc"} for k, c in chosen_pols.items()},
    }
    return rms, policies, chosen


def link_policies(rms: dict, policies: dict, links) -> None:
    """Set each policy's ``_link``: its reward model (``reward_model_fingerprint``) and the key of its SFT model's
    evaluation in ``policies`` (``sft``, None when not among the runs), from its ``rmlab_meta.json`` or from
    ``links`` (policy spec -> ``{reward_model, sft_model}`` specs); None for a policy with neither (the SFT model
    itself). A policy with both must get the same link from each."""
    for spec in links:
        if spec not in policies:
            log.warning("policy_links: policy %s has no evaluation among the runs", spec)
    linked = {k for k, q in policies.items() if k in links or q["_meta"].get("reward_model_fingerprint")}
    for spec, pol in policies.items():
        meta = pol["_meta"]
        from_meta = None
        if meta.get("reward_model_fingerprint"):
            sft = next(
                (
                    k
                    for k, q in policies.items()
                    if q["policy_fingerprint"] == meta.get("sft_fingerprint") and k not in linked
                ),
                None,
            )
            from_meta = {
                "reward_model": meta.get("reward_model"),
                "reward_model_fingerprint": meta["reward_model_fingerprint"],
                "reward_model_key": _meta_rm_key(rms, meta),
                "sft_model": meta.get("sft_model"),
                "sft_fingerprint": meta.get("sft_fingerprint"),
                "sft": sft,
            }
        from_links = _config_link(spec, links[spec], rms, policies) if spec in links else None
        fields = ("reward_model_key", "sft_fingerprint")
        if from_meta and from_links and [from_meta[f] for f in fields] != [from_links[f] for f in fields]:
            raise ValueError(
                f"policy {spec}: its rmlab_meta.json links it to reward model {from_meta['reward_model']} and SFT "
                f"model {from_meta['sft_model']} (fingerprints {[from_meta[f] for f in fields]}), policy_links to "
                f"{from_links['reward_model']} and {from_links['sft_model']} ({[from_links[f] for f in fields]}); "
                f"correct the link or remove it"
            )
        pol["_link"] = from_meta or from_links


def _config_link(policy: str, link, rms: dict, policies: dict) -> dict:
    """A ``policy_links`` entry resolved against the runs: the reward model by the spec its evaluations record
    (``model_spec``), the SFT model by its evaluation's ``policy_spec``."""
    rm, sft = (link or {}).get("reward_model"), (link or {}).get("sft_model")
    if not rm or not sft:
        raise ValueError(f"policy_links: policy {policy} needs reward_model and sft_model (model specs), got {link}")
    keys = sorted({k for k, by_bench in rms.items() for m in by_bench.values() if m.get("model_spec") == str(rm)})
    if not keys:
        evaluated = sorted({str(m.get("model_spec")) for by_bench in rms.values() for m in by_bench.values()})
        raise ValueError(
            f"policy_links: policy {policy}: its reward model {rm} has no evaluation among the runs "
            f"(evaluated reward models: {', '.join(evaluated) or 'none'})"
        )
    if len(keys) > 1:
        raise ValueError(
            f"policy_links: policy {policy}: its reward model {rm} names evaluations of different weights or "
            f"formattings ({keys}); pass runs= that select one"
        )
    if str(sft) not in policies:
        raise ValueError(
            f"policy_links: policy {policy}: its SFT model {sft} has no evaluation among the runs "
            f"(evaluated policies: {', '.join(sorted(policies))})"
        )
    return {
        "reward_model": str(rm),
        "reward_model_fingerprint": keys[0].split("+")[0],
        "reward_model_key": keys[0],
        "sft_model": str(sft),
        "sft_fingerprint": policies[str(sft)]["policy_fingerprint"],
        "sft": str(sft),
    }


def rm_names(rms: dict, benchmark: str) -> dict[str, str]:
    """Reward model key (:func:`rm_key`) -> the name its evaluation was run under (``model.name``); a name shared
    by different reward models (two ``<run>/model`` directories, one model under two chat templates) gets the
    start of the weights' and formatting's fingerprints appended."""
    names = {key: by_bench[benchmark]["model"] for key, by_bench in rms.items() if benchmark in by_bench}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    short = {key: "+".join(part[:8] for part in key.split("+")) for key in names}
    return {key: n if counts[n] == 1 else f"{n}@{short[key]}" for key, n in names.items()}


def build_points(
    rms: dict,
    policies: dict,
    benchmark: str,
    groups_spec,
    *,
    policy_score: str,
    lower_is_better: str = "invert",
    group_tasks=None,
) -> tuple[list[Point], list[dict]]:
    """Points for one benchmark, and a row per point saying which files it came from."""
    points, trace = [], []
    names = rm_names(rms, benchmark)
    for _, pol in sorted(policies.items(), key=lambda kv: (kv[1]["policy"], kv[0])):
        link = pol["_link"]
        if link is None:
            continue  # not a PPO policy (e.g. the SFT model itself)
        rm_fp = link["reward_model_key"]
        rm_eval = rms.get(rm_fp, {}).get(benchmark)
        if rm_eval is None:
            log.warning(
                "policy %s: its reward model %s has no %s evaluation among the runs",
                pol["policy"],
                link["reward_model"],
                benchmark,
            )
            continue
        y_all = policy_group_scores(pol, lower_is_better=lower_is_better, group_tasks=group_tasks)
        base = None
        if policy_score == "improvement":
            if link["sft"] is None:
                raise ValueError(
                    f"policy_score=improvement, but the SFT model of {pol['policy']} "
                    f"({link['sft_model']}) has no evaluation among the runs"
                )
            base = policy_group_scores(policies[link["sft"]], lower_is_better=lower_is_better, group_tasks=group_tasks)
        for group in GROUPS:
            if group not in y_all or group not in groups_spec:
                continue
            x = rm_group_score(rm_eval, groups_spec[group])
            if x is None:
                log.warning("%s: no %s score for group %s (%s)", rm_eval["model"], benchmark, group, groups_spec[group])
                continue
            y = y_all[group] - (base[group] if base is not None else 0.0)
            name = names[rm_fp]
            points.append(Point(reward_model=str(name), group=group, x=x, y=y))
            trace.append(
                {
                    "reward_model": str(name),
                    "group": group,
                    "x": x,
                    "y": y,
                    "rm_metrics": str(Path(rm_eval["_run"]) / "metrics.json"),
                    "policy_summary": str(Path(pol["_run"]) / "summary.json"),
                }
            )
    return points, trace


def correlate(cfg) -> dict:
    """The body of ``scripts/correlate.py``: ``correlation.json``, ``correlation.md``, ``correlation.png``."""
    from rmlab.utils.io import write_json, write_text

    out = Path(cfg.paths.output_dir)
    runs = runs_value(cfg.runs)
    links = OmegaConf.to_container(cfg.policy_links) if cfg.get("policy_links") else None
    rms, policies, chosen = collect(runs, links)
    log.info("found %d evaluated reward models and %d evaluated policies under %s", len(rms), len(policies), runs)
    result = {
        "runs": runs,
        "policy_score": cfg.policy_score,
        "standardise_x": cfg.standardise_x,
        "standardise_y": cfg.standardise_y,
        "lower_is_better": cfg.get("lower_is_better", "invert"),
        "group_tasks": OmegaConf.to_container(cfg.group_tasks) if cfg.get("group_tasks") else None,
        "policy_links": links,
        "benchmarks": {},
        "chosen_runs": chosen,
    }
    figure_data, bench_points = {}, {}
    for bench, spec in cfg.benchmarks.items():
        points, trace = build_points(
            rms,
            policies,
            bench,
            spec.groups,
            policy_score=cfg.policy_score,
            lower_is_better=cfg.get("lower_is_better", "invert"),
            group_tasks=OmegaConf.to_container(cfg.group_tasks) if cfg.get("group_tasks") else None,
        )
        entry = {"points": trace}
        bench_points[bench] = points
        if len(points) >= 3:
            entry.update(
                correlation_report(
                    points,
                    standardise_x=cfg.standardise_x,
                    standardise_y=cfg.standardise_y,
                    interval=str(cfg.get("interval", "fisher")),
                    n_boot=int(cfg.n_boot),
                    n_perm=int(cfg.n_perm),
                    seed=int(cfg.seed),
                )
            )
            if entry["pearson_r"] is not None:
                figure_data[bench] = (points, entry)
            else:
                log.warning("%s: %s", bench, entry["undefined"])
        else:
            entry["note"] = f"{len(points)} point(s): a correlation needs at least 3"
        result["benchmarks"][bench] = entry
    result["comparison"] = compare_benchmarks(
        bench_points, standardise_x=cfg.standardise_x, standardise_y=cfg.standardise_y
    )
    arenas = arena_hard_runs(runs) if cfg.get("style_control") is not None else {}
    if arenas:  # only when some policy has an Arena-Hard result: a Sec. 5.2 study's outputs stay as they were
        spec = cfg.style_control
        entry = style_control_entry(cfg, rms, policies, arenas, rm_names(rms, str(spec.benchmark)))
        result["style_control"] = entry
        points = entry.pop("_points")
        if entry.get("pearson_r") is not None:
            figure_data[f"{spec.benchmark}_style_control"] = (points, entry)
    write_json(out / "correlation.json", result)
    table = correlation_markdown(result)
    write_text(out / "correlation.md", table)
    if figure_data:
        correlation_figure(figure_data, out / "correlation.png")
    print(table)
    return result
