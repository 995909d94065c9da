"""Fisher-z intervals and their matching tests, power, and the tests for dependent correlations, against scipy and
published worked examples."""

import math

import numpy as np
import pytest
from scipy import stats

from rmlab.metrics.correlation_inference import fisher_inference, min_detectable_r, power_statement
from rmlab.metrics.dependent_correlations import holm, steiger_z, williams_t
from tests.helpers import tolerances as tol

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)


def test_pearson_interval_is_scipys_fisher_interval():
    rng = np.random.default_rng(0)
    for n in (5, 8, 12, 40):
        x = rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n)
        res = stats.pearsonr(x, y)
        for conf in (0.9, 0.95):
            ci = res.confidence_interval(confidence_level=conf)
            mine = fisher_inference("pearson", float(res.statistic), n, conf)
            # ours and scipy's tanh(atanh r -/+ q se) from the same r: tolerances.fisher_interval_diff (q < 2 here)
            bound = tol.fisher_interval_diff(float(res.statistic), n)
            assert mine.interval == pytest.approx([ci.low, ci.high], abs=bound)


@pytest.mark.parametrize("kind", ["pearson", "spearman", "kendall"])
def test_interval_excludes_zero_exactly_when_p_is_below_alpha(kind):
    # The interval and the p-value invert the same Wald test on Fisher's z scale, so on many random small-n cases
    # "0 outside the interval" and "p < 1 - confidence" must agree every time, including near the boundary
    # (r drawn around the critical value). scipy's t-test p of Pearson's r would disagree on some of these.
    rng = np.random.default_rng(1)
    disagreements_with_t = 0
    checked = 0
    for _ in range(3000):
        n = int(rng.integers(5, 16))
        conf = float(rng.choice([0.9, 0.95, 0.99]))
        crit = np.tanh(stats.norm.ppf(0.5 + conf / 2) / np.sqrt(n - 3))
        r = float(np.clip(crit + rng.normal(0, 0.05), -0.999, 0.999)) * rng.choice([-1, 1])
        inf = fisher_inference(kind, r, n, conf)
        if inf.p is None:
            continue
        checked += 1
        excludes = inf.interval[0] > 0 or inf.interval[1] < 0
        assert excludes == (inf.p < 1 - conf), (kind, n, conf, r, inf)
        if kind == "pearson":
            t = r * np.sqrt((n - 2) / (1 - r * r))
            disagreements_with_t += excludes != (2 * stats.t.sf(abs(t), n - 2) < 1 - conf)
    assert checked > 2500
    if kind == "pearson":
        assert disagreements_with_t > 0  # the pairing matters: the t-test p and the Fisher interval can disagree


def test_interval_shrinks_with_the_effective_n_and_is_undefined_below_it():
    wide, narrow = fisher_inference("pearson", -0.516, 6), fisher_inference("pearson", -0.516, 8)
    assert wide.interval[0] < narrow.interval[0] and wide.interval[1] > narrow.interval[1]
    # the example: r = -0.516 over 8 points has the Fisher interval of about [-0.90, 0.30]
    # printed with two decimals: half a unit in the last place (the evaluation's rounding is ~1e-15)
    assert narrow.interval == pytest.approx([-0.90, 0.30], abs=0.005) and narrow.p > 0.05
    assert fisher_inference("pearson", 0.5, 3).interval == [None, None]
    assert fisher_inference("kendall", 0.5, 4).p is None and fisher_inference("kendall", 0.5, 5).p is not None
    assert fisher_inference("pearson", 1.0, 6).interval == [1.0, 1.0]


def test_min_detectable_r_reproduces_cohens_sample_sizes():
    # Cohen (1992, A power primer, Table 2): alpha .05 two-sided, power .80: r = .10 needs n = 783, r = .30 n = 85
    assert min_detectable_r(783) <= 0.10 < min_detectable_r(782)
    assert min_detectable_r(85) <= 0.30 < min_detectable_r(84)
    st = power_statement(8)
    # 0.8491 printed to 4 decimals: half a unit in the last place, plus tanh, ppf and sqrt roundings (<= 8 of <= 3)
    assert st["underpowered"] and st["min_detectable_r"] == pytest.approx(0.8491, abs=5e-5 + tol.worst_case(8, 3.0))
    assert not power_statement(30)["underpowered"] and power_statement(3)["min_detectable_r"] is None


def test_min_detectable_r_has_the_stated_power_by_simulation():
    # bivariate normal with rho = the detectable r at n = 20: the Fisher-z test rejects about 80% of the time
    rng = np.random.default_rng(2)
    n, rho = 20, min_detectable_r(20)
    cov = [[1, rho], [rho, 1]]
    rejections = 0
    for _ in range(2000):
        xy = rng.multivariate_normal([0, 0], cov, size=n)
        rejections += fisher_inference("pearson", float(stats.pearsonr(xy[:, 0], xy[:, 1]).statistic), n).p < 0.05
    # 5 binomial sds sqrt(p (1 - p) / 2000) = 0.045: a false failure with probability 5.7e-7 if the power is
    # exactly 0.80 (the Fisher-z approximation's own error at n = 20 is not bounded here)
    assert rejections / 2000 == pytest.approx(0.80, abs=5 * math.sqrt(0.8 * 0.2 / 2000))


def test_williams_t_and_steiger_z_reproduce_published_examples():
    # Silver, Hittner & May (2006, depcor), as in the cocor package's tests: r12 = .3, r13 = .4, r23 = .5, n = 100
    t, df, p = williams_t(0.3, 0.4, 0.5, 100)
    assert (round(t, 4), df, round(p, 4)) == (-1.0767, 97, 0.2843)
    z, p = steiger_z(0.3, 0.4, 0.5, 100)
    assert (round(z, 4), round(p, 4)) == (-1.0718, 0.2838)
    # Steiger (1980, p. 249, Case A): r12 = .4, r13 = .5, r23 = .1, n = 103; the paper prints -.8913 from a rounded
    # covariance (.0042); computed exactly it is -0.8887185 (cocor's test says the same)
    # -0.8887185 printed to 7 decimals: half a unit in the last place, plus the formula's <= 20 roundings of <= 2
    assert steiger_z(0.4, 0.5, 0.1, 103)[0] == pytest.approx(-0.8887185, abs=5e-8 + tol.worst_case(20, 2.0))


def test_dependent_tests_are_symmetric_and_calibrated():
    assert williams_t(0.5, 0.5, 0.3, 20)[0] == 0.0 and steiger_z(0.5, 0.5, 0.3, 20)[0] == 0.0
    # swapping r12 and r13 negates r12 - r13 exactly and reorders |R|'s terms: per evaluation <= 12 roundings of
    # the denominator's terms (|R| 7, the rest 5) and 3 of the root and product; relative to t, the denominator's
    # term magnitudes over its value (Higham Lemma 3.1)
    t = williams_t(0.6, 0.2, 0.4, 30)[0]
    det_terms = 1 + 0.6**2 + 0.2**2 + 0.4**2 + 2 * 0.6 * 0.2 * 0.4
    det = 1 - 0.6**2 - 0.2**2 - 0.4**2 + 2 * 0.6 * 0.2 * 0.4
    denom = 2 * 29 / 27 * det + 0.4**2 * 0.6**3
    bound = abs(t) * tol.worst_case(2 * 15, (2 * 29 / 27 * det_terms + 0.4**2 * 0.6**3) / denom)
    assert t == pytest.approx(-williams_t(0.2, 0.6, 0.4, 30)[0], abs=bound)
    # under the null (two benchmarks equally correlated with the outcome) Williams' t rejects about 5%
    rng = np.random.default_rng(3)
    cov = [[1, 0.4, 0.4], [0.4, 1, 0.5], [0.4, 0.5, 1]]
    n, reject = 30, 0
    for _ in range(2000):
        d = rng.multivariate_normal([0, 0, 0], cov, size=n)
        c = np.corrcoef(d.T)
        reject += williams_t(c[0, 1], c[0, 2], c[1, 2], n)[2] < 0.05
    # 5 binomial sds sqrt(p (1 - p) / 2000) = 0.024: a false failure with probability 5.7e-7 if the test's size is
    # exactly 0.05 (Williams' t is an approximation: its own size error at n = 30 is not bounded here)
    assert reject / 2000 == pytest.approx(0.05, abs=5 * math.sqrt(0.05 * 0.95 / 2000))


def test_holm_adjustment():
    # Holm (1979): sorted p (.01, .02, .03, .04) times (4, 3, 2, 1), made monotone: .04, .06, .06, .06
    # each adjusted p is one literal times a small integer: 2 roundings of values <= 1
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06], abs=tol.worst_case(2, 1.0))
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # 0.5 * 2 = 1 exactly, then the monotone max and the cap at 1: exact
    assert holm([]) == []
