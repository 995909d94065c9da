"""Which reward models differ, benchmark by benchmark: a paired test for every pair of models on the items both
were scored on (:mod:`rmlab.metrics.paired`), Holm-adjusted across the whole table.

Reads each run's per-sample rows (``scores.jsonl``) through the benchmark's own ``item_outcomes``, so it names no
benchmark; one without ``item_outcomes`` is listed as not paired, with the reason.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from rmlab.benchmarks import BENCHMARKS
from rmlab.metrics.dependent_correlations import holm
from rmlab.metrics.paired import paired_difference


def item_outcomes(benchmark: str, metrics: dict) -> dict | None:
    """The run's per-item outcomes, or None where the run kept no rows or the benchmark cannot read them."""
    reader = getattr(BENCHMARKS[benchmark], "item_outcomes", None)
    path = Path(metrics.get("_run_dir", "")) / "scores.jsonl"
    if reader is None or not path.is_file():
        return None
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return reader(rows)


def paired_rows(
    table: dict[str, dict[str, dict]], order: list[str], *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
):
    """``table``: model -> benchmark -> metrics (with ``_run_dir``); ``order``: the benchmarks, in table order. One
    row per (benchmark, model pair) sharing items, in that order then model names; ``holm_p`` adjusts McNemar's p
    over all rows; ``significant`` is ``holm_p < alpha``. Returns (rows, notes): which benchmarks could not be
    paired and why."""
    rows, notes = [], []
    for bench in order:
        models = sorted(m for m, per in table.items() if bench in per)
        if len(models) < 2:
            continue
        outcomes = {m: item_outcomes(bench, table[m][bench]) for m in models}
        lacking = [m for m, o in outcomes.items() if o is None]
        if lacking:
            notes.append(f"{BENCHMARKS[bench].title}: no per-item rows for {', '.join(lacking)} (scores.jsonl)")
        for a, b in itertools.combinations([m for m in models if outcomes[m] is not None], 2):
            got = paired_difference(outcomes[a], outcomes[b], n_boot=n_boot, seed=seed)
            if got["n_items"]:
                rows.append({"benchmark": bench, "model_a": a, "model_b": b, **got})
            else:
                notes.append(f"{BENCHMARKS[bench].title}: {a} and {b} share no scored items")
    for row, p in zip(rows, holm([r["mcnemar"]["p"] for r in rows])):
        row["holm_p"] = p
        row["significant"] = bool(p < alpha)
    return rows, notes


def paired_markdown(rows: list[dict], notes: list[str], alpha: float = 0.05) -> str:
    if not rows:
        return "No pair of models shares scored items on any benchmark.\n" + "".join(f"- {n}\n" for n in notes)
    lines = [
        (
            "| benchmark | model A | model B | items (clusters) | A | B | A - B [95% CI] | A only / B only | McNemar p "
            "| Holm p | significant |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = r["ci"]
        diff = f"{100 * r['difference']:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")
        mc = r["mcnemar"]
        lines.append(
            f"| {BENCHMARKS[r['benchmark']].title} | {r['model_a']} | {r['model_b']} | {r['n_items']} ({r['n_clusters']}) "
            f"| {100 * r['a']:.1f} | {100 * r['b']:.1f} | {diff} | {mc['a_only']} / {mc['b_only']} | {mc['p']:.3g} "
            f"| {r['holm_p']:.3g} | {'yes' if r['significant'] else 'no'} |"
        )
    lines += [
        "",
        (
            "Per-item outcomes (1 = ranked right) on the items both models were scored on; the interval resamples "
            "clusters (an RM-Bench prompt's nine style cells together); McNemar's exact test on the discordant items, "
            f"Holm-adjusted over the table; significant: Holm p < {alpha}."
        ),
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
