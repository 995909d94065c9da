"""RewardBench 2 as a benchmark: best-of-4 accuracy with partial credit for ties at the top in five subsets, the
weighted Ties score in the sixth, and their unweighted mean (:mod:`rmlab.metrics.reward_bench_2`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, MISSING, Comparison, ScoreRequest, pct, read_reference
from rmlab.data.reward_bench_2 import SUBSET_SIZES, SUBSETS, TIES, BonPrompt, load_reward_bench_2, ties_key
from rmlab.metrics.judge import wins_and_ties
from rmlab.metrics.reward_bench_2 import best_of_n_credit, credit_from_outcomes, reward_bench_2_metrics

JUDGE_TIES = "a judge's Ties score needs its ratings on one scale (rewardbench's ratings mode); not computed here"


@BENCHMARKS.register("reward_bench_2")
class RewardBench2:
    title = "RewardBench 2"
    order = 3  # place in tables (the lab papers' benchmarks first)
    caption = "RewardBench 2 scores (%) per subset; overall = mean of the six (Malik et al. 2025, Table 3 layout)."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[BonPrompt], dict]:
        c = self.cfg
        return load_reward_bench_2(
            data_dir=c.get("data_dir"),
            hub_id=c.get("hub_id"),
            split=c.get("split", "test"),
            subsets=list(c.subsets) if c.get("subsets") else None,
            max_per_subset=c.get("max_per_subset"),
        )

    def missing(self, items: Sequence[BonPrompt]) -> list[str]:
        counts = {s: sum(p.subset == s for p in items) for s in SUBSETS}
        return [
            f"subset {s}" if counts[s] == 0 else f"{n - counts[s]} of {n} prompts of {s}"
            for s, n in SUBSET_SIZES.items()
            if counts[s] < n
        ]

    @staticmethod
    def requests(items: Sequence[BonPrompt]) -> list[ScoreRequest]:
        """Every completion alone, correct ones first (upstream's unrolled order)."""
        out = []
        for p in items:
            out += [ScoreRequest(p.prompt, t, _label(p, "chosen", i)) for i, t in enumerate(p.chosen)]
            out += [ScoreRequest(p.prompt, t, _label(p, "rejected", i)) for i, t in enumerate(p.rejected)]
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        s = np.asarray(scores, dtype=np.float64)
        credits: dict[str, list[float]] = {}
        ties: dict = {}
        rows, at = [], 0
        for p in items:
            own = s[at : at + len(p.completions)]
            at += len(p.completions)
            row = {**_row_id(p), "num_correct": len(p.chosen), "scores": own.tolist()}
            if p.subset == TIES:
                ties[ties_key(p)] = (own, len(p.chosen))
            else:
                row["credit"] = best_of_n_credit(own)
                credits.setdefault(p.subset, []).append(row["credit"])
            rows.append(row)
        if at != s.size:
            raise ValueError(f"{s.size} scores for {at} completions")
        metrics = reward_bench_2_metrics(credits, ties, n_boot=n_boot, confidence=confidence, seed=seed)
        return metrics, rows

    @staticmethod
    def comparisons(items: Sequence[BonPrompt]) -> list[Comparison]:
        """Every correct completion against every incorrect one of its prompt."""
        out = []
        for p in items:
            for i, good in enumerate(p.chosen):
                for j, bad in enumerate(p.rejected):
                    a, b = _label(p, "chosen", i), _label(p, "rejected", j)
                    out.append(Comparison(p.prompt, good, bad, f"{a}/vs/rejected#{j}", a, b))
        return out

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """From a judge: each non-Ties prompt's credit from its correct completion's three outcomes (a loss or an
        unread verdict: 0; else 1 / (1 + ties), ties and position flips alike). Ties is left out (the reason is
        in ``missing_reasons``)."""
        wins_and_ties(outcomes)  # rejects unknown outcomes
        credits: dict[str, list[float]] = {}
        rows, at = [], 0
        for p in items:
            n = len(p.chosen) * len(p.rejected)
            own = list(outcomes[at : at + n])
            at += n
            row = {**_row_id(p), "outcomes": own}
            if p.subset != TIES:
                row["credit"] = credit_from_outcomes(own)
                credits.setdefault(p.subset, []).append(row["credit"])
            rows.append(row)
        metrics = reward_bench_2_metrics(
            credits, None, n_boot=n_boot, confidence=confidence, seed=seed, missing_reasons={TIES: JUDGE_TIES}
        )
        return metrics, rows

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        def cell(name):
            m = metrics["subsets"].get(name)
            if m is None:
                return "missing"
            ci = f" [{100 * m['ci'][0]:.1f}, {100 * m['ci'][1]:.1f}]" if m.get("ci") else ""
            return f"{100 * m['score']:.2f}{ci}"

        overall = (
            f"{100 * metrics['overall']:.2f}"
            if metrics["overall"] is not None
            else (
                f"({100 * metrics['partial_overall']:.2f} partial)" if metrics["partial_overall"] is not None else "—"
            )
        )
        head = ["model", *SUBSETS, "overall"]
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            "| " + " | ".join([model_name, *(cell(s) for s in SUBSETS), overall]) + " |",
            "",
        ]
        for name, why in metrics["missing_reasons"].items():
            lines.append(f"{name}: missing ({why}).")
        if metrics["missing_subsets"]:
            lines += ["Overall (the mean of the six subsets) needs all six; a partial mean is in parentheses.", ""]
        return "\n".join(lines) + "\n"

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        return [
            bar_chart(
                {s: m["score"] for s, m in metrics["subsets"].items()},
                title=f"{model_name}: RewardBench 2",
                ylabel="score",
                path=out_dir / "reward_bench_2_subsets.png",
            )
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per prompt: its best-of-4 credit (a share where the top is tied); Ties prompts have none and are left out."""
        return {(f"{r['subset']}/id={r['id']}", ""): float(r["credit"]) for r in rows if "credit" in r}

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        if metrics["overall"] is not None:
            return float(metrics["overall"]), True
        return metrics["partial_overall"], False

    @staticmethod
    def published(reference_dir: Path) -> dict[str, float]:
        """The Average of the paper's Table 3 (25 models)."""
        rows = read_reference(reference_dir, "reward-bench-2-published.csv")
        return {r["model"]: float(r["average"]) / 100 for r in rows if r.get("average")}

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        cells = {s: pct(metrics["subsets"][s]["score"]) if s in metrics["subsets"] else MISSING for s in SUBSETS}
        overall = metrics["overall"]
        part = metrics["partial_overall"]
        cells["overall"] = (
            pct(overall) if overall is not None else (f"({pct(part)} partial)" if part is not None else MISSING)
        )
        return cells

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{subset}``: that subset's score; ``{}``: overall."""
        if spec.get("subset"):
            m = metrics["subsets"].get(spec["subset"])
            return None if m is None else float(m["score"])
        return metrics["overall"]

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {f"reward_bench_2/{s}": m["score"] for s, m in metrics["subsets"].items()}
        if metrics["overall"] is not None:
            flat["reward_bench_2/overall"] = metrics["overall"]
        return flat


def _label(p: BonPrompt, side: str, i: int) -> str:
    return f"{p.subset}/id={p.id}/{side}#{i}"


def _row_id(p: BonPrompt) -> dict:
    return {"benchmark": "reward_bench_2", "subset": p.subset, "id": p.id}
