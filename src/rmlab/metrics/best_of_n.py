"""Best-of-n: the expected gold score of the response a proxy reward picks among n samples, without resampling.

For one prompt with N samples, proxy scores ``r`` and gold scores ``g``, best-of-n draws n of the N samples
uniformly without replacement and keeps the one the proxy scores highest. Its expected gold score over all
C(N, n) subsets is exact and cheap: sort the samples by proxy; a tie group whose members rank ``lo+1 .. hi``
holds the subset's maximum with probability ``(C(hi, n) - C(lo, n)) / C(N, n)``, and a tie inside the group is
broken uniformly at random, so the group contributes its mean gold score. This is the unbiased estimator used by
Nakano et al. (2021, WebGPT App.) and Gao et al. (2023, "Scaling laws for reward model overoptimization"):
every subset is counted, not one random draw.

RewardMATH's own evaluation (kimsh0507/RewardMATH_official@cde06ab ``src/evaluation/eval.py:220-275``) reads one
subset instead: the first n samples in sampling order, its top-scored one (ties broken by a majority vote among
the tied answers). :func:`bon_first_n` gives that reading, with ties broken uniformly (no answer voting), beside
the unbiased one.

KL between the best-of-n policy and the sampling policy (Stiennon et al. 2020; Gao et al. 2023 Sec. 2):
``log n - (n - 1) / n``, exact for continuous proxies (an upper bound with ties).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bon_kl(n: int) -> float:
    """KL(best-of-n || sampling policy) in nats."""
    if n < 1:
        raise ValueError(f"best-of-n needs n >= 1, got {n}")
    return math.log(n) - (n - 1) / n


def bon_expected(proxy: Sequence[float], gold: Sequence[float], n: int) -> float:
    """Expected gold score of the proxy's pick among n of these samples, over every n-subset."""
    r, g = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    big_n = len(r)
    if len(g) != big_n:
        raise ValueError(f"{big_n} proxy scores but {len(g)} gold scores")
    if not 1 <= n <= big_n:
        raise ValueError(f"best-of-{n} of {big_n} samples: n must be in 1..{big_n}")
    if not (np.isfinite(r).all() and np.isfinite(g).all()):
        raise ValueError("best-of-n needs finite proxy and gold scores")
    order = np.argsort(r, kind="stable")
    r_sorted, g_sorted = r[order], g[order]
    total = math.comb(big_n, n)
    expected, lo = 0.0, 0
    while lo < big_n:
        hi = lo
        while hi < big_n and r_sorted[hi] == r_sorted[lo]:
            hi += 1
        weight = (math.comb(hi, n) - math.comb(lo, n)) / total
        if weight:
            expected += weight * float(g_sorted[lo:hi].mean())
        lo = hi
    return expected


def bon_first_n(proxy: Sequence[float], gold: Sequence[float], n: int) -> float:
    """Gold score of the proxy's pick among the *first* n samples (RewardMATH's reading; a tie for the top proxy
    score counts the tied samples' mean gold)."""
    r, g = np.asarray(proxy, dtype=float)[:n], np.asarray(gold, dtype=float)[:n]
    if not 1 <= n <= len(np.asarray(proxy)):
        raise ValueError(f"best-of-{n} of {len(np.asarray(proxy))} samples: n must be in 1..{len(np.asarray(proxy))}")
    return float(g[r == r.max()].mean())


def bon_curve(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """Per-prompt expected gold at each n: ``proxy`` and ``gold`` are (prompts, N); returns (prompts, len(ns))."""
    proxy, gold = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    if proxy.shape != gold.shape or proxy.ndim != 2:
        raise ValueError(f"proxy {proxy.shape} and gold {gold.shape} must both be (prompts, samples)")
    return np.array([[bon_expected(p, g, n) for n in ns] for p, g in zip(proxy, gold)])


def pairwise_accuracy(proxy: Sequence[float], gold: Sequence[float]) -> tuple[float | None, int]:
    """Of one prompt's sample pairs with different gold scores, the fraction the proxy orders as gold does (a tie
    counts half), and the number of such pairs (accuracy None when there are none)."""
    r, g = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    dg = g[:, None] - g[None, :]
    dr = r[:, None] - r[None, :]
    better = dg > 0
    pairs = int(better.sum())
    if not pairs:
        return None, 0
    right = float((dr[better] > 0).sum() + 0.5 * (dr[better] == 0).sum())
    return right / pairs, pairs
