"""RewardBench section weighting and overall score on a synthetic subset table."""

import numpy as np
import pytest

from rmlab.metrics.reward_bench import (
    EXAMPLE_COUNTS,
    PRIOR_SETS,
    SECTIONS,
    overall_score,
    pair_outcomes,
    prior_sets_score,
    reward_bench_metrics,
    section_scores,
)


def _table(value_by_section):
    return {s: value_by_section[sec] for sec, subs in SECTIONS.items() for s in subs}


def test_reasoning_weighs_math_and_code_equally():
    """math-prm counts 984 = 6 x 164, so Reasoning = 0.5 * math + 0.5 * mean(hep-*).

    math 0.9, hep-* = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6): mean 0.35 -> Reasoning = 0.625.
    """
    acc = _table({"Chat": 1.0, "Chat Hard": 0.5, "Safety": 0.25, "Reasoning": 0.0})
    acc["math-prm"] = 0.9
    for lang, v in zip(("cpp", "go", "java", "js", "python", "rust"), (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
        acc[f"hep-{lang}"] = v
    sec = section_scores(acc)
    assert sec["Reasoning"]["score"] == pytest.approx(0.625)
    assert sec["Chat"]["score"] == 1.0 and sec["Chat Hard"]["score"] == 0.5 and sec["Safety"]["score"] == 0.25
    assert overall_score(sec, None) == pytest.approx((1.0 + 0.5 + 0.25 + 0.625) / 4)


def test_chat_is_example_weighted():
    """Chat: alpacaeval-easy (100) = 1, the other four (95 + 95 + 28 + 40 = 258) = 0 -> 100 / 358."""
    acc = _table({"Chat": 0.0, "Chat Hard": 0.0, "Safety": 0.0, "Reasoning": 0.0})
    acc["alpacaeval-easy"] = 1.0
    assert section_scores(acc)["Chat"]["score"] == pytest.approx(100 / 358)
    assert sum(EXAMPLE_COUNTS[s] for s in SECTIONS["Chat"]) == 358


def test_prior_sets_count_half():
    acc = _table({"Chat": 0.8, "Chat Hard": 0.6, "Safety": 0.7, "Reasoning": 0.9})
    acc.update(
        {"anthropic_helpful": 0.5, "anthropic_hhh": 0.7, "shp": 0.6, "summarize": 0.6, "anthropic_harmless": 0.0}
    )  # harmless is scored but not counted
    prior = prior_sets_score(acc)
    assert prior == pytest.approx(0.6)
    assert overall_score(section_scores(acc), prior) == pytest.approx((2 * (0.8 + 0.6 + 0.7 + 0.9) + 0.6) / 9)
    del acc["shp"]
    assert prior_sets_score(acc) is None


def test_missing_subset_is_named_and_blocks_the_weighted_mean():
    acc = _table({"Chat": 0.8, "Chat Hard": 0.6, "Safety": 0.7, "Reasoning": 0.9})
    del acc["hep-go"]
    sec = section_scores(acc)
    assert sec["Reasoning"]["score"] is None and sec["Reasoning"]["subsets_missing"] == ["hep-go"]
    assert sec["Reasoning"]["partial_score"] == pytest.approx(0.9)
    assert overall_score(sec, None) is None


def test_full_metrics_from_scores_with_ties():
    """math-prm: chosen (2, 1, 1) vs rejected (1, 1, 3): a win, a tie (a loss), a loss -> 1/3 with 1 tie."""
    out = reward_bench_metrics({"math-prm": (np.array([2.0, 1, 1]), np.array([1.0, 1, 3]))}, n_boot=50)
    m = out["subsets"]["math-prm"]
    assert m["accuracy"] == pytest.approx(1 / 3) and m["ties"] == 1 and m["n"] == 3
    assert out["overall"] is None and "hep-go" in out["missing_subsets"] and len(out["missing_subsets"]) == 22
    assert out["sections"]["Reasoning"]["partial_score"] == pytest.approx(1 / 3)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown RewardBench subset"):
        reward_bench_metrics({"poems": (np.zeros(1), np.zeros(1))})
    with pytest.raises(ValueError, match="NaN"):
        pair_outcomes(np.array([np.nan]), np.array([0.0]))
    assert set(PRIOR_SETS) == {"anthropic_helpful", "anthropic_hhh", "shp", "summarize"}
