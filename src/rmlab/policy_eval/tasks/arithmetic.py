"""Arithmetic: generated one-step problems with an exact gold check, for best-of-n studies with small policies.

Why this task: a policy that fits on 2 CPU cores (SmolLM2-135M-Instruct) answers GSM8k right about 1-3% of the
time, so best-of-n there has almost nothing to pick. Sampled at temperature 1, its answers to one-step problems
("What is 7 + 8?", "What is 6 times 7?") are right 13-16% of the time, and two prompts in three get right and wrong
samples among 8 (docs/performance.md): the regime where a reward model's choice among samples decides the outcome
(``experiments/bon_study_cpu.yaml``).

Problems: every (a, b) in the configured ranges of each operation, shuffled with ``seed``; the first
``test_fraction`` are the ``test`` split, the rest ``train``, so prompts used to train reward models and prompts
used for best-of-n never overlap.

Gold: the first number in the answer that is not one of the operands must equal the result. Small models
restate the problem before answering ("7 + 8 = 15", "The sum of 7 and 8 is 15"); the operands are at least 1 for
``+`` and at least 2 for ``*``, so the result never equals an operand and the rule reads the stated result
whether or not the problem is restated. A number is read whole, sign and decimals included ("15.5" is 15.5, not
15; "-15" is -15); a comma joins digits only as a thousands separator ("1,005" is 1005, "1,5" is 1 then 5). An
answer with no other number is wrong, and is counted as ``unparsed``.
"""

from __future__ import annotations

import random
import re

from rmlab.policy_eval.tasks.base import Example, Task

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
OPS = {"add": (lambda a, b: a + b, 1), "mul": (lambda a, b: a * b, 2)}  # result, smallest operand allowed


def stated_result(text: str, operands: tuple[int, ...]) -> int | float | None:
    """The first number in ``text`` (thousands separators ignored) that is not an operand: an int when written
    without decimals, else a float (never equal to an integer result unless its decimals are zeros)."""
    for match in _NUMBER.findall(_THOUSANDS.sub("", text)):
        value = float(match) if "." in match else int(match)
        if value not in operands:
            return value
    return None


class Arithmetic(Task):
    group, metric = "math", "exact_match"

    def _load(self):
        cfg = self.cfg
        problems = []
        for op, spec in cfg.operations.items():
            if op not in OPS:
                raise ValueError(f"task {self.name}: unknown operation {op!r} (one of {sorted(OPS)})")
            fn, smallest = OPS[op]
            (a_lo, a_hi), (b_lo, b_hi) = spec.a, spec.b
            if min(a_lo, b_lo) < smallest:
                raise ValueError(
                    f"task {self.name}: {op} operands must be >= {smallest}, else a result can equal an operand "
                    "and the gold check is ambiguous"
                )
            for a in range(int(a_lo), int(a_hi) + 1):
                for b in range(int(b_lo), int(b_hi) + 1):
                    problems.append((f"{op}-{a}-{b}", str(spec.template).format(a=a, b=b), fn(a, b), (a, b)))
        random.Random(int(cfg.seed)).shuffle(problems)
        n_test = round(len(problems) * float(cfg.test_fraction))
        split = str(cfg.split)
        chosen = {"test": problems[:n_test], "train": problems[n_test:], "all": problems}.get(split)
        if chosen is None:
            raise ValueError(f"task {self.name}: split must be train, test or all, got {split!r}")
        chosen = self.subsample(chosen, cfg.get("max_examples"), int(cfg.seed))
        examples = [
            Example(id=pid, user=text, reference={"target": result, "operands": list(ops)})
            for pid, text, result, ops in chosen
        ]
        return examples, f"generated ({', '.join(cfg.operations)}; seed {cfg.seed}; {split})", []

    def gold(self, example: Example, completion: str, ctx) -> float:
        ref = example.reference
        return float(stated_result(completion, tuple(ref["operands"])) == ref["target"])

    def score(self, examples, generations, ctx):
        (decoding,) = generations
        rows, correct = [], []
        for ex in examples:
            output = generations[decoding][ex.id][0]
            ok = self.gold(ex, output, ctx)
            correct.append(ok)
            rows.append(
                {
                    "id": ex.id,
                    "target": ex.reference["target"],
                    "prediction": stated_result(output, tuple(ex.reference["operands"])),
                    "correct": bool(ok),
                    "output": output,
                }
            )
        m = self.mean_metric(correct, ctx)
        unparsed = sum(r["prediction"] is None for r in rows)  # no number but the operands: wrong, and counted
        return rows, {"metric": self.metric, **m, "normalised": m["value"], "unparsed": unparsed}
