"""RM-Bench as a benchmark: which pairs to score, and how scores become metrics, tables, heatmaps and the
style-bias diagnostic (:mod:`rmlab.metrics.style_bias`: ``style_bias.json`` / ``.md`` beside the heatmaps)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, MISSING, Comparison, ScoreRequest, pct, read_reference
from rmlab.data.rm_bench import METRIC_DOMAINS, STYLES, RMBenchItem, data_fingerprint, load_rm_bench
from rmlab.metrics.judge import wins_and_ties
from rmlab.metrics.rm_bench import rm_bench_metrics, rm_bench_metrics_from_wins
from rmlab.metrics.style_bias import rm_bench_style_bias, style_bias_markdown
from rmlab.utils.io import write_json, write_text


@BENCHMARKS.register("rm_bench")
class RMBench:
    """RM-Bench (THU-KEG/RM-Bench): 3 chosen x 3 rejected responses per prompt, scored by style."""

    title = "RM-Bench"
    order = 0  # place in tables (the lab papers' benchmarks first)
    caption = "RM-Bench accuracy (%) per domain and difficulty (Liu et al. 2025, Table 2 layout)."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[RMBenchItem], dict]:
        c = self.cfg
        items, provenance = load_rm_bench(
            data_dir=c.get("data_dir"),
            hub_id=c.get("hub_id"),
            domains=list(c.domains),
            max_per_domain=c.get("max_per_domain"),
            seed=c.get("subsample_seed", 0),
            split=c.get("split", "train"),
        )
        provenance["data_fingerprint"] = data_fingerprint(items)
        return items, provenance

    def missing(self, items: Sequence[RMBenchItem]) -> list[str]:
        """Domains of the whole benchmark absent from ``items``, and a subsample if one was taken."""
        present = {it.domain.split("-")[0] for it in items}
        out = [f"domain {d}" for d in METRIC_DOMAINS if d not in present]
        return out + ([f"max_per_domain={self.cfg.max_per_domain}"] if self.cfg.get("max_per_domain") else [])

    @staticmethod
    def requests(items: Sequence[RMBenchItem]) -> list[ScoreRequest]:
        """Six requests per item, in the order chosen[0..2], rejected[0..2]."""
        out = []
        for it in items:
            for side in ("chosen", "rejected"):
                for style, response in zip(STYLES, getattr(it, side)):
                    out.append(ScoreRequest(it.prompt, response, f"{it.domain}/id={it.id}/{side}/{style}"))
        return out

    def compute(
        self, items: Sequence[RMBenchItem], scores: np.ndarray, *, n_boot: int, confidence: float, seed: int
    ) -> tuple[dict, list[dict]]:
        """Metrics and per-sample rows from the scores of :meth:`requests` (same order)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(len(items), 2, 3)
        rows, by_domain = [], {}
        for it, s in zip(items, scores):
            rows.append({**_row_id(it), "chosen": s[0].tolist(), "rejected": s[1].tolist()})
            by_domain.setdefault(it.metric_domain, []).append(s)
        arrays = {d: (np.stack(v)[:, 0], np.stack(v)[:, 1]) for d, v in by_domain.items()}
        metrics = rm_bench_metrics(arrays, n_boot=n_boot, confidence=confidence, seed=seed)
        metrics["style_bias"] = rm_bench_style_bias(items, scores, n_boot=n_boot, confidence=confidence, seed=seed)
        return metrics, rows

    @staticmethod
    def comparisons(items: Sequence[RMBenchItem]) -> list[Comparison]:
        """Nine per item, the cells of the style-substance matrix row by row: chosen style i vs rejected style j."""
        out = []
        for it in items:
            where = f"{it.domain}/id={it.id}"
            for i, chosen in enumerate(it.chosen):
                for j, rejected in enumerate(it.rejected):
                    out.append(
                        Comparison(
                            it.prompt,
                            chosen,
                            rejected,
                            f"{where}/chosen={STYLES[i]}/rejected={STYLES[j]}",
                            f"{where}/chosen/{STYLES[i]}",
                            f"{where}/rejected/{STYLES[j]}",
                        )
                    )
        return out

    def compute_comparisons(
        self,
        items: Sequence[RMBenchItem],
        outcomes: Sequence[str],
        *,
        n_boot: int,
        confidence: float,
        seed: int,
        preferences=None,
    ) -> tuple[dict, list[dict]]:
        """Metrics and per-sample rows from one judge outcome per :meth:`comparisons` entry (same order)."""
        cells = np.asarray(outcomes, dtype=object).reshape(len(items), 3, 3)
        wins, ties = wins_and_ties(cells.ravel())
        wins, ties = wins.reshape(cells.shape), ties.reshape(cells.shape)
        rows, by_domain = [], {}
        for k, it in enumerate(items):
            rows.append(
                {
                    **_row_id(it),
                    "outcome": cells[k].tolist(),  # [chosen style][rejected style]
                }
            )
            by_domain.setdefault(it.metric_domain, []).append(k)
        arrays = {d: (wins[idx], ties[idx]) for d, idx in by_domain.items()}
        return rm_bench_metrics_from_wins(arrays, n_boot=n_boot, confidence=confidence, seed=seed), rows

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        return markdown_table(metrics, model_name)

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import style_substance_heatmap

        if "style_bias" in metrics:  # scalar rewards only (a judge's verdicts have no reward to regress)
            write_json(out_dir / "style_bias.json", metrics["style_bias"])  # beside the heatmaps
            write_text(out_dir / "style_bias.md", style_bias_markdown(metrics["style_bias"], model_name))
        return [
            style_substance_heatmap(
                np.array(m["matrix"]),
                title=f"{model_name}: RM-Bench {d} (n={m['n']})",
                path=out_dir / f"heatmap_{d}.png",
            )
            for d, m in metrics["domains"].items()
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per style cell, clustered by prompt: 1 where chosen style i beat rejected style j (a tie is a loss)."""
        out = {}
        for r in rows:
            for i in range(3):
                for j in range(3):
                    won = r["outcome"][i][j] == "win" if "outcome" in r else r["chosen"][i] > r["rejected"][j]
                    out[(f"{r['domain']}/id={r['id']}", f"{STYLES[i]}/{STYLES[j]}")] = float(won)
        return out

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        """The overall (all four domains), else the labelled mean over the domains scored."""
        if metrics.get("overall") is not None:
            return float(metrics["overall"]), True
        return float(metrics["partial_overall"]["value"]), False

    @staticmethod
    def headline_ci(metrics: dict) -> list[float] | None:
        return metrics.get("overall_ci") or metrics["partial_overall"].get("ci")

    @staticmethod
    def published(reference_dir: Path) -> dict[str, float]:
        """The average of RM-Bench's results as reprinted in RM-R1 (arXiv 2505.02387, Table 7)."""
        rows = read_reference(reference_dir, "rmbench_full_table_as_reprinted_in_rmr1.csv")
        return {r["model"]: float(r["avg"]) / 100 for r in rows if r.get("avg")}

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        """Table 2's layout: the four domains, easy / normal / hard, and the average (partial: which domains)."""
        cells = {d: pct(metrics["domains"][d]["avg"]) if d in metrics["domains"] else MISSING for d in METRIC_DOMAINS}
        cells.update({k: pct(metrics["difficulty"][k]) for k in ("easy", "normal", "hard")})
        if metrics["overall"] is not None:
            cells["average"] = pct(metrics["overall"])
        else:
            p = metrics["partial_overall"]
            cells["average"] = f"{pct(p['value'])} (partial: {'+'.join(p['domains'])})"
        return cells

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{domain, level}``: a domain's easy / normal / hard / avg accuracy (None if the domain is not scored);
        ``{level}`` alone: that difficulty over the scored domains."""
        if spec.get("domain"):
            dom = metrics["domains"].get(spec["domain"])
            return None if dom is None else float(dom[spec["level"]])
        return float(metrics["difficulty"][spec["level"]])

    @staticmethod
    def collection_figures(models: dict, out: Path) -> list[Path]:
        """The style-substance matrices (chosen style x rejected style accuracy) of every run (``{model: metrics}``),
        for make-tables: one figure per model and domain, and one of the mean over the scored domains, under
        ``heatmaps/<model>/``."""
        from rmlab.utils.plots import style_substance_heatmap

        paths = []
        for model, m in sorted(models.items()):
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
            mats = {d: np.array(dm["matrix"]) for d, dm in sorted(m["domains"].items()) if "matrix" in dm}
            for d, mat in mats.items():
                paths.append(
                    style_substance_heatmap(
                        mat, title=f"{model}: RM-Bench {d}", path=out / "heatmaps" / safe / f"{d}.png"
                    )
                )
            if mats:
                label = "all domains" if not m.get("missing_domains") else f"mean of {', '.join(mats)}"
                paths.append(
                    style_substance_heatmap(
                        np.mean(list(mats.values()), axis=0),
                        title=f"{model}: RM-Bench, {label}",
                        path=out / "heatmaps" / safe / "mean.png",
                    )
                )
        return paths

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {}
        for d, m in metrics["domains"].items():
            for k in ("easy", "normal", "hard", "avg"):
                flat[f"rm_bench/{d}/{k}"] = m[k]
        for k, v in metrics["difficulty"].items():
            flat[f"rm_bench/{k}"] = v
        flat["rm_bench/partial_overall"] = metrics["partial_overall"]["value"]
        if metrics["overall"] is not None:
            flat["rm_bench/overall"] = metrics["overall"]
        return flat


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def markdown_table(metrics: dict, model_name: str) -> str:
    """The paper's Table 2 layout (per-domain averages, easy / normal / hard, overall) plus per-domain detail."""
    d = metrics["domains"]
    head = ["model", *METRIC_DOMAINS, "easy", "normal", "hard", "avg"]
    overall = metrics["overall"]
    avg_cell = _pct(overall) if overall is not None else f"({_pct(metrics['partial_overall']['value'])} partial)"
    row = [
        model_name,
        *[_pct(d[x]["avg"]) if x in d else "missing" for x in METRIC_DOMAINS],
        *[_pct(metrics["difficulty"][k]) for k in ("easy", "normal", "hard")],
        avg_cell,
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |", ""]
    if metrics["missing_domains"]:
        lines += [
            (
                f"Missing domains: {', '.join(metrics['missing_domains'])}. Overall is not defined; the partial "
                f"mean covers {', '.join(metrics['partial_overall']['domains'])} only, and easy / normal / hard "
                "are averaged over those domains."
            ),
            "",
        ]
    lines += ["| domain | n | easy | normal | hard | avg (95% CI) | ties |", "|---|---|---|---|---|---|---|"]
    for name, m in d.items():
        ci = m.get("ci", {})
        lines.append(
            f"| {name} | {m['n']} | {_pct(m['easy'])} | {_pct(m['normal'])} | {_pct(m['hard'])} | "
            f"{_pct(m['avg'])}{_ci(ci.get('avg'))} | {m['n_ties']} |"
        )
    lines.append("")
    lines.append(
        "Accuracies in %. Rows of the style-substance matrix: chosen style; columns: rejected style "
        "(concise, detailed plain, detailed markdown). Hard = upper triangle, normal = diagonal, "
        "easy = lower triangle; ties count as losses."
    )
    return "\n".join(lines) + "\n"


def _row_id(it: RMBenchItem) -> dict:
    """What identifies a per-sample row, for scores and judge outcomes alike."""
    return {
        "benchmark": "rm_bench",
        "domain": it.domain,
        "metric_domain": it.metric_domain,
        "id": it.id,
        "subset": it.subset,
    }


def rm_bench_rows(runs: list[Path]) -> list[dict]:
    """One row per RM-Bench run among ``runs``: model, per-domain averages, easy / normal / hard, overall (or partial);
    for the results notebook."""
    import json

    rows = []
    for run in runs:
        m = json.loads((Path(run) / "metrics.json").read_text())
        if m.get("benchmark") != "rm_bench":
            continue
        row = {"model": m["model"], "run": str(run)}
        for d in METRIC_DOMAINS:
            row[d] = m["domains"][d]["avg"] if d in m["domains"] else None
        row.update(m["difficulty"])
        row["overall"] = m["overall"]
        row["partial_overall"] = m["partial_overall"]["value"]
        row["partial_domains"] = ",".join(m["partial_overall"]["domains"])
        rows.append(row)
    return rows
