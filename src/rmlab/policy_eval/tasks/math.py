"""MATH (Hendrycks et al. 2021): 4-shot chain of thought in the chat format, Minerva's answer check.

As open-instruct ran it for Tulu 2.5 (allenai/open-instruct@4c0e9e8 ``eval/MATH/run_eval.py``, the ``MATH_cot`` job
of ``scripts/submit_eval_jobs.py:252-264``): the four Minerva exemplars as earlier user / assistant turns ("Problem:\\n
{question}\\n\\nSolution:" and the worked solution closed by "Final Answer: The final answer is ${answer}$. I hope it is
correct."), the question as the last user turn, greedy decoding, a fixed random subset of 200 test problems
(``random.seed(42)``; ``random.sample``). Scoring is :func:`rmlab.policy_eval.tasks.extract.minerva_final_answer`,
``minerva_normalize`` and ``math_equivalent``; accuracy overall and per subject (upstream's ``per_type_accuracy``).

The problems: the local copy is MATH-500 (Lightman et al. 2023's subset of the 5,000 test problems, the MATH rows of
RewardMATH's ``experiments_test_filtered.json``); the Hub fallback is the same 500 (``HuggingFaceH4/MATH-500``).
Upstream samples its 200 from the full test set, which is not in ``../shared/data`` (docs/fidelity.md).
"""

from __future__ import annotations

from collections import defaultdict

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.policy_eval.tasks.base import Example, Task
from rmlab.policy_eval.tasks.extract import math_boxed_answer, math_equivalent, minerva_final_answer, minerva_normalize


def demonstrations(exemplars) -> tuple[tuple[str, str], ...]:
    """The exemplars as chat turns, as open-instruct builds them (``run_eval.py:47-60``, CoT branch)."""
    turns = []
    for ex in exemplars:
        answer = f"{ex['cot_answer']}\nFinal Answer: The final answer is ${ex['short_answer']}$. I hope it is correct."
        turns += [("user", f"Problem:\n{ex['question']}\n\nSolution:"), ("assistant", answer.strip())]
    return tuple(turns)


class MATH(Task):
    group, metric = "math", "accuracy"

    def _load(self):
        cfg = self.cfg
        local = self.local_dir()
        if local is not None:
            path = local / str(cfg.file)
            rows = read_records(path)
            sources = set(cfg.get("data_sources") or [])
            records = [
                _validated(f"{path}, record {i}", r) for i, r in enumerate(rows)
                if not sources or (isinstance(r, dict) and r.get("data_source") in sources)
            ]  # fmt: skip
            source, files = str(local), [str(path)]
        else:
            from datasets import load_dataset

            rows = load_dataset(cfg.hub_id, split=cfg.split)
            records = [_validated(f"hub:{cfg.hub_id}, row {i}", r) for i, r in enumerate(rows)]
            source, files = f"hub:{cfg.hub_id}", []
        records = self.subsample(records, cfg.get("max_examples"), int(cfg.subsample_seed))
        history = demonstrations(cfg.exemplars[: int(cfg.n_shot)]) if cfg.n_shot else ()
        examples = [
            Example(
                id=r["id"],
                user=(*history, ("user", f"Problem:\n{r['problem'].strip()}\n\nSolution:")),
                reference={"target": minerva_normalize(r["answer"]), "subject": r["subject"]},
            )
            for r in records
        ]
        return examples, source, files

    def gold(self, example, completion, ctx) -> float:
        return float(self._check(example, completion)[1])

    @staticmethod
    def _check(example: Example, output: str) -> tuple[str | None, bool]:
        raw = minerva_final_answer(output)
        prediction = None if raw is None else minerva_normalize(raw)
        return prediction, math_equivalent(prediction, example.reference["target"])

    def score(self, examples, generations, ctx):
        (decoding,) = generations
        rows, correct = [], []
        by_subject: dict[str, list[float]] = defaultdict(list)
        for ex in examples:
            output = generations[decoding][ex.id][0]
            prediction, ok = self._check(ex, output)
            correct.append(float(ok))
            by_subject[ex.reference["subject"]].append(float(ok))
            rows.append({"id": ex.id, "subject": ex.reference["subject"], "target": ex.reference["target"],
                         "prediction": prediction, "correct": ok, "output": output})  # fmt: skip
        m = self.mean_metric(correct, ctx)
        return rows, {
            "metric": self.metric, **m, "normalised": m["value"],
            "unparsed": sum(r["prediction"] is None for r in rows),  # no Minerva answer sentence: wrong, and counted
            "per_subject": {s: {"value": sum(v) / len(v), "n": len(v)} for s, v in sorted(by_subject.items())},
        }  # fmt: skip


def _validated(where: str, row) -> dict:
    """A problem with its answer: RewardMATH's rows (``problem``, ``answer``, ``feature.subject``, ``id``) or
    MATH-500's (``problem``, ``answer`` or ``solution``, ``subject``, ``unique_id``)."""
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object")
    if not isinstance(row.get("problem"), str) or not row["problem"].strip():
        raise DataValidationError(f"{where}: field 'problem' must be a non-empty string")
    answer = row.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        answer = math_boxed_answer(row["solution"]) if isinstance(row.get("solution"), str) else None
        if answer is None:
            raise DataValidationError(f"{where}: field 'answer' missing (and no \\boxed{{}} answer in 'solution')")
    feature = row.get("feature") if isinstance(row.get("feature"), dict) else {}
    subject = feature.get("subject", row.get("subject", row.get("type")))
    if not isinstance(subject, str):
        raise DataValidationError(f"{where}: field 'feature.subject' (or 'subject') must be a string")
    ident = row.get("unique_id", row.get("id"))
    if ident is None:
        raise DataValidationError(f"{where}: field 'id' (or 'unique_id') missing")
    return {"id": f"math-{ident}", "problem": row["problem"], "answer": answer, "subject": subject}
