"""RewardBench as a benchmark: one chosen-vs-rejected comparison per pair, section-weighted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, MISSING, Comparison, ScoreRequest, pct
from rmlab.data.reward_bench import PreferencePair, load_reward_bench
from rmlab.metrics.judge import wins_and_ties
from rmlab.metrics.reward_bench import EXAMPLE_COUNTS, SECTIONS, reward_bench_metrics, reward_bench_metrics_from_wins


@BENCHMARKS.register("reward_bench")
class RewardBench:
    title = "RewardBench"
    order = 1  # place in tables (the lab papers' benchmarks first)
    caption = "RewardBench scores (%) per section."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[PreferencePair], dict]:
        c = self.cfg
        return load_reward_bench(
            data_dir=c.get("data_dir"),
            hub_id=c.get("hub_id"),
            split=c.get("split", "filtered"),
            prior_sets_hub_id=c.get("prior_sets_hub_id"),
            subsets=list(c.subsets) if c.get("subsets") else None,
            max_per_subset=c.get("max_per_subset"),
        )

    def missing(self, items: Sequence[PreferencePair]) -> list[str]:
        """Subsets of the whole benchmark absent from ``items``, and a subsample if one was taken."""
        present = {p.subset for p in items}
        out = [f"subset {s}" for s in EXAMPLE_COUNTS if s not in present]
        return out + ([f"max_per_subset={self.cfg.max_per_subset}"] if self.cfg.get("max_per_subset") else [])

    @staticmethod
    def requests(items: Sequence[PreferencePair]) -> list[ScoreRequest]:
        out = []
        for p in items:
            out.append(ScoreRequest(p.prompt, p.chosen, f"{p.subset}/id={p.id}/chosen"))
            out.append(ScoreRequest(p.prompt, p.rejected, f"{p.subset}/id={p.id}/rejected"))
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        s = np.asarray(scores, dtype=np.float64).reshape(len(items), 2)
        by_subset: dict[str, list] = {}
        rows = []
        for p, (c, r) in zip(items, s):
            by_subset.setdefault(p.subset, []).append((c, r))
            rows.append(
                {"benchmark": "reward_bench", "subset": p.subset, "id": p.id, "chosen": float(c), "rejected": float(r)}
            )
        arrays = {k: (np.array(v)[:, 0], np.array(v)[:, 1]) for k, v in by_subset.items()}
        metrics = reward_bench_metrics(
            arrays,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            xstest_weights=str(self.cfg.get("xstest_weights", "current")),
        )
        return metrics, rows

    @staticmethod
    def comparisons(items: Sequence[PreferencePair]) -> list[Comparison]:
        """One per pair."""
        return [
            Comparison(
                p.prompt,
                p.chosen,
                p.rejected,
                f"{p.subset}/id={p.id}",
                f"{p.subset}/id={p.id}/chosen",
                f"{p.subset}/id={p.id}/rejected",
            )
            for p in items
        ]

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """Metrics and per-pair rows from one judge outcome per pair (same order as :meth:`comparisons`)."""
        wins, ties = wins_and_ties(outcomes)
        by_subset: dict[str, list[int]] = {}
        rows = []
        for k, (p, outcome) in enumerate(zip(items, outcomes, strict=True)):
            by_subset.setdefault(p.subset, []).append(k)
            rows.append({"benchmark": "reward_bench", "subset": p.subset, "id": p.id, "outcome": outcome})
        metrics = reward_bench_metrics_from_wins(
            {name: (wins[idx], ties[idx]) for name, idx in by_subset.items()},
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            xstest_weights=str(self.cfg.get("xstest_weights", "current")),
        )
        return metrics, rows

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        def pct(x):
            return "—" if x is None else f"{100 * x:.2f}"

        sec = metrics["sections"]
        cells = [
            pct(sec[s]["score"])
            if sec[s]["score"] is not None
            else (f"({pct(sec[s]['partial_score'])} partial)" if sec[s]["partial_score"] is not None else "missing")
            for s in SECTIONS
        ]
        head = ["model", *SECTIONS, "prior sets", "overall"]
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            "| " + " | ".join([model_name, *cells, pct(metrics["prior_sets"]), pct(metrics["overall"])]) + " |",
            "",
        ]
        if metrics["missing_subsets"]:
            lines += [
                (
                    f"Missing subsets ({len(metrics['missing_subsets'])}): {', '.join(metrics['missing_subsets'])}. "
                    "Sections with a missing subset have no score; a partial score over the subsets present is "
                    "shown in parentheses. Overall needs all four sections."
                ),
                "",
            ]
        lines += ["| subset | n | accuracy (95% CI) | ties |", "|---|---|---|---|"]
        for name, m in sorted(metrics["subsets"].items()):
            ci = m.get("ci")
            ci_s = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
            lines.append(f"| {name} | {m['n']} | {pct(m['accuracy'])}{ci_s} | {m['ties']} |")
        return "\n".join(lines) + "\n"

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        subsets = sorted(metrics["subsets"])
        return [
            bar_chart(
                {s: metrics["subsets"][s]["accuracy"] for s in subsets},
                title=f"{model_name}: RewardBench",
                ylabel="accuracy",
                path=out_dir / "reward_bench_subsets.png",
            )
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per pair: 1 where the chosen response scored strictly higher (or the judge's outcome is a win)."""
        return {
            (f"{r['subset']}/id={r['id']}", ""): float(
                r["outcome"] == "win" if "outcome" in r else r["chosen"] > r["rejected"]
            )
            for r in rows
        }

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        """The overall, else the mean of the sections' scores over what was scored (labelled partial)."""
        if metrics.get("overall") is not None:
            return float(metrics["overall"]), True
        parts = [
            s["score"] if s.get("score") is not None else s.get("partial_score") for s in metrics["sections"].values()
        ]
        parts = [float(p) for p in parts if p is not None]
        return (float(np.mean(parts)) if parts else None), False

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        """The four sections (a partial one in parentheses), prior sets, overall."""
        cells = {}
        for s in SECTIONS:
            sec = metrics["sections"][s]
            cells[s] = (
                pct(sec["score"])
                if sec["score"] is not None
                else (f"({pct(sec['partial_score'])} partial)" if sec.get("partial_score") is not None else MISSING)
            )
        cells["prior sets"] = pct(metrics.get("prior_sets"))
        cells["overall"] = pct(metrics.get("overall"))
        return cells

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{section, partial}``: a section's score; with ``partial`` its score over the subsets present."""
        sec = metrics["sections"][spec["section"]]
        value = (
            sec["score"] if sec["score"] is not None else (sec.get("partial_score") if spec.get("partial") else None)
        )
        return None if value is None else float(value)

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {f"reward_bench/subset/{k}": v["accuracy"] for k, v in metrics["subsets"].items()}
        for name, sec in metrics["sections"].items():
            if sec["score"] is not None:
                flat[f"reward_bench/{name}"] = sec["score"]
        if metrics["overall"] is not None:
            flat["reward_bench/overall"] = metrics["overall"]
        return flat
