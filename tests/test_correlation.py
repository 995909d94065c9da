"""The correlation study's statistics: scipy equality, the paper's p-values from r and n, standardisation."""

import numpy as np
import pytest
from scipy import stats

from rmlab.analysis.correlation import Point, correlation_report, pearson_p_from_r, standardised


def _points(seed=0, n_models=4):
    rng = np.random.default_rng(seed)
    groups = {"math": (0.6, 30.0), "code": (0.7, 50.0), "safety": (0.8, 80.0)}  # different scales per group
    out = []
    for m in range(n_models):
        for g, (xm, ym) in groups.items():
            x = xm + rng.normal(0, 0.05)
            out.append(Point(f"rm{m}", g, x, ym + 40 * (x - xm) + rng.normal(0, 2)))
    return out


def test_reported_p_values_follow_from_r_and_n_12():
    # RM-Bench Sec. 5.2: r = 0.55 (p = 0.07) and r = 0.21 (p = 0.51) over 4 RMs x 3 task groups
    # (the paper prints 0.064 as 0.07)
    assert round(pearson_p_from_r(0.55, 12), 3) == 0.064 and round(pearson_p_from_r(0.21, 12), 3) == 0.512

    def fits(n):
        return abs(pearson_p_from_r(0.55, n) - 0.07) < 0.01 and abs(pearson_p_from_r(0.21, n) - 0.51) < 0.005

    assert [n for n in range(4, 60) if fits(n)] == [12]  # no other number of points fits both
    x = np.arange(12.0)
    y = x + np.random.default_rng(1).normal(0, 4, 12)
    res = stats.pearsonr(x, y)
    assert pearson_p_from_r(res.statistic, 12) == pytest.approx(res.pvalue, rel=1e-9)


def test_report_equals_scipy_on_hand_made_points():
    pts = _points()
    rep = correlation_report(pts, n_boot=200, n_perm=500)
    x, y = np.array([p.x for p in pts]), np.array([p.y for p in pts])
    assert rep["n"] == 12
    assert rep["pearson_r"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert rep["pearson_p"] == pytest.approx(stats.pearsonr(x, y).pvalue)
    assert rep["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert rep["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic)
    lo, hi = rep["pearson_ci"]
    assert lo < rep["pearson_r"] < hi
    # (permutations with |r'| >= |r| + 1) / (500 + 1): r = 0.90 on 12 points has a two-sided p of about 6e-5, so
    # 500 random permutations are expected to reach it 0.03 times: none does, and only the observed one counts
    assert rep["pearson_p"] < 1e-4 and rep["permutation_p"] == 1 / 501
    keep = [p for p in pts if p.reward_model != "rm0"]
    assert rep["leave_one_reward_model_out"]["rm0"] == pytest.approx(
        stats.pearsonr([p.x for p in keep], [p.y for p in keep]).statistic
    )


def test_global_standardisation_keeps_r_within_group_changes_it():
    pts = _points()
    none, glob, within = (
        correlation_report(pts, standardise_x=s, standardise_y=s, n_boot=0, n_perm=0)["pearson_r"]
        for s in ("none", "global", "within_group")
    )
    assert glob == pytest.approx(none)  # one affine rescaling of x and y: Pearson is invariant
    assert abs(within - none) > 0.05  # group means differ a lot here: removing them changes r
    x, y = standardised(pts, "within_group", "none")
    assert list(y) == [p.y for p in pts]  # x and y are standardised independently
    for g in ("math", "code", "safety"):
        xs = x[[p.group == g for p in pts]]
        assert xs.mean() == pytest.approx(0, abs=1e-12) and xs.std() == pytest.approx(1)
    with pytest.raises(ValueError, match="standardise must be one of"):
        standardised(pts, "per_model", "none")


def test_constant_scores_give_an_undefined_r_not_nan():
    pts = [Point(f"rm{i}", g, 0.5 + 0.1 * i, 0.25) for i in range(3) for g in ("code", "safety")]
    rep = correlation_report(pts, n_boot=20, n_perm=20)
    assert rep["pearson_r"] is None and rep["pearson_p"] is None and rep["pearson_ci"] == [None, None]
    assert rep["undefined"] == "the policy scores (y) are the same at every point: r is undefined"
    pts = [Point(f"rm{i}", g, 0.5 + 0.1 * i, 0.1 * i + (g == "code")) for i in range(3) for g in ("code", "safety")]
    rep = correlation_report(pts, standardise_x="none", n_boot=20, n_perm=20)
    assert rep["pearson_r"] == pytest.approx(stats.pearsonr([p.x for p in pts], [p.y for p in pts]).statistic)
