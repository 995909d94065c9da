"""Metrics from someone else's scores: RewardMATH / RewardBench-math leaderboards from published score dumps.

The RewardMATH authors publish one JSON file per model (kimsh0507/RewardMATH_official ``results/``). The kind of
file is read from its structure, never from the model's name:

- scalar: ``{problem, solution_reference[m], score[m]}`` with numbers (classifier rewards, 1-10 judge ratings);
- PRM: the same with ``score[m]`` a list of step scores, aggregated by each of :data:`PRM_AGGREGATIONS`;
- pairwise: ``{problem, solution_reference[9], score[9] = "A" | "B" | null, chosen_position[9]}``;
- PRM rows: one row per solution ``{problem_id, solution_type: chosen | rejected, output: {step_scores}}``.

The correct solution is the one whose reference is ``human_to_GPT-4`` (or ``chosen``). A file with m = 10
solutions per problem is RewardMATH; with m = 2 it is RewardBench's math-prm. Rows that repeat an earlier row
exactly are dropped and counted; a repeated problem with different content is an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rmlab.data.errors import DataValidationError
from rmlab.metrics.reward_math import PRM_AGGREGATIONS, pairwise_outcomes, problem_outcomes, summarize

CORRECT_LABELS = ("human_to_GPT-4", "chosen")


@dataclass
class Dump:
    path: Path
    kind: str  # scalar | prm | pairwise
    benchmark: str  # reward_math | reward_bench_math
    problems: list[str]
    correct: list = field(default_factory=list)  # per problem: a number, or a list of step scores
    incorrect: list = field(default_factory=list)  # per problem: list of the same
    won: np.ndarray | None = None  # pairwise: (n, k) verdicts for the correct solution
    duplicates_dropped: int = 0
    duplicate_rows: int = 0  # exact repeats of an earlier row in the file (counted or dropped, see load_dump)


def _dedupe(rows: list[dict], path: Path) -> tuple[list[dict], int]:
    seen: dict[str, int] = {}
    kept, dropped = [], 0
    for i, row in enumerate(rows):
        key = str(row.get("problem_id", row.get("problem"))) + "|" + str(row.get("solution_type", ""))
        if key in seen:
            if rows[seen[key]] != row:
                raise DataValidationError(f"{path}, row #{i}: problem repeats row #{seen[key]} with different content")
            dropped += 1
            continue
        seen[key] = i
        kept.append(row)
    return kept, dropped


def _number(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise DataValidationError(f"{where}: missing or non-numeric score {x!r}")
    return float(x)


def _split_correct(refs: list, where: str) -> int:
    idx = [j for j, r in enumerate(refs) if r in CORRECT_LABELS]
    if len(idx) != 1:
        raise DataValidationError(
            f"{where}: {len(idx)} correct solutions (solution_reference in {CORRECT_LABELS}); expected exactly 1"
        )
    return idx[0]


DUPLICATES = ("keep", "drop")


def load_dump(path: str | Path, *, duplicates: str = "keep") -> Dump:
    """Read one published score file, validating every row.

    ``duplicates``: what to do with rows that repeat an earlier row exactly (three of the RewardMATH authors'
    judge files repeat their last two problems). ``keep`` counts them as the authors' ``eval.py`` does
    (kimsh0507/RewardMATH_official@cde06ab:src/evaluation/eval.py:365-376 iterates every row), which is how their
    published numbers were computed; ``drop`` scores each problem once. RewardBench-math PRM rows are grouped by
    problem id either way (the authors' grouping overwrites a repeated row)."""
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates={duplicates!r}; valid values: {', '.join(DUPLICATES)}")
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(rows, list) or not rows:
        raise DataValidationError(f"{path}: expected a non-empty JSON list of rows")
    deduped, repeats = _dedupe(rows, path)
    if "solution_type" in rows[0]:
        dump = _load_prm_rows(deduped, path, repeats)
        dump.duplicate_rows = repeats
        return dump
    rows, dropped = (deduped, repeats) if duplicates == "drop" else (rows, 0)
    kind = (
        "pairwise"
        if "chosen_position" in rows[0]
        else ("prm" if isinstance(rows[0].get("score", [None])[0], list) else "scalar")
    )
    dump = Dump(path, kind, "", [], duplicates_dropped=dropped, duplicate_rows=repeats)
    sizes, won = set(), []
    for i, row in enumerate(rows):
        where = f"{path}, row #{i}"
        refs, scores = row.get("solution_reference"), row.get("score")
        if not isinstance(refs, list) or not isinstance(scores, list) or len(refs) != len(scores):
            raise DataValidationError(f"{where}: 'solution_reference' and 'score' must be lists of equal length")
        dump.problems.append(row.get("problem", ""))
        if kind == "pairwise":
            pos = row.get("chosen_position")
            if not isinstance(pos, list) or len(pos) != len(scores):
                raise DataValidationError(f"{where}: 'chosen_position' must match 'score' in length")
            won.append([s is not None and s == p for s, p in zip(scores, pos)])  # a null verdict is a loss
            sizes.add(len(scores) + 1)
            continue
        c = _split_correct(refs, where)
        if kind == "prm":
            steps = [
                [_number(x, f"{where}, solution {j}") for x in s]
                if isinstance(s, list) and s
                else _number(None, f"{where}, solution {j}")
                for j, s in enumerate(scores)
            ]
            dump.correct.append(steps[c])
            dump.incorrect.append([s for j, s in enumerate(steps) if j != c])
        else:
            vals = [_number(s, f"{where}, solution {j}") for j, s in enumerate(scores)]
            dump.correct.append(vals[c])
            dump.incorrect.append([v for j, v in enumerate(vals) if j != c])
        sizes.add(len(scores))
    if len(sizes) != 1:
        raise DataValidationError(f"{path}: problems have different numbers of solutions {sorted(sizes)}")
    m = sizes.pop()
    if m not in (2, 10):
        raise DataValidationError(
            f"{path}: {m} solutions per problem; expected 10 (RewardMATH: 1 correct + 9 "
            "incorrect) or 2 (RewardBench math-prm)"
        )
    dump.benchmark = "reward_math" if m == 10 else "reward_bench_math"
    if kind == "pairwise":
        dump.won = np.array(won, dtype=bool)
    return dump


def _load_prm_rows(rows: list[dict], path: Path, dropped: int) -> Dump:
    """RewardBench-math PRM outputs: one row per solution, grouped by problem_id into chosen / rejected."""
    by_id: dict[object, dict] = {}
    for i, row in enumerate(rows):
        where = f"{path}, row #{i}"
        steps = (row.get("output") or {}).get("step_scores")
        if not isinstance(steps, list) or not steps:
            raise DataValidationError(f"{where}: missing 'output.step_scores'")
        if row.get("solution_type") not in ("chosen", "rejected"):
            raise DataValidationError(f"{where}: 'solution_type' must be chosen or rejected")
        slot = by_id.setdefault(row.get("problem_id"), {"problem": row.get("problem", "")})
        if row["solution_type"] in slot:
            raise DataValidationError(
                f"{where}: second {row['solution_type']} solution for problem_id {row.get('problem_id')!r}"
            )
        slot[row["solution_type"]] = [_number(x, where) for x in steps]
    dump = Dump(path, "prm", "reward_bench_math", [], duplicates_dropped=dropped)
    for pid, slot in by_id.items():
        if "chosen" not in slot or "rejected" not in slot:
            raise DataValidationError(f"{path}: problem_id {pid!r} lacks a chosen or a rejected solution")
        dump.problems.append(slot["problem"])
        dump.correct.append(slot["chosen"])
        dump.incorrect.append([slot["rejected"]])
    return dump


def dump_metrics(dump: Dump, *, n_boot: int = 0) -> list[dict]:
    """Leaderboard rows for one dump: one row, or one per PRM aggregation."""
    name = dump.path.stem.removesuffix("_reward")
    base = {
        "model": name,
        "benchmark": dump.benchmark,
        "kind": dump.kind,
        "n": len(dump.problems),
        "duplicates_dropped": dump.duplicates_dropped,
        "duplicate_rows": dump.duplicate_rows,
        "file": dump.path.name,
    }
    k = 9 if dump.benchmark == "reward_math" else 1
    if dump.kind == "pairwise":
        return [{**base, "aggregation": None, **_strip(summarize(pairwise_outcomes(dump.won), k=k, n_boot=n_boot))}]
    if dump.kind == "scalar":
        out = problem_outcomes(np.array(dump.correct), np.array(dump.incorrect))
        return [{**base, "aggregation": None, **_strip(summarize(out, k=k, n_boot=n_boot))}]
    rows = []
    for agg in PRM_AGGREGATIONS.names():
        f = PRM_AGGREGATIONS[agg]
        c = np.array([f(s) for s in dump.correct])
        w = np.array([[f(s) for s in sols] for sols in dump.incorrect])
        rows.append({**base, "aggregation": agg, **_strip(summarize(problem_outcomes(c, w), k=k, n_boot=n_boot))})
    return rows


def _strip(summary: dict) -> dict:
    return {k: summary[k] for k in ("accuracy", "accuracy_with_ties", "mrr", "ci") if k in summary}


def leaderboard(dumps_dir: str | Path, *, n_boot: int = 0, duplicates: str = "keep") -> list[dict]:
    """Every ``*.json`` under ``dumps_dir`` (recursively), scored; sorted by benchmark then accuracy. A file with
    repeated rows is also scored the other way (``other_reading``), so both numbers are printed."""
    files = sorted(Path(dumps_dir).rglob("*.json"))
    if not files:
        raise DataValidationError(f"{dumps_dir}: no score files (*.json)")
    rows = []
    for f in files:
        dump = load_dump(f, duplicates=duplicates)
        main = dump_metrics(dump, n_boot=n_boot)
        if dump.duplicate_rows and dump.benchmark == "reward_math":
            other = "drop" if duplicates == "keep" else "keep"
            for r, o in zip(main, dump_metrics(load_dump(f, duplicates=other), n_boot=0)):
                r["other_reading"] = {
                    "duplicates": other,
                    "n": o["n"],
                    "accuracy": o["accuracy"],
                    "accuracy_with_ties": o["accuracy_with_ties"],
                    "mrr": o["mrr"],
                }
        rows += [{**r, "duplicates": duplicates} for r in main]
    return sorted(rows, key=lambda r: (r["benchmark"], -r["accuracy"], r["model"], r["aggregation"] or ""))
