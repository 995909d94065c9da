"""Which benchmark predicts the policy outcome better? Two benchmarks' correlations on the same reward models.

For benchmarks A and B scored on the same reward models, over the points both have (same reward model and task
group, hence the same policy outcome y): r_A = r(x_A, y), r_B = r(x_B, y) and r_AB = r(x_A, x_B), each x
standardised as in the correlation study. r_A and r_B share y and the units, so their difference is tested with
Williams' t (Steiger 1980, Psychological Bulletin 87:245, eq. 7; :mod:`rmlab.metrics.dependent_correlations`) over
the effective number of points (:func:`rmlab.analysis.correlation.effective_n`), with Steiger's Z beside it; with
more than two benchmarks the p-values are Holm-adjusted over all pairs. The same functions serve ``rmlab
correlate`` / the correlation study, the best-of-n study and any later report, with the markdown they print.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from rmlab.analysis.correlation import Point, defined_r, effective_n, standardised
from rmlab.metrics.dependent_correlations import holm, steiger_z, williams_t

TEST = "Williams' t (Steiger 1980 eq. 7), n_eff - 3 df; Holm-adjusted over the pairs"


def compare_pair(a: list[Point], b: list[Point], *, standardise_x: str = "none", standardise_y: str = "none") -> dict:
    """r_A - r_B over the points A and B share, with Williams' t and Steiger's Z (module docstring)."""
    ka = {(p.reward_model, p.group): p for p in a}
    kb = {(p.reward_model, p.group): p for p in b}
    common = sorted(set(ka) & set(kb))
    for k in common:
        if ka[k].y != kb[k].y:
            raise ValueError(f"{k}: the two benchmarks' points have different policy outcomes ({ka[k].y}, {kb[k].y})")
    pa, pb = [ka[k] for k in common], [kb[k] for k in common]
    out = {"n_points": len(common), "n_reward_models": len({k[0] for k in common})}
    if len(common) < 4:
        return {**out, "note": f"{len(common)} shared point(s): a comparison needs at least 4"}
    xa, y = standardised(pa, standardise_x, standardise_y)
    xb, _ = standardised(pb, standardise_x, standardise_y)
    r_a, r_b, r_ab = defined_r(xa, y), defined_r(xb, y), defined_r(xa, xb)
    n_eff = effective_n(pa, standardise_x, standardise_y)
    out.update({"n_effective": n_eff, "r_a": r_a, "r_b": r_b, "r_ab": r_ab})
    if np.isnan([r_a, r_b, r_ab]).any() or n_eff <= 3:
        return {**out, "note": "a correlation is undefined (constant scores) or n_eff <= 3: no test"}
    t, df, p = williams_t(r_a, r_b, r_ab, n_eff)
    z, pz = steiger_z(r_a, r_b, r_ab, n_eff)
    return {**out, "difference": r_a - r_b, "williams_t": t, "df": df, "p": p, "steiger_z": z, "steiger_p": pz}


def compare_benchmarks(points: dict[str, list[Point]], *, standardise_x: str = "none", standardise_y: str = "none"):
    """Every pair of benchmarks (sorted names, A before B), with Holm-adjusted p-values over the tested pairs."""
    pairs = []
    for a, b in combinations(sorted(points), 2):
        entry = compare_pair(points[a], points[b], standardise_x=standardise_x, standardise_y=standardise_y)
        pairs.append({"a": a, "b": b, **entry})
    tested = [e for e in pairs if "p" in e]
    for e, adj in zip(tested, holm([e["p"] for e in tested])):
        e["p_holm"] = adj
    return {"test": TEST, "pairs": pairs}


def comparison_markdown(comparison: dict, outcome: str) -> str:
    """The benchmark-vs-benchmark table: which benchmark's r with ``outcome`` is larger, and is it significant."""
    lines = [
        f"Which benchmark predicts {outcome} better (same reward models; {comparison['test']}):",
        "",
        "| A | B | RMs | points | r_A | r_B | r_AB | r_A - r_B | Williams' t (df) | p | Holm p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in comparison["pairs"]:
        head = f"| {e['a']} | {e['b']} | {e['n_reward_models']} | {e['n_points']} |"
        if "p" not in e:
            lines.append(f"{head} - | - | - | - | {e.get('note', '')} | | |")
            continue
        lines.append(
            f"{head} {e['r_a']:.3f} | {e['r_b']:.3f} | {e['r_ab']:.3f} | {e['difference']:+.3f} | "
            f"{e['williams_t']:.2f} ({e['df']}) | {e['p']:.3g} | {e['p_holm']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def p_text(p: float | None, fmt: str = ".3f") -> str:
    """A p-value, or "-" where there is none (the Fisher-z test needs more than 3 effective points)."""
    return "-" if p is None else format(p, fmt)


def interval_text(rep: dict, digits: int = 2) -> str:
    """``[low, high]`` of ``pearson_ci``, or why there is none."""
    lo, hi = rep.get("pearson_ci") or (None, None)
    if lo is None:
        boot = str(rep.get("interval_method") or "").startswith("cluster bootstrap")
        why = (rep.get("bootstrap") or {}).get("withheld") if boot else None
        return f"- ({why or 'too few points'})"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def inference_cells(rep: dict, digits: int = 2, p_fmt: str = ".3f") -> list[str]:
    """A correlation report's rank-correlation, permutation and power cells, in table order: Spearman and Kendall
    (estimate and interval), the permutation p, and the minimum detectable r (marked when underpowered)."""
    inf, pw = rep["inference"], rep["power"]
    rank = [
        f"{inf[k]['estimate']:.{digits}f} " + interval_text({"pearson_ci": inf[k]["interval"]})
        for k in ("spearman", "kendall")
    ]
    perm = p_text(rep["permutation_p"], p_fmt)
    r_min = "-" if pw["min_detectable_r"] is None else f"{pw['min_detectable_r']:.2f}"
    return [*rank, perm, r_min + (" (underpowered)" if pw["underpowered"] else "")]


def power_note(reports: dict[str, dict]) -> str:
    """One line on the design's power for a table of correlation reports (``name -> report``)."""
    parts, weak = [], []
    for name, rep in reports.items():
        pw = rep.get("power")
        if not pw:
            continue
        r_min = "-" if pw["min_detectable_r"] is None else f"{pw['min_detectable_r']:.2f}"
        parts.append(f"{name}: {rep['n_reward_models']} reward models, {rep['n_points']} points, |r| >= {r_min}")
        if pw["underpowered"]:
            weak.append(name)
    if not parts:
        return ""
    first = next(r["power"] for r in reports.values() if r.get("power"))
    verdict = (
        f" UNDERPOWERED ({', '.join(weak)}): this design cannot detect |r| <= {first['underpowered_above']} "
        "reliably; a null result here says little."
        if weak
        else ""
    )
    return (
        f"Power: the smallest |r| detectable at {first['power']:.0%} power (two-sided alpha {first['alpha']:.2g}, "
        f"Fisher z over the effective points) - {'; '.join(parts)}.{verdict}"
    )
