"""The correlation study's statistics: scipy equality, the paper's p-values from r and n, standardisation."""

import numpy as np
import pytest
from scipy import stats

from rmlab.analysis.correlation import Point, correlation_report, pearson_p_from_r, standardised
from tests.helpers import tolerances as tol

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)


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
    # t = r sqrt((n - 2) / (1 - r^2)) rounds <= 6 times, relative error amplified by 1 / (1 - r^2) (cancellation),
    # and p's relative change is |d ln p / d ln t| = 2 t pdf(t) / p times that. NOT fully derived (issue #30): the
    # two special functions (scipy's t sf here, its beta sf there) have no accuracy bound stated here; 1e-9
    # leaves them ~1e5 times the rounding part
    r = res.statistic
    t = r * np.sqrt(10 / (1 - r * r))
    cond = 2 * abs(t) * stats.t.pdf(t, 10) / res.pvalue
    assert cond * tol.worst_case(6, 1 / (1 - r * r)) < 1e-9 / 1e4
    assert pearson_p_from_r(res.statistic, 12) == pytest.approx(res.pvalue, rel=1e-9)


def test_report_equals_scipy_on_hand_made_points():
    pts = _points()
    rep = correlation_report(pts, n_boot=200, n_perm=500)
    x, y = np.array([p.x for p in pts]), np.array([p.y for p in pts])
    assert rep["n"] == 12
    # no standardisation by default: the report calls scipy's pearsonr on these very x and y: exact
    assert rep["pearson_r"] == stats.pearsonr(x, y).statistic
    assert rep["pearson_p_t"] == stats.pearsonr(x, y).pvalue  # the papers' t-test p
    ci = stats.pearsonr(x, y).confidence_interval()
    # Fisher z by default, named, with its own p; ours and scipy's from the same r: tolerances.fisher_interval_diff
    bound = tol.fisher_interval_diff(rep["pearson_r"], 12)
    assert rep["pearson_ci"] == pytest.approx([ci.low, ci.high], abs=bound)
    assert rep["interval_method"].startswith("Fisher z") and rep["n_effective"] == 12
    z = np.arctanh(rep["pearson_r"]) * np.sqrt(12 - 3)
    # z / se against z * 3: atanh (1 ulp: 2) twice, se, the division and the product: <= 8 roundings of the argument
    # a; sf's relative change is a pdf(a) / sf(a) <= a^2 + 1 (Mills ratio) times that, plus sf's own error on
    # each side (counted as 2 roundings each): a derived relative bound
    a = abs(z)
    assert rep["pearson_p"] == pytest.approx(
        2 * stats.norm.sf(a), rel=(a * a + 1) * tol.worst_case(8, 1.0) + tol.worst_case(4, 1.0)
    )
    assert rep["spearman"] == stats.spearmanr(x, y).statistic  # the same scipy call on the same x, y: exact
    assert rep["kendall"] == stats.kendalltau(x, y).statistic
    lo, hi = rep["pearson_ci"]
    assert lo < rep["pearson_r"] < hi
    # 4 reward models: the permutation test permutes whole reward models (4! = 24 pairings, enumerated exactly)
    # and r = 0.90 is the largest of them, so scipy's two-sided p is 2 / 24
    assert rep["permutation"] == {
        "p": 2 / 24,  # 2 of 24 exact pairings: an integer count, one division (and an exact doubling): exact
        "scheme": "reward models within groups",
        "n_perm": 500,
        "exact": True,
    }
    keep = [p for p in pts if p.reward_model != "rm0"]
    kx, ky = [p.x for p in keep], [p.y for p in keep]
    # the moment formula against scipy's: tolerances.pearson_diff
    assert rep["leave_one_reward_model_out"]["rm0"] == pytest.approx(
        stats.pearsonr(kx, ky).statistic, abs=tol.pearson_diff(kx, ky)
    )


def test_global_standardisation_keeps_r_within_group_changes_it():
    pts = _points()
    none, glob, within = (
        correlation_report(pts, standardise_x=s, standardise_y=s, n_boot=0, n_perm=0)["pearson_r"]
        for s in ("none", "global", "within_group")
    )
    # one affine rescaling of x and y: Pearson is invariant, up to two evaluations (raw and standardised) and the
    # standardisation, which rounds like a Pearson evaluation's centring and scaling (tolerances.pearson_diff, twice)
    rx, ry = np.array([p.x for p in pts]), np.array([p.y for p in pts])
    zx, zy = standardised(pts, "global", "global")
    assert glob == pytest.approx(none, abs=tol.pearson_diff(rx, ry) + tol.pearson_diff(zx, zy))
    assert abs(within - none) > 0.05  # group means differ a lot here: removing them changes r (0.05 is > 1e14 u)
    x, y = standardised(pts, "within_group", "none")
    assert list(y) == [p.y for p in pts]  # x and y are standardised independently
    for g in ("math", "code", "safety"):
        xs = x[[p.group == g for p in pts]]
        raw = np.array([p.x for p in pts if p.group == g])
        # z-scoring (mean, std, centring, scaling) and then a mean or a std of the z-scores: < 5n + 8 roundings,
        # of magnitude (max|x| + |mean|) / std of the raw values (Higham Lemma 3.1)
        bound = tol.worst_case(5 * len(raw) + 8, (np.abs(raw).max() + abs(raw.mean())) / raw.std())
        assert xs.mean() == pytest.approx(0, abs=bound) and xs.std() == pytest.approx(1, abs=bound)
    with pytest.raises(ValueError, match="standardise must be one of"):
        standardised(pts, "per_model", "none")


def test_constant_scores_give_an_undefined_r_not_nan():
    pts = [Point(f"rm{i}", g, 0.5 + 0.1 * i, 0.25) for i in range(3) for g in ("code", "safety")]
    rep = correlation_report(pts, n_boot=20, n_perm=20)
    assert rep["pearson_r"] is None and rep["pearson_p"] is None and rep["pearson_ci"] == [None, None]
    assert rep["n_reward_models"] == 3 and rep["power"]["underpowered"]
    assert rep["undefined"] == "the policy scores (y) are the same at every point: r is undefined"
    pts = [Point(f"rm{i}", g, 0.5 + 0.1 * i, 0.1 * i + (g == "code")) for i in range(3) for g in ("code", "safety")]
    rep = correlation_report(pts, standardise_x="none", n_boot=20, n_perm=20)
    # no standardisation: the same scipy call on the same x and y: exact
    assert rep["pearson_r"] == stats.pearsonr([p.x for p in pts], [p.y for p in pts]).statistic


def _clustered(seed, n_models, groups=("math", "code", "safety"), slope=1.0):
    rng = np.random.default_rng(seed)
    out = []
    for m in range(n_models):
        quality = rng.normal()  # one reward model's points share it: they are not independent
        for g in groups:
            out.append(Point(f"rm{m}", g, quality + rng.normal(0, 0.3), slope * quality + rng.normal(0, 0.5)))
    return out


def test_bootstrap_resamples_reward_models_and_restandardises():
    from rmlab.analysis.correlation import cluster_bootstrap

    pts = _clustered(0, 8)
    boot = cluster_bootstrap(pts, "within_group", "none", n_boot=300, seed=1)
    assert boot["resampled"] == "reward models" and boot["degenerate"] == 0 and boot["n_reward_models"] == 8
    lo, hi = boot["interval"]
    rep = correlation_report(pts, standardise_x="within_group", interval="bca", n_boot=300, n_perm=100, seed=1)
    assert rep["pearson_ci"] == [lo, hi] and rep["interval_method"].startswith("cluster bootstrap (BCa)")
    assert lo < rep["pearson_r"] < hi
    # the unit is the reward model: the points listed in another order give the same resamples and interval
    perc = cluster_bootstrap(pts, "within_group", "none", method="percentile", n_boot=300, seed=1)["interval"]
    again = cluster_bootstrap(pts[::-1], "within_group", "none", method="percentile", n_boot=300, seed=1)
    # each resample's r is the same up to summation order (within-group z-scores, then the moment formula); a
    # percentile moves by at most the largest such change. Bounded by the full sample's pearson_diff of the raw
    # and of the standardised values, ASSUMING no resample's spread ratio is worse than the full sample's
    rx, ry = np.array([p.x for p in pts]), np.array([p.y for p in pts])
    bound = tol.pearson_diff(rx, ry) + tol.pearson_diff(*standardised(pts, "within_group", "none"))
    assert again["interval"] == pytest.approx(perc, abs=bound)


def test_degenerate_resamples_are_counted_and_withhold_the_interval():
    # 3 reward models: 3 of the 27 resamples draw one model three times, whose within-group z-scores are all 0
    pts = _clustered(1, 3)
    rep = correlation_report(pts, standardise_x="within_group", interval="percentile", n_boot=500, n_perm=0)
    b = rep["bootstrap"]
    assert 0 < b["degenerate"] < 500 and b["interval"] == [None, None] and "no defined r" in b["withheld"]
    assert rep["pearson_ci"] == [None, None]  # withheld, not computed over a biased subset
    assert correlation_report(pts, standardise_x="within_group", n_boot=500, n_perm=0)["pearson_ci"][0] is not None


def test_permutation_stays_within_groups_and_reward_models():
    from rmlab.analysis.correlation import cluster_permutation_p

    # x z-scored within groups, y with large group offsets: a permutation across groups would move y's group means
    # onto other groups' points and make |r| small almost always; within groups it keeps the design
    rng = np.random.default_rng(4)
    pts = [
        Point(f"rm{m}", g, rng.normal(), off + 0.01 * rng.normal())
        for m in range(7)
        for g, off in (("math", 0.0), ("code", 100.0))
    ]
    res = cluster_permutation_p(pts, "within_group", "none", n_perm=10000)
    assert res["scheme"] == "reward models within groups" and res["exact"]  # 7! = 5040 pairings
    assert 0.05 < res["p"] <= 1
    unbalanced = pts[:-1]
    res = cluster_permutation_p(unbalanced, "within_group", "none", n_perm=200)
    assert res["scheme"].startswith("points within groups") and not res["exact"]


def test_effective_n_counts_the_group_means():
    from rmlab.analysis.correlation import effective_n

    pts = _clustered(2, 4)
    assert effective_n(pts, "none", "none") == 12 == effective_n(pts, "global", "none")
    assert effective_n(pts, "within_group", "none") == 10 == effective_n(pts, "none", "within_group")
    rep = correlation_report(pts, standardise_x="within_group", n_boot=0, n_perm=0)
    assert rep["n_effective"] == 10 and rep["inference"]["pearson"]["n_effective"] == 10


@pytest.mark.parametrize("how", ["none", "within_group"])
def test_report_interval_excludes_zero_exactly_when_its_p_is_below_alpha(how):
    # random small designs (3-6 reward models x 1-3 groups), through the report as the studies call it
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(300):
        n_models, groups = int(rng.integers(3, 7)), ["math", "code", "safety"][: int(rng.integers(1, 4))]
        slope = rng.normal(0, 1.5)
        pts = []
        for m in range(n_models):
            q = rng.normal()
            pts += [Point(f"rm{m}", g, q + rng.normal(0, 0.5), slope * q + rng.normal()) for g in groups]
        rep = correlation_report(pts, standardise_x=how, n_boot=0, n_perm=0)
        if rep["pearson_p"] is None:
            continue
        checked += 1
        lo, hi = rep["pearson_ci"]
        assert (lo > 0 or hi < 0) == (rep["pearson_p"] < 0.05), rep
    assert checked > 200
