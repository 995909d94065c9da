"""IFEval (Zhou et al. 2023): 541 prompts with verifiable instructions, scored by the official checkers.

The checkers are Google's ``instruction_following_eval`` code as lm-evaluation-harness ships it
(``lm_eval.tasks.ifeval``: ``instructions_registry.INSTRUCTION_DICT`` and the strict / loose drivers of its
``utils``), the same code open-instruct vendors (``eval/ifeval/``, ``run_eval.py:77-160``): nothing is re-implemented
here. Strict: the response as generated; loose: the response or any of its seven variants (first / last line
dropped, ``*`` removed) follows the instruction. Reported: prompt-level and instruction-level accuracy, strict and
loose (open-instruct's ``metrics.json``); the headline is ``task.ifeval.headline`` (prompt-level loose by default).

One checker needs data that is not in any wheel: ``length_constraints:number_sentences`` counts sentences with NLTK's
pretrained Punkt model (``nltk.download("punkt")``). Where it is absent, the instructions of that kind are not
scored and neither are the prompts that carry one (a prompt-level verdict needs all its instructions): both are
counted as ``unscored`` and the metrics say why, rather than scoring them as failed.
"""

from __future__ import annotations

import json

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.tasks.base import Example, Task

HEADLINES = ("prompt_loose", "prompt_strict", "instruction_loose", "instruction_strict")


def _checkers():
    """lm-eval's IFEval modules. Importing them asks NLTK for ``punkt_tab`` (a download attempt that fails offline
    and is harmless: no checker used here needs ``punkt_tab``)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        from lm_eval.tasks.ifeval import instructions_registry, utils
    return instructions_registry.INSTRUCTION_DICT, utils


def follows(record: dict, response: str) -> dict:
    """Per instruction of ``record`` (``instruction_id_list``, ``kwargs``, ``prompt``): followed strictly, loosely,
    or ``None`` for both where its checker cannot run here (the reason in ``unscored``). Each instruction is checked
    on its own, as upstream's drivers do in their loop, so that one checker's missing data leaves the rest scored."""
    _, utils = _checkers()
    inp = utils.InputExample(
        key=record.get("key", 0),
        instruction_id_list=list(record["instruction_id_list"]),
        prompt=record["prompt"],
        kwargs=[dict(k) for k in record["kwargs"]],
    )
    strict, loose, unscored = [], [], {}
    for i, (instruction, kwargs) in enumerate(zip(inp.instruction_id_list, inp.kwargs)):
        one = utils.InputExample(inp.key, [instruction], inp.prompt, [kwargs])
        try:
            strict.append(utils.test_instruction_following_strict(one, response).follow_instruction_list[0])
            loose.append(utils.test_instruction_following_loose(one, response).follow_instruction_list[0])
        except LookupError as err:
            strict.append(None)
            loose.append(None)
            unscored[i] = f"{instruction}: NLTK data missing ({str(err).strip().splitlines()[0][:80]})"
    return {"strict": strict, "loose": loose, "unscored": unscored}


class IFEval(Task):
    group, metric = "instruction_following", "prompt_level_loose_acc"

    def _load(self):
        cfg = self.cfg
        local = self.local_dir()
        if local is not None:
            path = local / str(cfg.get("file", "input_data.jsonl"))
            with path.open(encoding="utf-8") as fh:
                rows = [(f"{path}, line {n}", json.loads(line)) for n, line in enumerate(fh, 1) if line.strip()]
            source, files = str(local), [str(path)]
        else:
            from datasets import load_dataset

            rows = [(f"hub:{cfg.hub_id}, row {i}", r) for i, r in enumerate(load_dataset(cfg.hub_id, split=cfg.split))]
            source, files = f"hub:{cfg.hub_id}", []
        registry, _ = _checkers()
        records = [_validated(where, r, registry) for where, r in rows]
        records = self.subsample(records, cfg.get("max_examples"), int(cfg.subsample_seed))
        examples = [
            Example(id=f"key-{r['key']}", user=r["prompt"],
                    reference={"instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"], "key": r["key"]})
            for r in records
        ]  # fmt: skip
        return examples, source, files

    @property
    def headline(self) -> str:
        name = str(self.cfg.get("headline", "prompt_loose"))
        if name not in HEADLINES:
            raise ValueError(f"task.ifeval.headline must be one of {HEADLINES}, got {name!r}")
        return name

    @staticmethod
    def _record(example: Example) -> dict:
        return {**example.reference, "prompt": example.user}

    def gold(self, example, completion, ctx) -> float:
        """All instructions followed (strict), for best-of-n."""
        got = follows(self._record(example), completion)
        if got["unscored"]:
            raise ValueError(f"IFEval {example.id}: {'; '.join(got['unscored'].values())}")
        return float(all(got["strict"]))

    def score(self, examples, generations, ctx):
        (decoding,) = generations
        rows = []
        for ex in examples:
            output = generations[decoding][ex.id][0]
            got = follows(self._record(ex), output)
            scored = not got["unscored"]
            rows.append({
                "id": ex.id, "instruction_id_list": ex.reference["instruction_id_list"],
                "strict": got["strict"], "loose": got["loose"], "unscored": list(got["unscored"].values()),
                "prompt_strict": all(got["strict"]) if scored else None,
                "prompt_loose": all(got["loose"]) if scored else None, "output": output,
            })  # fmt: skip
        prompt_rows = [r for r in rows if r["prompt_loose"] is not None]
        values = {
            "prompt_strict": [float(r["prompt_strict"]) for r in prompt_rows],
            "prompt_loose": [float(r["prompt_loose"]) for r in prompt_rows],
            "instruction_strict": [float(v) for r in rows for v in r["strict"] if v is not None],
            "instruction_loose": [float(v) for r in rows for v in r["loose"] if v is not None],
        }
        parts = {k: self.mean_metric(v, ctx, seed_offset=i) for i, (k, v) in enumerate(values.items())}
        head = parts[self.headline]
        reasons = sorted({u for r in rows for u in r["unscored"]})
        return (
            rows,
            {
                "metric": f"{self.headline.replace('_', '_level_', 1)}_acc",
                **head,
                "normalised": head["value"],
                "unparsed": 0,  # every response is read as it is: there is nothing to parse
                "unscored_prompts": len(rows) - len(prompt_rows),
                "unscored_instructions": sum(len(r["unscored"]) for r in rows),
                "unscored_because": reasons[:5],
                **{k: {"value": v["value"], "ci": v["ci"], "n": v["n"]} for k, v in parts.items()},
            },
        )


def _validated(where: str, row, registry) -> dict:
    """A record as input_data.jsonl / google/IFEval has it: ``key``, ``prompt``, ``instruction_id_list`` and one
    ``kwargs`` dict per instruction, every instruction a known checker."""
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object")
    at = f"{where} (key={row.get('key')!r})"
    if not isinstance(row.get("key"), int):
        raise DataValidationError(f"{at}: field 'key' must be an integer")
    if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        raise DataValidationError(f"{at}: field 'prompt' must be a non-empty string")
    ids, kwargs = row.get("instruction_id_list"), row.get("kwargs")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise DataValidationError(f"{at}: field 'instruction_id_list' must be a non-empty list of strings")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        raise DataValidationError(f"{at}: field 'kwargs' must be a list of {len(ids)} objects, one per instruction")
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise DataValidationError(f"{at}: field 'instruction_id_list' names unknown instructions {unknown}")
    return {"key": row["key"], "prompt": row["prompt"], "instruction_id_list": ids, "kwargs": kwargs}
