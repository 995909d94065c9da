"""A wrong answer of the right shape never scores; the target and its documented spellings always do.

Property tests (hypothesis, seeded by ``derandomize``) for every answer extractor and label parser the lab scores
with: targets drawn from the local data files in each task's real shapes (BBH per task: options, signed numbers,
bracket sequences, word lists, True/False, valid/invalid; GSM8k's numbers; the arithmetic task's results), and
wrong answers of the same shape (another option of the task, the negated number, a permuted or shortened
sequence, an empty answer). The judges' parsers get each verdict and each other verdict after free text.
"""

from __future__ import annotations

import json
import os
import random
from functools import cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rmlab.policy_eval.judging.refusal import LABELS, REFUSAL_PREFIXES, parse_judge_label, strmatch_label
from rmlab.policy_eval.sandbox.runner import Limits, Sandbox, SandboxUnavailable
from rmlab.policy_eval.tasks.arithmetic import stated_result
from rmlab.policy_eval.tasks.extract import bbh_answer, bbh_match, gsm8k_match, gsm8k_prediction, gsm8k_target
from rmlab.scoring.judge_prompts import (
    ARENA_HARD_LABELS,
    ends_with_scale,
    parse_arena_hard_verdict,
    parse_boxed_verdict,
    parse_bracket_verdict,
    parse_labelled_rating,
    parse_trailing_rating,
    parse_trailing_rating_strict,
)
from tests.conftest import DATA_DIR

PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# free text around an answer: no digits, brackets or the phrases the parsers look for
PROSE = st.text(alphabet=st.sampled_from("abcdefghij klmnop,;:\n"), max_size=40).filter(
    lambda t: "answer is" not in t and "rating" not in t.lower()
)


def _data(*parts: str):
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():  # as conftest's data_dir: CI (RMLAB_REQUIRE_DATA=1) fails instead of skipping
        if os.environ.get("RMLAB_REQUIRE_DATA") == "1":
            pytest.fail(f"real data expected at {path} (RMLAB_REQUIRE_DATA=1)")
        pytest.skip(f"no local data at {path}")
    return path


@cache
def _bbh_targets() -> dict[str, list[str]]:
    folder = _data("bbh", "bbh")
    return {
        p.stem: sorted({e["target"] for e in json.loads(p.read_text())["examples"]})
        for p in sorted(folder.glob("*.json"))
    }


@cache
def _gsm8k_targets() -> list[str]:
    with _data("gsm8k", "test.jsonl").open() as fh:
        return sorted({gsm8k_target(json.loads(line)["answer"]) for line in fh})


def _same_shape_wrong(task: str, target: str, seed: int) -> list[str]:
    """Wrong answers shaped like ``target``: every other target of its task, and by shape: the negated number,
    a permuted and a shortened token sequence, the letter of an option without its brackets swapped for another."""
    wrong = [t for t in _bbh_targets()[task] if t != target] + [""]
    if target.lstrip("-").isdigit():
        wrong += [str(-int(target)), str(int(target) + 1)]
    tokens = target.split()
    if len(tokens) > 1:
        shuffled = tokens[:]
        random.Random(seed).shuffle(shuffled)
        wrong += [" ".join(shuffled), " ".join(tokens[:-1]), " ".join(reversed(tokens))]
    return [w for w in wrong if w != target]


# every BBH task gets its own run (names read at collection; without the data the test skips)
BBH_TASKS = sorted(p.stem for p in (DATA_DIR / "bbh" / "bbh").glob("*.json")) or ["(no local BBH data)"]
PER_TASK = settings(PROPERTY, max_examples=25)


@pytest.mark.parametrize("task", BBH_TASKS)
@given(data=st.data())
@PER_TASK
def test_bbh_wrong_answer_of_the_right_shape_never_matches(task, data):
    targets = _bbh_targets()
    target = data.draw(st.sampled_from(targets[task]), label="target")
    wrong = data.draw(st.sampled_from(_same_shape_wrong(task, target, data.draw(st.integers(0, 99)))))
    before = data.draw(PROSE, label="reasoning")
    output = f"{before} So the answer is {wrong}."
    assert not bbh_match(bbh_answer(output), target), (task, target, wrong)
    # the first statement counts: a right answer after a wrong one does not rescue it
    assert not bbh_match(bbh_answer(f"{output} Actually, the answer is {target}."), target)


@pytest.mark.parametrize("task", BBH_TASKS)
@given(data=st.data())
@PER_TASK
def test_bbh_target_and_its_spellings_always_match(task, data):
    targets = _bbh_targets()
    target = data.draw(st.sampled_from(targets[task]), label="target")
    before, after = data.draw(PROSE), data.draw(PROSE)
    for output in (
        f"{before} So the answer is {target}.{after}",
        f"{before} the answer is  {target} .\n\nQ: {after}",
        f"  {target}\n",  # no answer phrase: the whole output is the answer
    ):
        assert bbh_match(bbh_answer(output), target), (task, target, output)


@given(data=st.data())
@PROPERTY
def test_gsm8k_wrong_number_never_matches_and_spellings_do(data):
    target = data.draw(st.sampled_from(_gsm8k_targets()), label="target")
    value = int(target)
    wrong = data.draw(
        st.sampled_from([str(-value), str(value + 1), str(value - 1), f"{value}.5", str(value * 10), "none"])
    )
    assume(wrong != target and not (value == 0 and wrong == "0"))
    before = data.draw(PROSE)
    output = f"{before} The answer is {wrong}."
    assert not gsm8k_match(gsm8k_prediction(output), target, output=output)
    for right in (target, f"{value:,}", f"${value}", f"{value}.00"):
        output = f"{before} {wrong} is wrong. The answer is {right}."
        assert gsm8k_match(gsm8k_prediction(output), target, output=output), right


@given(a=st.integers(1, 999), b=st.integers(2, 999), op=st.sampled_from("+*"), data=st.data())
@PROPERTY
def test_arithmetic_stated_result(a, b, op, data):
    result = a + b if op == "+" else a * b
    wrong = data.draw(
        st.sampled_from([f"{result}.5", str(-result), str(result + 1), f"{result // 10},{result % 10}", ""])
    )
    restated = data.draw(st.booleans())
    head = f"{a} {op} {b} = " if restated else "The result is "
    assert stated_result(head + wrong, (a, b)) != result, head + wrong
    for right in (str(result), f"{result:,}", f"{result}."):
        assert stated_result(head + right + data.draw(PROSE), (a, b)) == result, head + right


@given(prefix=st.sampled_from(REFUSAL_PREFIXES), rest=PROSE, lead=st.sampled_from(["", " ", "\n"]))
@PROPERTY
def test_xstest_strmatch_reads_refusal_openings_only(prefix, rest, lead):
    assert strmatch_label(lead + prefix.upper() + rest) == "2_full_refusal"
    assert strmatch_label("Sure. " + prefix + rest) == "1_full_compliance"  # only the opening counts


@given(label=st.sampled_from(LABELS), other=st.sampled_from(LABELS), before=PROSE, after=PROSE)
@PROPERTY
def test_judge_label_is_exactly_one_valid_class(label, other, before, after):
    number, words = label.split("_", 1)
    for spelling in (label, f"{before} {label} {after}", words.replace("_", " ").title() + ".", f" {number}\n"):
        assert parse_judge_label(spelling) == label, spelling
    other_words = other.split("_", 1)[1]
    if other != label:
        assert parse_judge_label(f"{number}_{other_words}") is None  # a number with another class's words
        assert parse_judge_label(f"{label} or {other}") is None  # two classes
    assert parse_judge_label(f"It is not a {words.split('_')[-1]}, {before}") is None
    assert parse_judge_label(before) is None


@given(text=st.text(max_size=60))
@PROPERTY
def test_judge_label_parser_yields_a_valid_label_or_none(text):
    assert parse_judge_label(text) in (*LABELS, None)


PAIRWISE = {  # prompt format -> (render a verdict, parser, verdicts)
    "rewardbench": (lambda v: f"[[{v}]]", parse_bracket_verdict, {"A": "A", "B": "B"}),
    "rewardmath": (
        lambda v: f"Judgement: [[{v}]]",
        lambda t: parse_bracket_verdict(t, anchor="Judgement:"),
        {"A": "A", "B": "B"},
    ),
    "rmbench_boxed": (lambda v: f"\\boxed{{{v}}}", parse_boxed_verdict, {"A>>B": "A", "A=B": "tie", "B>A": "B"}),
    "arena_hard": (lambda v: f"[[{v}]]", parse_arena_hard_verdict, {v: v for v in ARENA_HARD_LABELS}),
}


@given(fmt=st.sampled_from(sorted(PAIRWISE)), before=PROSE, data=st.data())
@PROPERTY
def test_pairwise_verdicts_read_the_verdict_given_and_no_other(fmt, before, data):
    render, parse, verdicts = PAIRWISE[fmt]
    said = data.draw(st.sampled_from(sorted(verdicts)))
    assert parse(before + "\n" + render(said)) == verdicts[said]
    for other in verdicts:
        if verdicts[other] != verdicts[said]:
            assert parse(before + "\n" + render(other)) != verdicts[said]
    assert parse(before) is None  # no verdict: unparsed, never a side


@given(n=st.integers(1, 10), m=st.integers(1, 10), before=PROSE)
@PROPERTY
def test_ratings_read_the_rating_given(n, m, before):
    assert parse_trailing_rating(f"{before}\n{n}") == n and parse_labelled_rating(f"{before} Rating: [[{n}]]") == n
    if m != n:
        assert parse_trailing_rating(f"{before}\n{m}") != n and parse_labelled_rating(f"Rating: [[{m}]]") != n
    for scale in (f"{before} {n}/10", f"{before} {n} out of 10."):
        assert ends_with_scale(scale) and parse_trailing_rating_strict(scale) == n
        assert parse_trailing_rating(scale) == 10  # rewardbench's rule, kept as the default: counted instead
    for out_of_range in ("0", "11", "-3"):
        assert parse_labelled_rating(f"Rating: [[{out_of_range}]]") is None


@cache
def _sandbox() -> Sandbox:
    try:
        return Sandbox(Limits())
    except SandboxUnavailable as err:
        pytest.skip(str(err))


@given(rc=st.integers(-64, 255), token_ok=st.sampled_from([True, False]))
@PROPERTY
def test_code_test_status_passes_only_on_exit_0_with_the_harness_signal(rc, token_ok):
    """HumanEval+ / MBPP+: a test run's verdict from its exit status and the harness's pass signal."""
    status, reason = _sandbox()._judge(rc, token_ok)
    assert (status == "ok") == (rc == 0 and token_ok)
    assert status == "ok" or reason
