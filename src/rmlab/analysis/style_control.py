"""RM-Bench Sec. 5.1 inside the correlation study: a reward model's RM-Bench chat hard accuracy against its PPO
policy's style-control score.

The style-control score is the relative drop (raw - SC) / raw of the policy's Arena-Hard-Auto v0.1 score
(``arena_hard.json``, written by ``scripts/arena_hard.py``), linked to the policy by its spec as the policy's
evaluation is (:func:`rmlab.analysis.correlation_study.collect`). A style-controlled score depends on the models
fitted with it, so every point must come from one pool, which the entry names; runs from different pools are an
error, never a silent mix.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rmlab.analysis.benchmark_comparison import interval_text
from rmlab.analysis.correlation import Point, correlation_report
from rmlab.analysis.runs import choose_runs, find_runs

log = logging.getLogger(__name__)


def arena_hard_runs(runs) -> dict[str, dict]:
    """Each policy's Arena-Hard result (``arena_hard.json``) by policy spec: the newest run on one question set."""
    candidates = []
    for run in find_runs(runs, marker="arena_hard.json"):
        marker = run / "arena_hard.json"
        try:
            doc = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{marker}: unreadable run output ({err})") from err
        doc["_run"] = str(run)
        candidates.append((doc["policy_spec"], marker, doc))
    chosen = choose_runs(candidates, data_of=lambda d: d.get("data_fingerprint"), what="policy (Arena-Hard)")
    return {spec: c["doc"] for spec, c in chosen.items()}


def rm_accuracy(metrics: dict, domain: str, level: str) -> float | None:
    """A reward model's RM-Bench accuracy at one domain and level (None when the domain was not scored)."""
    scored = metrics["domains"].get(domain)
    return None if scored is None else float(scored[level])


def style_control_points(
    rms: dict, policies: dict, arenas: dict, spec, names: dict[str, str]
) -> tuple[list[Point], list[dict], dict | None]:
    """The points (x = the reward model's ``spec.benchmark`` accuracy at ``spec.domain`` / ``spec.level``, y = its
    policy's relative drop), a row per point naming its files, and the pool they share (None without points).

    :param names: reward model key -> its name (:func:`rmlab.analysis.correlation_study.rm_names`).
    """
    points, trace, pools = [], [], {}
    for key, pol in sorted(policies.items(), key=lambda kv: (kv[1]["policy"], kv[0])):
        link = pol["_link"]
        if link is None:
            continue  # not a PPO policy (e.g. the SFT model itself)
        arena, rm_eval = arenas.get(key), rms.get(link["reward_model_key"], {}).get(str(spec.benchmark))
        if arena is None or rm_eval is None:
            what = "no arena_hard.json" if arena is None else f"its reward model has no {spec.benchmark} evaluation"
            log.warning("style control: policy %s left out: %s among the runs", pol["policy"], what)
            continue
        if arena["score"] is None:
            log.warning("style control: policy %s left out: %s (%s)", pol["policy"], arena["reason"], arena["_run"])
            continue
        x = rm_accuracy(rm_eval, str(spec.domain), str(spec.level))
        if x is None:
            log.warning("style control: %s has no %s score on %s", rm_eval["model"], spec.benchmark, spec.domain)
            continue
        pool = arena["pool"]
        pools.setdefault(json.dumps([pool["name"], sorted(pool["battle_sets"])]), []).append(arena["_run"])
        y = float(arena["score"]["relative_drop"])
        name = names[link["reward_model_key"]]
        points.append(Point(reward_model=str(name), group=str(spec.domain), x=x, y=y))
        trace.append(
            {
                "reward_model": str(name),
                "x": x,
                "y": y,
                "raw": arena["score"]["raw"],
                "sc": arena["score"]["sc"],
                "rm_metrics": str(Path(rm_eval["_run"]) / "metrics.json"),
                "arena_hard": str(Path(arena["_run"]) / "arena_hard.json"),
            }
        )
    if len(pools) > 1:
        listing = "; ".join(f"pool {k}: {', '.join(v)}" for k, v in pools.items())
        raise ValueError(
            f"style control: the policies' SC scores come from different pools ({listing}); a relative drop is "
            "comparable only within one pool: pass runs= that select one"
        )
    if not pools:
        return points, trace, None
    name, battle_sets = json.loads(next(iter(pools)))
    return points, trace, {"name": name, "battle_sets": battle_sets}


def style_control_entry(cfg, rms: dict, policies: dict, arenas: dict, names: dict[str, str]) -> dict:
    """The Sec. 5.1 entry of ``correlation.json``: its points, the pool, and the correlation from 3 points on.
    ``_points`` (the :class:`Point` list, for the figure) is for the caller to take out before writing."""
    spec = cfg.style_control
    points, trace, pool = style_control_points(rms, policies, arenas, spec, names)
    entry = {
        "x": f"{spec.benchmark} {spec.domain} {spec.level} accuracy of the policy's reward model",
        "y": "the policy's style-control score: (raw - SC) / raw of its Arena-Hard-Auto v0.1 score",
        "pool": pool,
        "points": trace,
        "_points": points,
    }
    if len(points) < 3:
        entry["note"] = f"{len(points)} point(s): a correlation needs at least 3"
        return entry
    entry.update(correlation_report(points, n_boot=int(cfg.n_boot), n_perm=int(cfg.n_perm), seed=int(cfg.seed)))
    return entry


def style_control_markdown(entry: dict) -> str:
    """The Sec. 5.1 lines under the correlation table: what x and y are, the pool, n, r and Spearman."""
    pool = "none" if entry["pool"] is None else f"{entry['pool']['name']} (battle sets: {entry['pool']['battle_sets']})"
    p = "-" if entry.get("pearson_p") is None else f"{entry['pearson_p']:.3f}"
    r = "-" if entry.get("pearson_r") is None else f"{entry['pearson_r']:.3f} {interval_text(entry)} (p {p})"
    rho = "-" if entry.get("spearman") is None else f"{entry['spearman']:.3f}"
    why = entry.get("note") or entry.get("undefined") or ""
    return (
        f"RM-Bench Sec. 5.1, style control: x = {entry['x']}, y = {entry['y']}; pool {pool}.\n\n"
        "| n | Pearson r | Spearman | note |\n|---|---|---|---|\n"
        f"| {len(entry['points'])} | {r} | {rho} | {why} |"
    )
