"""RewardMATH data (Kim et al. 2024, arXiv 2410.01729; Hub ``RewardMATH/RewardMATH``).

One row per solution: ``problem``, ``eval_solution`` (the solution as a list of steps), ``solution_reference``
(who wrote it; ``human_to_GPT-4`` marks the one correct solution, rewritten by GPT-4 from the human MATH
solution; the others are incorrect), ``subject``, ``level``, ``problem_id``. Rows are grouped into problems of
one correct and ``k`` (9) incorrect solutions. The same row format holds RewardBench's math-prm pairs (k = 1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)

CORRECT_REFERENCE = "human_to_GPT-4"


@dataclass(frozen=True)
class MathSolution:
    steps: tuple[str, ...]
    reference: str

    @property
    def text(self) -> str:
        """The assistant turn: the steps joined by newlines (RewardMATH's scoring format)."""
        return "\n".join(self.steps)


@dataclass(frozen=True)
class MathProblem:
    problem_id: int | str
    problem: str
    correct: MathSolution
    incorrect: tuple[MathSolution, ...]
    subject: str = ""
    level: int | None = None


def _steps(row: dict, where: str) -> tuple[str, ...]:
    sol = row.get("eval_solution")
    if isinstance(sol, str):
        sol = [sol]
    if not isinstance(sol, list) or not sol or not all(isinstance(s, str) for s in sol) or not "".join(sol).strip():
        raise DataValidationError(f"{where}: field 'eval_solution' must be a non-empty list of step strings")
    return tuple(sol)


def group_problems(
    rows: Iterable[dict], *, source: str, n_incorrect: int | None, correct_reference: str = CORRECT_REFERENCE
) -> list[MathProblem]:
    """Group solution rows into problems and check each has one correct and ``n_incorrect`` incorrect solutions."""
    groups: dict[object, dict] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, row #{index}: expected a JSON object")
        pid = row.get("problem_id", row.get("problem"))
        where = f"{source}, row #{index} (problem_id={pid!r})"
        problem = row.get("problem")
        if not isinstance(problem, str) or not problem.strip():
            raise DataValidationError(f"{where}: field 'problem' must be a non-empty string")
        ref = row.get("solution_reference")
        if not isinstance(ref, str):
            raise DataValidationError(f"{where}: field 'solution_reference' must be a string")
        g = groups.setdefault(
            pid,
            {
                "problem": problem,
                "correct": [],
                "incorrect": [],
                "subject": row.get("subject", ""),
                "level": row.get("level"),
                "first": index,
            },
        )
        if g["problem"] != problem:
            raise DataValidationError(f"{where}: field 'problem' differs from earlier rows of the same problem_id")
        sol = MathSolution(_steps(row, where), ref)
        g["correct" if ref == correct_reference else "incorrect"].append(sol)
    problems = []
    for pid, g in groups.items():
        where = f"{source}, problem_id={pid!r} (first row #{g['first']})"
        if len(g["correct"]) != 1:
            raise DataValidationError(
                f"{where}: {len(g['correct'])} correct solutions "
                f"(solution_reference {correct_reference!r}); expected exactly 1"
            )
        if n_incorrect is not None and len(g["incorrect"]) != n_incorrect:
            raise DataValidationError(f"{where}: {len(g['incorrect'])} incorrect solutions; expected {n_incorrect}")
        problems.append(
            MathProblem(pid, g["problem"], g["correct"][0], tuple(g["incorrect"]), str(g["subject"] or ""), g["level"])
        )
    return problems


def load_reward_math(
    *,
    path: str | None,
    hub_id: str | None,
    split: str | None = None,
    n_incorrect: int = 9,
    max_problems: int | None = None,
) -> tuple[list[MathProblem], dict]:
    """Load RewardMATH problems from a local file when it exists, else from the Hub."""
    if path and Path(path).is_file():
        problems = group_problems(read_records(path), source=str(path), n_incorrect=n_incorrect)
        source = str(Path(path).resolve())
    elif hub_id:
        import datasets

        ds = datasets.load_dataset(hub_id, split=split) if split else datasets.load_dataset(hub_id)
        if isinstance(ds, datasets.DatasetDict):
            if len(ds) != 1:
                raise DataValidationError(f"{hub_id}: several splits {list(ds)}; set benchmark.split")
            ds = next(iter(ds.values()))
        problems = group_problems(iter(ds), source=hub_id, n_incorrect=n_incorrect)
        source = hub_id
    else:
        raise DataValidationError(f"RewardMATH: file {path!r} does not exist and no hub_id is configured")
    if max_problems:
        problems = problems[:max_problems]
    return problems, {"source": source, "data_fingerprint": fingerprint(problems)}


def fingerprint(problems: Sequence[MathProblem]) -> str:
    return stable_hash(
        [[str(p.problem_id), p.problem, p.correct.text, [s.text for s in p.incorrect]] for p in problems]
    )
