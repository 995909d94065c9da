"""Style bias of a reward model: how much its reward moves with length and markdown, prompt held fixed.

RM-Bench's style-substance matrix (Sec. 3.3) says *whether* style sways a reward model; this says *by how much
per unit of style*, and beside what: a within-prompt regression (prompt fixed effects: reward and features
demeaned per prompt) of the reward on

- ``chosen`` (1 for the chosen response): the substance effect, a control, so that a length gap between chosen
  and rejected responses is not read as a taste for length,
- ``length_kchars``: response length in thousands of characters (tokenizer-free, so that every model is
  measured on the same scale),
- ``header_count``, ``list_count``, ``bold_count``: markdown counts by Arena-Hard-Auto's rules
  (:func:`rmlab.utils.style_features.markdown_counts`, code removed, each family summed), the features its
  style control uses (RM-Bench Sec. 5.1).

Coefficients are in reward units per unit of the feature; ``std_coef`` rescales them to within-prompt standard
deviations of feature and reward, comparable across reward models. Intervals: percentile bootstrap over prompts.
A feature that never varies within a prompt (markdown in a domain without any) cannot be estimated and is listed
in ``not_estimable``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rmlab.metrics.bootstrap import percentile_interval
from rmlab.utils.style_features import markdown_counts

BIAS_FEATURES = ("chosen", "length_kchars", "header_count", "list_count", "bold_count")


def response_features(text: str, chosen: bool) -> list[float]:
    """One response's regressors, in :data:`BIAS_FEATURES` order."""
    md = markdown_counts(text)
    return [float(chosen), len(text) / 1000, *(float(sum(md[k].values())) for k in BIAS_FEATURES[2:])]


def _demean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    sums = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(sums, groups, values)
    return values - (sums / np.bincount(groups, minlength=n_groups).reshape(-1, *[1] * (values.ndim - 1)))[groups]


def fixed_effects_regression(
    reward: np.ndarray,
    features: np.ndarray,
    groups: Sequence,
    *,
    feature_names: Sequence[str],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """OLS of ``reward`` on ``features`` with one fixed effect per group, intervals by resampling groups.

    :param reward: ``(n,)`` rewards; ``features``: ``(n, k)``; ``groups``: ``(n,)`` prompt keys.
    :return: ``coef`` / ``std_coef`` / ``ci`` by feature, ``within_r2``, ``not_estimable``, sizes.
    """
    _, g = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n_groups = int(g.max()) + 1 if len(g) else 0
    y = _demean(np.asarray(reward, dtype=np.float64), g, n_groups)
    x_all = _demean(np.asarray(features, dtype=np.float64), g, n_groups)
    varies = x_all.std(axis=0) > 1e-12
    x = x_all[:, varies]
    names = [n for n, v in zip(feature_names, varies) if v]
    out = {
        "n_prompts": n_groups,
        "n_responses": len(y),
        "not_estimable": [n for n, v in zip(feature_names, varies) if not v],
        "coef": {},
        "std_coef": {},
        "ci": {},
        "within_r2": None,
    }
    if n_groups < 2 or not names or np.linalg.matrix_rank(x) < x.shape[1]:
        out["not_estimable"] = list(feature_names)
        return out
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    resid = y - x @ beta
    out["within_r2"] = float(1 - resid @ resid / (y @ y)) if y @ y > 0 else None
    y_sd = y.std()
    out["coef"] = dict(zip(names, beta.tolist()))
    out["std_coef"] = {n: (b * s / y_sd if y_sd > 0 else None) for n, b, s in zip(names, beta, x.std(axis=0))}
    if n_boot:
        rng = np.random.default_rng(seed)
        boot = np.empty((n_boot, len(names)))
        for r in range(n_boot):  # a prompt drawn twice counts twice: row weights = its draw count
            w = np.bincount(rng.integers(0, n_groups, size=n_groups), minlength=n_groups)[g].astype(np.float64)
            xw = x * w[:, None]
            boot[r] = np.linalg.lstsq(xw.T @ x, xw.T @ y, rcond=None)[0]
        out["ci"] = {n: percentile_interval(boot[:, i], confidence) for i, n in enumerate(names)}
    return out


def rm_bench_style_bias(items: Sequence, scores: np.ndarray, **boot) -> dict:
    """Style bias per RM-Bench metric domain and over all domains pooled (prompt effects absorb the domains).

    :param items: RM-Bench items (``metric_domain``, ``domain``, ``id``, ``chosen``, ``rejected``).
    :param scores: ``(n, 2, 3)`` rewards, chosen / rejected by style, in ``items`` order.
    :param boot: ``n_boot``, ``confidence``, ``seed`` for :func:`fixed_effects_regression`.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(len(items), 2, 3)
    rows, domains = [], []
    for it, s in zip(items, scores):
        for side, texts in ((0, it.chosen), (1, it.rejected)):
            for text, reward in zip(texts, s[side]):
                rows.append((f"{it.domain}/{it.id}", reward, response_features(text, side == 0)))
                domains.append(it.metric_domain)
    domains = np.array(domains)
    keys = np.array([r[0] for r in rows])
    reward = np.array([r[1] for r in rows])
    feats = np.array([r[2] for r in rows]).reshape(len(rows), len(BIAS_FEATURES))
    out = {"features": list(BIAS_FEATURES), "length_unit": "1000 characters", "domains": {}}
    for name in [*dict.fromkeys(domains.tolist()), "all"]:
        sel = np.ones(len(rows), bool) if name == "all" else domains == name
        out["domains"][name] = fixed_effects_regression(
            reward[sel], feats[sel], keys[sel], feature_names=BIAS_FEATURES, **boot
        )
    return out


def style_bias_markdown(result: dict, model_name: str) -> str:
    """The coefficients with their intervals, one row per domain and feature."""
    lines = [
        f"# Style bias of {model_name} on RM-Bench",
        "",
        (
            "Within-prompt regression of the reward on the response's features (prompt fixed effects); "
            f"length in {result['length_unit']}, markdown counts by Arena-Hard-Auto's rules (code removed). "
            "`chosen` is the substance effect (a control). std. coef: per within-prompt SD of feature and reward."
        ),
        "",
        "| domain | feature | coef | 95% CI | std. coef | prompts | within R² |",
        "|---|---|---|---|---|---|---|",
    ]
    for domain, r in result["domains"].items():
        r2 = "—" if r["within_r2"] is None else f"{r['within_r2']:.3f}"
        for f in result["features"]:
            if f not in r["coef"]:
                lines.append(f"| {domain} | {f} | not estimable | | | {r['n_prompts']} | {r2} |")
                continue
            ci = r["ci"].get(f)
            ci_text = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            sc = r["std_coef"][f]
            lines.append(
                f"| {domain} | {f} | {r['coef'][f]:.4g} | {ci_text} | {'—' if sc is None else f'{sc:.3f}'} | "
                f"{r['n_prompts']} | {r2} |"
            )
    return "\n".join(lines) + "\n"
