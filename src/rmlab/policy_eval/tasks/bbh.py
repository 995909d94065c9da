"""BIG-Bench Hard: 27 tasks, their 3 chain-of-thought exemplars, exact match of the text after "the answer is".

Subsets and extraction as open-instruct (``eval/bbh/run_eval.py:25-34``, ``:162-168``), matching as the BBH
authors (exact string match); the switches are ``subsample_rng``, ``extraction`` and ``match`` (conf/task/bbh.yaml,
docs/fidelity.md)."""

from __future__ import annotations

import json

import numpy as np

from rmlab.data.errors import DataValidationError as DataError
from rmlab.policy_eval.tasks.base import Example, Task
from rmlab.policy_eval.tasks.extract import BBH_EXTRACTIONS, BBH_MATCHES, bbh_answer, bbh_match, has_answer_phrase


def strip_canary(cot_prompt: str) -> str:
    """The few-shot prefix of a ``cot-prompts/<task>.txt`` file without its canary header (up to ``-----``)."""
    return cot_prompt.split("-----", 1)[1].strip() if "-----" in cot_prompt else cot_prompt.strip()


class BBH(Task):
    group, metric = "math", "exact_match"

    def _load(self):
        cfg = self.cfg
        local = self.local_dir()
        if local is None:
            raise DataError(
                f"BBH needs the task files and CoT prompts of suzgunmirac/BIG-Bench-Hard in "
                f"{self.data_dir / cfg.local_dir} (bbh/*.json and cot-prompts/*.txt); the Hub copies lack the prompts"
            )
        # open-instruct (eval/bbh/run_eval.py:25-34) seeds one generator and draws every task's subset from it in
        # turn, so a task's subset depends on the tasks before it: draw for all tasks, then keep the selected ones
        names = sorted(p.stem for p in (local / "bbh").glob("*.json"))
        selected = set(names)
        if cfg.get("subtasks"):
            unknown = set(cfg.subtasks) - set(names)
            if unknown:
                raise DataError(f"{local / 'bbh'}: no such BBH tasks {sorted(unknown)}")
            selected = set(cfg.subtasks)
        rng = self.subsample_rng()
        examples, files = [], []
        for name in names:
            path, cot_path = local / "bbh" / f"{name}.json", local / "cot-prompts" / f"{name}.txt"
            data = json.loads(path.read_text(encoding="utf-8"))
            if "examples" not in data:
                raise DataError(f"{path}: no 'examples' field")
            indexed = self.subsample(
                list(enumerate(data["examples"])), cfg.get("max_per_task"), int(cfg.subsample_seed), rng
            )
            if name not in selected:
                continue
            files += [str(path), str(cot_path)]
            prefix = strip_canary(cot_path.read_text(encoding="utf-8")) if cfg.cot else ""
            for i, rec in indexed:
                for key in ("input", "target"):
                    if not isinstance(rec.get(key), str):
                        raise DataError(f"{path}: example {i}: field {key!r} missing or not a string")
                examples.append(
                    Example(
                        id=f"{name}-{i}",
                        user=f"{prefix}\n\nQ: {rec['input']}",
                        answer_prefix=cfg.answer_prefix,
                        reference={"task": name, "target": rec["target"]},
                    )
                )
        return examples, str(local), files

    def score(self, examples, generations, ctx):
        (decoding,) = generations
        extraction, match = self.rules()
        rows, by_task, unparsed = [], {}, 0
        for ex in examples:
            output = generations[decoding][ex.id][0]
            pred = bbh_answer(output, extraction)
            ok = bbh_match(pred, ex.reference["target"], match)
            unparsed += not has_answer_phrase(output, extraction)
            by_task.setdefault(ex.reference["task"], []).append(float(ok))
            rows.append(
                {
                    "id": ex.id,
                    "task": ex.reference["task"],
                    "target": ex.reference["target"],
                    "prediction": pred,
                    "correct": ok,
                    "output": output,
                }
            )
        per_task = {t: float(np.mean(v)) for t, v in sorted(by_task.items())}
        # The headline is the mean over tasks; its interval resamples examples within each task.
        rng = np.random.default_rng(ctx.seed)
        arrays = [np.asarray(v) for v in by_task.values()]
        boots = [np.mean([a[rng.integers(0, len(a), len(a))].mean() for a in arrays]) for _ in range(ctx.n_boot)]
        alpha = (1 - ctx.confidence) / 2
        ci = [float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))] if ctx.n_boot else None
        value = float(np.mean(list(per_task.values())))
        return rows, {
            "metric": "exact_match (mean over tasks)",
            "value": value,
            "ci": ci,
            "n": len(examples),
            "n_tasks": len(per_task),
            "per_task": per_task,
            "normalised": value,
            "extraction": extraction,
            "match": match,
            # outputs without an answer span: scored on the whole output, as open-instruct scores them
            "unparsed": unparsed,
        }

    def rules(self) -> tuple[str, str]:
        """``(extraction, match)`` from the task config, checked (:mod:`rmlab.policy_eval.tasks.extract`)."""
        extraction, match = str(self.cfg.get("extraction", "open_instruct")), str(self.cfg.get("match", "exact"))
        if extraction not in BBH_EXTRACTIONS or match not in BBH_MATCHES:
            raise ValueError(
                f"task {self.name}: extraction must be one of {BBH_EXTRACTIONS} (got {extraction!r}), match one of "
                f"{BBH_MATCHES} (got {match!r})"
            )
        return extraction, match
