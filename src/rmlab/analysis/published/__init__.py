"""Numbers the papers report, as cited data, and checks of what can be recomputed from them.

``rm_bench_correlation.csv``: RM-Bench's reported Pearson r and p of benchmark score against PPO-policy quality.
The paper gives r and p but not n; n = 12 (4 reward models x 3 task groups) is the one count that reproduces both
p-values with the two-sided t-test of r (:func:`check_correlation_rows`).

``rm_bench_leaderboard.csv``: RM-Bench results of 28 reward models (15 sequence classifiers; 13 generative judges
and DPO models, among them the Tulu-2.5 DPO models on HH-RLHF, StackExchange, Chatbot Arena 2023 and Nectar) as
RM-R1 (Chen et al. 2025, Table 7) reprints them; the classifier rows equal the RM-Bench leaderboard's
(THU-KEG/RM-Bench-Leaderboard). RM-Bench defines the average as both the mean of the four domains and the mean of
the three difficulty levels (each level being the mean over the domains), so both identities must hold within
the rounding of the printed numbers (:func:`check_leaderboard_rows`).

Not here: RM-Bench's own DPO-vs-classifier table (Sec. 4.2): the paper's table was not available offline, and
the reprints above carry the DPO models but not their classifier counterparts (tulu-v2.5-13b-*-rm).
"""

from __future__ import annotations

import csv
from importlib import resources

from rmlab.analysis.correlation import pearson_p_from_r


def load(name: str) -> list[dict]:
    with resources.files(__package__).joinpath(name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _half_unit(text: str) -> float:
    """Half a unit of the last reported digit: the rounding interval of a printed number."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


DOMAINS = ("chat", "math", "code", "safety")
LEVELS = ("easy", "normal", "hard")


def check_leaderboard_rows(rows: list[dict]) -> list[dict]:
    """Recompute the average of each row as the mean of its domains and as the mean of its difficulty levels.
    Every number is printed to 0.1, so a mean of printed parts lies within half a unit of the true mean, and the
    printed average within half a unit of it too: a row agrees when both recomputed means are within one unit's
    worth of rounding (0.05 + 0.05) of the printed average; a row that does not is flagged."""
    out = []
    for r in rows:
        avg = float(r["avg"])
        tol = _half_unit(r["avg"]) + max(_half_unit(r[k]) for k in (*DOMAINS, *LEVELS))
        by_domain = sum(float(r[k]) for k in DOMAINS) / len(DOMAINS)
        by_level = sum(float(r[k]) for k in LEVELS) / len(LEVELS)
        out.append(
            {
                **r,
                "avg_of_domains": by_domain,
                "avg_of_levels": by_level,
                "agrees": abs(by_domain - avg) <= tol + 1e-9 and abs(by_level - avg) <= tol + 1e-9,
            }
        )
    return out


def check_correlation_rows(rows: list[dict]) -> list[dict]:
    """Recompute p from r and n. Both r and p are printed rounded, so a row agrees when some r within r's rounding
    interval gives a p within p's rounding interval (p falls as |r| grows, so the two intervals are compared);
    a row that fails is flagged (``agrees: False``)."""
    out = []
    for r in rows:
        n, r_val, p_val = int(r["n_points"]), float(r["pearson_r"]), float(r["reported_p"])
        hr, hp = _half_unit(r["pearson_r"]), _half_unit(r["reported_p"])
        p_lo, p_hi = pearson_p_from_r(r_val + hr, n), pearson_p_from_r(r_val - hr, n)
        out.append(
            {
                **r,
                "recomputed_p": pearson_p_from_r(r_val, n),
                "p_range_from_r_rounding": [p_lo, p_hi],
                "agrees": p_lo <= p_val + hp and p_hi >= p_val - hp,
            }
        )
    return out


def n_values_matching(rows: list[dict], candidates=range(4, 41)) -> list[int]:
    """Every n for which all rows' reported p-values are reproduced (the paper does not state n)."""
    return [
        n for n in candidates if all(check_correlation_rows([{**r, "n_points": str(n)}])[0]["agrees"] for r in rows)
    ]
