"""HumanEval in the sandbox: all 164 canonical solutions pass, and a deliberately wrong version of each fails.

The wrong version keeps the canonical algorithm and perturbs what it returns (a flipped bool, a number plus one,
a string with a character appended, a container with an extra element), so each problem's own tests must catch
a plausible wrong answer rather than a crash.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rmlab.evaluation.sandbox import Sandbox
from rmlab.evaluation.tasks.base import Example
from rmlab.evaluation.tasks.code import HumanEvalPlus, _read_jsonl

PERTURB = '''

import functools as _rmlab_functools


def _rmlab_perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return value + (None,)
    if isinstance(value, list):
        return value + [None]
    return 0 if value is None else None


_rmlab_canonical = {entry}


@_rmlab_functools.wraps(_rmlab_canonical)
def {entry}(*args, **kwargs):
    return _rmlab_perturb(_rmlab_canonical(*args, **kwargs))
'''


@pytest.mark.slow
def test_canonical_solutions_pass_and_wrong_ones_fail(data_dir):
    rows = _read_jsonl(data_dir / "humaneval" / "HumanEval.jsonl.gz")
    assert len(rows) == 164
    sandbox = Sandbox()
    sandbox.check()
    task = HumanEvalPlus.__new__(HumanEvalPlus)  # only its program builder is used here
    examples = [Example(id=r["task_id"], user="", reference={"prompt": r["prompt"], "test": r["test"],
                                                             "entry_point": r["entry_point"]}) for r in rows]
    right = [task.program(ex, r["canonical_solution"]) for ex, r in zip(examples, rows)]
    wrong = [task.program(ex, r["canonical_solution"] + PERTURB.format(entry=r["entry_point"]))
             for ex, r in zip(examples, rows)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        right_res = list(pool.map(sandbox.run_python, right))
        wrong_res = list(pool.map(sandbox.run_python, wrong))
    failed = [(r["task_id"], res.status, res.stderr[-300:]) for r, res in zip(rows, right_res) if not res.passed]
    assert failed == []
    passed_wrong = [r["task_id"] for r, res in zip(rows, wrong_res) if res.passed]
    assert passed_wrong == []
    assert all(res.status == "error" for res in wrong_res)  # an assertion failed: recorded, nothing crashed
