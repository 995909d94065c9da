"""RMB as a benchmark: pairwise accuracy and best-of-N accuracy, for helpfulness and harmlessness.

Rules (``../shared/data/rmb/SOURCES.md``): a pair is correct iff the chosen response scores strictly above the
rejected one (upstream ``eval/scripts/my_run_rm.py:324,368,396``); a best-of-N list is correct iff its best response
scores strictly above every loser (upstream ships no BoN scorer: RM-R1's re-implementation,
``eval/RMB-Reward-Model-Benchmark/eval/scripts/run_rm_bestofn.py:304,365,414-445``). Each of the four sections is
micro-averaged over its pairs or lists (``my_run_rm.py:420``), and the overall score is the unweighted mean of the
four (``scripts/process_final_result.py:32-39``). A section whose data are short of the paper's count is marked
partial, and the overall is then withheld (a partial mean is shown beside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, MISSING, Comparison, ScoreRequest, pct, read_reference
from rmlab.data.rmb import GOALS, PAPER_COUNTS, SETS, RmbItem, load_rmb, section_name
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.metrics.judge import wins_and_ties

SECTIONS = [section_name(k, g) for k in SETS for g in GOALS]


@BENCHMARKS.register("rmb")
class Rmb:
    title = "RMB"
    order = 5  # place in tables (the lab papers' benchmarks first)
    caption = "RMB accuracy (%): pairwise and best-of-N, helpfulness and harmlessness; overall = mean of the four."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[RmbItem], dict]:
        c = self.cfg
        return load_rmb(
            data_dir=c.get("data_dir"),
            sets=list(c.get("sets") or SETS),
            goals=list(c.get("goals") or GOALS),
            max_per_file=c.get("max_per_file"),
        )

    def missing(self, items: Sequence[RmbItem]) -> list[str]:
        """Each section short of the paper's count (here: three large pairwise files are absent), and any section
        not loaded."""
        counts = {key: 0 for key in PAPER_COUNTS}
        for i in items:
            counts[(i.set, i.goal)] += 1
        return [
            f"{section_name(*key)}: {counts[key]} of {n}" if counts[key] else f"{section_name(*key)}: not loaded"
            for key, n in PAPER_COUNTS.items()
            if counts[key] < n
        ]

    @staticmethod
    def requests(items: Sequence[RmbItem]) -> list[ScoreRequest]:
        """The best response, then each loser, each after the whole conversation (upstream's chat: the turns, then
        ``{assistant: answer}``)."""
        out = []
        for i in items:
            out.append(ScoreRequest(i.conversation, i.best, f"{i.key}/best"))
            out += [ScoreRequest(i.conversation, t, f"{i.key}/loser#{j}") for j, t in enumerate(i.losers)]
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        s = np.asarray(scores, dtype=np.float64)
        correct, rows, at = [], [], 0
        for i in items:
            own = s[at : at + 1 + len(i.losers)]
            at += 1 + len(i.losers)
            ok = bool(np.all(own[0] > own[1:]))
            correct.append(ok)
            rows.append({**_row_id(i), "best": float(own[0]), "losers": own[1:].tolist(), "correct": ok})
        if at != s.size:
            raise ValueError(f"{s.size} scores for {at} responses")
        return self._metrics(items, correct, n_boot, confidence, seed), rows

    @staticmethod
    def comparisons(items: Sequence[RmbItem]) -> list[Comparison]:
        """The best response against each loser."""
        return [
            Comparison(i.conversation, i.best, t, f"{i.key}/best/vs/loser#{j}", f"{i.key}/best", f"{i.key}/loser#{j}")
            for i in items
            for j, t in enumerate(i.losers)
        ]

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """From a judge: a pair or list is correct iff the best response wins every comparison."""
        wins, _ = wins_and_ties(outcomes)
        correct, rows, at = [], [], 0
        for i in items:
            own = wins[at : at + len(i.losers)]
            correct.append(bool(own.all()))
            rows.append({**_row_id(i), "outcomes": list(outcomes[at : at + len(i.losers)]), "correct": correct[-1]})
            at += len(i.losers)
        return self._metrics(items, correct, n_boot, confidence, seed), rows

    def _metrics(self, items, correct, n_boot, confidence, seed) -> dict:
        ok = np.asarray(correct, dtype=np.float64)
        sections, by_category = {}, {}
        for k, name in enumerate(SECTIONS):
            mask = np.array([i.section == name for i in items])
            if not mask.any():
                continue
            key = next(key for key in PAPER_COUNTS if section_name(*key) == name)
            sections[name] = {
                "n": int(mask.sum()),
                "paper_n": PAPER_COUNTS[key],
                "complete": int(mask.sum()) >= PAPER_COUNTS[key],
                "accuracy": float(ok[mask].mean()),
                "ci": bootstrap_mean_interval(ok[mask], n_boot=n_boot, confidence=confidence, seed=seed + k)
                if n_boot
                else None,
            }
        for i, c in zip(items, ok):
            by_category.setdefault(i.category_path, []).append(c)
        scored = [m["accuracy"] for m in sections.values()]
        whole = len(sections) == len(SECTIONS) and all(m["complete"] for m in sections.values())
        return {
            "sections": sections,
            "categories": {p: {"n": len(v), "accuracy": float(np.mean(v))} for p, v in sorted(by_category.items())},
            "overall": float(np.mean(scored)) if whole else None,
            "partial_overall": None if whole else (float(np.mean(scored)) if scored else None),
        }

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        def cell(name):
            m = metrics["sections"].get(name)
            if m is None:
                return "not loaded"
            ci = f" [{100 * m['ci'][0]:.1f}, {100 * m['ci'][1]:.1f}]" if m.get("ci") else ""
            mark = "" if m["complete"] else f" (partial: {m['n']} of {m['paper_n']})"
            return f"{100 * m['accuracy']:.2f}{ci}{mark}"

        overall = (
            f"{100 * metrics['overall']:.2f}"
            if metrics["overall"] is not None
            else (
                f"({100 * metrics['partial_overall']:.2f} partial)" if metrics["partial_overall"] is not None else "—"
            )
        )
        head = ["model", *SECTIONS, "overall"]
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            "| " + " | ".join([model_name, *(cell(s) for s in SECTIONS), overall]) + " |",
            "",
        ]
        if metrics["overall"] is None:
            lines += [
                (
                    "A section short of the paper's count is partial (../shared/data/rmb lacks three large pairwise "
                    "files); the overall, the mean of the four sections, is then not comparable with published "
                    "full-set numbers and is shown in parentheses."
                ),
                "",
            ]
        return "\n".join(lines)

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        return [
            bar_chart(
                {s: m["accuracy"] for s, m in metrics["sections"].items()},
                title=f"{model_name}: RMB",
                ylabel="accuracy",
                path=out_dir / "rmb_sections.png",
            )
        ]

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per record: its ``correct`` verdict (pairwise: the chosen first; best-of-n: the best above every loser)."""
        return {(f"{r['set']}/{r['category_path']}/{r['uid']}", ""): float(r["correct"]) for r in rows}

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        if metrics["overall"] is not None:
            return float(metrics["overall"]), True
        return metrics["partial_overall"], False

    @staticmethod
    def published(reference_dir: Path) -> dict[str, float]:
        """The mean of the four sections for RM-R1's two 32B models (RM-R1's result files: the full set)."""
        rows = read_reference(reference_dir, "rmb-published.csv")
        return {r["model"]: float(r["accuracy"]) for r in rows if r["section"] == "Average of four sections"}

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        cells = {}
        for s in SECTIONS:
            m = metrics["sections"].get(s)
            cells[s] = MISSING if m is None else pct(m["accuracy"]) + ("" if m["complete"] else " (partial)")
        overall, part = metrics["overall"], metrics["partial_overall"]
        cells["overall"] = (
            pct(overall) if overall is not None else (f"({pct(part)} partial)" if part is not None else MISSING)
        )
        return cells

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{section}``: that section's accuracy; ``{}``: overall."""
        if spec.get("section"):
            m = metrics["sections"].get(spec["section"])
            return None if m is None else float(m["accuracy"])
        return metrics["overall"]

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {f"rmb/{s}": m["accuracy"] for s, m in metrics["sections"].items()}
        if metrics["overall"] is not None:
            flat["rmb/overall"] = metrics["overall"]
        return flat


def _row_id(i: RmbItem) -> dict:
    return {"benchmark": "rmb", "set": i.set, "goal": i.goal, "uid": i.uid, "category_path": i.category_path}
