"""Do reward-model benchmarks predict best-of-n gains? The analysis of a best-of-n study (RewardMATH's design).

Inputs: one ``best_of_n`` run (``bon.json``: per reward model, the expected gold score of the best-of-n pick at
every n and the pairwise accuracy on the policy's own samples), and per reward model its ``eval_rm`` runs
(``metrics.json``) and, optionally, its ``train_rm`` run (``train_metrics.json``: held-out accuracy on pairs of the
training prompts). One point per reward model: x = a benchmark's accuracy, y = the best-of-N gold gain
(gold@N - gold@1). The statistics are those of the correlation study (:func:`correlation_report`: Pearson r with
Fisher's z interval and the p of the same test, Spearman and Kendall with theirs, a bootstrap over reward models, a
permutation p-value, the design's power, leave-one-out), and every pair of benchmarks is compared on the same
reward models (:mod:`rmlab.analysis.benchmark_comparison`: Williams' t, Holm-adjusted).

The first x is the positive control: the reward model's pairwise accuracy on the best-of-n prompts' own samples
measures exactly what best-of-n rewards, so with reward models of graded quality its r must be clearly positive;
if its interval does not lie above 0, something upstream is broken and the benchmark r's mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from rmlab.analysis.benchmark_comparison import (
    compare_benchmarks,
    comparison_markdown,
    inference_cells,
    interval_text,
    p_text,
    power_note,
)
from rmlab.analysis.correlation import Point, correlation_report
from rmlab.analysis.runs import benchmark_of


def benchmark_accuracy(metrics: dict) -> float | None:
    """The headline value of one ``eval_rm`` run (its benchmark's ``headline``), on whatever part of the benchmark
    was scored."""
    return benchmark_of(metrics).headline(metrics)[0]


def study_rows(
    bon: dict,
    evals: Mapping[str, Mapping[str, dict]],
    trained: Mapping[str, dict],
    n: int,
    gains: Mapping[str, Mapping[str, dict]] | None = None,
) -> list[dict]:
    """One row per reward model: its quality measures, its best-of-n gold scores and, per policy optimizer in
    ``gains`` (method -> reward model -> :func:`policy_gain`), its trained policy's gain (``gains``)."""
    rows = []
    for name, r in bon["reward_models"].items():
        per_n = r["per_n"]
        if str(n) not in per_n:
            raise ValueError(f"best-of-{n} was not computed (ns: {bon['ns']})")
        heldout = (trained.get(name) or {}).get("heldout") or {}
        rows.append(
            {
                "reward_model": name,
                "pairwise_accuracy": r["pairwise_accuracy"],
                "train_heldout_accuracy": heldout.get("accuracy"),
                "train_heldout_ci": heldout.get("ci"),
                "benchmarks": {b: benchmark_accuracy(m) for b, m in evals.get(name, {}).items()},
                "gold": {k: v["gold"]["value"] for k, v in per_n.items()},
                "gain": per_n[str(n)]["gain"],
                "gains": {"bon": per_n[str(n)]["gain"], **{a: g[name] for a, g in (gains or {}).items() if name in g}},
            }
        )
    return rows


def study_measures(rows: list[dict], method: str = "bon") -> dict[str, list[Point]]:
    """x = each quality measure in turn, y = the method's gold gain (best-of-N: gold@N - gold@1; a policy
    optimizer: the trained policy's gold@1 - the SFT policy's), one point per reward model."""
    measures: dict[str, list[Point]] = {"pairwise_accuracy (positive control)": [], "train_heldout_accuracy": []}
    for row in rows:
        gain = (row.get("gains") or {"bon": row["gain"]}).get(method)
        if gain is None:
            continue
        y = gain["value"]
        if row["pairwise_accuracy"] is not None:
            measures["pairwise_accuracy (positive control)"].append(
                Point(row["reward_model"], "bon", row["pairwise_accuracy"]["value"], y)
            )
        if row["train_heldout_accuracy"] is not None:
            measures["train_heldout_accuracy"].append(
                Point(row["reward_model"], "bon", row["train_heldout_accuracy"], y)
            )
        for bench, acc in row["benchmarks"].items():
            if acc is not None:
                measures.setdefault(bench, []).append(Point(row["reward_model"], "bon", acc, y))
    return measures


def study_correlations(
    rows: list[dict], *, n_boot: int, n_perm: int, seed: int, interval: str = "fisher", method: str = "bon"
) -> dict:
    """Each quality measure's correlation with the method's gold gain (:func:`study_measures`)."""
    out = {}
    for name, points in study_measures(rows, method).items():
        if len(points) >= 3:
            out[name] = correlation_report(points, interval=interval, n_boot=n_boot, n_perm=n_perm, seed=seed)
        elif points:
            out[name] = {"n": len(points), "note": "fewer than 3 reward models: no correlation"}
    return out


def benchmark_comparison(rows: list[dict], method: str = "bon") -> dict:
    """Every pair of benchmarks (not the other quality measures), compared on the reward models both scored."""
    benches = {b for r in rows for b in r["benchmarks"]}
    return compare_benchmarks({k: v for k, v in study_measures(rows, method).items() if k in benches})


def positive_control(correlations: dict) -> dict:
    """Whether the positive control passed: r's interval (``pearson_ci``, Fisher z by default) lies above 0.
    ``verdict``: PASSED, FAILED (with the design's power where it is underpowered: a wide interval at few reward
    models is a design too small to tell, not only a broken pipeline) or NOT COMPUTED (fewer than 3 reward models:
    no r, so nothing passed)."""
    c = correlations.get("pairwise_accuracy (positive control)") or {}
    lo = (c.get("pearson_ci") or [None])[0]
    passed = lo is not None and lo > 0
    if c.get("pearson_r") is None:
        verdict = f"NOT COMPUTED ({c.get('note') or c.get('undefined') or 'no pairwise accuracies'})"
    elif passed:
        verdict = "PASSED"
    else:
        verdict = "FAILED: the benchmark r's above cannot be trusted"
        power = c.get("power") or {}
        if power.get("underpowered"):
            r_min = power.get("min_detectable_r")
            reach = f"detect |r| >= {r_min:.2f} at 80% power" if r_min is not None else "reach 80% power at no r"
            verdict += (
                f" (this design is underpowered: {c['n']} reward models {reach}; add reward models of graded quality)"
            )
    return {"r": c.get("pearson_r"), "ci": c.get("pearson_ci"), "passed": passed, "verdict": verdict}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _pct_ci(entry) -> str:
    if not entry:
        return "-"
    ci = entry.get("ci")
    return _pct(entry["value"]) + (f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "")


def gain_label(method: str, n: int) -> str:
    return f"the best-of-{n} gold gain" if method == "bon" else f"the {method.upper()} policy's gold@1 gain over SFT"


def study_markdown(
    rows: list[dict],
    correlations: dict,
    control: dict,
    ns: list[int],
    n: int,
    comparison: dict | None = None,
    method: str = "bon",
) -> str:
    benches = sorted({b for r in rows for b in r["benchmarks"]})
    show = [k for k in (1, 4, 16) if k in ns] or ns
    head = [
        "reward model",
        "pairwise acc. on BoN samples",
        "held-out acc. (train split)",
        *benches,
        *[f"gold@{k}" for k in show],
        f"gain@{n}",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        held = r["train_heldout_accuracy"]
        held_txt = "-" if held is None else _pct(held)
        if r["train_heldout_ci"]:
            held_txt += f" [{_pct(r['train_heldout_ci'][0])}, {_pct(r['train_heldout_ci'][1])}]"
        cells = [
            r["reward_model"],
            _pct_ci(r["pairwise_accuracy"]),
            held_txt,
            *[_pct(r["benchmarks"].get(b)) for b in benches],
            *[_pct(r["gold"].get(str(k))) for k in show],
            _pct_ci(r["gain"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Correlation with {gain_label(method, n)} (one point per reward model):", ""]
    method = next((c["interval_method"] for c in correlations.values() if c.get("interval_method")), "-")
    lines += [
        (
            f"| x | n | Pearson r [95% CI: {method.split(', n_eff')[0]}] | p (same test) | permutation p | "
            "Spearman [CI] | Kendall [CI] | min. detectable r |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in correlations.items():
        if c.get("pearson_r") is None:
            lines.append(f"| {name} | {c.get('n')} | {c.get('note') or c.get('undefined')} | | | | | |")
            continue
        spearman, kendall, perm, r_min = inference_cells(c, digits=2, p_fmt=".3g")
        lines.append(
            f"| {name} | {c['n']} | {c['pearson_r']:.2f} {interval_text(c)} | {p_text(c['pearson_p'], '.3g')} | {perm} | "
            f"{spearman} | {kendall} | {r_min} |"
        )
    lines += ["", power_note({k: c for k, c in correlations.items() if c.get("power")})]
    if comparison and comparison["pairs"]:
        lines += ["", comparison_markdown(comparison, gain_label(method, n)).rstrip()]
    lines += ["", f"Positive control (pairwise accuracy vs gain, interval above 0): {control['verdict']}"]
    return "\n".join(lines) + "\n"
