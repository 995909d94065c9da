"""Paired comparison of two reward models on the same benchmark items.

Two models scored on one benchmark's items are not independent samples: the same hard item trips both. So their
difference is judged on the items both were scored on, each item's outcome being the benchmark's own per-comparison
verdict (1 = the model ranked the chosen response first, 0 = it did not; a benchmark whose item is a share, such as
RewardBench 2's best-of-4 credit, gives a value in between).

- **Difference and interval.** The mean of ``a - b`` over the shared items, with a percentile bootstrap interval
  that resamples *clusters* of items (an RM-Bench prompt's nine style cells move together; elsewhere a cluster is
  one item), seeded.
- **Exact test.** McNemar's exact test (McNemar 1947; the exact binomial form of Fay 2010): over items where both
  outcomes are 0 or 1, the discordant counts ``a_only`` (a right, b wrong) and ``b_only``; under no difference
  ``a_only ~ Binomial(a_only + b_only, 1/2)``, two-sided p from :func:`scipy.stats.binomtest`. It treats items as
  independent, which clustered cells are not: the bootstrap interval is the one that respects clustering, and the
  table shows both.
- **Many pairs.** :func:`rmlab.metrics.dependent_correlations.holm` adjusts the p-values across a table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from rmlab.metrics.bootstrap import percentile_interval

Item = tuple[str, str]  # (cluster, item within it)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> dict:
    """McNemar's exact test on paired binary outcomes (module docstring)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5, alternative="two-sided").pvalue)
    return {"a_only": a_only, "b_only": b_only, "p": p}


def paired_difference(
    a: Mapping[Item, float], b: Mapping[Item, float], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Model a vs model b on their shared items: mean difference, cluster bootstrap interval, McNemar's exact test."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return {"n_items": 0, "n_clusters": 0, "difference": None, "ci": None, "mcnemar": None}
    va = np.array([a[k] for k in shared], dtype=np.float64)
    vb = np.array([b[k] for k in shared], dtype=np.float64)
    diff = va - vb
    clusters = [k[0] for k in shared]
    names = sorted(set(clusters))
    index = {c: i for i, c in enumerate(names)}
    cid = np.array([index[c] for c in clusters])
    sums, counts = np.bincount(cid, weights=diff), np.bincount(cid)
    ci = None
    if n_boot and len(names) > 1:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(names), size=(n_boot, len(names)))
        replicates = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
        ci = percentile_interval(replicates, confidence)
    binary = np.isin(va, (0.0, 1.0)) & np.isin(vb, (0.0, 1.0))
    return {
        "n_items": len(shared),
        "n_clusters": len(names),
        "only_a": len(set(a) - set(b)),
        "only_b": len(set(b) - set(a)),
        "a": float(va.mean()),
        "b": float(vb.mean()),
        "difference": float(diff.mean()),
        "ci": ci,
        "mcnemar": {**mcnemar_exact(va[binary] == 1.0, vb[binary] == 1.0), "n_binary": int(binary.sum())},
    }
