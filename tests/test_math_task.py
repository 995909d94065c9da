"""MATH: Minerva's answer sentence and normalisation on hand-made strings, the local copy (MATH-500, 200 drawn), the
prompt as open-instruct's tulu chat formatting renders it, hand-made generations scored (an equivalent surface form
right, a wrong number wrong, no answer sentence unparsed), and bad records named by file, record and field."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.tasks import TASKS
from rmlab.policy_eval.tasks.base import ScoreContext
from rmlab.policy_eval.tasks.extract import math_boxed_answer, math_equivalent, minerva_final_answer, minerva_normalize
from tests.conftest import ROOT

CLOSE = ". I hope it is correct."


def _task(data_dir, **over):
    cfg = OmegaConf.load(ROOT / "conf" / "task" / "math.yaml")
    for k, v in over.items():
        OmegaConf.update(cfg, k, v)
    return TASKS["math"](cfg, data_dir)


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("$24$", "24"),  # the inside of $...$
        ("x = \\boxed{3}", "3"),  # the last side of "=", then the box
        ("10,000 dollars", "10000"),  # the unit word and the spaces go, then the thousands separator
        ("\\frac12", "\\frac{1}{2}"),  # shorthand fraction expanded
        ("3\\sqrt2", "3\\sqrt{2}"),  # shorthand root expanded
        ("\\text{(B)}", "(B)"),  # \text{...} unwrapped
        ("90^\\circ", "90"),  # degrees dropped
    ],
)
def test_minerva_normalisation(raw, normalised):
    assert minerva_normalize(raw) == normalised


def test_the_answer_sentence():
    assert minerva_final_answer("So it is 6.\nFinal Answer: The final answer is $6$" + CLOSE) == "$6$"
    # open-instruct appends the closing sentence before searching, so an output cut off right after ". " reads;
    # one cut after the full stop alone does not (the pattern needs ". I hope"), as upstream
    assert minerva_final_answer("Final Answer: The final answer is $7$. ") == "$7$"
    assert minerva_final_answer("Final Answer: The final answer is $7$.") is None
    # the first sentence counts; none at all is unparsed
    assert (
        minerva_final_answer(f"Final Answer: The final answer is 1{CLOSE} Final Answer: The final answer is 2") == "1"
    )
    assert minerva_final_answer("The answer is 6.") is None


def test_equivalence_is_hendrycks_string_equivalence():
    assert math_equivalent("\\dfrac{14}{3}", "\\frac{14}{3}")  # dfrac -> frac
    assert math_equivalent("14/3", "\\frac{14}{3}")  # a/b -> \frac{a}{b}
    assert math_equivalent("\\left(3,\\frac{\\pi}{2}\\right)", "\\left( 3, \\frac{\\pi}{2} \\right)")
    assert not math_equivalent("15", "16")
    assert not math_equivalent(None, "16")  # unparsed is wrong
    assert math_boxed_answer("so $x=\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}" and math_boxed_answer("none") is None


@pytest.fixture(scope="module")
def loaded(data_dir):
    return _task(data_dir).load()


def test_the_local_copy_is_math500_and_200_are_drawn(data_dir, loaded):
    examples, prov = loaded
    rows = json.loads((data_dir / "reward-math" / "math_test" / "experiments_test_filtered.json").read_text())
    math_ids = {f"math-{r['id']}" for r in rows if r["data_source"] == "MATH"}
    assert len(math_ids) == 500  # ../shared/data/reward-math/SOURCES.md: 991 problems, MATH's are MATH-500
    assert len(examples) == 200 and {e.id for e in examples} <= math_ids
    assert prov["files"][0].endswith("experiments_test_filtered.json")
    # the draw is open-instruct's: random.seed(42); random.sample(problems, 200), in file order
    import random

    problems = [f"math-{r['id']}" for r in rows if r["data_source"] == "MATH"]
    assert [e.id for e in examples] == random.Random(42).sample(problems, 200)


def test_prompt_as_open_instruct_renders_it(data_dir, loaded, tokenizer):
    from rmlab.models.chat_format import ChatFormatter
    from rmlab.policy_eval.evaluate import prompt_text

    examples, _ = loaded
    cfg = OmegaConf.load(ROOT / "conf" / "task" / "math.yaml")
    ex = examples[0]
    fmt = ChatFormatter(tokenizer, template="tulu")
    eos = tokenizer.eos_token
    # create_prompt_with_tulu_chat_format (eval/templates.py) on run_eval.py:66-73's messages, written out here
    expected = ""
    for d in cfg.exemplars:
        expected += f"<|user|>\nProblem:\n{d.question}\n\nSolution:\n"
        expected += f"<|assistant|>\n{d.cot_answer}\nFinal Answer: The final answer is ${d.short_answer}${CLOSE}{eos}\n"
    problem = ex.user[-1][1]
    assert problem.startswith("Problem:\n") and problem.endswith("\n\nSolution:")
    expected += f"<|user|>\n{problem}\n<|assistant|>\n"
    assert prompt_text(fmt, *ex.turns("greedy")) == expected


def test_hand_made_generations(data_dir, loaded):
    examples, _ = loaded
    task = _task(data_dir)
    by_target = {}
    for e in examples:
        by_target.setdefault(e.reference["target"], e)
    frac = next(e for t, e in by_target.items() if t.startswith("\\frac{") and t.count("{") == 2)
    integer = next(e for t, e in by_target.items() if t.isdigit() and t != "0")
    other = next(e for e in examples if e.id not in (frac.id, integer.id))
    dfrac = frac.reference["target"].replace("\\frac", "\\dfrac")
    outputs = {
        frac.id: f"Work.\nFinal Answer: The final answer is ${dfrac}${CLOSE}",  # same value, another macro: right
        integer.id: f"Final Answer: The final answer is ${int(integer.reference['target']) + 1}${CLOSE}",  # wrong
        other.id: "I think the answer is 5.",  # no answer sentence: unparsed, wrong
    }
    chosen = [frac, integer, other]
    rows, m = task.score(chosen, {"greedy": {k: [v] for k, v in outputs.items()}}, ScoreContext(n_boot=0))
    assert [r["correct"] for r in rows] == [True, False, False]
    # the mean of [1, 0, 0] in float64: one addition and one division, within one ulp of 1/3 (2**-54 ~ 6e-17)
    assert m["value"] == pytest.approx(1 / 3, abs=1e-16) and m["n"] == 3 and m["unparsed"] == 1
    assert sum(s["n"] for s in m["per_subject"].values()) == 3
    assert task.gold(frac, outputs[frac.id], ScoreContext()) == 1.0


def test_bad_records_are_named(tmp_path):
    folder = tmp_path / "reward-math" / "math_test"
    folder.mkdir(parents=True)
    good = {"problem": "1+1?", "answer": "2", "data_source": "MATH", "feature": {"subject": "Algebra"}, "id": 0}
    bad = {**good, "id": 1, "answer": ""}
    (folder / "experiments_test_filtered.json").write_text(json.dumps([good, bad]))
    with pytest.raises(DataValidationError, match=r"experiments_test_filtered\.json, record 1: field 'answer'"):
        _task(tmp_path).load()
    # a MATH-500-shaped row with the answer only inside its solution's box reads
    hub_like = {"problem": "1+1?", "solution": "It is $\\boxed{2}$.", "subject": "Algebra", "unique_id": "t/1.json"}
    (folder / "experiments_test_filtered.json").write_text(json.dumps([hub_like]))
    (ex,), _ = _task(tmp_path, data_sources=None).load()
    assert ex.reference["target"] == "2" and ex.id == "math-t/1.json"
