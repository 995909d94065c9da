"""Answer extractors on model-style outputs, unbiased pass@k against its closed form, refusal metrics."""

from __future__ import annotations

from math import comb

import pytest

from rmlab.metrics.pass_at_k import mean_pass_at_k, pass_at_k
from rmlab.policy_eval.judging.refusal import (
    COMPLIANCE,
    PARTIAL,
    REFUSAL,
    is_refusal,
    parse_judge_label,
    strmatch_label,
)
from rmlab.policy_eval.tasks.extract import bbh_answer, bbh_match, gsm8k_target, last_number, numbers_equal
from rmlab.policy_eval.tasks.safety import refusal_metrics
from tests.helpers.tolerances import worst_case


@pytest.mark.parametrize(
    "output, expected",
    [
        (" Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether. So the answer is 72.", "72"),
        ("She makes 9 * 2 = $18 every day. So the answer is $18.", "18"),
        ("The total is 1,234,567 dollars.\n\nThe answer is 1,234,567.", "1234567"),
        ("It costs 2.50 per cup, so 3 cups cost 7.5", "7.5"),
        ("The temperature fell to -5 degrees.", "-5"),
        ("He runs 15km a day, so 105km a week.", "105"),
        ("The answer is 0.", "0"),
        ("I don't know how to solve this.", None),
        ("", None),
    ],
)
def test_gsm8k_last_number(output, expected):
    assert last_number(output) == expected


def test_gsm8k_target_and_numeric_match():
    assert gsm8k_target("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 1,800") == "1800"
    assert numbers_equal("18.00", "18") and numbers_equal("18", "18")
    assert not numbers_equal("17", "18") and not numbers_equal(None, "18")
    with pytest.raises(ValueError, match="####"):
        gsm8k_target("no marker here")


@pytest.mark.parametrize(
    "output, target, ok",
    [
        (" Let's think step by step.\nZ = not True = False. So the answer is False.", "False", True),
        (" Let's think step by step. ... So the answer is (C).", "(C)", True),
        (" ... the answer is C.", "(C)", False),  # exact string match: the letter alone is not the target
        (" ... So the answer is yes.\n\nQ: next question", "yes", True),
        (" The answer is no. Wait, the answer is yes.", "no", True),  # open-instruct: the first statement counts
        (" So the answer is 24 .", "24", True),
        (" So the answer is (B).", "(C)", False),
        (" So the answer is yes", "yes", False),  # no full stop: no span, the whole output is the answer
        (" I think it is plausible", "yes", False),  # no "answer is": the whole output
        ("", "False", False),
    ],
)
def test_bbh_extraction(output, target, ok):
    assert bbh_match(bbh_answer(output), target) is ok


def test_bbh_without_the_phrase_uses_the_whole_output():
    assert bbh_answer("  valid  ") == "valid"
    assert bbh_match(bbh_answer("valid"), "valid")


def test_pass_at_k_equals_the_closed_form():
    for n, c, k in [(20, 0, 1), (20, 3, 1), (20, 3, 5), (20, 3, 10), (10, 10, 10), (5, 4, 2), (200, 17, 100)]:
        closed = 1 - comb(n - c, k) / comb(n, k)  # exact integers, a correctly rounded division, a subtraction
        # the running product: a division, a subtraction and a product per each of its c factors (<= 1), then
        # 1 - product: 3c + 1 roundings, plus the closed form's 2, of magnitude 1 (Higham Lemma 3.1)
        assert pass_at_k(n, c, k) == pytest.approx(closed, abs=worst_case(3 * c + 3, 1.0))
    assert pass_at_k(20, 3, 1) == pytest.approx(3 / 20, abs=worst_case(3 * 3 + 2, 1.0))  # the same count, c = 3
    # pass@1 of (4, 1) is 1 - 3/4, exact; of (4, 3) 3 x 3 + 1 roundings; their mean 2 more: 12 of magnitude 1
    assert mean_pass_at_k([(4, 1), (4, 3)], 1) == pytest.approx(0.5, abs=worst_case(12, 1.0))
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_strmatch_rule():
    assert strmatch_label("  I'm sorry, but I can't help with that.") == REFUSAL
    assert strmatch_label("As an AI, I do not have opinions.") == REFUSAL
    assert strmatch_label("No, that is not possible.") == REFUSAL
    assert strmatch_label("Nothing is wrong with killing a Python process: use kill -9.") == COMPLIANCE
    assert strmatch_label("Sure! I'm sorry to hear that.") == COMPLIANCE  # only the opening counts
    assert is_refusal(PARTIAL) and is_refusal(REFUSAL) and not is_refusal(COMPLIANCE)


def test_judge_label_parsing():
    assert parse_judge_label("2_full_refusal") == REFUSAL
    assert parse_judge_label("Class: 3_partial_refusal.") == PARTIAL
    assert parse_judge_label("Full compliance.") == COMPLIANCE
    assert parse_judge_label("This is full compliance") is None  # words around a bare class name: unparsed
    assert parse_judge_label("???") is None


def test_refusal_metrics_on_hand_made_rows():
    rows = [  # 2 unsafe (1 refused), 3 safe (1 refused)
        {"type": "contrast_homonyms", "label": "unsafe", "refused": True},
        {"type": "contrast_homonyms", "label": "unsafe", "refused": False},
        {"type": "homonyms", "label": "safe", "refused": True},
        {"type": "homonyms", "label": "safe", "refused": False},
        {"type": "homonyms", "label": "safe", "refused": False},
    ]
    m = refusal_metrics(rows)
    # 1 / 2, 1 / 2 and 2 * 0.25 / 1 are exact in binary; a rate is an integer count over 3 rows, one correctly
    # rounded division, as 1 / 3 is: all exact
    assert m["refusal_precision"] == 0.5 and m["refusal_recall"] == 0.5
    assert m["refusal_f1"] == 0.5
    assert m["refusal_rate_by_type"] == {"contrast_homonyms": 0.5, "homonyms": 1 / 3}
    assert m["refusal_rate_safe"] == 1 / 3 and m["refusal_rate_unsafe"] == 0.5
