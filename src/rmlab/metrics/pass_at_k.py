"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1 and Fig. 3).

With n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k): the chance that at least one of k samples
drawn without replacement passes. Computed as a running product, which is exact for small counts and stable for
large ones.
"""

from __future__ import annotations

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """pass@k averaged over problems, from ``(n, c)`` per problem."""
    return float(np.mean([pass_at_k(n, c, k) for n, c in counts]))
