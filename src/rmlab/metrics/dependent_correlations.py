"""Is one correlation larger than another measured on the same units? Dependent, overlapping correlations.

Two benchmarks (variables 2 and 3) scored on the same reward models, each correlated with the same policy outcome
(variable 1): r12 and r13 share variable 1 and the same units, so they are dependent through r23 and the test for
two independent correlations (Fisher 1925) is wrong for them. Steiger (1980, Psychological Bulletin 87:245)
compares the tests for this case and recommends:

- Williams' t (Williams 1959; Steiger 1980 eq. 7, "T2"), with n - 3 degrees of freedom, for small samples;
- Steiger's Z (Steiger 1980 eqs. 10-12 and 14: Dunn & Clark's z with the pooled r-bar = (r12 + r13) / 2 in the
  asymptotic covariance of the two z-transformed coefficients).

scipy has neither, hence this module. The worked examples of Steiger (1980, p. 249, Case A) and of Silver, Hittner
& May (2006, Applied Psychological Measurement 30:152, the depcor program), as the cocor R package's tests use them
(Diedenhofen & Musch 2015, PLoS ONE 10:e0121945), are checked in ``tests/test_dependent_correlations.py``.

Several pairs of benchmarks are several tests: :func:`holm` adjusts their p-values (Holm 1979, Scand. J. Statist.
6:65; scipy's ``false_discovery_control`` is Benjamini-Hochberg, which controls another error rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def williams_t(r12: float, r13: float, r23: float, n: int) -> tuple[float, int, float]:
    """``(t, df, two-sided p)`` of Williams' test of r12 = r13 (Steiger 1980 eq. 7)."""
    if n <= 3:
        raise ValueError(f"Williams' t needs more than 3 units, got {n}")
    det = 1 - r12**2 - r13**2 - r23**2 + 2 * r12 * r13 * r23  # |R| of the 3 x 3 correlation matrix
    rbar = (r12 + r13) / 2
    denom = 2 * (n - 1) / (n - 3) * det + rbar**2 * (1 - r23) ** 3
    if denom <= 0:  # a singular correlation matrix: the difference is known exactly
        t = 0.0 if r12 == r13 else float(np.sign(r12 - r13) * np.inf)
    else:
        t = float((r12 - r13) * np.sqrt((n - 1) * (1 + r23) / denom))
    return t, n - 3, float(2 * stats.t.sf(abs(t), n - 3))


def steiger_z(r12: float, r13: float, r23: float, n: int) -> tuple[float, float]:
    """``(Z, two-sided p)`` of Steiger's test of r12 = r13 (Steiger 1980 eq. 14, pooled r-bar)."""
    if n <= 3:
        raise ValueError(f"Steiger's Z needs more than 3 units, got {n}")
    rbar = (r12 + r13) / 2
    psi = r23 * (1 - 2 * rbar**2) - 0.5 * rbar**2 * (1 - 2 * rbar**2 - r23**2)
    s = psi / (1 - rbar**2) ** 2 if abs(rbar) < 1 else 1.0  # covariance of the two z's times (n - 3)
    clip = 1 - 1e-15  # atanh(+-1) is infinite
    diff = np.arctanh(np.clip(r12, -clip, clip)) - np.arctanh(np.clip(r13, -clip, clip))
    z = float(diff * np.sqrt(n - 3) / np.sqrt(2 - 2 * s)) if s < 1 else float(np.sign(diff) * np.inf)
    if diff == 0:
        z = 0.0
    return z, float(2 * stats.norm.sf(abs(z)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values, in the order given: reject where adjusted p < alpha controls the
    family-wise error rate at alpha."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()
