"""HumanEval in the sandbox: all 164 canonical solutions pass, and a deliberately wrong version of each fails;
a program cannot fake a pass; and HumanEval+ is prompted as open-instruct prompted it for Tulu 2.5, in both of its
prompt styles.

The wrong version keeps the canonical algorithm and perturbs what it returns (a flipped bool, a number plus one,
a string with a character appended, a container with an extra element), so each problem's own tests must catch
a plausible wrong answer rather than a crash.

Faked passes, on a small problem in each task's format: exiting 0 before the tests (``os._exit``, ``sys.exit``,
``SystemExit`` in the function under test), printing pass-like lines, and a signal forged from everything the
program can read, written to every file descriptor it has. Each must fail; only the harness's signal passes.
"""

from __future__ import annotations

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import open_dict

from rmlab.data.errors import DataValidationError as DataError
from rmlab.models.chat_format import ChatFormatter
from rmlab.policy_eval.evaluate import prompt_text
from rmlab.policy_eval.sandbox.harness import MESSAGE
from rmlab.policy_eval.sandbox.runner import Limits, RunResult, Sandbox
from rmlab.policy_eval.tasks.base import Example, ScoreContext
from rmlab.policy_eval.tasks.code import HumanEvalPlus, MBPPPlus, _read_jsonl
from tests.conftest import compose_eval_cfg

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
    task.cfg = {}  # the task's defaults: no time limit beyond the sandbox's, open-instruct's MBPP program

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


# ---- HumanEval+ prompts as open-instruct ran them for Tulu 2.5 (allenai/open-instruct@4c0e9e8) ----------------------
# run_eval.py:33-63: without HumanEvalPack (the T=0.1 job) and with it (the T=0.8 job); submit_eval_jobs.py:318-346

# HumanEvalPack's instruction for Python/0, in its released format (bigcode/humanevalpack, data/python/data)
HEP_INSTRUCTION_0 = (
    "Write a Python function `has_close_elements(numbers: List[float], threshold: float) -> bool` to solve the "
    "following problem:\nCheck if in given list of numbers, are any two numbers closer to each other than\ngiven "
    "threshold.\n>>> has_close_elements([1.0, 2.0, 3.0], 0.5)\nFalse\n>>> has_close_elements([1.0, 2.8, 3.0, 4.0, "
    "5.0, 2.0], 0.3)\nTrue"
)


def _humaneval_task(tmp_path: Path, data_dir: Path, hep_rows: list[dict] | None, overrides=()) -> HumanEvalPlus:
    """The real HumanEval+ task config over a data dir holding the local HumanEval+ copy and, given ``hep_rows``,
    a HumanEvalPack file written here (there is none in the local data)."""
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "humaneval-plus").symlink_to(data_dir / "humaneval-plus")
    if hep_rows is not None:
        (data / "humanevalpack").mkdir()
        lines = "".join(json.dumps(r) + "\n" for r in hep_rows)
        (data / "humanevalpack" / "humanevalpack.jsonl").write_text(lines, encoding="utf-8")
    cfg = compose_eval_cfg(
        tmp_path, ["task=humaneval_plus", *overrides], "eval_policy", base=("device=cpu", "logger=none")
    )
    return HumanEvalPlus(cfg.task.humaneval_plus, data)


def _hep_rows(data_dir: Path) -> list[dict]:
    """One HumanEvalPack row per HumanEval+ problem: the real instruction for Python/0, a stand-in for the rest."""
    rows = _read_jsonl(data_dir / "humaneval-plus" / "HumanEvalPlus-OriginFmt.jsonl.gz")
    ids = [r["task_id"].replace("HumanEval", "Python") for r in rows]
    return [{"task_id": i, "instruction": HEP_INSTRUCTION_0 if i == "Python/0" else f"Solve {i}."} for i in ids]


def test_humaneval_prompts_are_open_instructs_two_jobs(tmp_path, data_dir):
    task = _humaneval_task(tmp_path, data_dir, _hep_rows(data_dir))
    assert task.prompt_styles == {"t0.1": "plain", "t0.8": "humanevalpack"}  # as the T=0.1 and T=0.8 jobs
    examples, prov = task.load()
    (ex,) = [e for e in examples if e.id == "HumanEval/0"]
    prompt = ex.reference["prompt"]
    assert prompt.startswith("from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold")
    # the T=0.1 job: no HumanEvalPack (run_eval.py:45-49,57,63); the model writes the whole function
    assert ex.turns("t0.1") == (
        "Complete the following python function.\n\n\n" + prompt,
        "Here is the completed function:\n\n\n```python\n",
    )
    # the T=0.8 job: HumanEvalPack's instruction (run_eval.py:36-44,59-61); the model writes the body
    assert ex.turns("t0.8") == (HEP_INSTRUCTION_0, "Here is the function:\n\n```python\n" + prompt)
    # rendered as apply_chat_format with create_prompt_with_tulu_chat_format (add_bos=False) renders them: the
    # template ends in "\n", so no space before the answer prefix (run_eval.py:51-55)
    tulu = ChatFormatter(SimpleNamespace(eos_token="</s>"), "tulu")
    assert prompt_text(tulu, *ex.turns("t0.8")) == (
        "<|user|>\n" + HEP_INSTRUCTION_0 + "\n<|assistant|>\n" + "Here is the function:\n\n```python\n" + prompt
    )
    assert prompt_text(tulu, *ex.turns("t0.1")) == (
        "<|user|>\nComplete the following python function.\n\n\n"
        + prompt
        + "\n<|assistant|>\nHere is the completed function:\n\n\n```python\n"
    )
    assert prov["source"].endswith(
        "; instructions: " + str(tmp_path / "data" / "humanevalpack" / "humanevalpack.jsonl")
    )
    assert prov["files"][-1].endswith("humanevalpack/humanevalpack.jsonl")


def test_humaneval_canonical_solution_passes_in_both_prompt_styles(tmp_path, data_dir, small_sandbox):
    """plain: the completion is the whole function, so the program defines it twice (the prompt's, then the
    completion's), as open-instruct's ``prompt + completion``; humanevalpack: the completion is the body."""
    task = _humaneval_task(tmp_path, data_dir, _hep_rows(data_dir))
    examples, _ = task.load()
    (ex,) = [e for e in examples if e.id == "HumanEval/0"]
    prompt, body = ex.reference["prompt"], ex.reference["canonical_solution"]
    whole = prompt + body  # what the model writes after "```python\n" in the plain style
    assert task.program(ex, whole).count("def has_close_elements(") == 2
    wrong_whole = prompt + "    return False\n"
    generations = {"t0.1": {ex.id: [whole, wrong_whole]}, "t0.8": {ex.id: [body, "    return False\n"]}}
    rows, m = task.score([ex], generations, ScoreContext(n_boot=0, progress=False, sandbox=small_sandbox))
    # the second definition is the one tested: the canonical whole function passes, a wrong one fails
    assert [(r["decoding"], r["passed"]) for r in rows] == [
        ("t0.1", True),
        ("t0.1", False),
        ("t0.8", True),
        ("t0.8", False),
    ]
    assert m["pass_at_k"]["t0.1/pass@1"]["value"] == m["pass_at_k"]["t0.8/pass@1"]["value"] == 0.5
    assert m["prompt_style"] == {"t0.1": "plain", "t0.8": "humanevalpack"}


def test_humaneval_without_humanevalpack_is_an_error_naming_the_switch(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = _humaneval_task(tmp_path, data_dir, None)
    path = tmp_path / "data" / "humanevalpack" / "humanevalpack.jsonl"
    with pytest.raises(FileNotFoundError) as err:
        task.load()
    msg = str(err.value)
    assert "['t0.8']" in msg and str(path) in msg and "bigcode/humanevalpack" in msg
    assert "task.humaneval_plus.decodings.1.prompt_style=plain" in msg
    # switched, as the CPU configs do: both decodings plain, and the outputs say so
    plain = _humaneval_task(tmp_path / "plain", data_dir, None, ["task.humaneval_plus.decodings.1.prompt_style=plain"])
    examples, prov = plain.load()
    assert len(examples) == 164 and all(not e.by_decoding for e in examples) and "instructions" not in prov["source"]
    assert plain.prompt_styles == {"t0.1": "plain", "t0.8": "plain"}


def test_malformed_humanevalpack_names_file_row_and_field(tmp_path, data_dir):
    rows = _hep_rows(data_dir)
    del rows[3]["instruction"]
    with pytest.raises(DataError, match=r"humanevalpack.jsonl: row 3: field 'instruction' missing"):
        _humaneval_task(tmp_path / "a", data_dir, rows).load()
    rows = _hep_rows(data_dir)
    rows[5]["task_id"] = "JavaScript/5"  # another language's file
    with pytest.raises(DataError, match=r"humanevalpack.jsonl: row 5: field 'task_id' is 'JavaScript/5'"):
        _humaneval_task(tmp_path / "b", data_dir, rows).load()
    with pytest.raises(DataError, match=r"humanevalpack.jsonl: no instruction for \['HumanEval/163'\]"):
        _humaneval_task(tmp_path / "c", data_dir, _hep_rows(data_dir)[:-1]).load()
    with pytest.raises(ValueError, match=r"task.humaneval_plus.decodings.1.prompt_style\) is 'hep'"):
        _humaneval_task(tmp_path / "d", data_dir, None, ["task.humaneval_plus.decodings.1.prompt_style=hep"])


def test_evaluate_policy_samples_each_decoding_from_its_own_prompt(tmp_path, data_dir, tiny_lm_dir):
    """Through the evaluator: ``generations.jsonl`` holds each decoding's prompt, ``metrics.json`` its style."""
    from rmlab.policy_eval.evaluate import evaluate_policy

    data = tmp_path / "data"
    _humaneval_task(tmp_path, data_dir, _hep_rows(data_dir))  # writes the data dir
    cfg = compose_eval_cfg(
        tmp_path,
        [
            "policy=auto",
            f"policy.pretrained={tiny_lm_dir}",
            "policy.chat_template=tulu",
            f"paths.data_dir={data}",
            "task=humaneval_plus",
            "task.humaneval_plus.max_examples=1",
            "task.humaneval_plus.ks=[1]",
            "task.humaneval_plus.decodings.0.n=1",
            "task.humaneval_plus.decodings.0.max_new_tokens=4",
            "task.humaneval_plus.decodings.1.n=1",
            "task.humaneval_plus.decodings.1.max_new_tokens=4",
            "generation.progress=false",
            "bootstrap.n_boot=0",
        ],
        "eval_policy",
        base=("device=cpu", "logger=none"),
    )
    with open_dict(cfg):
        cfg.paths.generation_cache_dir = str(tmp_path / "generations")
    evaluate_policy(cfg)
    out = Path(cfg.paths.output_dir) / "humaneval_plus"
    (row,) = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    (ex,) = [
        e for e in _humaneval_task(tmp_path / "again", data_dir, _hep_rows(data_dir)).load()[0] if e.id == row["id"]
    ]
    prompt = ex.reference["prompt"]
    assert "prompt" not in row and set(row["prompts"]) == {"t0.1", "t0.8"}
    assert row["prompts"]["t0.1"].endswith(prompt + "\n<|assistant|>\nHere is the completed function:\n\n\n```python\n")
    assert row["prompts"]["t0.8"].endswith("\n<|assistant|>\nHere is the function:\n\n```python\n" + prompt)
    assert len(row["t0.1"]) == len(row["t0.8"]) == 1
    m = json.loads((out / "metrics.json").read_text())
    assert m["prompt_style"] == {"t0.1": "plain", "t0.8": "humanevalpack"}
    assert set(m["pass_at_k"]) == {"t0.1/pass@1", "t0.8/pass@1"}


def test_the_programs_time_limit_ends_it_as_human_eval_does(small_sandbox):
    """human-eval / open-instruct give each program a real-time limit (3 s HumanEval, 10 s MBPP): the harness's
    timer ends it by SIGALRM, which no ``except`` in the program can catch, and the run is a ``timeout``."""
    slow = "import time\ntry:\n    time.sleep(5)\nexcept BaseException:\n    pass\n"
    res = small_sandbox.run_tests(slow, time_limit=0.5)
    assert res.status == "timeout" and "time limit of the program" in res.reason, res
    assert res.wall_seconds < 5  # ended by the timer, not by the sleep
    assert small_sandbox.run_tests("x = 1\n", time_limit=2.0).passed  # the timer is stopped before the pass signal
    with pytest.raises(ValueError, match="wall-clock limit"):
        small_sandbox.run_tests("x = 1\n", time_limit=small_sandbox.limits.wall_seconds)


def test_code_tasks_take_open_instructs_time_limits(tmp_path):
    from tests.conftest import compose_eval_cfg

    tasks = compose_eval_cfg(tmp_path, ["task=all"], "eval_policy", base=("device=cpu", "logger=none")).task
    # open-instruct@4c0e9e8: eval/codex_humaneval/evaluation.py:43 (timeout=3.0, run_eval.py:170-175 keeps it),
    # eval/mbpp/run_eval.py:184 (timeout=10.0)
    assert (tasks.humaneval_plus.time_limit_s, tasks.mbpp_plus.time_limit_s) == (3.0, 10.0)
    assert not tasks.mbpp_plus.prepend_test_imports


def test_mbpp_program_is_completion_then_tests_as_open_instruct(small_sandbox):
    """open-instruct runs ``completion + "\\n" + test`` (eval/mbpp/evaluation.py:50): a completion that leaves out
    an import the tests need fails there, and so here; ``prepend_test_imports=true`` is the lab's older rule."""
    example = Example(
        id="Mbpp/area",
        user="",
        reference={"imports": "import math", "test": "assert math.isclose(area(1.0), 3.141592653589793)\n"},
    )
    completion = "def area(r):\n    return 3.141592653589793 * r * r\n"  # no `import math`, which the test uses
    task = MBPPPlus.__new__(MBPPPlus)
    task.cfg = {}
    assert task.program(example, completion) == completion + "\n" + example.reference["test"]
    res = task.run(small_sandbox, example, completion)
    assert res.status == "error" and "NameError" in res.stderr, res
    task.cfg = {"prepend_test_imports": True}
    assert task.run(small_sandbox, example, completion).passed
