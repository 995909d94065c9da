"""Intervals, tests and power for a correlation coefficient at small n, on Fisher's z scale.

Every interval here comes with the p-value of the same Wald test on Fisher's z scale, z = atanh(r) with standard
error ``se``: the interval ``tanh(atanh(r) -+ q * se)`` (q the normal quantile of the confidence) excludes 0 exactly
when ``2 * (1 - Phi(|atanh(r)| / se)) < 1 - confidence``, because both say ``|atanh(r)| > q * se``. Pairing
Fisher's interval with scipy's exact t-test p of Pearson's r (or a bootstrap interval with a permutation p) does
not have this property: near the boundary one says "significant" and the other not.

- Pearson: se = 1 / sqrt(n - 3) (Fisher 1921; the interval scipy's ``pearsonr(...).confidence_interval()`` gives).
- Spearman: se = sqrt((1 + r^2 / 2) / (n - 3)) (Bonett & Wright 2000, Psychometrika 65:23, eq. 3).
- Kendall: se = sqrt(0.437 / (n - 4)) (Fieller, Hartley & Pearson 1957, Biometrika 44:470; Bonett & Wright 2000).

``n`` is the effective number of points (:func:`rmlab.analysis.correlation.effective_n`): a partial correlation
after removing q covariates is distributed as an ordinary r over n - q points (Fisher 1924, Metron 3:329), which is
how z-scoring within g task groups (g - 1 group means beyond the global one) is counted.

The smallest detectable correlation uses the same approximation (Cohen 1988, Statistical Power Analysis, ch. 3):
n = ((z_{1-alpha/2} + z_{power}) / atanh(r))^2 + 3, which gives Cohen's (1992, Psychol. Bull. 112:155, Table 2)
n = 783, 85 for r = .10, .30 at alpha = .05 and power .80.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

COEFFICIENTS = ("pearson", "spearman", "kendall")
SOURCES = {
    "pearson": "Fisher z, se 1/sqrt(n-3)",
    "spearman": "Fisher z, Bonett-Wright se",
    "kendall": "Fisher z, Fieller-Hartley-Pearson se",
}


@dataclass(frozen=True)
class CorrelationInference:
    coefficient: str  # pearson | spearman | kendall
    estimate: float
    interval: list[float | None]  # [low, high]; None where n is too small for the standard error
    p: float | None  # two-sided Wald test of 0 on Fisher's z scale, with the interval's standard error
    n_effective: int
    confidence: float
    method: str

    def as_dict(self) -> dict:
        return asdict(self)


def fisher_se(coefficient: str, r: float, n_effective: int) -> float | None:
    """The standard error of atanh(r) (module docstring); None when n is too small for it."""
    if coefficient == "pearson":
        return 1 / np.sqrt(n_effective - 3) if n_effective > 3 else None
    if coefficient == "spearman":
        return float(np.sqrt((1 + r * r / 2) / (n_effective - 3))) if n_effective > 3 else None
    if coefficient == "kendall":
        return float(np.sqrt(0.437 / (n_effective - 4))) if n_effective > 4 else None
    raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {coefficient!r}")


def fisher_inference(coefficient: str, r: float, n_effective: int, confidence: float = 0.95) -> CorrelationInference:
    """The Fisher-z interval of a coefficient and the p-value of the matching test (module docstring)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    se = fisher_se(coefficient, r, n_effective)
    method = f"{SOURCES[coefficient]}, n_eff={n_effective}"
    if se is None:
        return CorrelationInference(coefficient, r, [None, None], None, n_effective, confidence, method)
    if abs(r) >= 1:  # atanh is infinite: the data allow no other value
        return CorrelationInference(coefficient, r, [r, r], 0.0, n_effective, confidence, method)
    z, q = np.arctanh(r), stats.norm.ppf(0.5 + confidence / 2)
    p = float(2 * stats.norm.sf(abs(z) / se))
    return CorrelationInference(
        coefficient, r, [float(np.tanh(z - q * se)), float(np.tanh(z + q * se))], p, n_effective, confidence, method
    )


def coefficient(kind: str, x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, Spearman's rho or Kendall's tau-b of x and y, as scipy computes them."""
    if kind == "pearson":
        return float(stats.pearsonr(x, y).statistic)
    if kind == "spearman":
        return float(stats.spearmanr(x, y).statistic)
    if kind == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    raise ValueError(f"coefficient must be one of {COEFFICIENTS}, got {kind!r}")


def min_detectable_r(n_effective: int, *, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest |r| a two-sided test at ``alpha`` detects with probability ``power`` over ``n_effective``
    points (Fisher z approximation, module docstring); None below 4 points."""
    if n_effective <= 3:
        return None
    return float(np.tanh((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / np.sqrt(n_effective - 3)))


def power_statement(
    n_effective: int, *, confidence: float = 0.95, power: float = 0.8, underpowered_above: float = 0.7
) -> dict:
    """The smallest |r| this design detects at ``power`` and whether that makes it underpowered."""
    r_min = min_detectable_r(n_effective, alpha=1 - confidence, power=power)
    underpowered = r_min is None or r_min > underpowered_above
    return {
        "power": power,
        "alpha": round(1 - confidence, 12),
        "min_detectable_r": r_min,
        "underpowered_above": underpowered_above,
        "underpowered": underpowered,
    }
