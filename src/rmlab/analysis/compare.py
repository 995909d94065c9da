"""Put reward models side by side on every benchmark they were evaluated on, and rank-correlate the benchmarks.

Reads finished ``eval_rm`` runs (``metrics.json``); for each (model, benchmark) the newest run counts. The summary
score per benchmark is the benchmark's own ``headline`` (e.g. RM-Bench's overall or its labelled partial mean) and
the table's cells its ``columns``: this module names no benchmark, so a newly registered one appears with no edit
here, and a run of an unregistered one is an error. Benchmarks are compared by Spearman's rho and Kendall's tau over
the models both scored, with percentile-bootstrap intervals from resampling models. Every pair of models is also
compared item by item on each benchmark (:mod:`rmlab.analysis.paired_table`: paired difference, McNemar, Holm).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
from scipy import stats

from rmlab.analysis.paired_table import paired_markdown, paired_rows
from rmlab.analysis.runs import choose_runs, eval_runs
from rmlab.benchmarks import BENCHMARKS
from rmlab.metrics.bootstrap import percentile_interval
from rmlab.utils.io import save_figure, write_json, write_text

log = logging.getLogger(__name__)


def benchmark_order() -> list[str]:
    """Every registered benchmark, in a fixed order: by the benchmark's ``order`` (any without one last), then name."""
    return sorted(BENCHMARKS.names(), key=lambda name: (getattr(BENCHMARKS[name], "order", 1000), name))


def collect(runs_dir) -> dict[str, dict[str, dict]]:
    """model -> benchmark -> metrics of its newest run (:func:`rmlab.analysis.runs.choose_runs`: runs of one model
    on different data are an error, not a silent pick; so is a run of an unregistered benchmark)."""
    candidates = []
    for run, m in eval_runs(runs_dir):
        m["_run_dir"] = str(run)
        candidates.append((f"{m['model']}|{m['benchmark']}", run / "metrics.json", m))
    table: dict[str, dict[str, dict]] = {}
    for key, c in choose_runs(candidates, data_of=lambda m: m.get("data_fingerprint"), what="model|benchmark").items():
        model, bench = key.rsplit("|", 1)
        table.setdefault(model, {})[bench] = c["doc"]
    return table


def summary_score(benchmark: str, m: dict) -> tuple[float, bool]:
    """``(score, complete)``: the benchmark's headline number, and whether it covers the whole benchmark (its own
    judgement and the run's ``complete``)."""
    value, complete = BENCHMARKS[benchmark].headline(m)
    return value, bool(complete and m.get("complete", True))


def rank_correlations(
    x: np.ndarray, y: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Spearman and Kendall between two score vectors over the same models, with bootstrap intervals."""
    if len(set(x.tolist())) < 2 or len(set(y.tolist())) < 2:
        return {
            "n_models": len(x),
            "spearman": None,
            "kendall": None,
            "note": "a benchmark gives every model the same score: no rank correlation",
        }
    rho, p_rho = stats.spearmanr(x, y)
    tau, p_tau = stats.kendalltau(x, y)
    out = {
        "n_models": len(x),
        "spearman": float(rho),
        "spearman_p": float(p_rho),
        "kendall": float(tau),
        "kendall_p": float(p_tau),
    }
    if n_boot and len(x) >= 3:
        rng = np.random.default_rng(seed)
        boots = {"spearman": [], "kendall": []}
        for _ in range(n_boot):
            i = rng.integers(0, len(x), len(x))
            if len(set(x[i])) < 2 or len(set(y[i])) < 2:
                continue  # a constant resample has no rank correlation
            boots["spearman"].append(stats.spearmanr(x[i], y[i]).statistic)
            boots["kendall"].append(stats.kendalltau(x[i], y[i]).statistic)
        out["ci"] = {k: percentile_interval(np.array(v), confidence) for k, v in boots.items() if v}
    return out


def compare(runs_dir: str | Path, out_dir: str | Path, *, n_boot: int = 1000, seed: int = 0) -> dict:
    table = collect(runs_dir)
    if not table:
        raise FileNotFoundError(f"no eval_rm runs (metrics.json) under {runs_dir}")
    order = benchmark_order()
    scores = {b: {model: summary_score(b, t[b]) for model, t in table.items() if b in t} for b in order}
    scores = {b: v for b, v in scores.items() if v}
    correlations = {}
    for a, b in itertools.combinations(list(scores), 2):
        common = sorted(set(scores[a]) & set(scores[b]))
        if len(common) >= 3:
            x = np.array([scores[a][m][0] for m in common])
            y = np.array([scores[b][m][0] for m in common])
            correlations[f"{a}~{b}"] = {**rank_correlations(x, y, n_boot=n_boot, seed=seed), "models": common}
    result = {
        "models": sorted(table),
        "summary_scores": {b: {m: {"score": s, "complete": c} for m, (s, c) in v.items()} for b, v in scores.items()},
        "rank_correlations": correlations,
    }
    paired, notes = paired_rows(table, order, n_boot=n_boot, seed=seed)
    result["paired"] = {"rows": paired, "notes": notes}
    out = Path(out_dir)
    write_json(out / "comparison.json", result)
    write_text(out / "comparison.md", comparison_markdown(table, correlations) + "\n" + paired_markdown(paired, notes))
    comparison_figure(scores, out / "comparison.png")
    return result


def _rank_cell(c: dict, k: str) -> str:
    if c[k] is None:
        return "n/a (constant scores)"
    ci = c.get("ci", {})
    return f"{c[k]:.2f}" + (f" [{ci[k][0]:.2f}, {ci[k][1]:.2f}]" if k in ci else "")


def comparison_markdown(table: dict, correlations: dict) -> str:
    """One row per model: every benchmark present, its ``columns`` under its ``title``."""
    present = [b for b in benchmark_order() if any(b in t for t in table.values())]
    heads = {}
    for b in present:
        sample = next(t[b] for t in table.values() if b in t)
        heads[b] = list(BENCHMARKS[b].columns(sample))
    head = ["model", *(f"{BENCHMARKS[b].title} {c}" for b in present for c in heads[b])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in sorted(table):
        cells = [model]
        for b in present:
            got = BENCHMARKS[b].columns(table[model][b]) if b in table[model] else {}
            cells += [got.get(c, "—") for c in heads[b]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Parenthesised values are partial (a domain, subset or section is missing).", ""]
    if correlations:
        lines += ["| benchmarks | models | Spearman (95% CI) | Kendall (95% CI) |", "|---|---|---|---|"]
        for name, c in correlations.items():
            lines.append(f"| {name} | {c['n_models']} | {_rank_cell(c, 'spearman')} | {_rank_cell(c, 'kendall')} |")
    else:
        lines.append("Rank correlations need at least 3 models scored on both benchmarks.")
    return "\n".join(lines) + "\n"


def comparison_figure(scores: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [b for b in benchmark_order() if scores.get(b)]
    models = sorted({m for b in present for m in scores[b]})
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(models) + 2), 3.8))
    width = 0.8 / max(1, len(present))
    for j, b in enumerate(present):
        vals = [100 * scores[b][m][0] if m in scores[b] else np.nan for m in models]
        hatches = ["" if m in scores[b] and scores[b][m][1] else "//" for m in models]
        bars = ax.bar(np.arange(len(models)) + j * width, vals, width, label=BENCHMARKS[b].title)
        for bar, h in zip(bars, hatches):
            bar.set_hatch(h)
    ax.set_xticks(np.arange(len(models)) + width * (len(present) - 1) / 2, models, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score (%) — hatched: partial")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)
