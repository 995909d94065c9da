"""The policy optimizer as an axis of the best-of-n study: a trained policy's gold gain over its SFT policy (paired
over prompts, or the mean of several arms'), the RL path's controls (positive, negative, pooled negative, shuffled)
and their verdicts, and the per-method table of ``study.md`` (:mod:`rmlab.pipelines.bon_study` runs the stages)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rmlab.analysis.benchmark_comparison import interval_text, p_text
from rmlab.analysis.bon_study import _pct, _pct_ci, gain_label
from rmlab.metrics.best_of_n import pairwise_accuracy
from rmlab.metrics.bootstrap import bootstrap_mean_interval


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


def admit_negative_pool(accuracies: Mapping[str, dict | None], names: Sequence[str]) -> tuple[list[str], dict]:
    """Split a pooled negative control's reward models into the signal-free ones, which the pool averages, and the
    ones set aside: a model whose own pairwise accuracy on the best-of-n samples (``accuracies``: name -> value with
    ``ci``) has an interval wholly above chance (0.5) carries signal by chance, one wholly below carries the opposite
    signal. Both are set aside, not only the first: a policy optimizer turns a little signal into a large gain but
    can lose at most the SFT policy's gold (a floor), so averaging a lucky model's arm with unlucky ones reads as a
    gain, and keeping only the unlucky ones would read as a loss. A model without an interval (no pairs of different
    gold) is admitted, as a single negative control's premise is. Returns (members, set_aside: name ->
    ``{"side": "above" | "below", "value", "ci"}``); members per :func:`pool_members`."""
    set_aside = {}
    for name in names:
        acc = accuracies.get(name) or {}
        ci = acc.get("ci")
        side = "above" if ci and ci[0] > 0.5 else "below" if ci and ci[1] < 0.5 else None
        if side:
            set_aside[name] = {"side": side, "value": acc.get("value"), "ci": list(ci)}
    return pool_members(names, set_aside), set_aside


def pool_members(names: Sequence[str], set_aside: Mapping[str, dict]) -> list[str]:
    """The models a pooled negative control averages: those not set aside; with every one set aside, all of them
    (there is no signal-free member, and :func:`method_controls` reads the control INVALID on that premise)."""
    return [n for n in names if n not in set_aside] or list(names)


def method_controls(
    rows: list[dict],
    controls,
    methods: list[str],
    control_gains: dict | None = None,
    pooled_accuracy=None,
    set_aside: Mapping[str, dict] | None = None,
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
      while any one of them points somewhere by chance) over its signal-free members (``set_aside``: the others,
      :func:`admit_negative_pool`; named beside the verdict with their own gains): the gain is the members' mean gain
      (``control_gains["negative"]``: method -> :func:`policy_gain` of their arms), the premise their mean pairwise
      accuracy (``pooled_accuracy``: :func:`pooled_pairwise_accuracy`), both paired over prompts; with every model
      set aside, the gain is all arms' and the premise fails (INVALID);
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
        aside = {n: v for n, v in (set_aside or {}).items() if n in names} if pooled else {}
        members = pool_members(names, aside)
        if pooled:
            acc = pooled_accuracy or {}
        else:
            acc = by_name[names[0]]["pairwise_accuracy"] or {}
        premise = kind != "negative" or not (acc.get("ci") and acc["ci"][0] > 0.5)
        premise = premise and len(aside) < len(names)
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
            entry = {"algo": method, "kind": kind, "reward_model": " + ".join(members), "read_out": read_out,
                     "gain": read["value"], "ci": read["ci"], "sampled": sampled, "greedy": greedy, "passed": passed,
                     "premise_holds": premise, "verdict": verdict, "pairwise_accuracy": acc.get("value"),
                     "pairwise_accuracy_ci": acc.get("ci")}  # fmt: skip
            if pooled:  # each arm's own gain beside the pooled one; the models set aside, with theirs
                entry["pooled"] = {n: _value_ci(by_name[n]["gains"][method]) for n in members}
                entry["set_aside"] = {
                    n: {**a, "gain": _value_ci(by_name[n]["gains"][method])} for n, a in aside.items()
                }
            out.append(entry)
    return out


def _value_ci(gain: dict) -> dict:
    return {"value": gain["value"], "ci": gain["ci"]}


def _greedy_cell(gain: dict | None) -> str:
    if not gain:
        return "-"
    return f"{_pct(gain['before']['value'])} -> {_pct(gain['after']['value'])} ({_pct_ci(gain)})"


CONTROL_RULES = (
    "a policy trained against the positive reward model must gain (interval above 0); one trained against the "
    "negative must not (a gain is INVALID rather than FAILED when that reward model is not signal-free: pairwise "
    "accuracy above chance; a list of negatives is pooled over its signal-free members, each one's pairwise accuracy "
    "interval covering chance, the others set aside: their arms' mean gain, their mean pairwise accuracy); "
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
                if c.get("set_aside"):
                    what += "; set aside: " + ", ".join(
                        f"{n} {_pct_ci(a['gain'])} (pairwise accuracy {_pct_ci(a)}, {a['side']} chance)"
                        for n, a in c["set_aside"].items()
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
            if not c["premise_holds"] and c.get("set_aside") and len(c["set_aside"]) == len(c["pooled"]):
                line += " (no pooled reward model is signal-free: every one was set aside)"
            elif not c["premise_holds"]:
                whose = "their mean" if c.get("pooled") else "its"
                line += (
                    f" ({whose} pairwise accuracy on the best-of-n samples, {acc}, is above chance: not signal-free)"
                )
            lines.append(line)
    return "\n".join(lines) + "\n"
