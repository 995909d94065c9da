"""GSM8k: 8-shot chain-of-thought in the chat format, exact match of the last number (see conf/task/gsm8k.yaml)."""

from __future__ import annotations

import json

from rmlab.data.errors import DataValidationError as DataError
from rmlab.policy_eval.tasks.base import Example, Task
from rmlab.policy_eval.tasks.extract import gsm8k_match, gsm8k_prediction, gsm8k_target


class GSM8k(Task):
    group, metric = "math", "exact_match"

    def _load(self):
        cfg = self.cfg
        local = self.local_dir()
        if local is not None:
            path = local / f"{cfg.split}.jsonl"
            rows = []
            with path.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    rec = json.loads(line)
                    for key in ("question", "answer"):
                        if not isinstance(rec.get(key), str):
                            raise DataError(f"{path}: row {i}: field {key!r} missing or not a string")
                    rows.append(rec)
            source, files = str(local), [str(path)]
        else:
            from datasets import load_dataset

            rows = list(load_dataset(cfg.hub_id, cfg.hub_config, split=cfg.split))
            source, files = f"hub:{cfg.hub_id}", []
        indexed = list(enumerate(rows))
        indexed = self.subsample(indexed, cfg.get("max_examples"), int(cfg.subsample_seed))
        demos = "\n\n".join(f"Question: {d['question']}\nAnswer: {d['answer']}" for d in cfg.exemplars)
        prefix = f"{cfg.instruction}\n\n{demos}\n\n" if cfg.n_shot else ""
        examples = []
        for i, rec in indexed:
            try:
                target = gsm8k_target(rec["answer"])
            except ValueError as err:
                raise DataError(f"{files[0] if files else source}: row {i}: field 'answer': {err}") from None
            examples.append(
                Example(
                    id=f"test-{i}",
                    user=prefix + "Question: " + rec["question"].strip(),
                    answer_prefix=cfg.answer_prefix,
                    reference={"target": target},
                )
            )
        return examples, source, files

    @property
    def match(self) -> str:
        return self.cfg.get("match", "numeric")

    def gold(self, example, completion, ctx) -> float:
        pred = gsm8k_prediction(completion, self.match)
        return float(gsm8k_match(pred, example.reference["target"], self.match, completion))

    def score(self, examples, generations, ctx):
        (decoding,) = generations
        rows, correct = [], []
        for ex in examples:
            output = generations[decoding][ex.id][0]
            pred = gsm8k_prediction(output, self.match)
            ok = gsm8k_match(pred, ex.reference["target"], self.match, output)
            correct.append(float(ok))
            rows.append(
                {"id": ex.id, "target": ex.reference["target"], "prediction": pred, "correct": ok, "output": output}
            )
        m = self.mean_metric(correct, ctx)
        unparsed = sum(r["prediction"] is None for r in rows)  # no number at all: wrong, and counted
        return rows, {"metric": self.metric, **m, "normalised": m["value"], "unparsed": unparsed, "match": self.match}
