"""HumanEval+ and MBPP+: instruction prompts in the chat format, programs run in the sandbox, unbiased pass@k.

Test sets: the EvalPlus "+" tests (the ``*-OriginFmt`` files: self-contained ``check`` programs over the base and
extra inputs) when ``test_set: plus``; the original HumanEval / MBPP tests with ``test_set: base`` (the same
problems, the authors' tests). ``metrics.json`` names the test set used.

A sample passes only on a positive signal from the test harness, never on an exit status alone: the program
(prompt, completion, tests) runs under :mod:`rmlab.policy_eval.harness` in the sandbox (``Sandbox.run_tests``),
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
from pathlib import Path

from tqdm import tqdm

from rmlab.data.errors import DataValidationError as DataError
from rmlab.metrics.pass_at_k import pass_at_k
from rmlab.policy_eval.tasks.base import Example, Task

log = logging.getLogger(__name__)


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
        return sandbox.run_tests(self.program(ex, completion))

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
                user=cfg.instruction + r["prompt"],
                answer_prefix=cfg.answer_prefix + r["prompt"],
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

    def program(self, ex, completion):
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
        ref = ex.reference
        return f"{ref['imports']}\n{completion}\n\n{ref['test']}\n"
