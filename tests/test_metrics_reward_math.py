"""RewardMATH metrics on hand-made score arrays with ties, PRM aggregations, pairwise verdicts."""

import math

import numpy as np
import pytest

from rmlab.metrics.reward_math import PRM_AGGREGATIONS, pairwise_outcomes, problem_outcomes, random_baselines, summarize
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)


def test_accuracy_ties_and_pessimistic_mrr():
    """Three problems, k = 3 incorrect each.

    P1: correct 5 vs (1, 2, 3): strict win, rank 1.
    P2: correct 2 vs (2, 1, 0): tie with one -> strict loss, win with ties; pessimistic rank 2.
    P3: correct 1 vs (3, 1, 2): two above, one tied -> rank 4.
    accuracy 1/3, with ties 2/3, MRR (1 + 1/2 + 1/4) / 3.
    """
    out = problem_outcomes(np.array([5.0, 2, 1]), np.array([[1.0, 2, 3], [2, 1, 0], [3, 1, 2]]))
    s = summarize(out, k=3, n_boot=0)
    # integer counts over 3 problems, and reciprocal ranks 1, 1/2, 1/4 that sum exactly: each the same one
    # correctly rounded division as on the right: exact
    assert s["accuracy"] == 1 / 3
    assert s["accuracy_with_ties"] == 2 / 3
    assert s["mrr"] == (1 + 0.5 + 0.25) / 3


def test_random_baselines_match_the_paper():
    rb = random_baselines(9)
    assert round(100 * rb["accuracy"], 2) == 10.00 and round(100 * rb["mrr"], 2) == 29.29


def test_breakdowns_by_subject_and_level():
    out = problem_outcomes(np.array([1.0, 0, 1]), np.array([[0.0], [1.0], [0.0]]))
    s = summarize(out, subjects=["Algebra", "Geometry", "Algebra"], levels=[1, 5, 5], k=1, n_boot=0)
    assert s["by_subject"]["Algebra"]["accuracy"] == 1.0 and s["by_subject"]["Geometry"]["accuracy"] == 0.0
    assert s["by_level"]["5"]["n"] == 2 and s["by_level"]["5"]["accuracy"] == 0.5


def test_prm_aggregations_on_two_steps():
    """Steps (0.5, 0.8): odds (1, 4), log-odds (0, log 4)."""
    steps = [0.5, 0.8]
    want = {
        "min": 0.5,
        "max": 0.8,
        "prod": 0.4,
        "geometric_mean": math.sqrt(0.4),
        "mean": 0.65,
        "mean_logit": 1 / (1 + math.exp(-math.log(4) / 2)),
        "mean_odd": 2.5,
        "last": 0.8,
    }
    assert set(PRM_AGGREGATIONS.names()) == set(want)
    # the longest chain is mean_logit's: the literal 0.8 (its error grows 4x through 1 - 0.8), odds, log, mean,
    # exp, 1 + and 1 / (<= 12 roundings, libm functions within 1 ulp) against log, exp, 1 + and 1 / on the right
    # (<= 7): 20 roundings of values <= 4 (the odds) bound every aggregation (min, max, last and prod are exact)
    for name, value in want.items():
        assert PRM_AGGREGATIONS[name](steps) == pytest.approx(value, abs=worst_case(20, 4.0)), name
    with pytest.raises(ValueError, match="at least one step"):
        PRM_AGGREGATIONS["min"]([])


def test_pairwise_verdicts():
    won = np.array([[True] * 9, [True] * 8 + [False], [False] * 9])
    out = summarize(pairwise_outcomes(won), k=9, n_boot=0)
    # an integer count over 3: exact. Reciprocal ranks 1, 1/2, fl(1/10) summed left to right and divided by 3,
    # as on the right: the same operations, exact
    assert out["accuracy"] == 1 / 3
    assert out["mrr"] == (1 + 1 / 2 + 1 / 10) / 3


def test_shape_and_nan_errors():
    with pytest.raises(ValueError, match=r"\(n,\) and \(n, k\)"):
        problem_outcomes(np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        problem_outcomes(np.array([np.nan]), np.zeros((1, 9)))
