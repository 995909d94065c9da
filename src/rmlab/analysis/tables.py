"""The papers' tables regenerated from run outputs, as markdown, CSV and LaTeX.

- one per registered benchmark with runs (``<benchmark>.md``), its columns and caption the benchmark's own
  (``columns``, ``caption``): RM-Bench in its Table 2 layout (a domain not scored is marked missing and the
  average labelled partial with the domains it covers), RewardBench's sections, prior sets and overall, RewardMATH's
  accuracy and MRR, JudgeBench's categories, RewardBench 2's subsets, RMB's sections;
- ``policies``: per policy, each downstream task's headline metric (classifier / labeler named in the header).
- ``dpo_vs_classifier``: RM-Bench Sec. 4.2, from the ``comparison.json`` of the dpo_vs_classifier experiment;
- ``heatmaps/``: each benchmark's figures over its runs (``collection_figures``): RM-Bench's style-substance
  matrix of every run, per domain and averaged.

Every row carries the path of the ``metrics.json`` (or ``summary.json``) it came from. Rows are sorted by model
name and numbers formatted at fixed precision, so the same outputs always give byte-identical files. For one
(model, benchmark) the newest run counts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rmlab.analysis.compare import benchmark_order, collect
from rmlab.analysis.runs import runs_value
from rmlab.benchmarks import BENCHMARKS
from rmlab.utils.io import write_text

MISSING = "—"


def _pct(x) -> str:
    return MISSING if x is None else f"{100 * x:.1f}"


def benchmark_table(models: dict, name: str) -> tuple[list[str], list[list[str]]]:
    """One row per model evaluated on benchmark ``name``: its ``columns`` (the same keys for every run), the source."""
    bench = BENCHMARKS[name]
    runs = {model: per[name] for model, per in models.items() if name in per}
    if not runs:
        return ["model", "source"], []
    head = list(bench.columns(next(iter(runs.values()))))
    rows = []
    for model in sorted(runs):
        cells = bench.columns(runs[model])
        rows.append([model, *(cells[c] for c in head), runs[model]["_source"]])
    return ["model", *head, "source"], rows


def policy_table(runs) -> tuple[list[str], list[list[str]]]:
    from rmlab.analysis.correlation_study import _policy_runs

    summaries = []
    for run in _policy_runs(runs):
        s = json.loads((run / "summary.json").read_text())
        s["_source"] = str(run / "summary.json")
        summaries.append(s)
    columns: dict[str, str] = {}
    for s in summaries:
        for t in s["tasks"]:
            label = f"{t['task']} ({t['metric']}" + (f", {t['instrument']}" if t.get("instrument") else "") + ")"
            columns.setdefault(f"{t['task']}|{t.get('instrument')}", label)
    keys = sorted(columns)
    head = ["policy", *(columns[k] for k in keys), "source"]
    rows = []
    for s in sorted(summaries, key=lambda s: (s["policy"], s["_source"])):
        by_key = {f"{t['task']}|{t.get('instrument')}": t for t in s["tasks"]}
        rows.append([s["policy"], *(_pct(by_key[k]["value"]) if k in by_key else MISSING for k in keys), s["_source"]])
    return head, rows


def dpo_vs_classifier_table(runs) -> tuple[list[str], list[list[str]]]:
    """RM-Bench Sec. 4.2 layout from the ``comparison.json`` files of ``run_experiment.py experiment=dpo_vs_classifier``:
    per preference dataset, the classifier, DPO with its reference, DPO reference-free."""
    from rmlab.analysis.dpo_vs_classifier import DOMAINS as DPO_DOMAINS
    from rmlab.analysis.dpo_vs_classifier import LEVELS as DPO_LEVELS
    from rmlab.analysis.dpo_vs_classifier import VARIANT_LABELS
    from rmlab.analysis.runs import find_runs

    latest: dict[tuple[str, str], dict] = {}
    for run in find_runs(runs, marker="comparison.json"):  # sorted: a later run of the same row wins
        for r in json.loads((run / "comparison.json").read_text())["rows"]:
            latest[(r["dataset"], r["variant"])] = r
    head = ["dataset", "reward model", "avg", *DPO_LEVELS, *DPO_DOMAINS, "source"]
    order = list(VARIANT_LABELS)
    rows = [
        [
            r["dataset"],
            VARIANT_LABELS[r["variant"]],
            _pct(r["avg"]) + ("" if r["complete"] else "*"),
            *(_pct(r[k]) for k in (*DPO_LEVELS, *DPO_DOMAINS)),
            r["source"],
        ]
        for (_, _), r in sorted(latest.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1])))
    ]
    return head, rows


def to_markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(head: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()


def _tex_escape(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("—", "--"),
    ):
        s = s.replace(a, b)
    return s


def to_latex(head: list[str], rows: list[list[str]], caption: str) -> str:
    """A booktabs table without the source column (sources stay in the CSV and markdown)."""
    keep = [i for i, h in enumerate(head) if h != "source"]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{l{'c' * (len(keep) - 1)}}}",
        r"\toprule",
        " & ".join(_tex_escape(head[i]) for i in keep) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex_escape(r[i]) for i in keep) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


CAPTIONS = {  # the benchmarks' own captions are their ``caption``
    "policies": "Downstream scores (%) of each policy.",
    "dpo_vs_classifier": "RM-Bench accuracy (%) of a sequence classifier and a DPO model trained on the same "
    "preference data (Liu et al. 2025, Sec. 4.2); * = average over the scored domains.",
}


def make_tables(cfg) -> dict[str, int]:
    """The body of ``scripts/make_tables.py``: ``<name>.{md,csv,tex}`` per table with rows, and the RM-Bench
    style-substance heatmaps; returns row (and figure) counts."""
    out = Path(cfg.paths.output_dir)
    runs = runs_value(cfg.runs)
    models = collect(runs)
    for per_model in models.values():
        for m in per_model.values():
            m["_source"] = str(Path(m["_run_dir"]) / "metrics.json")
    tables = {name: benchmark_table(models, name) for name in benchmark_order()}
    captions = {**{name: BENCHMARKS[name].caption for name in tables}, **CAPTIONS}
    tables |= {
        "policies": policy_table(runs),
        "dpo_vs_classifier": dpo_vs_classifier_table(runs),
    }
    counts = {}
    for name, (head, rows) in tables.items():
        counts[name] = len(rows)
        if not rows:
            continue
        write_text(out / f"{name}.md", to_markdown(head, rows))
        write_text(out / f"{name}.csv", to_csv(head, rows))
        write_text(out / f"{name}.tex", to_latex(head, rows, captions[name]))
        print(f"## {name}\n\n{to_markdown(head, rows)}")
    if cfg.get("heatmaps", True):  # each benchmark's figures over all its runs (RM-Bench: style-substance heatmaps)
        figures = 0
        for name in benchmark_order():
            draw = getattr(BENCHMARKS[name], "collection_figures", None)
            runs_of = {model: per[name] for model, per in models.items() if name in per}
            if draw is not None and runs_of:
                figures += len(draw(runs_of, out))
        counts["heatmaps"] = figures
    return counts
