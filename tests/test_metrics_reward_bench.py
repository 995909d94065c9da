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
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)

# A section score is dot(w, acc) / sum(w) with integer weights: <= 2 roundings per subset (product, addition) and a
# division, of accuracies <= 1 whose positive terms keep the error relative to the value (Higham Lemma 3.1); the
# decimal literals the accuracies are written as round once each


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
    # 7 subsets: 2 x 7 roundings, and the 7 literals' own: 21 of magnitude 1 (0.625 is exact in binary)
    assert sec["Reasoning"]["score"] == pytest.approx(0.625, abs=worst_case(21, 1.0))
    assert sec["Chat"]["score"] == 1.0 and sec["Chat Hard"]["score"] == 0.5 and sec["Safety"]["score"] == 0.25
    # Reasoning's 21 roundings, then a 4-term mean on each side (4 + 4)
    assert overall_score(sec, None) == pytest.approx((1.0 + 0.5 + 0.25 + 0.625) / 4, abs=worst_case(29, 1.0))


def test_chat_is_example_weighted():
    """Chat: alpacaeval-easy (100) = 1, the other four (95 + 95 + 28 + 40 = 258) = 0 -> 100 / 358."""
    acc = _table({"Chat": 0.0, "Chat Hard": 0.0, "Safety": 0.0, "Reasoning": 0.0})
    acc["alpacaeval-easy"] = 1.0
    # dot(w, acc) of integer-valued floats is exactly 100, then the same one division: exact
    assert section_scores(acc)["Chat"]["score"] == 100 / 358
    assert sum(EXAMPLE_COUNTS[s] for s in SECTIONS["Chat"]) == 358


def test_prior_sets_count_half():
    acc = _table({"Chat": 0.8, "Chat Hard": 0.6, "Safety": 0.7, "Reasoning": 0.9})
    acc.update(
        {"anthropic_helpful": 0.5, "anthropic_hhh": 0.7, "shp": 0.6, "summarize": 0.6, "anthropic_harmless": 0.0}
    )  # harmless is scored but not counted
    prior = prior_sets_score(acc)
    # 4 literals, 3 additions and a division, and the literal 0.6: 9 roundings of magnitude 1
    assert prior == pytest.approx(0.6, abs=worst_case(9, 1.0))
    # sections (<= 2 x 7 + 1 each), their sum (3), the prior (9), the weighted sum and division (2): ~30 on the left;
    # 5 literals, 4 additions and a division on the right: 40 roundings of values whose terms are all positive
    assert overall_score(section_scores(acc), prior) == pytest.approx(
        (2 * (0.8 + 0.6 + 0.7 + 0.9) + 0.6) / 9, abs=worst_case(40, 1.0)
    )
    del acc["shp"]  # the leaderboard's nanmean: the mean of the prior sets that were scored
    # np.mean of 3 values sums left to right in PRIOR_SETS order, which is this order: the same operations, exact
    assert prior_sets_score(acc) == (0.5 + 0.7 + 0.6) / 3
    for name in ("anthropic_helpful", "anthropic_hhh", "summarize"):
        del acc[name]
    assert prior_sets_score(acc) is None


def test_missing_subset_is_named_and_blocks_the_weighted_mean():
    acc = _table({"Chat": 0.8, "Chat Hard": 0.6, "Safety": 0.7, "Reasoning": 0.9})
    del acc["hep-go"]
    sec = section_scores(acc)
    assert sec["Reasoning"]["score"] is None and sec["Reasoning"]["subsets_missing"] == ["hep-go"]
    # 6 subsets at 0.9: 2 x 6 roundings and the literal's: 13 of magnitude 1
    assert sec["Reasoning"]["partial_score"] == pytest.approx(0.9, abs=worst_case(13, 1.0))
    assert overall_score(sec, None) is None


def test_full_metrics_from_scores_with_ties():
    """math-prm: chosen (2, 1, 1) vs rejected (1, 1, 3): a win, a tie (a loss), a loss -> 1/3 with 1 tie."""
    out = reward_bench_metrics({"math-prm": (np.array([2.0, 1, 1]), np.array([1.0, 1, 3]))}, n_boot=50)
    m = out["subsets"]["math-prm"]
    # an integer count over 3 pairs: one correctly rounded division, as 1 / 3 is: exact
    assert m["accuracy"] == 1 / 3 and m["ties"] == 1 and m["n"] == 3
    assert out["overall"] is None and "hep-go" in out["missing_subsets"] and len(out["missing_subsets"]) == 22
    # its only subset: w * acc / w rounds twice from the accuracy
    assert out["sections"]["Reasoning"]["partial_score"] == pytest.approx(1 / 3, abs=worst_case(2, 1.0))


def test_bad_input():
    with pytest.raises(ValueError, match="unknown RewardBench subset"):
        reward_bench_metrics({"poems": (np.zeros(1), np.zeros(1))})
    with pytest.raises(ValueError, match="NaN"):
        pair_outcomes(np.array([np.nan]), np.array([0.0]))
    assert set(PRIOR_SETS) == {"anthropic_helpful", "anthropic_hhh", "shp", "summarize"}


# Published RewardBench rows (per-subset accuracies from allenai/reward-bench-results eval-set/*.json; section scores
# as the leaderboard shows them, reprinted in Zang et al. 2025, arXiv 2501.12368, Table 4). Both reproduce only
# with the current xstest weights (should-refuse 154, should-respond 250).
SKYWORK_8B = {  # Skywork/Skywork-Reward-Llama-3.1-8B; published 95.8 / 87.3 / 90.8 / 96.2, average 92.5
    "alpacaeval-easy": 0.96, "alpacaeval-hard": 0.9368421052631579, "alpacaeval-length": 0.9473684210526315,
    "mt-bench-easy": 1.0, "mt-bench-med": 1.0, "mt-bench-hard": 0.8378378378378378, "llmbar-natural": 0.9,
    "llmbar-adver-neighbor": 0.8955223880597015, "llmbar-adver-GPTInst": 0.9347826086956522,
    "llmbar-adver-GPTOut": 0.7872340425531915, "llmbar-adver-manual": 0.7391304347826086, "refusals-dangerous": 0.92,
    "refusals-offensive": 0.98, "xstest-should-refuse": 0.9545454545454546, "xstest-should-respond": 0.972,
    "donotanswer": 0.6764705882352942, "math-prm": 0.9686800894854586, "hep-cpp": 0.9451219512195121,
    "hep-go": 0.9573170731707317, "hep-java": 0.9634146341463414, "hep-js": 0.9695121951219512,
    "hep-python": 0.9573170731707317, "hep-rust": 0.9390243902439024,
}  # fmt: skip
INTERNLM2_20B = {  # internlm/internlm2-20b-reward; published 98.9 / 76.5 / 89.5 / 95.8, average 90.2
    "alpacaeval-easy": 1.0, "alpacaeval-hard": 0.9789473684210527, "alpacaeval-length": 0.9789473684210527,
    "mt-bench-easy": 1.0, "mt-bench-med": 1.0, "mt-bench-hard": 0.8378378378378378, "llmbar-natural": 0.91,
    "llmbar-adver-neighbor": 0.664179104477612, "llmbar-adver-GPTInst": 0.6630434782608695,
    "llmbar-adver-GPTOut": 0.7872340425531915, "llmbar-adver-manual": 0.8695652173913043, "refusals-dangerous": 0.85,
    "refusals-offensive": 0.93, "xstest-should-refuse": 0.9805194805194806, "xstest-should-respond": 0.948,
    "donotanswer": 0.7058823529411765, "math-prm": 0.9507829977628636, "hep-cpp": 0.9817073170731707,
    "hep-go": 0.9695121951219512, "hep-java": 0.9695121951219512, "hep-js": 0.9451219512195121,
    "hep-python": 0.9512195121951219, "hep-rust": 0.9695121951219512,
}  # fmt: skip
# Legacy weights: internlm2-20b-reward's own model card of mid-2024 (huggingface.co/internlm/internlm2-20b-reward
# @3c771ce, reward_bench_results/eval-set/internlm-reward-20b.json), published 98.6 / 74.1 / 89.4 / 95.7, score 89.5.
INTERNLM2_20B_CARD = {
    "alpacaeval-easy": 1.0, "alpacaeval-hard": 0.9789473684210527, "alpacaeval-length": 0.968421052631579,
    "mt-bench-easy": 1.0, "mt-bench-med": 1.0, "mt-bench-hard": 0.8108108108108109, "llmbar-natural": 0.91,
    "llmbar-adver-neighbor": 0.6343283582089553, "llmbar-adver-GPTInst": 0.6521739130434783,
    "llmbar-adver-GPTOut": 0.7872340425531915, "llmbar-adver-manual": 0.7608695652173914, "refusals-dangerous": 0.85,
    "refusals-offensive": 0.93, "xstest-should-refuse": 0.9675324675324676, "xstest-should-respond": 0.952,
    "donotanswer": 0.6985294117647058, "math-prm": 0.9530201342281879, "hep-cpp": 0.9695121951219512,
    "hep-go": 0.9634146341463414, "hep-java": 0.9695121951219512, "hep-js": 0.9512195121951219,
    "hep-python": 0.9695121951219512, "hep-rust": 0.9390243902439024,
}  # fmt: skip


@pytest.mark.parametrize(
    "accuracies, weights, published",
    [
        (SKYWORK_8B, "current", (95.8, 87.3, 90.8, 96.2, 92.5)),
        (INTERNLM2_20B, "current", (98.9, 76.5, 89.5, 95.8, 90.2)),
        (INTERNLM2_20B_CARD, "legacy", (98.6, 74.1, 89.4, 95.7, 89.5)),
    ],
    ids=["skywork-8b", "internlm2-20b", "internlm2-20b-card-legacy"],
)
def test_published_section_scores_from_published_subset_accuracies(accuracies, weights, published):
    from rmlab.metrics.reward_bench import example_counts

    sections = section_scores(accuracies, example_counts(weights))
    ours = [round(100 * sections[s]["score"], 1) for s in SECTIONS]
    assert ours == list(published[:4])
    # no prior sets: the mean of the four sections (published averages may be of the rounded section scores)
    assert abs(100 * overall_score(sections, None) - published[4]) < 0.06


def test_the_weights_decide_safety():
    """With the other weighting each published Safety score is missed: the test above is not weight-blind."""
    from rmlab.metrics.reward_bench import example_counts

    def safety(acc, weights):
        return round(100 * section_scores(acc, example_counts(weights))["Safety"]["score"], 1)

    assert (safety(SKYWORK_8B, "legacy"), safety(INTERNLM2_20B, "legacy")) == (90.6, 89.9)
    assert safety(INTERNLM2_20B_CARD, "current") == 89.2
    with pytest.raises(ValueError, match="xstest_weights='old'; valid values: current, legacy"):
        example_counts("old")
