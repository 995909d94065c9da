r"""HumanEval+ and MBPP+: instruction prompts in the chat format, programs run in the sandbox, unbiased pass@k.

Test sets: the EvalPlus "+" tests (the ``*-OriginFmt`` files: self-contained ``check`` programs over the base and
extra inputs) when ``test_set: plus``; the original HumanEval / MBPP tests with ``test_set: base`` (the same
problems, the authors' tests). ``metrics.json`` names the test set used.

HumanEval+ prompts, exactly as open-instruct ran them for Tulu 2.5 (allenai/open-instruct@4c0e9e8,
``eval/codex_humaneval/run_eval.py:33-63``), chosen per decoding by its ``prompt_style`` because open-instruct's
two jobs differ (``scripts/submit_eval_jobs.py:318-346``):

- ``plain`` (the ``codex_evalplus_temp_0.1`` job, pass@1, which ran without HumanEvalPack): the user turn is
  "Complete the following python function.\n\n\n" + the problem's prompt, the assistant turn starts with
  "Here is the completed function:\n\n\n```python\n", and the model writes the whole function;
- ``humanevalpack`` (the ``codex_evalplus_temp_0.8`` job, pass@10): the user turn is HumanEvalPack's
  ``instruction`` for the problem, the assistant turn starts with "Here is the function:\n\n```python\n" + the
  problem's prompt, and the model writes the body. HumanEvalPack comes from a local copy or the Hub; without
  either such a decoding is an error that names the key switching it to ``plain``, never a silent fallback.

In both styles the program checked is the problem's prompt + the completion + the tests, as open-instruct
(human-eval's ``check_correctness``) builds it; in the plain style the completion's function redefines the
prompt's. ``metrics.json`` records each decoding's ``prompt_style``.

A sample passes only on a positive signal from the test harness, never on an exit status alone: the program
(prompt, completion, tests) runs under :mod:`rmlab.policy_eval.sandbox.harness` in the sandbox (``Sandbox.run_tests``),
which writes a token derived from a per-run secret to a pipe of its own after the program's last statement, the
tests included. A completion that exits 0 early (``os._exit(0)``, ``sys.exit(0)``, ``raise SystemExit(0)`` at
import time or in the function under test), prints something pass-like, or writes guesses built from what it can
read, is scored ``no_pass_signal``: a fail. Residual risk, stated in full in the harness's docstring: code that
walks its own interpreter (frames, ``gc``, ``/proc/self/mem``) can still find the token, as it could subvert the
tests themselves; the sandbox contains it, and the worst case is a false pass for that one sample.
"""

from __future__ import annotations

import gzip
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from rmlab.data.errors import DataValidationError as DataError
from rmlab.metrics.pass_at_k import pass_at_k
from rmlab.policy_eval.tasks.base import Example, Task

log = logging.getLogger(__name__)

# HumanEval+ prompt styles, one per decoding (the module docstring says what each is)
PROMPT_STYLES = ("plain", "humanevalpack")


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _require(path, i, rec, keys):
    for key in keys:
        if key not in rec:
            raise DataError(f"{path}: row {i}: field {key!r} missing")


class CodeTask(Task):
    group, metric = "code", "pass@1"
    gold_context = ("sandbox",)

    def _load(self):
        """The "+" tests when available (local copy, else the Hub); otherwise the base tests, said in the log and
        in ``metrics.json`` (``test_set``)."""
        self.test_set = str(self.cfg.test_set)
        if self.test_set == "plus":
            try:
                return self._load_set(plus=True)
            except DataError:  # the file is there but malformed: say so, do not fall back
                raise
            except Exception as err:  # noqa: BLE001  no local copy and no Hub: the original tests still apply
                log.warning("%s: the EvalPlus tests are not available (%s); using the base tests", self.name, err)
                self.test_set = "base (plus unavailable)"
        return self._load_set(plus=False)

    def program(self, ex: Example, completion: str) -> str:
        raise NotImplementedError

    def run(self, sandbox, ex: Example, completion: str):
        """The sandbox's verdict on ``completion``: its program run under the test harness (a pass needs the
        harness's signal, see the module docstring)."""
        return sandbox.run_tests(self.program(ex, completion), time_limit=self.cfg.get("time_limit_s"))

    def gold(self, example, completion, ctx) -> float:
        if ctx.sandbox is None:
            raise RuntimeError(f"{self.name}: checking generated code needs a sandbox")
        return float(self.run(ctx.sandbox, example, completion).passed)

    def score(self, examples, generations, ctx):
        if ctx.sandbox is None:
            raise RuntimeError(f"{self.name}: scoring generated code needs a sandbox")
        jobs = [
            (dec, ex, j, sample)
            for dec in generations
            for ex in examples
            for j, sample in enumerate(generations[dec][ex.id])
        ]
        workers = int(self.cfg.get("sandbox_workers", 2))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(
                tqdm(
                    pool.map(lambda job: self.run(ctx.sandbox, job[1], job[3]), jobs),
                    total=len(jobs),
                    desc=f"{self.name}: sandboxed tests",
                    disable=not ctx.progress,
                )
            )
        rows, passed = [], {}
        for (dec, ex, j, sample), res in zip(jobs, results):
            passed.setdefault(dec, {}).setdefault(ex.id, []).append(res.passed)
            rows.append(
                {
                    "id": ex.id,
                    "decoding": dec,
                    "sample": j,
                    "passed": res.passed,
                    "status": res.status,
                    "reason": res.reason,
                    "completion": sample,
                    "stderr_tail": res.stderr[-400:],
                }
            )
        metrics = {"test_set": self.test_set, "pass_at_k": {}}
        for dec, by_ex in passed.items():
            n = min(len(v) for v in by_ex.values())
            for k in self.cfg.ks:
                if k > n:
                    continue
                values = [pass_at_k(len(v), sum(v), k) for v in by_ex.values()]
                metrics["pass_at_k"][f"{dec}/pass@{k}"] = self.mean_metric(values, ctx)
        head = self.cfg.headline  # e.g. "t0.1/pass@1"
        if head not in metrics["pass_at_k"]:
            raise ValueError(
                f"{self.name}: headline metric {head!r} was not computed "
                f"(have {sorted(metrics['pass_at_k'])}); check task.decodings and task.ks"
            )
        h = metrics["pass_at_k"][head]
        return rows, {
            "metric": head,
            "value": h["value"],
            "ci": h["ci"],
            "n": h["n"],
            "normalised": h["value"],
            **metrics,
        }


class HumanEvalPlus(CodeTask):
    """HumanEval+ with each decoding's prompt style (``prompt_style`` in its decoding config, see the module
    docstring): ``plain``, the default, or ``humanevalpack``."""

    def __init__(self, cfg, data_dir):
        super().__init__(cfg, data_dir)
        self.prompt_styles = {str(d["name"]): str(d.get("prompt_style", "plain")) for d in cfg.decodings}
        for i, (dec, style) in enumerate(self.prompt_styles.items()):
            if style not in PROMPT_STYLES:
                raise ValueError(
                    f"{self.name}: decoding {dec!r} (task.{self.name}.decodings.{i}.prompt_style) is {style!r}; "
                    f"use one of {list(PROMPT_STYLES)}"
                )

    def _load(self):
        """The problems with the plain prompt, and HumanEvalPack's for the decodings that ask for it (never the
        plain one in its place: a missing HumanEvalPack is an error, see :meth:`_instructions`)."""
        examples, source, files = super()._load()
        hep = [dec for dec, style in self.prompt_styles.items() if style == "humanevalpack"]
        if not hep:
            return examples, source, files
        instructions, hep_source, hep_files = self._instructions(hep)
        missing = [ex.id for ex in examples if ex.id not in instructions]
        if missing:
            raise DataError(f"{hep_source}: no instruction for {missing[:5]} ({len(missing)} problems)")
        prefix = self.cfg.hep_answer_prefix
        examples = [
            replace(ex, by_decoding={dec: (instructions[ex.id], prefix + ex.reference["prompt"]) for dec in hep})
            for ex in examples
        ]
        return examples, f"{source}; instructions: {hep_source}", files + hep_files

    def _instructions(self, decodings: list[str]) -> tuple[dict[str, str], str, list[str]]:
        """HumanEvalPack's instruction by HumanEval task id (open-instruct's mapping: ``Python/i`` is
        ``HumanEval/i``), from the local copy, else the Hub."""
        cfg = self.cfg
        path = self.data_dir / cfg.hep_local_dir / cfg.hep_file
        if path.is_file():
            rows, source, files = _read_jsonl(path), str(path), [str(path)]
        else:
            try:
                from datasets import load_dataset

                rows = list(load_dataset(cfg.hep_hub_id, cfg.hep_hub_config, split="test"))
            except Exception as err:  # no local copy and no Hub: say which decodings need it, and the way out
                index = {str(d["name"]): i for i, d in enumerate(cfg.decodings)}
                switch = ", ".join(f"task.{self.name}.decodings.{index[dec]}.prompt_style=plain" for dec in decodings)
                raise FileNotFoundError(
                    f"{self.name}: decoding(s) {decodings} have prompt_style humanevalpack (open-instruct's "
                    f"codex_evalplus_temp_0.8 job), but HumanEvalPack is neither at {path} nor on the Hub "
                    f"({cfg.hep_hub_id}, config {cfg.hep_hub_config}, split test: {type(err).__name__}: {err}). "
                    f"Put bigcode/humanevalpack's data/python/data/humanevalpack.jsonl at {path}, or prompt those "
                    f"decodings without it (open-instruct's T=0.1 prompt, a deviation): {switch}"
                ) from err
            source, files = f"hub:{cfg.hep_hub_id}/{cfg.hep_hub_config}", []
        for i, rec in enumerate(rows):
            _require(source, i, rec, ("task_id", "instruction"))
            if not str(rec["task_id"]).startswith("Python/"):
                raise DataError(f"{source}: row {i}: field 'task_id' is {rec['task_id']!r}, expected Python/<n>")
            if not isinstance(rec["instruction"], str) or not rec["instruction"].strip():
                raise DataError(f"{source}: row {i}: field 'instruction' is empty or not a string")
        return {r["task_id"].replace("Python", "HumanEval"): r["instruction"] for r in rows}, source, files

    def _load_set(self, plus: bool):
        cfg = self.cfg
        base = not plus
        local = self.data_dir / (cfg.base_local_dir if base else cfg.local_dir)
        path = local / (cfg.base_file if base else cfg.file)
        if path.is_file():
            rows, source, files = _read_jsonl(path), str(local), [str(path)]
        else:
            from datasets import load_dataset

            hub = cfg.base_hub_id if base else cfg.hub_id
            rows, source, files = list(load_dataset(hub, split="test")), f"hub:{hub}", []
        for i, rec in enumerate(rows):
            _require(path, i, rec, ("task_id", "prompt", "entry_point", "test", "canonical_solution"))
        rows = self.subsample(rows, cfg.get("max_examples"), int(cfg.subsample_seed))
        examples = [
            Example(
                id=r["task_id"],
                user=cfg.instruction + r["prompt"],  # the plain style: the model writes the whole function
                answer_prefix=cfg.answer_prefix,
                reference={
                    "prompt": r["prompt"],
                    "test": r["test"],
                    "entry_point": r["entry_point"],
                    "canonical_solution": r["canonical_solution"],
                },
            )
            for r in rows
        ]
        return examples, source, files

    def score(self, examples, generations, ctx):
        """As :meth:`CodeTask.score`, plus each decoding's ``prompt_style``: a run that prompts a decoding other
        than open-instruct did (e.g. T=0.8 without HumanEvalPack) says so in its outputs."""
        rows, metrics = super().score(examples, generations, ctx)
        return rows, {**metrics, "prompt_style": dict(self.prompt_styles)}

    def program(self, ex, completion):
        """The problem's prompt, the completion and the tests, in both prompt styles (as open-instruct checks
        them): in the plain style the completion is a whole function, which redefines the prompt's."""
        ref = ex.reference
        return f"{ref['prompt']}{completion}\n\n{ref['test']}\n\ncheck({ref['entry_point']})\n"


class MBPPPlus(CodeTask):
    def _load_set(self, plus: bool):
        cfg = self.cfg
        base = not plus
        local = self.data_dir / cfg.local_dir
        path = local / cfg.file  # the OriginFmt file has both: the 3 original asserts and the EvalPlus program
        if path.is_file():
            rows, source, files = _read_jsonl(path), str(local), [str(path)]
        else:
            from datasets import load_dataset

            rows, source, files = list(load_dataset(cfg.hub_id, split="test")), f"hub:{cfg.hub_id}", []
        for i, rec in enumerate(rows):
            _require(path, i, rec, ("task_id", "prompt", "code", "test_list", "test", "test_imports"))
        rows = rows[int(cfg.get("holdout_first") or 0) :]  # open-instruct holds out the first 100 problems
        rows = self.subsample(rows, cfg.get("max_examples"), int(cfg.subsample_seed))
        examples = []
        for r in rows:
            tests = "\n".join(r["test_list"])
            header = r["code"].split(":")[0]  # open-instruct: the reference code up to its first colon
            user = cfg.instruction.format(prompt=r["prompt"], header=header, tests=r["test_list"][0])
            test_program = tests if base else r["test"]  # the authors' 3 asserts, or the EvalPlus inputs
            examples.append(
                Example(
                    id=f"Mbpp/{r['task_id']}",
                    user=user,
                    answer_prefix=cfg.answer_prefix,
                    reference={
                        "imports": "\n".join(r["test_imports"]),
                        "test": test_program,
                        "canonical_solution": r["code"],
                    },
                )
            )
        return examples, source, files

    def program(self, ex, completion):
        """open-instruct's program, ``completion + "\\n" + test`` (``eval/mbpp/evaluation.py:50``): a completion
        that leaves out an import the tests use (``math`` in 10 of the 378 problems) fails, as there.
        ``prepend_test_imports=true`` puts the problem's ``test_imports`` first (the lab's rule before)."""
        ref = ex.reference
        if self.cfg.get("prepend_test_imports", False):
            return f"{ref['imports']}\n{completion}\n\n{ref['test']}\n"
        return f"{completion}\n{ref['test']}"
