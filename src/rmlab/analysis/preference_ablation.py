"""The preference-ablation table: one row per preference set (same recipe, same model), its held-out accuracy, each
benchmark's headline and columns, its contamination counts, and whether it differs from the best set on each
benchmark item by item (:mod:`rmlab.metrics.paired`, Holm over the whole table)."""

from __future__ import annotations

from rmlab.analysis.paired_table import item_outcomes
from rmlab.benchmarks import BENCHMARKS
from rmlab.metrics.dependent_correlations import holm
from rmlab.metrics.paired import paired_difference


def ablation_rows(train_runs: dict[str, dict], evals: dict[str, dict[str, dict]]) -> list[dict]:
    """``train_runs[name]``: train_rm metrics; ``evals[name][benchmark]``: eval_rm metrics (with ``_run_dir``)."""
    rows = []
    for name, run in train_runs.items():
        data, held = run.get("data", {}), run.get("heldout", {})
        contamination = data.get("contamination", {})
        row = {
            "set": name,
            "train_pairs": (run.get("train") or {}).get("pairs"),  # trained on: drawn minus those over the token cap
            "drawn_pairs": data.get("train_pairs"),
            "heldout_pairs": held.get("n"),
            "heldout_accuracy": held.get("accuracy"),
            "heldout_ci": held.get("ci"),
            "contaminated_train_pairs": {b: c["train"] for b, c in contamination.get("benchmarks", {}).items()},
            "components": data.get("components"),
            "benchmarks": {},
        }
        for bench, m in evals.get(name, {}).items():
            value, complete = BENCHMARKS[bench].headline(m)
            row["benchmarks"][bench] = {
                "headline": value,
                "complete": complete,
                "columns": BENCHMARKS[bench].columns(m),
            }
        rows.append(row)
    return rows


def versus_best(evals: dict[str, dict[str, dict]], *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """Per benchmark, the set with the highest headline against every other set on their shared items; Holm over
    all these comparisons together."""
    out = []
    benches = sorted({b for per in evals.values() for b in per})
    for bench in benches:
        scored = {n: per[bench] for n, per in evals.items() if bench in per}
        heads = {n: BENCHMARKS[bench].headline(m)[0] for n, m in scored.items()}
        heads = {n: v for n, v in heads.items() if v is not None}
        if len(heads) < 2:
            continue
        best = max(heads, key=lambda n: (heads[n], n))
        best_items = item_outcomes(bench, scored[best])
        for name in sorted(heads):
            other = item_outcomes(bench, scored[name]) if name != best else None
            if name == best or best_items is None or other is None:
                continue
            got = paired_difference(best_items, other, n_boot=n_boot, seed=seed)
            out.append({"benchmark": bench, "best": best, "set": name, **got})
    for row, p in zip(out, holm([r["mcnemar"]["p"] if r["mcnemar"] else 1.0 for r in out])):
        row["holm_p"], row["significant"] = p, bool(p < alpha)
    return out


def ablation_markdown(rows: list[dict], comparisons: list[dict]) -> str:
    benches = sorted({b for r in rows for b in r["benchmarks"]}, key=lambda b: getattr(BENCHMARKS[b], "order", 1000))
    cols = {b: list(next(r["benchmarks"][b]["columns"] for r in rows if b in r["benchmarks"])) for b in benches}
    checked = sorted({b for r in rows for b in r["contaminated_train_pairs"]})
    head = ["set", "train pairs", "held-out pairs", "held-out acc",
            *(f"{BENCHMARKS[b].title} {c}" for b in benches for c in cols[b]),
            *(f"overlap {BENCHMARKS[b].title}" for b in checked)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        acc = r["heldout_accuracy"]
        used = str(r["train_pairs"]) + ("" if r["train_pairs"] == r["drawn_pairs"] else f" of {r['drawn_pairs']}")
        cells = [r["set"], used, str(r["heldout_pairs"]), "—" if acc is None else f"{100 * acc:.1f}"]
        for b in benches:
            got = r["benchmarks"].get(b, {}).get("columns", {})
            cells += [got.get(c, "—") for c in cols[b]]
        cells += [str(r["contaminated_train_pairs"].get(b, "—")) for b in checked]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", ("Train pairs: those trained on (\"n of m\": m drawn, the rest over the recipe's token cap). "
              "Parenthesised benchmark values are partial (a subset). Overlap: training pairs whose prompt occurs in "
              "the benchmark (exact or 13-gram; conf/contamination/default.yaml)."), ""]  # fmt: skip
    if comparisons:
        lines += ["| benchmark | best | set | items (clusters) | best - set [95% CI] | McNemar p | Holm p | significant |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in comparisons:
            ci = c["ci"]
            diff = f"{100 * c['difference']:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")
            lines.append(
                f"| {BENCHMARKS[c['benchmark']].title} | {c['best']} | {c['set']} | {c['n_items']} ({c['n_clusters']}) "
                f"| {diff} | {c['mcnemar']['p']:.3g} | {c['holm_p']:.3g} | {'yes' if c['significant'] else 'no'} |"
            )
        lines += ["", ("Each set against the best set on that benchmark, on the items both were scored on (paired "
                  "bootstrap over clusters, McNemar's exact test, Holm over this table).")]  # fmt: skip
    return "\n".join(lines) + "\n"
