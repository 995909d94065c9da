"""The correlation study's tables: ``correlation.md`` (every benchmark's r with its interval and matching p, the
permutation p, Spearman and Kendall with intervals, the power note, the benchmark-vs-benchmark comparison, the
Sec. 5.1 style-control line) and the paper-table form of the headline reading (``tables/correlation.*``)."""

from __future__ import annotations

from rmlab.analysis.benchmark_comparison import (
    comparison_markdown,
    inference_cells,
    interval_text,
    p_text,
    power_note,
)
from rmlab.analysis.style_control import style_control_markdown


def correlation_markdown(result: dict) -> str:
    setting = (
        f"Policy score: {result['policy_score']}; standardisation of benchmark scores (x): {result['standardise_x']}, "
        f"of policy scores (y): {result['standardise_y']}; lower-is-better "
        f"tasks: {result.get('lower_is_better', 'invert')}; group tasks: {result.get('group_tasks') or 'all'}."
    )
    lines = [
        setting,
        "",
        (
            "| benchmark | RMs | points | Pearson r | CI of r | p | permutation p | Spearman [CI] | Kendall [CI] | "
            "min. detectable r |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    methods = set()
    for bench, e in result["benchmarks"].items():
        if e.get("pearson_r") is None:
            why = e.get("undefined") or e.get("note", "")
            lines.append(f"| {bench} | {e.get('n_reward_models', '-')} | {len(e['points'])} | - ({why}) |" + " - |" * 6)
            continue
        methods.add(
            (
                f"{e['confidence']:.0%} CI of r and its p: {e['interval_method'].split(', n_eff')[0]}",
                f"{bench} {e['n_effective']}",
            )
        )
        spearman, kendall, perm, r_min = inference_cells(e, digits=3)
        lines.append(
            f"| {bench} | {e['n_reward_models']} | {e['n']} | {e['pearson_r']:.3f} | {interval_text(e)} | "
            f"{p_text(e['pearson_p'])} | {perm} | {spearman} | {kendall} | {r_min} |"
        )
    for method in sorted({m for m, _ in methods}):
        n_effs = ", ".join(n for m, n in sorted(methods) if m == method)
        lines += [
            "",
            (f"{method}; Spearman and Kendall: Fisher z; effective points (less the group means estimated): {n_effs}."),
        ]
    lines += [
        "Permutation p: policy scores permuted among reward models within task groups.",
        power_note({b: e for b, e in result["benchmarks"].items() if e.get("power")}),
    ]
    if result.get("comparison", {}).get("pairs"):
        lines += ["", comparison_markdown(result["comparison"], "the policy score").rstrip()]
    if result.get("style_control") is not None:
        lines += ["", style_control_markdown(result["style_control"])]
    return "\n".join(lines) + "\n"


def correlation_table(result: dict) -> tuple[list[str], list[list[str]], str]:
    """The paper-table form of one reading (``tables/correlation.{md,csv,tex}``): per benchmark the reward models,
    points, r with its interval and p, the smallest detectable r; and the power note as the caption's end."""
    head = ["benchmark", "reward models", "points", "Pearson r", "95% CI", "p", "min. detectable r", "method"]
    rows = []
    for bench, e in result["benchmarks"].items():
        if e.get("pearson_r") is None:
            rows.append(
                [
                    bench,
                    str(e.get("n_reward_models", "-")),
                    str(len(e["points"])),
                    "undefined",
                    "-",
                    "-",
                    "-",
                    e.get("undefined") or e.get("note", ""),
                ]
            )
            continue
        pw = e["power"]
        r_min = "-" if pw["min_detectable_r"] is None else f"{pw['min_detectable_r']:.2f}"
        rows.append(
            [
                bench,
                str(e["n_reward_models"]),
                str(e["n"]),
                f"{e['pearson_r']:.3f}",
                interval_text(e),
                p_text(e["pearson_p"]),
                r_min + (" (underpowered)" if pw["underpowered"] else ""),
                e["interval_method"],
            ]
        )
    note = power_note({b: e for b, e in result["benchmarks"].items() if e.get("power")})
    return head, rows, note
