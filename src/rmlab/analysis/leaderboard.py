"""``rmlab leaderboard``: the multi-model table.

With ``runs=<dir or glob>``: one row per reward model from finished ``eval_rm`` runs, one column per registered
benchmark (or ``benchmarks=[...]``), each cell the benchmark's headline with its interval and a complete / partial
mark, published rows below (the report card's table, :mod:`rmlab.analysis.report_card`), as
``leaderboard.{md,csv,json,png}``. Without ``runs``: the leaderboard of published score dumps (RewardMATH /
RewardBench math, the authors' own outputs), as JSON, CSV and markdown.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from rmlab.benchmarks.reward_math_dumps import leaderboard
from rmlab.utils.io import write_json, write_text

log = logging.getLogger(__name__)

_COLUMNS = [
    "benchmark",
    "model",
    "kind",
    "aggregation",
    "n",
    "accuracy",
    "accuracy_with_ties",
    "mrr",
    "duplicates",
    "duplicate_rows",
    "file",
]


def leaderboard_markdown(rows: list[dict]) -> str:
    lines = []
    for bench in sorted({r["benchmark"] for r in rows}):
        sub = [r for r in rows if r["benchmark"] == bench]
        lines += [
            f"## {bench} ({sub[0]['n']} problems)",
            "",
            "| model | kind | aggregation | accuracy | accuracy (ties count) | MRR |",
            "|---|---|---|---|---|---|",
        ]
        for r in sub:
            lines.append(
                f"| {r['model']} | {r['kind']} | {r['aggregation'] or ''} | {100 * r['accuracy']:.2f} | "
                f"{100 * r['accuracy_with_ties']:.2f} | {100 * r['mrr']:.2f} |"
            )
        lines.append("")
    repeated = {r["file"]: r for r in rows if r.get("other_reading")}
    if repeated:
        how = "counted, as the authors' eval.py counts them" if rows[0]["duplicates"] == "keep" else "dropped"
        lines.append(f"Files that repeat rows exactly (repeats {how}; `duplicates=keep|drop`), both readings:")
        lines.append("")
        for r in repeated.values():
            o = r["other_reading"]
            lines.append(
                f"- {r['file']} ({r['duplicate_rows']} repeated rows): {r['duplicates']}: n {r['n']}, accuracy "
                f"{100 * r['accuracy']:.2f}, MRR {100 * r['mrr']:.2f}; {o['duplicates']}: n {o['n']}, accuracy "
                f"{100 * o['accuracy']:.2f}, MRR {100 * o['mrr']:.2f}"
            )
        lines.append("")
    lines.append(
        "Accuracy: the correct solution strictly above every incorrect one (ties count: >=). MRR ranks "
        "ties pessimistically. Random: accuracy 10.00, MRR 29.29 (RewardMATH); 50.00 (RewardBench math)."
    )
    return "\n".join(lines) + "\n"


def write_leaderboard(cfg) -> list[dict] | dict:
    if cfg.get("runs"):
        from rmlab.analysis.report_card import reference_rows, rows_from_runs, selected_benchmarks, write_card

        names = selected_benchmarks(cfg)
        rows = rows_from_runs(cfg.runs, names)
        if not rows:
            raise FileNotFoundError(f"runs={cfg.runs}: no finished eval_rm run (metrics.json) found there")
        out = Path(cfg.paths.output_dir)
        card = write_card(out, "leaderboard", names, rows + reference_rows(cfg, names))
        # which of the evaluated models differ, item by item (published rows have no items to pair)
        from rmlab.analysis.compare import benchmark_order, collect
        from rmlab.analysis.paired_table import paired_markdown, paired_rows
        from rmlab.analysis.runs import runs_value

        table = {m: {b: v for b, v in per.items() if b in names} for m, per in collect(runs_value(cfg.runs)).items()}
        order = [b for b in benchmark_order() if b in names]
        paired, notes = paired_rows(table, order, n_boot=int(cfg.get("n_boot", 1000)), seed=int(cfg.get("seed", 0)))
        write_json(out / "leaderboard_paired.json", {"rows": paired, "notes": notes})
        write_text(out / "leaderboard_paired.md", paired_markdown(paired, notes))
        print(paired_markdown(paired, notes))
        return {**card, "paired": paired}
    rows = leaderboard(cfg.dumps_dir, n_boot=cfg.n_boot, duplicates=str(cfg.get("duplicates", "keep")))
    out = Path(cfg.paths.output_dir)
    write_json(out / "leaderboard.json", rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_text(out / "leaderboard.csv", buf.getvalue())
    table = leaderboard_markdown(rows)
    write_text(out / "leaderboard.md", table)
    print(table)
    return rows
