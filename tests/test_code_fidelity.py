"""HumanEval in the sandbox: all 164 canonical solutions pass, and a deliberately wrong version of each fails;
and a program cannot fake a pass.

The wrong version keeps the canonical algorithm and perturbs what it returns (a flipped bool, a number plus one,
a string with a character appended, a container with an extra element), so each problem's own tests must catch
a plausible wrong answer rather than a crash.

Faked passes, on a small problem in each task's format: exiting 0 before the tests (``os._exit``, ``sys.exit``,
``SystemExit`` in the function under test), printing pass-like lines, and a signal forged from everything the
program can read, written to every file descriptor it has. Each must fail; only the harness's signal passes.
"""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from rmlab.policy_eval.harness import MESSAGE
from rmlab.policy_eval.sandbox import Limits, RunResult, Sandbox
from rmlab.policy_eval.tasks.base import Example
from rmlab.policy_eval.tasks.code import HumanEvalPlus, MBPPPlus, _read_jsonl

PERTURB = """

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
"""


@pytest.mark.slow
def test_canonical_solutions_pass_and_wrong_ones_fail(data_dir):
    rows = _read_jsonl(data_dir / "humaneval" / "HumanEval.jsonl.gz")
    assert len(rows) == 164
    sandbox = Sandbox()
    sandbox.check()
    task = HumanEvalPlus.__new__(HumanEvalPlus)  # only its program builder is used here
    examples = [
        Example(
            id=r["task_id"],
            user="",
            reference={"prompt": r["prompt"], "test": r["test"], "entry_point": r["entry_point"]},
        )
        for r in rows
    ]
    right = [task.program(ex, r["canonical_solution"]) for ex, r in zip(examples, rows)]
    wrong = [
        task.program(ex, r["canonical_solution"] + PERTURB.format(entry=r["entry_point"]))
        for ex, r in zip(examples, rows)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:  # as CodeTask.score runs them: under the test harness
        right_res = list(pool.map(sandbox.run_tests, right))
        wrong_res = list(pool.map(sandbox.run_tests, wrong))
    failed = [(r["task_id"], res.status, res.stderr[-300:]) for r, res in zip(rows, right_res) if not res.passed]
    assert failed == []
    passed_wrong = [r["task_id"] for r, res in zip(rows, wrong_res) if res.passed]
    assert passed_wrong == []
    assert all(res.status == "error" for res in wrong_res)  # an assertion failed: recorded, nothing crashed


# ---- a pass is the harness's signal, not an exit status the program can fake --------------------------------------

HUMANEVAL_ADD = Example(
    id="HumanEval/add",
    user="",
    reference={
        "prompt": 'def add(a: int, b: int) -> int:\n    """The sum of a and b."""\n',
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-5, 5) == 0\n"
        "    assert candidate(0, 0) == 0\n",
        "entry_point": "add",
    },
)
MBPP_ADD = Example(
    id="Mbpp/add",
    user="",
    reference={
        "imports": "import math",
        "test": "assert add(1, 2) == 3\nassert add(-5, 5) == 0\nassert add(0, 0) == 0\n",
    },
)
TASKS = {"humaneval": (HumanEvalPlus, HUMANEVAL_ADD), "mbpp": (MBPPPlus, MBPP_ADD)}

PASS_LINES = """
import sys
print("PASSED")
print("All tests passed: 3/3")
print("ok")
print({message!r})
print("rmlab-pass " + "0123456789abcdef" * 4)
sys.stderr.write("tests passed\\n")
sys.exit(0)
"""

# Everything the program can read, every token-like word in it, and HMACs / hashes of them under the harness's
# published message (the attacker knows the harness's code), written to fds 1..20 and every fd it has open.
FORGER = r"""
import glob, hashlib, hmac, os, re, sys
MESSAGE = {message!r}
here = os.path.dirname(os.path.abspath(__file__))
paths = glob.glob("*") + glob.glob("/scratch/*") + glob.glob("/program/*") + glob.glob(here + "/*")
paths += ["/proc/self/cmdline", "/proc/self/environ", "/proc/1/cmdline", "/proc/1/environ"]
material = [open(__file__, "rb").read(), repr(sys.argv).encode(), repr(dict(os.environ)).encode()]
for path in sorted(set(paths)):
    try:
        with open(path, "rb") as fh:
            material.append(fh.read())
    except OSError:
        pass
try:
    material.append(os.read(0, 1 << 16))
except OSError:
    pass
words = set()
for blob in material:
    words.update(re.findall(rb"[0-9A-Za-z_+/=-]{{8,}}", blob))
forged = set(words)
for word in words:
    keys = [word]
    try:
        keys.append(bytes.fromhex(word.decode()))
    except ValueError:
        pass
    for key in keys:
        forged.add(hmac.new(key, MESSAGE, "sha256").hexdigest().encode())
        forged.add(hashlib.sha256(key).hexdigest().encode())
payload = b"\n".join(sorted(forged)) + b"\n"
for fd in sorted(set(range(1, 21)) | {{int(n) for n in os.listdir("/proc/self/fd")}} - {{0}}):
    try:
        os.write(fd, payload)
    except OSError:
        pass
os._exit(0)
"""


@pytest.fixture(scope="module")
def small_sandbox() -> Sandbox:
    sb = Sandbox(Limits(wall_seconds=15.0))
    sb.check()
    return sb


@pytest.fixture(params=sorted(TASKS))
def judge(request, small_sandbox):
    """``judge(body, after)``: the verdict the task gives a completion whose function body is ``body``, followed
    by module-level code ``after``, on a small HumanEval- or MBPP-format problem (``add``)."""
    task_cls, example = TASKS[request.param]
    task = task_cls.__new__(task_cls)

    def run(body: str, after: str = "") -> RunResult:
        head = "" if request.param == "humaneval" else "def add(a, b):\n"
        completion = head + textwrap.indent(body, "    ") + "\n\n" + after
        return task.run(small_sandbox, example, completion)

    return run


def test_a_correct_program_passes_and_a_wrong_one_fails(judge):
    right = judge("return a + b")
    assert right.passed and right.status == "ok"
    wrong = judge("return a - b")
    assert not wrong.passed and wrong.status == "error" and "AssertionError" in wrong.stderr


def test_os_exit_0_at_import_time_fails(judge):
    res = judge("return a - b", "import os\nos._exit(0)\n")
    assert res.returncode == 0 and res.status == "no_pass_signal" and not res.passed


def test_sys_exit_0_at_import_time_fails(judge):
    res = judge("return a - b", "import sys\nsys.exit(0)\n")
    assert res.returncode == 0 and res.status == "no_pass_signal" and not res.passed


def test_system_exit_0_inside_the_function_under_test_fails(judge):
    res = judge("raise SystemExit(0)")
    assert res.returncode == 0 and res.status == "no_pass_signal" and not res.passed


def test_printing_a_pass_line_then_exiting_0_fails(judge):
    res = judge("return a - b", PASS_LINES.format(message=MESSAGE))
    assert res.returncode == 0 and "PASSED" in res.stdout
    assert res.status == "no_pass_signal" and not res.passed


def test_a_signal_forged_from_what_the_program_can_read_fails(judge):
    res = judge("return a - b", FORGER.format(message=MESSAGE))
    assert res.returncode == 0 and len(res.stdout) > 1000  # it read what it could and wrote its guesses
    assert res.status == "no_pass_signal" and not res.passed
