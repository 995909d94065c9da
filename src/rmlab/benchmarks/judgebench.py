"""JudgeBench as a benchmark: pairs of one correct and one incorrect response, judged in both orders
(:mod:`rmlab.metrics.judgebench`), accuracy per category (knowledge, reasoning, math, coding) and overall."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, Comparison, ScoreRequest, pct, read_reference
from rmlab.data.judgebench import CATEGORIES, SPLIT_SIZES, JudgePair, load_judgebench
from rmlab.metrics.judgebench import judgebench_metrics, pair_correct, preference_counter, reward_model_decisions


@BENCHMARKS.register("judgebench")
class JudgeBench:
    title = "JudgeBench"
    order = 4  # place in tables (the lab papers' benchmarks first)
    caption = "JudgeBench accuracy (%) per category, both orders (Tan et al. 2025, Tables 1-3 layout)."

    def __init__(self, cfg):
        self.cfg = cfg
        self.both_orders = bool(cfg.get("both_orders", True))

    def load(self) -> tuple[list[JudgePair], dict]:
        c = self.cfg
        return load_judgebench(
            data_dir=c.get("data_dir"),
            hub_id=c.get("hub_id"),
            split=c.get("split", "gpt"),
            max_pairs=c.get("max_pairs"),
        )

    def missing(self, items: Sequence[JudgePair]) -> list[str]:
        """Pairs of the split absent from ``items`` (a subsample, or a short file)."""
        split = self.cfg.get("split", "gpt")
        n = SPLIT_SIZES[split]
        return [f"{n - len(items)} of the {n} pairs of split {split}"] if len(items) < n else []

    @staticmethod
    def requests(items: Sequence[JudgePair]) -> list[ScoreRequest]:
        """Each response alone, as ``[user: question, assistant: response]`` (upstream ``utils/judges.py:453-573``)."""
        out = []
        for p in items:
            out.append(ScoreRequest(p.question, p.response_a, f"{p.category}/pair_id={p.pair_id}/A"))
            out.append(ScoreRequest(p.question, p.response_b, f"{p.category}/pair_id={p.pair_id}/B"))
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        s = np.asarray(scores, dtype=np.float64).reshape(len(items), 2)
        correct, rows = [], []
        for p, (a, b) in zip(items, s):
            games = reward_model_decisions(a, b)
            ok = pair_correct(p.label, games if self.both_orders else games[:1])
            correct.append(ok)
            rows.append({**_row_id(p), "score_A": float(a), "score_B": float(b), "correct": ok})
        return self._metrics(items, correct, n_boot, confidence, seed), rows

    @staticmethod
    def comparisons(items: Sequence[JudgePair]) -> list[Comparison]:
        """The correct response against the incorrect one, one per pair."""
        out = []
        for p in items:
            where = f"{p.category}/pair_id={p.pair_id}"
            good, bad = ("A", "B") if p.label == "A>B" else ("B", "A")
            out.append(Comparison(p.question, p.correct, p.incorrect, where, f"{where}/{good}", f"{where}/{bad}"))
        return out

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """From a judge. Pairwise (``preferences``: per pair, the preference of each order the judge was asked in):
        upstream's counter rule, so one correct verdict and one tie or unread verdict is correct. Rating: the
        outcome must be a win (the reward-model rule: equal ratings lose)."""
        if preferences is None:
            correct = [o == "win" for o in outcomes]
        else:
            if not self.both_orders:
                raise ValueError(
                    "benchmark.both_orders=false is for reward models; a pairwise judge is asked both ways"
                )
            correct = [preference_counter(p) > 0 for p in preferences]
        rows = [{**_row_id(p), "outcome": o, "correct": ok} for p, o, ok in zip(items, outcomes, correct, strict=True)]
        return self._metrics(items, correct, n_boot, confidence, seed), rows

    def _metrics(self, items, correct, n_boot, confidence, seed) -> dict:
        m = judgebench_metrics(correct, [p.category for p in items], n_boot=n_boot, confidence=confidence, seed=seed)
        return {**m, "split": self.cfg.get("split", "gpt"), "both_orders": self.both_orders}

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        def cell(m):
            if m["accuracy"] is None:
                return "missing"
            ci = f" [{100 * m['ci'][0]:.1f}, {100 * m['ci'][1]:.1f}]" if m.get("ci") else ""
            return f"{100 * m['accuracy']:.2f}{ci}"

        head = ["model", *CATEGORIES, "overall"]
        cats = metrics["categories"]
        return "\n".join(
            [
                "| " + " | ".join(head) + " |",
                "|" + "---|" * len(head),
                "| " + " | ".join([model_name, *(cell(cats[c]) for c in CATEGORIES), cell(metrics)]) + " |",
                "",
                f"JudgeBench split {metrics['split']}, {metrics['n']} pairs; "
                + ("both orders (upstream's counter rule)." if metrics["both_orders"] else "one order (game 1)."),
                "",
            ]
        )

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        return [
            bar_chart(
                {c: m["accuracy"] for c, m in metrics["categories"].items() if m["accuracy"] is not None},
                title=f"{model_name}: JudgeBench",
                ylabel="accuracy",
                path=out_dir / "judgebench_categories.png",
            )
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per pair: its ``correct`` verdict (the headline's own)."""
        return {(str(r["pair_id"]), ""): float(r["correct"]) for r in rows}

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        """Overall accuracy (pair-weighted); complete when every category has pairs (the run's own ``complete``
        also counts the pairs)."""
        return float(metrics["accuracy"]), not metrics["missing_categories"]

    @staticmethod
    def headline_ci(metrics: dict) -> list[float] | None:
        return metrics.get("ci")

    @staticmethod
    def published(reference_dir: Path) -> dict[str, float]:
        """Overall accuracy of the paper's Tables 1-3 (GPT-4o split); a judge in two tables keeps its Table 2 row."""
        rows = read_reference(reference_dir, "judgebench-published.csv")
        return {
            r["judge"]: float(r["overall"]) / 100 for r in sorted(rows, key=lambda r: r["table"]) if r.get("overall")
        }

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        cells = {c: pct(m["accuracy"]) for c, m in metrics["categories"].items()}
        return {**cells, "overall": pct(metrics["accuracy"]), "n": str(metrics["n"])}

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{category}``: that category's accuracy; ``{}``: overall."""
        if spec.get("category"):
            return metrics["categories"][spec["category"]]["accuracy"]
        return float(metrics["accuracy"])

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {f"judgebench/{c}": m["accuracy"] for c, m in metrics["categories"].items() if m["accuracy"] is not None}
        return {**flat, "judgebench/overall": metrics["accuracy"]}


def _row_id(p: JudgePair) -> dict:
    return {
        "benchmark": "judgebench",
        "pair_id": p.pair_id,
        "source": p.source,
        "category": p.category,
        "label": p.label,
    }
