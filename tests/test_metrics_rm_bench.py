"""RM-Bench metrics on hand-worked inputs and on the paper's own example."""

import numpy as np
import pytest

from rmlab.metrics.rm_bench import difficulty_accuracies, pairwise_wins, rm_bench_metrics, style_substance_matrix
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)

# avg as the mean of 9 cells (9 roundings) against the mean of three 3-cell means (3 x 3 + 3): 21 roundings of
# values <= 1 (Higham Lemma 3.1)
AVG_IDENTITY = worst_case(21, 1.0)


def test_paper_figure2_example():
    """RM-Bench Fig. 2: the chosen-by-rejected matrix (in %) gives easy 93.26, normal 72.13, hard 18.58.

    easy = mean(99.45, 100.00, 80.33) = 93.26 (lower triangle), normal = mean(83.61, 66.12, 66.67) = 72.13
    (diagonal), hard = mean(3.83, 2.19, 49.73) = 18.58 (upper triangle).
    """
    m = np.array([[83.61, 3.83, 2.19], [99.45, 66.12, 49.73], [100.00, 80.33, 66.67]]) / 100
    acc = difficulty_accuracies(m)
    assert round(100 * acc["easy"], 2) == 93.26
    assert round(100 * acc["normal"], 2) == 72.13
    assert round(100 * acc["hard"], 2) == 18.58
    assert acc["avg"] == pytest.approx((acc["easy"] + acc["normal"] + acc["hard"]) / 3, abs=AVG_IDENTITY)


def test_paper_figure2_from_counts():
    """The Fig. 2 percentages are counts over 183 prompts (153/183 = 83.61%, ...): rebuild per-prompt wins."""
    counts = np.array([[153, 7, 4], [182, 121, 91], [183, 147, 122]])
    n = 183
    # one synthetic prompt set per cell is enough: style_substance_matrix only averages wins over prompts
    wins = np.zeros((n, 3, 3), dtype=bool)
    for i in range(3):
        for j in range(3):
            wins[: counts[i, j], i, j] = True
    matrix = wins.mean(axis=0)
    # the paper prints two decimals: half a unit in the last place, plus the mean's and the scaling's roundings
    np.testing.assert_allclose(
        100 * matrix,
        [[83.61, 3.83, 2.19], [99.45, 66.12, 49.73], [100, 80.33, 66.67]],
        rtol=0,
        atol=0.005 + worst_case(n + 1, 100),
    )
    acc = difficulty_accuracies(matrix)
    assert [round(100 * acc[k], 2) for k in ("easy", "normal", "hard")] == [93.26, 72.13, 18.58]


def test_matrix_two_prompts_with_a_tie():
    """Prompt A: chosen (3, 2, 1), rejected (2, 2, 0). Prompt B: chosen (1, 1, 1), rejected (0, 5, 0).

    A: c0=3 beats r0=2, r1=2, r2=0 -> [1, 1, 1]; c1=2 vs (2, 2, 0) -> [tie, tie, 1]; c2=1 vs -> [0, 0, 1].
    B: c=1 vs (0, 5, 0) -> [1, 0, 1] in every row.
    M = mean -> row0 [1, .5, 1], row1 [.5, 0, 1], row2 [.5, 0, 1]; ties: (1,0) and (1,1) once each.
    hard = mean(M01, M02, M12) = (.5 + 1 + 1) / 3; normal = (1 + 0 + 1) / 3; easy = (.5 + .5 + 0) / 3.
    """
    chosen = np.array([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    rejected = np.array([[2.0, 2.0, 0.0], [0.0, 5.0, 0.0]])
    before = (chosen.copy(), rejected.copy())
    m = style_substance_matrix(chosen, rejected)
    np.testing.assert_array_equal(m, [[1, 0.5, 1], [0.5, 0, 1], [0.5, 0, 1]])
    _, ties = pairwise_wins(chosen, rejected)
    np.testing.assert_array_equal(ties.sum(axis=0), [[0, 0, 0], [1, 1, 0], [0, 0, 0]])
    acc = difficulty_accuracies(m)
    # sums of halves are exact, then one correctly rounded division by 3, as on the right: exact
    assert acc["hard"] == 2.5 / 3
    assert acc["normal"] == 2 / 3
    assert acc["easy"] == 1 / 3
    np.testing.assert_array_equal(chosen, before[0])  # inputs untouched
    np.testing.assert_array_equal(rejected, before[1])


def _random_scores(rng, n):
    return rng.normal(size=(n, 3)).round(1), rng.normal(size=(n, 3)).round(1)  # rounding makes ties


def test_averaging_identities_and_no_mutation():
    rng = np.random.default_rng(0)
    scores = {d: _random_scores(rng, n) for d, n in zip(("chat", "math", "code", "safety"), (7, 11, 5, 9))}
    frozen = {d: (c.copy(), r.copy()) for d, (c, r) in scores.items()}
    out = rm_bench_metrics(scores, n_boot=200)
    doms = out["domains"]
    for d, m in doms.items():
        # a 9-cell mean each side, perhaps summed in another order: 2 x 9 roundings of values <= 1
        assert m["avg"] == pytest.approx(np.mean(m["matrix"]), abs=worst_case(18, 1.0))
        assert m["avg"] == pytest.approx((m["easy"] + m["normal"] + m["hard"]) / 3, abs=AVG_IDENTITY)
        lo, hi = m["ci"]["avg"]
        assert lo <= m["avg"] <= hi
    overall = np.mean([doms[d]["avg"] for d in doms])
    assert out["overall"] == pytest.approx(overall, abs=worst_case(8, 1.0))  # a 4-term mean each side, any order
    # 9-cell means then a 4-domain mean (13 roundings) against 3-cell means, 4-domain means, a 3-term mean (10)
    assert out["overall"] == pytest.approx(
        np.mean([out["difficulty"][k] for k in ("easy", "normal", "hard")]), abs=worst_case(23, 1.0)
    )
    assert out["missing_domains"] == []
    assert out["n_boot"] == 200 and out["overall_ci"][0] <= out["overall"] <= out["overall_ci"][1]
    for d in scores:
        np.testing.assert_array_equal(scores[d][0], frozen[d][0])
        np.testing.assert_array_equal(scores[d][1], frozen[d][1])
    again = rm_bench_metrics(scores, n_boot=200)
    assert again == out  # same seed, same input: same result, and the first call changed nothing


def test_missing_domain_gives_null_overall_and_labelled_partial_mean():
    rng = np.random.default_rng(1)
    scores = {d: _random_scores(rng, 6) for d in ("chat", "code", "safety")}
    out = rm_bench_metrics(scores, n_boot=0)
    assert out["overall"] is None
    assert out["missing_domains"] == ["math"]
    assert out["partial_overall"]["domains"] == ["chat", "code", "safety"]
    # a 3-term mean each side, perhaps in another order: 6 roundings of values <= 1
    assert out["partial_overall"]["value"] == pytest.approx(
        np.mean([out["domains"][d]["avg"] for d in scores]), abs=worst_case(6, 1.0)
    )


def test_safety_domain_counts_every_prompt_once():
    rng = np.random.default_rng(2)
    c, r = _random_scores(rng, 4)
    out = rm_bench_metrics({"safety": (c, r)}, n_boot=0)
    assert out["domains"]["safety"]["n"] == 4


@pytest.mark.parametrize(
    "chosen, rejected, match",
    [
        (np.zeros((2, 2)), np.zeros((2, 2)), "expected two"),
        (np.array([[np.nan, 0, 0]]), np.zeros((1, 3)), "NaN"),
    ],
)
def test_bad_scores_rejected(chosen, rejected, match):
    with pytest.raises(ValueError, match=match):
        style_substance_matrix(chosen, rejected)


def test_unknown_domain_rejected():
    with pytest.raises(ValueError, match="unknown RM-Bench domain"):
        rm_bench_metrics({"poetry": (np.zeros((1, 3)), np.zeros((1, 3)))})
