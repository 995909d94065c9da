"""Numbers the papers report, as cited data, and checks of what can be recomputed from them.

``rm_bench_correlation.csv``: RM-Bench's reported Pearson r and p of benchmark score against PPO-policy quality.
The paper gives r and p but not n; n = 12 (4 reward models x 3 task groups) is the one count that reproduces both
p-values with the two-sided t-test of r (:func:`check_correlation_rows`).

Still to add: the RM-Bench leaderboard with its domain and difficulty averages, and the DPO-vs-classifier table.
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
    return 0.5 * 10.0 ** -decimals


def check_correlation_rows(rows: list[dict]) -> list[dict]:
    """Recompute p from r and n. Both r and p are printed rounded, so a row agrees when some r within r's rounding
    interval gives a p within p's rounding interval (p falls as |r| grows, so the two intervals are compared);
    a row that fails is flagged (``agrees: False``)."""
    out = []
    for r in rows:
        n, r_val, p_val = int(r["n_points"]), float(r["pearson_r"]), float(r["reported_p"])
        hr, hp = _half_unit(r["pearson_r"]), _half_unit(r["reported_p"])
        p_lo, p_hi = pearson_p_from_r(r_val + hr, n), pearson_p_from_r(r_val - hr, n)
        out.append({**r, "recomputed_p": pearson_p_from_r(r_val, n), "p_range_from_r_rounding": [p_lo, p_hi],
                    "agrees": p_lo <= p_val + hp and p_hi >= p_val - hp})
    return out


def n_values_matching(rows: list[dict], candidates=range(4, 41)) -> list[int]:
    """Every n for which all rows' reported p-values are reproduced (the paper does not state n)."""
    return [n for n in candidates
            if all(check_correlation_rows([{**r, "n_points": str(n)}])[0]["agrees"] for r in rows)]
