"""PPE (Preference Proxy Evaluations, Frick et al. 2024) as two benchmarks, as reward-model papers report it (e.g.
Skywork-Reward-V2's "PPE Preference" and "PPE Correctness" columns):

- ``ppe_preference``: accuracy on the human-preference battles. A battle with a tie as the human label has no
  preferred response and is left out (counted in ``human_ties_excluded``); a battle counts when the winner's
  response scores strictly above the loser's (equal rewards count as wrong and are counted in ``rm_ties``, the lab's
  rule for every pairwise benchmark). Subsets: the card's flags (hard prompts, instruction following, math, code).
- ``ppe_correctness``: per set (MMLU-Pro, MATH, GPQA, IFEval, MBPP-Plus), the pairwise accuracy over the data's
  ``sampled_conflict_pairs`` (the correct response strictly above the incorrect one), and the best-of-32 accuracy
  (the correctness of the response the model ranks first; a k-way tie at the top scores the tied responses' mean
  correctness, the expectation of a random tie-break) beside the random pick's. The overall is the mean of the five
  sets' pairwise accuracies (the per-set table J1 reprints averages this way).

The authors' scorer (github.com/lmarena/PPE ``utils/scorers.py``) could not be read here: docs/fidelity.md marks
these rules as not checked at source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmlab.benchmarks.base import BENCHMARKS, MISSING, Comparison, ScoreRequest, pct
from rmlab.data.ppe import (
    CORRECTNESS,
    FLAGS,
    HUMAN_HUB_ID,
    HUMAN_ROWS,
    BestOfKRow,
    HumanPair,
    load_correctness,
    load_human,
)
from rmlab.metrics.bootstrap import bootstrap_mean_interval

SUBSET_TITLES = {"hard_prompt": "hard", "if_prompt": "instruction following", "math_prompt": "math", "is_code": "code"}


def _share(ok: np.ndarray, n_boot: int, confidence: float, seed: int) -> dict:
    return {
        "n": int(ok.size),
        "accuracy": float(ok.mean()) if ok.size else None,
        "ci": bootstrap_mean_interval(ok, n_boot=n_boot, confidence=confidence, seed=seed)
        if n_boot and ok.size
        else None,
    }


def _ci_text(m: dict) -> str:
    if m.get("accuracy") is None:
        return MISSING
    ci = f" [{100 * m['ci'][0]:.1f}, {100 * m['ci'][1]:.1f}]" if m.get("ci") else ""
    return f"{100 * m['accuracy']:.2f}{ci}"


@BENCHMARKS.register("ppe_preference")
class PpePreference:
    title = "PPE Preference"
    order = 6
    caption = "PPE human-preference accuracy (%), human ties left out; subsets by the dataset's flags."

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self) -> tuple[list[HumanPair], dict]:
        c = self.cfg
        return load_human(
            data_dir=c.get("data_dir"), hub_id=c.get("hub_id", HUMAN_HUB_ID), max_pairs=c.get("max_pairs")
        )

    @staticmethod
    def missing(items: Sequence[HumanPair]) -> list[str]:
        return [f"{HUMAN_ROWS - len(items)} of the {HUMAN_ROWS} battles"] if len(items) < HUMAN_ROWS else []

    @staticmethod
    def _scored(items):
        return [p for p in items if not p.tie]

    def requests(self, items: Sequence[HumanPair]) -> list[ScoreRequest]:
        """The human winner's response, then the loser's, each after the prompt (ties are not scored)."""
        out = []
        for p in self._scored(items):
            out += [ScoreRequest(p.prompt, p.chosen, f"{p.question_id}/winner"),
                    ScoreRequest(p.prompt, p.rejected, f"{p.question_id}/loser")]  # fmt: skip
        return out

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        scored = self._scored(items)
        s = np.asarray(scores, dtype=np.float64).reshape(len(scored), 2)
        ok = s[:, 0] > s[:, 1]
        rows = [
            {**_row(p), "score_winner": float(a), "score_loser": float(b), "correct": bool(c)}
            for p, (a, b), c in zip(scored, s, ok)
        ]
        metrics = self._metrics(items, ok, n_boot, confidence, seed)
        metrics["rm_ties"] = int((s[:, 0] == s[:, 1]).sum())
        return metrics, rows

    def comparisons(self, items: Sequence[HumanPair]) -> list[Comparison]:
        return [
            Comparison(
                p.prompt, p.chosen, p.rejected, p.question_id, f"{p.question_id}/winner", f"{p.question_id}/loser"
            )
            for p in self._scored(items)
        ]

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """From a judge: a battle counts when the winner's response wins."""
        scored = self._scored(items)
        ok = np.array([o == "win" for o in outcomes], dtype=bool)
        rows = [{**_row(p), "outcome": o, "correct": bool(c)} for p, o, c in zip(scored, outcomes, ok, strict=True)]
        return self._metrics(items, ok, n_boot, confidence, seed), rows

    def _metrics(self, items, ok: np.ndarray, n_boot: int, confidence: float, seed: int) -> dict:
        scored = self._scored(items)
        okf = ok.astype(np.float64)
        subsets = {
            flag: _share(okf[np.array([flag in p.flags for p in scored], dtype=bool)], n_boot, confidence, seed + k + 1)
            for k, flag in enumerate(FLAGS)
        }
        return {
            **_share(okf, n_boot, confidence, seed),
            "battles": len(items),
            "paper_battles": HUMAN_ROWS,
            "human_ties_excluded": len(items) - len(scored),
            "subsets": subsets,
        }

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        head = ["model", "accuracy", *(SUBSET_TITLES[f] for f in FLAGS)]
        cells = [_ci_text(metrics), *(_ci_text(metrics["subsets"][f]) for f in FLAGS)]
        return "\n".join([
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            "| " + " | ".join([model_name, *cells]) + " |",
            "",
            (f"PPE human preference: {metrics['n']} battles scored of {metrics['battles']} loaded "
             f"({metrics['human_ties_excluded']} human ties left out; the card has {metrics['paper_battles']})."),
            "",
        ])  # fmt: skip

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        bars = {"all": metrics["accuracy"]}
        bars |= {SUBSET_TITLES[f]: m["accuracy"] for f, m in metrics["subsets"].items() if m["accuracy"] is not None}
        return [bar_chart(bars, title=f"{model_name}: PPE preference", ylabel="accuracy",
                          path=out_dir / "ppe_preference.png")]  # fmt: skip

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per human-preference pair: its ``correct`` verdict."""
        return {(str(r["question_id"]), ""): float(r["correct"]) for r in rows}

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        return metrics["accuracy"], metrics["battles"] >= metrics["paper_battles"]

    @staticmethod
    def headline_ci(metrics: dict) -> list[float] | None:
        return metrics.get("ci")

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        return {"accuracy": pct(metrics["accuracy"]),
                **{SUBSET_TITLES[f]: pct(metrics["subsets"][f]["accuracy"]) for f in FLAGS}}  # fmt: skip

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{subset: <flag>}``: that subset's accuracy; ``{}``: all battles."""
        return metrics["subsets"][spec["subset"]]["accuracy"] if spec.get("subset") else metrics["accuracy"]

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {
            f"ppe_preference/{f}": m["accuracy"] for f, m in metrics["subsets"].items() if m["accuracy"] is not None
        }
        return {**flat, "ppe_preference/accuracy": metrics["accuracy"]}


@BENCHMARKS.register("ppe_correctness")
class PpeCorrectness:
    title = "PPE Correctness"
    order = 7
    caption = "PPE correctness (%): pairwise accuracy on conflict pairs and best-of-32 accuracy per set."

    def __init__(self, cfg):
        self.cfg = cfg
        self.sets = list(cfg.get("sets") or CORRECTNESS)

    def load(self) -> tuple[list[BestOfKRow], dict]:
        c = self.cfg
        return load_correctness(
            data_dir=c.get("data_dir"),
            sets=self.sets,
            hub_ids=dict(c.get("hub_ids") or {}),
            max_per_set=c.get("max_per_set"),
        )

    def missing(self, items: Sequence[BestOfKRow]) -> list[str]:
        counts = {name: 0 for name in CORRECTNESS}
        for r in items:
            counts[r.set] += 1
        return [
            f"{name}: {counts[name]} of {rows} rows" if counts[name] else f"{name}: not loaded"
            for name, (_, rows) in CORRECTNESS.items()
            if counts[name] < rows
        ]

    @staticmethod
    def requests(items: Sequence[BestOfKRow]) -> list[ScoreRequest]:
        """Every response of every row, after its prompt."""
        return [
            ScoreRequest(r.prompt, t, f"{r.key}/response_{j + 1}") for r in items for j, t in enumerate(r.responses)
        ]

    def compute(self, items, scores, *, n_boot: int, confidence: float, seed: int) -> tuple[dict, list[dict]]:
        s = np.asarray(scores, dtype=np.float64).reshape(len(items), -1)
        pair_ok, top, rows = [], [], []
        for r, own in zip(items, s):
            ok = [bool(own[a] > own[b]) for a, b in r.conflict_pairs]
            best = np.flatnonzero(own == own.max())
            top.append(float(np.mean([r.correct[j] for j in best])))
            pair_ok.append(ok)
            rows.append({**_row_bok(r), "scores": own.tolist(), "pairs_correct": ok, "best_of_k": top[-1]})
        return self._metrics(items, pair_ok, top, n_boot, confidence, seed), rows

    @staticmethod
    def comparisons(items: Sequence[BestOfKRow]) -> list[Comparison]:
        """The correct response against the incorrect one, for each conflict pair."""
        return [
            Comparison(
                r.prompt,
                r.responses[a],
                r.responses[b],
                f"{r.key}/pair#{j}",
                f"{r.key}/response_{a + 1}",
                f"{r.key}/response_{b + 1}",
            )
            for r in items
            for j, (a, b) in enumerate(r.conflict_pairs)
        ]

    def compute_comparisons(
        self, items, outcomes: Sequence[str], *, n_boot: int, confidence: float, seed: int, preferences=None
    ) -> tuple[dict, list[dict]]:
        """From a judge: pairwise accuracy on the conflict pairs (best-of-32 needs a score per response: absent)."""
        pair_ok, rows, at = [], [], 0
        for r in items:
            ok = [o == "win" for o in outcomes[at : at + len(r.conflict_pairs)]]
            at += len(r.conflict_pairs)
            pair_ok.append(ok)
            rows.append({**_row_bok(r), "pairs_correct": ok})
        if at != len(outcomes):
            raise ValueError(f"{len(outcomes)} judge outcomes for {at} conflict pairs")
        return self._metrics(items, pair_ok, None, n_boot, confidence, seed), rows

    def _metrics(self, items, pair_ok, top, n_boot, confidence, seed) -> dict:
        sets = {}
        for k, name in enumerate(CORRECTNESS):
            idx = [i for i, r in enumerate(items) if r.set == name]
            if not idx:
                continue
            flat = np.array([c for i in idx for c in pair_ok[i]], dtype=np.float64)
            m = _share(flat, n_boot, confidence, seed + k)
            sets[name] = {
                "rows": len(idx),
                "paper_rows": CORRECTNESS[name][1],
                "complete": len(idx) >= CORRECTNESS[name][1],
                "pairs": m["n"],
                "pairwise_accuracy": m["accuracy"],
                "ci": m["ci"],
                "best_of_k_accuracy": None if top is None else float(np.mean([top[i] for i in idx])),
                "random_pick": float(np.mean([np.mean(items[i].correct) for i in idx])),
            }
        scored = [m["pairwise_accuracy"] for m in sets.values() if m["pairwise_accuracy"] is not None]
        whole = len(sets) == len(CORRECTNESS) and all(m["complete"] for m in sets.values())
        return {
            "sets": sets,
            "overall": float(np.mean(scored)) if whole else None,
            "partial_overall": None if whole else (float(np.mean(scored)) if scored else None),
        }

    @staticmethod
    def table(metrics: dict, model_name: str) -> str:
        lines = ["| model | set | rows | conflict pairs | pairwise accuracy | best-of-32 | random pick |",
                 "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, m in metrics["sets"].items():
            part = "" if m["complete"] else f" (partial: {m['rows']} of {m['paper_rows']})"
            lines.append(
                f"| {model_name} | {name}{part} | {m['rows']} | {m['pairs']} | "
                f"{_ci_text({'accuracy': m['pairwise_accuracy'], 'ci': m['ci']})} | {pct(m['best_of_k_accuracy'])} | "
                f"{pct(m['random_pick'])} |"
            )
        overall = metrics["overall"]
        shown = pct(overall) if overall is not None else f"withheld (partial mean {pct(metrics['partial_overall'])})"
        lines += ["", f"Overall (mean of the five sets' pairwise accuracies): {shown}", ""]
        return "\n".join(lines)

    @staticmethod
    def figures(metrics: dict, model_name: str, out_dir: Path) -> list[Path]:
        from rmlab.utils.plots import bar_chart

        bars = {n: m["pairwise_accuracy"] for n, m in metrics["sets"].items() if m["pairwise_accuracy"] is not None}
        return [bar_chart(bars, title=f"{model_name}: PPE correctness", ylabel="pairwise accuracy",
                          path=out_dir / "ppe_correctness.png")]  # fmt: skip

    @staticmethod
    def item_outcomes(rows: list[dict]) -> dict:
        """Per conflict pair, clustered by (set, prompt, sampling model): whether the correct response ranked first."""
        return {
            (f"{r['set']}/{r['question_id']}/{r['model_name']}", str(j)): float(ok)
            for r in rows
            for j, ok in enumerate(r["pairs_correct"])
        }

    @staticmethod
    def headline(metrics: dict) -> tuple[float | None, bool]:
        if metrics["overall"] is not None:
            return metrics["overall"], True
        return metrics["partial_overall"], False

    @staticmethod
    def columns(metrics: dict) -> dict[str, str]:
        cells = {}
        for name in CORRECTNESS:
            m = metrics["sets"].get(name)
            cells[name] = (
                MISSING if m is None else pct(m["pairwise_accuracy"]) + ("" if m["complete"] else " (partial)")
            )
        o, p = metrics["overall"], metrics["partial_overall"]
        cells["overall"] = pct(o) if o is not None else (f"({pct(p)} partial)" if p is not None else MISSING)
        return cells

    @staticmethod
    def group_score(metrics: dict, spec) -> float | None:
        """``{set: <name>}``: that set's pairwise accuracy; ``{}``: overall."""
        if spec.get("set"):
            m = metrics["sets"].get(spec["set"])
            return None if m is None else m["pairwise_accuracy"]
        return metrics["overall"]

    @staticmethod
    def log_scalars(metrics: dict) -> dict[str, float]:
        flat = {f"ppe_correctness/{n}": m["pairwise_accuracy"] for n, m in metrics["sets"].items()}
        flat |= {f"ppe_correctness/{n}_best_of_k": m["best_of_k_accuracy"] for n, m in metrics["sets"].items()
                 if m["best_of_k_accuracy"] is not None}  # fmt: skip
        if metrics["overall"] is not None:
            flat["ppe_correctness/overall"] = metrics["overall"]
        return flat


def _row(p: HumanPair) -> dict:
    return {"benchmark": "ppe_preference", "question_id": p.question_id, "language": p.language, "flags": list(p.flags)}


def _row_bok(r: BestOfKRow) -> dict:
    return {"benchmark": "ppe_correctness", "set": r.set, "question_id": r.question_id, "model_name": r.model_name}
