"""The score bound behind the fragile count (:mod:`rmlab.scoring.precision`)."""

import numpy as np
import pytest

from rmlab.benchmarks.base import Comparison, ScoreRequest
from rmlab.scoring.precision import RELATIVE_BOUND, fragile_comparisons, fragile_count, score_tolerance


def test_tolerance_is_relative_above_one_and_absolute_below():
    tol = score_tolerance("float32", [0.0, 0.5, -1.0, 10.0, -200.0])
    assert tol.tolist() == [RELATIVE_BOUND["float32"] * m for m in (1, 1, 1, 10, 200)]
    with pytest.raises(ValueError, match="no score bound for dtype 'int8'"):
        score_tolerance("int8", [1.0])


def test_a_margin_inside_both_tolerances_is_fragile_and_one_outside_is_not():
    b = RELATIVE_BOUND["bfloat16"]
    chosen = np.array([1.0, 1.0, 100.0, 100.0])
    # margins: just inside / just outside 2 b (scores ~1), inside / outside b (100 + 100) around 100
    rejected = np.array([1.0 - 1.9 * b, 1.0 - 2.1 * b, 100.0 + 190 * b, 100.0 - 210 * b])
    got = fragile_count(chosen, rejected, "bfloat16")
    assert (got["comparisons"], got["fragile"], got["share"]) == (4, 2, 0.5)


def test_comparisons_find_their_scores_by_label_and_a_missing_one_is_named():
    class Bench:
        @staticmethod
        def comparisons(items):
            return [Comparison("p", "a", "b", "x/0", "x/0/chosen", "x/0/rejected")]

    reqs = [ScoreRequest("p", "a", "x/0/chosen"), ScoreRequest("p", "b", "x/0/rejected")]
    assert fragile_comparisons(Bench, [], reqs, np.array([0.5, 0.5]), "float32")["fragile"] == 1
    with pytest.raises(KeyError, match="x/0"):
        fragile_comparisons(Bench, [], reqs[:1], np.array([0.5]), "float32")
