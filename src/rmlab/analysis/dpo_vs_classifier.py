"""The DPO-vs-classifier table (RM-Bench, Liu et al. 2025, Sec. 4.2 and Table 5) from RM-Bench ``metrics.json``
files: for each preference dataset, the classifier RM, the DPO model scored with its reference, and the same
DPO model scored reference-free; average, easy / normal / hard, and per domain.

Pure functions over metrics dicts; every cell keeps the path of the file it came from (``source``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rmlab.utils.io import save_figure

VARIANTS = ("classifier", "dpo_ref", "dpo_ref_free")
VARIANT_LABELS = {
    "classifier": "Sequence classifier",
    "dpo_ref": "DPO (with reference)",
    "dpo_ref_free": "DPO (reference-free)",
}
DOMAINS = ("chat", "math", "code", "safety")
LEVELS = ("easy", "normal", "hard")


def comparison_row(dataset: str, variant: str, metrics: dict, source: str, benchmark: str) -> dict:
    """One flat row from an RM-Bench ``metrics.json`` (``benchmark``: the experiment's ``pipeline.eval.benchmark``):
    ``avg`` is the overall average when every domain was scored, else the partial average (``domains`` says over
    which domains)."""
    if metrics.get("benchmark") != benchmark:
        raise ValueError(f"{source}: not a {benchmark} metrics file (benchmark={metrics.get('benchmark')!r})")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    partial = metrics["partial_overall"]
    row = {
        "dataset": dataset,
        "variant": variant,
        "model": metrics.get("model"),
        "avg": partial["value"],
        "avg_ci": partial.get("ci"),
        "complete": not metrics.get("missing_domains"),
        "domains": list(partial["domains"]),
        **{lvl: metrics["difficulty"][lvl] for lvl in LEVELS},
        "source": source,
    }
    for d in DOMAINS:
        dm = metrics["domains"].get(d)
        row[d] = dm["avg"] if dm else None
        for lvl in LEVELS:
            row[f"{d}_{lvl}"] = dm[lvl] if dm else None
    return row


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def comparison_markdown(rows: list[dict]) -> str:
    """Two tables: the summary (avg, difficulty, per-domain average) and per-domain easy / normal / hard."""
    partial = any(not r["complete"] for r in rows)
    head = (
        "| Dataset | Reward model | Avg | Easy | Normal | Hard | " + " | ".join(d.capitalize() for d in DOMAINS) + " |"
    )
    lines = ["## RM-Bench accuracy (%): sequence classifier vs DPO", "", head, "|" + "---|" * (6 + len(DOMAINS))]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {VARIANT_LABELS[r['variant']]} | {_pct(r['avg'])} | "
            + " | ".join(_pct(r[k]) for k in (*LEVELS, *DOMAINS))
            + " |"
        )
    cols = [f"{d.capitalize()} {lvl}" for d in DOMAINS for lvl in LEVELS]
    lines += [
        "",
        "## Per domain: easy / normal / hard (%)",
        "",
        "| Dataset | Reward model | " + " | ".join(cols) + " |",
        "|" + "---|" * (2 + len(cols)),
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {VARIANT_LABELS[r['variant']]} | "
            + " | ".join(_pct(r[f"{d}_{lvl}"]) for d in DOMAINS for lvl in LEVELS)
            + " |"
        )
    if partial:
        lines += [
            "",
            ("– = domain not scored (no local data); Avg, Easy, Normal and Hard then average the scored domains only."),
        ]
    return "\n".join(lines) + "\n"


CSV_FIELDS = (
    "dataset",
    "variant",
    "model",
    "avg",
    "complete",
    "easy",
    "normal",
    "hard",
    *DOMAINS,
    *(f"{d}_{lvl}" for d in DOMAINS for lvl in LEVELS),
    "source",
)


def comparison_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def comparison_figure(rows: list[dict], path: Path) -> Path:
    """Grouped bars: per dataset, the average accuracy of each variant, with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    colors = {"classifier": "#4477aa", "dpo_ref": "#ee6677", "dpo_ref_free": "#ccbb44"}
    width = 0.8 / len(VARIANTS)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(datasets) + 1.5), 3.6))
    for k, variant in enumerate(VARIANTS):
        xs, ys, errs = [], [], [[], []]
        for i, ds in enumerate(datasets):
            r = next((r for r in rows if r["dataset"] == ds and r["variant"] == variant), None)
            if r is None:
                continue
            xs.append(i + (k - (len(VARIANTS) - 1) / 2) * width)
            ys.append(100 * r["avg"])
            lo, hi = r["avg_ci"] or (r["avg"], r["avg"])
            errs[0].append(100 * (r["avg"] - lo))
            errs[1].append(100 * (hi - r["avg"]))
        if xs:
            ax.bar(xs, ys, width, yerr=errs, capsize=3, color=colors[variant], label=VARIANT_LABELS[variant])
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylim(0, 100)
    ax.set_ylabel("RM-Bench accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Sequence classifier vs DPO as reward model", fontsize=9)
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)
