"""The published numbers: RM-Bench's reported p-values follow from its r values with n = 12, and only n = 12."""

from __future__ import annotations

import pytest

from rmlab.analysis.published import check_correlation_rows, load, n_values_matching
from tests.helpers.tolerances import worst_case


def test_reported_p_values_are_reproduced_from_r_and_n():
    rows = check_correlation_rows(load("rm_bench_correlation.csv"))
    assert [r["benchmark"] for r in rows] == ["rm_bench", "reward_bench"]
    assert all(r["agrees"] for r in rows)
    # 0.064 at r = 0.55 exactly; reported 0.07, which an r printed as 0.55 (0.545..0.555) allows
    # 0.064 and 0.512 written with three decimals: half a unit in the last place (the p's own rounding is ~1e-16)
    assert rows[0]["recomputed_p"] == pytest.approx(0.064, abs=5e-4)
    assert rows[1]["recomputed_p"] == pytest.approx(0.512, abs=5e-4)  # 0.512 -> reported 0.51


def test_only_n_12_fits_both_and_a_wrong_row_is_flagged():
    rows = load("rm_bench_correlation.csv")
    assert n_values_matching(rows) == [12]
    bad = check_correlation_rows([{**rows[0], "reported_p": "0.01"}])
    assert bad[0]["agrees"] is False


def test_leaderboard_averages_follow_rm_bench_definition():
    from rmlab.analysis.published import check_leaderboard_rows

    rows = check_leaderboard_rows(load("rm_bench_leaderboard.csv"))
    assert len(rows) == 28 and all(r["agrees"] for r in rows), [r["model"] for r in rows if not r["agrees"]]
    sky = next(r for r in rows if r["model"] == "Skywork-Reward-Llama-3.1-8B")
    # one-decimal CSV values whose decimal means are exactly 70.075 and 70.1; in float64 the literals (<= 4), the
    # additions (3), the division and the literal on the right: <= 9 roundings of magnitude <= 100
    assert sky["avg_of_domains"] == pytest.approx(70.075, abs=worst_case(9, 100))
    assert sky["avg_of_levels"] == pytest.approx(70.1, abs=worst_case(9, 100))
    # a row whose average is off by more than rounding is flagged, in either identity
    bad = check_leaderboard_rows([{**rows[0], "avg": "52.7"}, {**rows[0], "hard": "55.0"}])
    assert [r["agrees"] for r in bad] == [False, False]


def test_our_rm_bench_metrics_use_the_leaderboard_definition():
    """Overall = mean of the four domain averages = mean of easy, normal, hard (each a mean over domains)."""
    import numpy as np

    from rmlab.metrics.rm_bench import rm_bench_metrics

    rng = np.random.default_rng(0)
    scores = {d: (rng.normal(0.3, 1, (20, 3)), rng.normal(0, 1, (20, 3))) for d in ("chat", "math", "code", "safety")}
    m = rm_bench_metrics(scores, n_boot=0, seed=0)
    domain_avgs = [m["domains"][d]["avg"] for d in ("chat", "math", "code", "safety")]
    # the same np.mean over the same values in the same (METRIC_DOMAINS) order: exact
    assert m["overall"] == np.mean(domain_avgs)
    # 9-cell means then a 4-domain mean (13 roundings) against 3-cell means, 4-domain means and a 3-term mean (10):
    # 23 roundings of values <= 1 (Higham Lemma 3.1)
    assert m["overall"] == pytest.approx(
        np.mean([m["difficulty"][k] for k in ("easy", "normal", "hard")]), abs=worst_case(23, 1.0)
    )
    for level in ("easy", "normal", "hard"):
        assert m["difficulty"][level] == np.mean([m["domains"][d][level] for d in scores])  # the same: exact
