"""Do reward-model benchmarks predict best-of-n gains? The analysis of a best-of-n study (RewardMATH's design).

Inputs: one ``best_of_n`` run (``bon.json``: per reward model, the expected gold score of the best-of-n pick at
every n and the pairwise accuracy on the policy's own samples), and per reward model its ``eval_rm`` runs
(``metrics.json``) and, optionally, its ``train_rm`` run (``train_metrics.json``: held-out accuracy on pairs of the
training prompts). One point per reward model: x = a benchmark's accuracy, y = the best-of-N gold gain
(gold@N - gold@1). The statistics are those of the correlation study (:func:`correlation_report`: Pearson r with
Fisher's z interval and the p of the same test, Spearman and Kendall with theirs, a bootstrap over reward models, a
permutation p-value, the design's power, leave-one-out), and every pair of benchmarks is compared on the same
reward models (:mod:`rmlab.analysis.benchmark_comparison`: Williams' t, Holm-adjusted).

The first x is the positive control: the reward model's pairwise accuracy on the best-of-n prompts' own samples
measures exactly what best-of-n rewards, so with reward models of graded quality its r must be clearly positive;
if its interval does not lie above 0, something upstream is broken and the benchmark r's mean nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rmlab.analysis.benchmark_comparison import (
    compare_benchmarks,
    comparison_markdown,
    inference_cells,
    interval_text,
    p_text,
    power_note,
)
from rmlab.analysis.correlation import Point, correlation_report
from rmlab.analysis.runs import benchmark_of
from rmlab.metrics.best_of_n import pairwise_accuracy
from rmlab.metrics.bootstrap import bootstrap_mean_interval


def benchmark_accuracy(metrics: dict) -> float | None:
    """The headline value of one ``eval_rm`` run (its benchmark's ``headline``), on whatever part of the benchmark
    was scored."""
    return benchmark_of(metrics).headline(metrics)[0]


def _prompt_gold(path: Path) -> dict[str, float]:
    """Per prompt of a ``best_of_n`` run's ``samples.jsonl``: the mean gold score of its samples (gold@1)."""
    out = {}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            gold = row.get("gold")
            if not isinstance(gold, list) or not gold:
                raise ValueError(f"{path}: record {line_no} ({row.get('id')!r}): field 'gold' must be a non-empty list")
            out[str(row["id"])] = float(np.mean(gold))
    return out


def policy_gain(sft: Path, trained: Path | Sequence[Path], *, n_boot: int, seed: int, confidence: float = 0.95) -> dict:
    """A trained policy's gold@1 minus its SFT policy's on the same prompts (``samples.jsonl`` of two ``best_of_n``
    runs), with a paired bootstrap interval over prompts; each side's gold@1 with its own interval beside it.

    With several trained policies (a list: the arms of a pooled control), ``after`` is their mean gold@1 per prompt, so
    the gain is the arms' mean gain, still paired over prompts (``arms``: how many). Its interval covers the prompts,
    with the arms held fixed: narrower than one that also resampled the arms, so a control read on it is the harder
    one to pass."""
    paths = [Path(trained)] if isinstance(trained, (str, Path)) else [Path(t) for t in trained]
    if not paths:
        raise ValueError("policy_gain: no trained policy's samples given")
    before = _prompt_gold(Path(sft))
    arms = [_prompt_gold(t) for t in paths]
    for t, after in zip(paths, arms):
        if set(before) != set(after):
            raise ValueError(f"{sft} and {t} sampled different prompts ({len(set(before) ^ set(after))} differ)")
    ids = sorted(before)
    b = np.array([before[i] for i in ids])
    a = np.mean([[after[i] for i in ids] for after in arms], axis=0)

    def entry(values: np.ndarray) -> dict:
        ci = bootstrap_mean_interval(values, n_boot=n_boot, confidence=confidence, seed=seed)
        return {"value": float(values.mean()), "ci": ci}

    out = {**entry(a - b), "before": entry(b), "after": entry(a), "n_prompts": len(ids), "paired": "prompts"}
    return out if isinstance(trained, (str, Path)) else {**out, "arms": len(paths)}


def pooled_pairwise_accuracy(
    samples: Path, names: Sequence[str], *, n_boot: int, seed: int, confidence: float = 0.95
) -> dict | None:
    """Several reward models' mean pairwise accuracy on one ``best_of_n`` run's samples (``samples.jsonl``: per
    prompt, ``gold`` and ``proxy.<name>``): per prompt with pairs of different gold, the models' mean accuracy
    (:func:`rmlab.metrics.best_of_n.pairwise_accuracy`), then its mean over prompts with a bootstrap interval over
    prompts. With one name, the value is that model's ``pairwise_accuracy`` in ``bon.json``."""
    per_prompt = []
    with open(samples) as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            proxy = row.get("proxy") or {}
            missing = [n for n in names if n not in proxy]
            if missing:
                raise ValueError(f"{samples}: record {line_no} ({row.get('id')!r}): field 'proxy' lacks {missing}")
            accs = [pairwise_accuracy(proxy[n], row["gold"]) for n in names]
            if accs[0][1]:  # the pairs depend on gold only: the same for every model
                per_prompt.append(float(np.mean([acc for acc, _ in accs])))
    values = np.array(per_prompt)
    if len(values) < 2:
        return None
    ci = bootstrap_mean_interval(values, n_boot=n_boot, confidence=confidence, seed=seed)
    return {"value": float(values.mean()), "ci": ci, "n": len(values), "models": list(names)}


def study_rows(
    bon: dict,
    evals: Mapping[str, Mapping[str, dict]],
    trained: Mapping[str, dict],
    n: int,
    gains: Mapping[str, Mapping[str, dict]] | None = None,
) -> list[dict]:
    """One row per reward model: its quality measures, its best-of-n gold scores and, per policy optimizer in
    ``gains`` (method -> reward model -> :func:`policy_gain`), its trained policy's gain (``gains``)."""
    rows = []
    for name, r in bon["reward_models"].items():
        per_n = r["per_n"]
        if str(n) not in per_n:
            raise ValueError(f"best-of-{n} was not computed (ns: {bon['ns']})")
        heldout = (trained.get(name) or {}).get("heldout") or {}
        rows.append(
            {
                "reward_model": name,
                "pairwise_accuracy": r["pairwise_accuracy"],
                "train_heldout_accuracy": heldout.get("accuracy"),
                "train_heldout_ci": heldout.get("ci"),
                "benchmarks": {b: benchmark_accuracy(m) for b, m in evals.get(name, {}).items()},
                "gold": {k: v["gold"]["value"] for k, v in per_n.items()},
                "gain": per_n[str(n)]["gain"],
                "gains": {"bon": per_n[str(n)]["gain"], **{a: g[name] for a, g in (gains or {}).items() if name in g}},
            }
        )
    return rows


def study_measures(rows: list[dict], method: str = "bon") -> dict[str, list[Point]]:
    """x = each quality measure in turn, y = the method's gold gain (best-of-N: gold@N - gold@1; a policy
    optimizer: the trained policy's gold@1 - the SFT policy's), one point per reward model."""
    measures: dict[str, list[Point]] = {"pairwise_accuracy (positive control)": [], "train_heldout_accuracy": []}
    for row in rows:
        gain = (row.get("gains") or {"bon": row["gain"]}).get(method)
        if gain is None:
            continue
        y = gain["value"]
        if row["pairwise_accuracy"] is not None:
            measures["pairwise_accuracy (positive control)"].append(
                Point(row["reward_model"], "bon", row["pairwise_accuracy"]["value"], y)
            )
        if row["train_heldout_accuracy"] is not None:
            measures["train_heldout_accuracy"].append(
                Point(row["reward_model"], "bon", row["train_heldout_accuracy"], y)
            )
        for bench, acc in row["benchmarks"].items():
            if acc is not None:
                measures.setdefault(bench, []).append(Point(row["reward_model"], "bon", acc, y))
    return measures


def study_correlations(
    rows: list[dict], *, n_boot: int, n_perm: int, seed: int, interval: str = "fisher", method: str = "bon"
) -> dict:
    """Each quality measure's correlation with the method's gold gain (:func:`study_measures`)."""
    out = {}
    for name, points in study_measures(rows, method).items():
        if len(points) >= 3:
            out[name] = correlation_report(points, interval=interval, n_boot=n_boot, n_perm=n_perm, seed=seed)
        elif points:
            out[name] = {"n": len(points), "note": "fewer than 3 reward models: no correlation"}
    return out


def benchmark_comparison(rows: list[dict], method: str = "bon") -> dict:
    """Every pair of benchmarks (not the other quality measures), compared on the reward models both scored."""
    benches = {b for r in rows for b in r["benchmarks"]}
    return compare_benchmarks({k: v for k, v in study_measures(rows, method).items() if k in benches})


READ_OUTS = ("sampled", "greedy")


def control_names(controls, kind: str) -> list[str]:
    """The reward models a control names (``pipeline.controls.<kind>``): one name, or for ``negative`` a list (a
    pooled control); empty when the control is not set."""
    name = (controls or {}).get(kind)
    if name is None:
        return []
    if isinstance(name, str):
        return [name]
    names = [str(n) for n in name]
    if kind != "negative":
        raise ValueError(f"pipeline.controls.{kind}: one reward model, got a list {names} (only negative pools)")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"pipeline.controls.negative: a list of distinct reward models, got {names}")
    return names


def negative_pool(controls) -> list[str]:
    """The reward models of a pooled negative control (``pipeline.controls.negative`` a list), else empty."""
    negative = (controls or {}).get("negative")
    return [] if negative is None or isinstance(negative, str) else control_names(controls, "negative")


def method_controls(
    rows: list[dict], controls, methods: list[str], control_gains: dict | None = None, pooled_accuracy=None
) -> list[dict]:
    """The policy optimizers' controls (``controls``: ``{positive: <rm>, negative: <rm> | [<rm>, ...], shuffled:
    <rm>, read_out: sampled | greedy}``), each a ``verdict`` (and ``passed``, whether its rule held), read on the
    gold@1 gain at T = 1 (``sampled``, the default) or on the greedy gain (``greedy``, which needs ``pipeline.greedy``):

    - positive: a policy trained against that reward model must gain (interval above 0);
    - negative: one trained against it must not (interval not above 0). Its premise is that the reward model carries
      no signal; if its pairwise accuracy on the best-of-n samples lies above chance (interval above 0.5; a model
      trained on 50% flipped labels learns some direction by chance), a gain says nothing about the RL path and the
      verdict is INVALID instead of FAILED (no gain still passes, the premise's failure noted). A list of reward
      models pools them (e.g. the same recipe under several flip seeds: signal-free in expectation over the flip,
      while any one of them points somewhere by chance): the gain is the arms' mean gain (``control_gains["negative"]``:
      method -> :func:`policy_gain` of the arms), the premise their mean pairwise accuracy (``pooled_accuracy``:
      :func:`pooled_pairwise_accuracy`), both paired over prompts;
    - shuffled: a policy paid that reward model's rewards permuted within each prompt's group
      (``control_gains["shuffled"]``: method -> gain) must not gain; its premise holds by construction.
    """
    controls = controls or {}
    control_gains = control_gains or {}
    read_out = str(controls.get("read_out") or "sampled")
    if read_out not in READ_OUTS:
        raise ValueError(f"pipeline.controls.read_out={read_out!r}: one of {READ_OUTS}")
    by_name = {r["reward_model"]: r for r in rows}
    out = []
    for kind in ("positive", "negative", "shuffled"):
        names = control_names(controls, kind)
        if not names:
            continue
        for name in names:
            if name not in by_name:
                raise ValueError(
                    f"pipeline.controls.{kind}={name!r}: not a reward model of this study ({sorted(by_name)})"
                )
        pooled = not isinstance(controls.get(kind), str)
        if pooled:
            acc = pooled_accuracy or {}
        else:
            acc = by_name[names[0]]["pairwise_accuracy"] or {}
        premise = kind != "negative" or not (acc.get("ci") and acc["ci"][0] > 0.5)
        for method in methods:
            if kind == "shuffled" or pooled:
                gain = control_gains.get(kind, {}).get(method)
            else:
                gain = by_name[names[0]]["gains"].get(method)
            if gain is None:
                continue
            sampled, greedy = _value_ci(gain), gain.get("greedy") and _value_ci(gain["greedy"])
            if read_out == "greedy" and not greedy:
                raise ValueError("pipeline.controls.read_out=greedy needs the greedy read-out: pipeline.greedy=true")
            read = greedy if read_out == "greedy" else sampled
            above = read["ci"] is not None and read["ci"][0] > 0
            passed = above if kind == "positive" else not above
            verdict = "PASSED" if passed else "FAILED" if premise else "INVALID"
            entry = {"algo": method, "kind": kind, "reward_model": " + ".join(names), "read_out": read_out,
                     "gain": read["value"], "ci": read["ci"], "sampled": sampled, "greedy": greedy, "passed": passed,
                     "premise_holds": premise, "verdict": verdict, "pairwise_accuracy": acc.get("value"),
                     "pairwise_accuracy_ci": acc.get("ci")}  # fmt: skip
            if pooled:  # each arm's own gain beside the pooled one
                entry["pooled"] = {n: _value_ci(by_name[n]["gains"][method]) for n in names}
            out.append(entry)
    return out


def _value_ci(gain: dict) -> dict:
    return {"value": gain["value"], "ci": gain["ci"]}


def positive_control(correlations: dict) -> dict:
    """Whether the positive control passed: r's interval (``pearson_ci``, Fisher z by default) lies above 0."""
    c = correlations.get("pairwise_accuracy (positive control)") or {}
    lo = (c.get("pearson_ci") or [None])[0]
    return {"r": c.get("pearson_r"), "ci": c.get("pearson_ci"), "passed": lo is not None and lo > 0}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _pct_ci(entry) -> str:
    if not entry:
        return "-"
    ci = entry.get("ci")
    return _pct(entry["value"]) + (f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "")


def gain_label(method: str, n: int) -> str:
    return f"the best-of-{n} gold gain" if method == "bon" else f"the {method.upper()} policy's gold@1 gain over SFT"


def study_markdown(
    rows: list[dict],
    correlations: dict,
    control: dict,
    ns: list[int],
    n: int,
    comparison: dict | None = None,
    method: str = "bon",
) -> str:
    benches = sorted({b for r in rows for b in r["benchmarks"]})
    show = [k for k in (1, 4, 16) if k in ns] or ns
    head = [
        "reward model",
        "pairwise acc. on BoN samples",
        "held-out acc. (train split)",
        *benches,
        *[f"gold@{k}" for k in show],
        f"gain@{n}",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        held = r["train_heldout_accuracy"]
        held_txt = "-" if held is None else _pct(held)
        if r["train_heldout_ci"]:
            held_txt += f" [{_pct(r['train_heldout_ci'][0])}, {_pct(r['train_heldout_ci'][1])}]"
        cells = [
            r["reward_model"],
            _pct_ci(r["pairwise_accuracy"]),
            held_txt,
            *[_pct(r["benchmarks"].get(b)) for b in benches],
            *[_pct(r["gold"].get(str(k))) for k in show],
            _pct_ci(r["gain"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Correlation with {gain_label(method, n)} (one point per reward model):", ""]
    method = next((c["interval_method"] for c in correlations.values() if c.get("interval_method")), "-")
    lines += [
        (
            f"| x | n | Pearson r [95% CI: {method.split(', n_eff')[0]}] | p (same test) | permutation p | "
            "Spearman [CI] | Kendall [CI] | min. detectable r |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in correlations.items():
        if c.get("pearson_r") is None:
            lines.append(f"| {name} | {c.get('n')} | {c.get('note') or c.get('undefined')} | | | | | |")
            continue
        spearman, kendall, perm, r_min = inference_cells(c, digits=2, p_fmt=".3g")
        lines.append(
            f"| {name} | {c['n']} | {c['pearson_r']:.2f} {interval_text(c)} | {p_text(c['pearson_p'], '.3g')} | {perm} | "
            f"{spearman} | {kendall} | {r_min} |"
        )
    lines += ["", power_note({k: c for k, c in correlations.items() if c.get("power")})]
    if comparison and comparison["pairs"]:
        lines += ["", comparison_markdown(comparison, gain_label(method, n)).rstrip()]
    verdict = "PASSED" if control["passed"] else "FAILED: the benchmark r's above cannot be trusted"
    lines += ["", f"Positive control (pairwise accuracy vs gain, interval above 0): {verdict}"]
    return "\n".join(lines) + "\n"


def _greedy_cell(gain: dict | None) -> str:
    if not gain:
        return "-"
    return f"{_pct(gain['before']['value'])} -> {_pct(gain['after']['value'])} ({_pct_ci(gain)})"


CONTROL_RULES = (
    "a policy trained against the positive reward model must gain (interval above 0); one trained against the "
    "negative must not (a gain is INVALID rather than FAILED when that reward model is not signal-free: pairwise "
    "accuracy above chance; a list of negatives is pooled: their arms' mean gain, their mean pairwise accuracy); "
    "one paid the shuffled-control reward model's rewards permuted within each prompt's group must not."
)


def _r_cell(c: dict | None) -> str:
    if not c or c.get("pearson_r") is None:
        return "-" if not c else f"n={c.get('n')}: {c.get('note') or c.get('undefined')}"
    return f"{c['pearson_r']:.2f} {interval_text(c)} (p {p_text(c['pearson_p'], '.2g')})"


def methods_markdown(rows: list[dict], by_method: dict, methods: list[str], n: int, controls: list[dict]) -> str:
    """Per reward model, each method's gold gain (a policy optimizer's with gold@1 before -> after); then each
    quality measure's correlation per method side by side; then the controls."""
    trainers = [m for m in methods if m != "bon"]
    greedy = [m for m in trainers if any((r["gains"].get(m) or {}).get("greedy") for r in rows)]
    head = ["reward model", f"best-of-{n} gain", *[f"{m.upper()} gold@1 SFT -> trained" for m in trainers],
            *[f"{m.upper()} gain" for m in trainers],
            *[f"{m.upper()} greedy SFT -> trained (gain)" for m in greedy]]  # fmt: skip
    lines = ["## Per method", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        g = r["gains"]
        moves = [
            f"{_pct_ci(g[m]['before'])} -> {_pct_ci(g[m]['after'])}" if m in g else "-" for m in trainers
        ]  # fmt: skip
        modes = [_greedy_cell((g.get(m) or {}).get("greedy")) for m in greedy]
        lines.append("| " + " | ".join([r["reward_model"], _pct_ci(g["bon"]), *moves,
                                         *[_pct_ci(g.get(m)) for m in trainers], *modes]) + " |")  # fmt: skip
    measures = list(dict.fromkeys(k for m in methods for k in by_method[m]))
    lines += ["", "Does the answer depend on the optimizer? Pearson r of each measure with each method's gain:", "",
              "| x | " + " | ".join(gain_label(m, n) for m in methods) + " |", "|---|" + "---|" * len(methods)]  # fmt: skip
    for x in measures:
        lines.append(f"| {x} | " + " | ".join(_r_cell(by_method[m].get(x)) for m in methods) + " |")
    if controls:
        read = controls[0]["read_out"]
        lines += [
            "",
            f"Controls, read on the {'greedy' if read == 'greedy' else 'gold@1 (T = 1)'} gain: {CONTROL_RULES}",
            "",
        ]
        for c in controls:
            what = f"{c['reward_model']}, rewards shuffled" if c["kind"] == "shuffled" else c["reward_model"]
            if c.get("pooled"):
                what = f"pooled over {len(c['pooled'])}: " + ", ".join(
                    f"{n} {_pct_ci(g)}" for n, g in c["pooled"].items()
                )
            gains = [f"gold@1 gain at T = 1 {_pct_ci(c['sampled'])}"]
            gains += [f"greedy gain {_pct_ci(c['greedy'])}"] if c.get("greedy") else []
            if c["read_out"] == "greedy":
                gains.reverse()
            line = f"- {c['algo'].upper()}, {c['kind']} ({what}): {'; '.join(gains)}: {c['verdict']}"
            acc_ci = c["pairwise_accuracy_ci"] or [None, None]
            acc = f"{_pct(c['pairwise_accuracy'])} [{_pct(acc_ci[0])}, {_pct(acc_ci[1])}]"
            if c.get("pooled") and c["premise_holds"]:
                line += f" (their mean pairwise accuracy on the best-of-n samples: {acc})"
            if not c["premise_holds"]:
                whose = "their mean" if c.get("pooled") else "its"
                line += (
                    f" ({whose} pairwise accuracy on the best-of-n samples, {acc}, is above chance: not signal-free)"
                )
            lines.append(line)
    return "\n".join(lines) + "\n"
