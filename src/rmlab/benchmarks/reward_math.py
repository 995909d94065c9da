"""RewardMATH as a benchmark: the correct solution against 9 incorrect ones, per problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, Comparison, ScoreRequest, pct
from rmlab.data.reward_math import MathProblem, MathSolution, load_reward_math
from rmlab.metrics.judge import wins_and_ties
from rmlab.metrics.reward_math import pairwise_outcomes, problem_outcomes, summarize

PROBLEMS = 483  # RewardMATH's problems, 1 correct and 9 incorrect solutions each (the Hub dataset, the paper)


@BENCHMARKS.register("reward_math")
class RewardMath:
    title = "RewardMATH"
    order = 2  # place in tables (the lab papers' benchmarks first)
    caption = "RewardMATH accuracy (%) and mean reciprocal rank."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[MathProblem], dict]:
        c = self.cfg
        return load_reward_math(
            path=c.get("path"),
            hub_id=c.get("hub_id"),
            split=c.get("split"),
            n_incorrect=c.get("n_incorrect", 9),
            max_problems=c.get("max_problems"),
        )

    def missing(self, items: Sequence[MathProblem]) -> list[str]:
        """Problems short of the benchmark's 483 (a subsample, or the authors' 2-problem sample; the loader already
        refuses problems without their nine incorrect solutions)."""
        out = [f"max_problems={self.cfg.max_problems}"] if self.cfg.get("max_problems") else []
        return out + ([f"{len(items)} of the {PROBLEMS} problems"] if len(items) < PROBLEMS else [])

    @staticmethod
    def requests(items: Sequence[MathProblem]) -> list[ScoreRequest]:
        out = []
        for p in items:
            for j, sol in enumerate((p.correct, *p.incorrect)):
                out.append(ScoreRequest(p.problem, sol.text, f"problem_id={p.problem_id}/{sol.reference}#{j}"))
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        k = len(items[0].incorrect)
        s = np.asarray(scores, dtype=np.float64).reshape(len(items), k + 1)
        outcomes = problem_outcomes(s[:, 0], s[:, 1:])
        metrics = _summarize(items, outcomes, k=k, n_boot=n_boot, confidence=confidence, seed=seed)
        rows = [
            {
                **_row_id(p),
                "solution_reference": [p.correct.reference, *[x.reference for x in p.incorrect]],
                "score": row.tolist(),
            }
            for p, row in zip(items, s)
        ]
        return metrics, rows

    @staticmethod
    def comparisons(items: Sequence[MathProblem]) -> list[Comparison]:
        """The correct solution against each incorrect one (``k`` per problem), each solution written as a judge
        sees it in RewardMATH's judge prompts: its steps as a numbered list (``src/utils/utils.py:16-24``)."""
        out = []
        for p in items:
            where = f"problem_id={p.problem_id}"
            for j, sol in enumerate(p.incorrect, start=1):
                out.append(
                    Comparison(
                        p.problem,
                        numbered_steps(p.correct),
                        numbered_steps(sol),
                        f"{where}/{p.correct.reference}#0/{sol.reference}#{j}",
                        f"{where}/{p.correct.reference}#0",
                        f"{where}/{sol.reference}#{j}",
                    )
                )
        return out

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """One-vs-nine from the judge's outcomes: a problem is won only if all ``k`` comparisons are."""
        k = len(items[0].incorrect)
        cells = np.asarray(outcomes, dtype=object).reshape(len(items), k)
        won, tied = wins_and_ties(cells.ravel())
        per_problem = pairwise_outcomes(won.reshape(cells.shape), tied.reshape(cells.shape))
        metrics = _summarize(items, per_problem, k=k, n_boot=n_boot, confidence=confidence, seed=seed)
        rows = [
            {
                **_row_id(p),
                "solution_reference": [x.reference for x in p.incorrect],  # the correct one's opponents
                "outcome": row.tolist(),
            }
            for p, row in zip(items, cells)
        ]
        return metrics, rows

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        rb = metrics["random_baseline"]
        lines = [
            "| model | n | accuracy | accuracy (ties count) | MRR |",
            "|---|---|---|---|---|",
            (
                f"| {model_name} | {metrics['n']} | {100 * metrics['accuracy']:.2f} | "
                f"{100 * metrics['accuracy_with_ties']:.2f} | {100 * metrics['mrr']:.2f} |"
            ),
            f"| random | | {100 * rb['accuracy']:.2f} | {100 * rb['accuracy']:.2f} | {100 * rb['mrr']:.2f} |",
            "",
        ]
        for key, title in (("by_subject", "subject"), ("by_level", "level")):
            lines += [f"| {title} | n | accuracy | MRR |", "|---|---|---|---|"]
            for name, m in metrics.get(key, {}).items():
                lines.append(f"| {name} | {m['n']} | {100 * m['accuracy']:.2f} | {100 * m['mrr']:.2f} |")
            lines.append("")
        return "\n".join(lines)

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        return [
            bar_chart(
                {s: m["accuracy"] for s, m in metrics.get("by_subject", {}).items()},
                title=f"{model_name}: RewardMATH accuracy by subject",
                ylabel="accuracy",
                path=out_dir / "reward_math_subjects.png",
            )
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per problem: 1 where the correct solution beat all nine incorrect ones (the accuracy's own rule)."""
        out = {}
        for r in rows:
            if "outcome" in r:
                won = all(o == "win" for o in r["outcome"])
            else:
                won = all(r["score"][0] > s for s in r["score"][1:])
            out[(f"problem={r['problem_id']}", "")] = float(won)
        return out

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        return float(metrics["accuracy"]), metrics["n"] >= PROBLEMS

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        return {"accuracy": pct(metrics["accuracy"]), "MRR": f"{metrics['mrr']:.3f}", "n": str(metrics["n"])}

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{subject}`` or ``{level}``: the accuracy on those problems; ``{}``: the accuracy."""
        for key, field in (("subject", "by_subject"), ("level", "by_level")):
            if spec.get(key) is not None:
                m = metrics.get(field, {}).get(str(spec[key]))
                return None if m is None else float(m["accuracy"])
        return float(metrics["accuracy"])

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        return {
            "reward_math/accuracy": metrics["accuracy"],
            "reward_math/accuracy_with_ties": metrics["accuracy_with_ties"],
            "reward_math/mrr": metrics["mrr"],
        }


def numbered_steps(solution: MathSolution) -> str:
    """``1. step\n2. step ...``: RewardMATH's ``numbered_list_prompt``, how its judge prompts show a solution."""
    return "\n".join(f"{i}. {step}" for i, step in enumerate(solution.steps, start=1))


def _summarize(
    items: Sequence[MathProblem], outcomes: dict, *, k: int, n_boot: int, confidence: float, seed: int
) -> dict:
    return summarize(
        outcomes,
        subjects=[p.subject for p in items],
        levels=[p.level for p in items],
        k=k,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )


def _row_id(p: MathProblem) -> dict:
    """What identifies a per-problem row, for scores and judge outcomes alike."""
    return {"benchmark": "reward_math", "problem_id": p.problem_id, "subject": p.subject, "level": p.level}
