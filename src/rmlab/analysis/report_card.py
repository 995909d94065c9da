"""The report card: one reward model on every registered benchmark (or a chosen list), one row.

``rmlab report-card model=<spec>`` runs ``eval_rm`` on each benchmark into ``<run>/<benchmark>/`` (scores through
the score cache, so a rerun or a killed run costs nothing already scored) and writes ``report_card.{md,csv,json}``
and ``report_card.png``: per benchmark the headline value (the benchmark's own ``headline``) with its interval where
the metric has one, and a mark: ``complete``, ``partial (what is missing)``, or ``no data (why)`` where no copy of the
benchmark can be read (no local files and no Hub). Published numbers (``paths.reference_dir``, each benchmark's
``published``) follow as reference rows, marked as published, for the models the config lists
(``reference_models``, or every published model with ``reference_models: all``).

``rmlab report-card runs=<dir>`` builds the same table, one row per model, from finished ``eval_rm`` runs instead
(the multi-model leaderboard), without scoring anything. No benchmark is named here: a newly registered one appears
with no edit.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from rmlab.analysis.compare import benchmark_order, collect
from rmlab.analysis.runs import runs_value
from rmlab.benchmarks import BENCHMARKS
from rmlab.data.errors import DataUnavailableError
from rmlab.utils.io import save_figure, write_json, write_text

log = logging.getLogger(__name__)

PASS_THROUGH = ("device", "seed", "scoring", "bootstrap", "logger")  # the report card's settings each eval_rm gets


def cell(name: str, metrics: dict | None, reason: str | None = None) -> dict:
    """One benchmark's cell: value, interval, and the complete / partial / no data mark."""
    if metrics is None:
        return {"benchmark": name, "value": None, "ci": None, "mark": f"no data ({reason})"}
    bench = BENCHMARKS[name]
    value, complete = bench.headline(metrics)
    draw_ci = getattr(bench, "headline_ci", None)
    missing = metrics.get("incomplete_because") or []
    complete = bool(complete and metrics.get("complete", True))
    mark = "complete" if complete else "partial (" + ("; ".join(missing[:3]) or "a part is missing") + ")"
    return {"benchmark": name, "value": value, "ci": draw_ci(metrics) if draw_ci else None, "mark": mark}


def _evaluate(cfg: DictConfig, name: str, out: Path) -> tuple[dict | None, str | None]:
    """``eval_rm`` of ``cfg.model`` on benchmark ``name``; ``(None, why)`` when its data cannot be had here."""
    from rmlab.rm_eval.evaluate import evaluate_rm
    from rmlab.utils.config import compose_config

    overrides = [f"benchmark={name}", *((cfg.get("benchmark_overrides") or {}).get(name) or [])]
    sub = compose_config("eval_rm", overrides)
    with open_dict(sub):
        sub.model = cfg.model
        for key in PASS_THROUGH:
            if key in cfg:
                sub[key] = cfg[key]
        sub.paths = OmegaConf.merge(sub.paths, {k: v for k, v in cfg.paths.items() if k != "output_dir"})
        sub.paths.output_dir = str(out / name)
    bench = BENCHMARKS[name](sub.benchmark)
    try:
        bench.load()  # bad records raise here (DataValidationError); only a missing copy is a "no data" cell
    except (DataUnavailableError, OSError) as err:
        why = str(err).splitlines()[0][:200]
        log.warning("report card: %s has no data here: %s", name, why)
        return None, why
    return evaluate_rm(sub), None


def report_card(cfg: DictConfig) -> dict:
    """The body of ``rmlab report-card``."""
    out = Path(cfg.paths.output_dir)
    names = selected_benchmarks(cfg)
    if cfg.get("runs"):
        rows = rows_from_runs(cfg.runs, names)
    else:
        evaluated = {name: _evaluate(cfg, name, out) for name in names}
        cells = [cell(name, metrics, why) for name, (metrics, why) in evaluated.items()]
        scored = [metrics["model"] for metrics, _ in evaluated.values() if metrics is not None]
        rows = [{"model": scored[0] if scored else str(cfg.model.get("name")), "kind": "run", "cells": cells}]
    return write_card(out, "report_card", names, rows + reference_rows(cfg, names))


def selected_benchmarks(cfg: DictConfig) -> list[str]:
    """``cfg.benchmarks`` (unknown names are an error), or every registered benchmark in table order."""
    names = list(cfg.benchmarks) if cfg.get("benchmarks") else benchmark_order()
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"benchmarks {unknown} are not registered (known: {', '.join(BENCHMARKS.names())})")
    return names


def rows_from_runs(runs, names: list[str]) -> list[dict]:
    """One row per model from finished ``eval_rm`` runs (a directory or glob), nothing scored."""
    models = collect(runs_value(runs))
    return [
        {"model": model, "kind": "run", "cells": [cell(n, per.get(n), "not evaluated") for n in names]}
        for model, per in sorted(models.items())
    ]


def write_card(out: Path, stem: str, names: list[str], rows: list[dict]) -> dict:
    """``<stem>.{json,md,csv,png}`` under ``out``; the markdown is printed too."""
    result = {"benchmarks": names, "rows": rows}
    write_json(out / f"{stem}.json", result)
    write_text(out / f"{stem}.md", markdown(names, rows))
    write_text(out / f"{stem}.csv", to_csv(names, rows))
    figure(names, rows, out / f"{stem}.png")
    print(markdown(names, rows))
    return result


def reference_rows(cfg: DictConfig, names: list[str]) -> list[dict]:
    """Published headlines of the models ``cfg.reference_models`` names (``all``: every published model)."""
    wanted = cfg.get("reference_models")
    if not wanted:
        return []
    ref_dir = Path(cfg.paths.reference_dir)
    # the papers name a model differently ("Skywork/Skywork-Reward-Llama-3.1-8B", "InternLM2-20B-Reward"): matched by
    # the name after the organisation, case aside
    published = {
        n: {_short(m): v for m, v in getattr(BENCHMARKS[n], "published", lambda _: {})(ref_dir).items()} for n in names
    }
    shown = {m: m for v in published.values() for m in v}
    models = sorted(shown) if wanted == "all" else [str(m) for m in wanted]
    rows = []
    for model in models:
        key = _short(model)
        cells = [
            {"benchmark": n, "value": published[n][key], "ci": None, "mark": "published"}
            if key in published[n]
            else {"benchmark": n, "value": None, "ci": None, "mark": "not published"}
            for n in names
        ]
        if any(c["value"] is not None for c in cells):
            rows.append({"model": model, "kind": "published", "cells": cells})
    return rows


def _short(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


def _text(c: dict) -> str:
    if c["value"] is None:
        return c["mark"]
    ci = f" [{100 * c['ci'][0]:.1f}, {100 * c['ci'][1]:.1f}]" if c.get("ci") else ""
    return f"{100 * c['value']:.2f}{ci} {c['mark']}"


def markdown(names: list[str], rows: list[dict]) -> str:
    head = ["model", "row", *(BENCHMARKS[n].title for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([r["model"], r["kind"], *(_text(c) for c in r["cells"])]) + " |" for r in rows]
    lines += [
        "",
        (
            "Each cell: the benchmark's headline (%), its 95% interval where the metric has one, and whether it "
            "covers the whole benchmark. Published rows are the papers' own numbers (../shared/reference), not "
            "recomputed."
        ),
    ]
    return "\n".join(lines) + "\n"


def to_csv(names: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "row", *(f"{n}{suffix}" for n in names for suffix in ("", "_ci_low", "_ci_high", "_mark"))])
    for r in rows:
        flat = []
        for c in r["cells"]:
            lo, hi = c["ci"] or (None, None)
            flat += ["" if c["value"] is None else f"{c['value']:.6f}", lo or "", hi or "", c["mark"]]
        w.writerow([r["model"], r["kind"], *flat])
    return buf.getvalue()


def figure(names: list[str], rows: list[dict], path: Path) -> Path:
    """Grouped bars: one group per benchmark, one bar per row (hatched: partial; published rows lighter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(names) + 2), 3.8))
    width = 0.8 / max(1, len(rows))
    for j, r in enumerate(rows):
        vals = [np.nan if c["value"] is None else 100 * c["value"] for c in r["cells"]]
        bars = ax.bar(
            np.arange(len(names)) + j * width,
            vals,
            width,
            label=f"{r['model']} ({r['kind']})",
            alpha=0.5 if r["kind"] == "published" else 1.0,
        )
        for bar, c in zip(bars, r["cells"]):
            bar.set_hatch("//" if c["mark"].startswith("partial") else "")
    ticks = np.arange(len(names)) + width * (len(rows) - 1) / 2
    ax.set_xticks(ticks, [BENCHMARKS[n].title for n in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("headline (%) — hatched: partial")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6)
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)
