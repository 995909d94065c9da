"""Best-of-n sampling and reward overoptimization: the library body of ``scripts/best_of_n.py``.

RewardMATH (Kim et al. 2024) validates a reward-model benchmark by what the reward model does to an optimised
policy: best-of-n (BoN) picks, among n samples, the one the proxy reward scores highest; the gold score of that
pick against n (or against KL_BoN = log n - (n-1)/n) shows whether optimising the proxy helps and where it starts
to hurt (Gao et al. 2023). This stage:

1. samples N responses per prompt from the policy once (the generation cache of ``eval_policy``: resumable,
   shared with any run that sampled the same decoding);
2. gives each sample its gold score: the task's exact check (:meth:`Task.gold`: answer match, code tests in the
   sandbox) or a gold reward model;
3. scores every sample with each reward model in ``reward_models`` (the score cache of ``eval_rm``);
4. reports, per reward model and for every n in ``ns``, the expected gold and proxy score of the BoN pick over
   all n-subsets of the N samples (:mod:`rmlab.metrics.best_of_n`, exact, not one random subset; RewardMATH's
   first-n reading beside it as ``gold_first_n``), with bootstrap
   intervals over prompts; the gain over n = 1 (a paired interval); KL_BoN; and the reward model's pairwise
   accuracy on these very samples (pairs of one prompt with different gold scores), its held-out accuracy on
   the policy's own distribution. The oracle (gold as proxy) is reported beside them as the ceiling.

Outputs (atomic): ``samples.jsonl`` (per prompt: samples, gold and every proxy score), ``bon.json``,
``bon.md`` and ``bon.csv`` (one row per reward model), ``curves/<reward model>.png`` (proxy and gold against
KL_BoN), ``curves.png`` (gold against KL_BoN for all). ``bon.json`` is written last: its presence means the run
is complete. A killed run resumes from the caches; a finished one recomputes nothing.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rmlab.data.converters import with_answer_prefix
from rmlab.generation.decoding import Decoding
from rmlab.metrics.best_of_n import bon_curve, bon_first_n, bon_kl, pairwise_accuracy
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.models.handle import open_model
from rmlab.policy_eval.evaluate import PolicyModel, policy_config, prompt_text, sample_cached, score_context
from rmlab.policy_eval.tasks import TASKS
from rmlab.scoring.build import plan_scorer
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.utils.config import CONF_DIR
from rmlab.utils.io import save_figure, write_json, write_jsonl, write_text
from rmlab.utils.run_info import run_info

log = logging.getLogger(__name__)


def reward_model_cfgs(spec) -> dict[str, DictConfig]:
    """``reward_models`` (name -> a model spec string, or a mapping of ``conf/model`` keys) as full model configs
    (``conf/model/auto.yaml`` filled in, ``name`` set to the key)."""
    base = OmegaConf.load(Path(CONF_DIR) / "model" / "auto.yaml")
    out = {}
    for name, value in (spec or {}).items():
        given = {"pretrained": str(value)} if isinstance(value, str) else OmegaConf.to_container(value, resolve=True)
        if not given.get("pretrained"):
            raise ValueError(f"reward_models.{name}: give a model spec, or a mapping with 'pretrained'")
        out[str(name)] = OmegaConf.merge(base, given, {"name": str(name)})
    return out


def sampling_decoding(cfg: DictConfig, task) -> Decoding:
    """The task's first decoding, sampled N times at ``sampling.temperature`` / ``top_p`` (its stop strings and,
    unless ``sampling.max_new_tokens`` says otherwise, its length); ``sampling.temperature=0`` is greedy decoding,
    one sample per prompt (the policy's mode: what a trained policy's gain is read at when sharpening is set apart)."""
    base = task.decodings[0]
    s = cfg.sampling
    temperature = float(s.temperature)
    if temperature < 0 or (temperature == 0 and int(cfg.n_samples) != 1):
        raise ValueError(
            f"sampling.temperature={temperature:g} with n_samples={cfg.n_samples}: a temperature is > 0, and greedy "
            "decoding (temperature 0) gives one sample per prompt (n_samples=1)"
        )
    return Decoding(
        name=f"bon-t{temperature:g}",
        max_new_tokens=int(s.max_new_tokens or base.max_new_tokens),
        stop=base.stop,
        do_sample=temperature > 0,
        temperature=temperature,
        n=int(cfg.n_samples),
        top_p=float(s.get("top_p", 1.0)),
    )


def _ns(cfg: DictConfig) -> list[int]:
    big_n = int(cfg.n_samples)
    ns = [int(n) for n in cfg.ns] if cfg.get("ns") else [2**k for k in range(big_n.bit_length()) if 2**k <= big_n]
    bad = [n for n in ns if not 1 <= n <= big_n]
    if bad:
        raise ValueError(f"ns {bad}: best-of-n needs 1 <= n <= n_samples ({big_n})")
    return sorted(set(ns))


def _interval(values: np.ndarray, cfg: DictConfig, offset: int = 0) -> dict:
    ci = bootstrap_mean_interval(
        values,
        n_boot=int(cfg.bootstrap.n_boot),
        confidence=float(cfg.bootstrap.confidence),
        seed=int(cfg.seed) + offset,
    )
    return {"value": float(values.mean()), "ci": ci, "n": len(values)}


def bon_report(proxy: np.ndarray, gold: np.ndarray, ns: list[int], cfg: DictConfig) -> dict:
    """Curves and accuracy of one proxy (prompts x samples) against the gold scores."""
    gold_curve = bon_curve(proxy, gold, ns)  # (prompts, len(ns))
    proxy_curve = bon_curve(proxy, proxy, ns)
    per_n = {}
    for j, n in enumerate(ns):
        per_n[str(n)] = {
            "n": n,
            "kl": bon_kl(n),
            "gold": _interval(gold_curve[:, j], cfg, j),
            "proxy": float(proxy_curve[:, j].mean()),
            "gain": _interval(gold_curve[:, j] - gold_curve[:, 0], cfg, 100 + j),  # paired, per prompt
            # RewardMATH's reading: the first n samples only (one subset, so noisier than "gold")
            "gold_first_n": float(np.mean([bon_first_n(p, g, n) for p, g in zip(proxy, gold)])),
        }
    accs = [pairwise_accuracy(p, g) for p, g in zip(proxy, gold)]
    with_pairs = np.array([a for a, k in accs if k])
    golds = [per_n[str(n)]["gold"]["value"] for n in ns]
    peak = int(np.argmax(golds))
    return {
        "per_n": per_n,
        "pairwise_accuracy": _interval(with_pairs, cfg, 1000) if len(with_pairs) > 1 else None,
        "prompts_with_pairs": len(with_pairs),
        "pairs": int(sum(k for _, k in accs)),
        "peak": {"n": ns[peak], "gold": golds[peak], "drop_after_peak": golds[peak] - golds[-1]},
    }


def best_of_n(cfg: DictConfig, *, on_chunk=None, on_batch=None) -> dict:
    """Sample, gold-score, proxy-score and report; see the module docstring. Returns ``bon.json``'s content."""
    t0 = time.perf_counter()
    out_dir = Path(cfg.paths.output_dir)
    (task_cfg,) = [t for t in cfg.task.values() if t is not None and "kind" in t] or [None]
    if task_cfg is None:
        raise ValueError("best_of_n needs exactly one task: pass task=<name>")
    task = TASKS[task_cfg.kind](task_cfg, cfg.paths.data_dir)
    examples, provenance = task.load()
    ns = _ns(cfg)
    rms = reward_model_cfgs(cfg.reward_models)
    gold_kind = str(cfg.gold.kind)
    if gold_kind not in ("task", "reward_model"):
        raise ValueError(f"gold.kind must be 'task' or 'reward_model', got {gold_kind!r}")

    # 1. samples, through the generation cache
    pol = policy_config(cfg)
    handle = open_model(pol, cache_dir=cfg.paths.model_cache_dir, padding_side="left")
    model = PolicyModel(cfg, handle.resolved, handle.tokenizer, handle.formatter)
    decoding = sampling_decoding(cfg, task)
    first = task.decodings[0].name
    contexts = {ex.id: prompt_text(handle.formatter, *ex.turns(first)) for ex in examples}
    samples, gen_stats, _ = sample_cached(
        cfg,
        pol,
        handle.resolved,
        handle.formatter,
        model,
        task.name,
        decoding,
        contexts,
        on_chunk=on_chunk,
        desc=f"{task.name}: {decoding.n} samples per prompt",
    )
    pairs = [(ex.user, with_answer_prefix(ex.turns(first)[1], s)) for ex in examples for s in samples[ex.id]]
    shape = (len(examples), decoding.n)

    # 2. gold
    def score_with(model_cfg, what: str) -> tuple[np.ndarray, dict]:
        plan = plan_scorer(model_cfg, cache_dir=cfg.paths.model_cache_dir, device=cfg.device, seed=cfg.seed)
        cache = ScoreCache(cfg.paths.score_cache_dir, plan.cache_key, describe=plan.describe)
        scores, stats = score_pairs(
            pairs,
            scorer_factory=plan.factory,
            cache=cache,
            batch_size=int(cfg.scoring.batch_size),
            max_tokens=cfg.scoring.get("max_tokens_per_batch"),
            labels=[f"{ex.id}/sample{j}" for ex in examples for j in range(decoding.n)],
            on_batch=on_batch,
            progress=bool(cfg.scoring.get("progress", True)),
        )
        log.info("%s %s: %d scored, %d from cache", what, plan.name, stats.scored, stats.cached)
        return scores.reshape(shape), {"spec": str(model_cfg.pretrained), "scorer": plan.describe}

    if gold_kind == "task":
        ctx = score_context(cfg, task_cfg)
        gold = np.array([[task.gold(ex, s, ctx) for s in samples[ex.id]] for ex in examples], dtype=float)
        gold_info = {"kind": "task", "task": task.name}
    else:
        (gold_cfg,) = reward_model_cfgs({"gold": cfg.gold.model}).values()
        gold, info = score_with(gold_cfg, "gold")
        gold_info = {"kind": "reward_model", **info}

    # 3. proxies, 4. report
    proxies, described = {}, {}
    for name, model_cfg in rms.items():
        proxies[name], described[name] = score_with(model_cfg, "proxy")
    reports = {name: bon_report(p, gold, ns, cfg) for name, p in proxies.items()}
    oracle = bon_report(gold, gold, ns, cfg)

    write_jsonl(
        out_dir / "samples.jsonl",
        (
            {
                "id": ex.id,
                "prompt": ex.user,
                "answer_prefix": ex.turns(first)[1],
                "samples": samples[ex.id],
                "gold": gold[i].tolist(),
                "proxy": {name: p[i].tolist() for name, p in proxies.items()},
            }
            for i, ex in enumerate(examples)
        ),
    )
    result = {
        "task": task.name,
        "policy": pol.name,
        "policy_spec": str(pol.pretrained),
        "policy_fingerprint": handle.resolved.fingerprint,
        "decoding": decoding.describe(),
        "n_prompts": len(examples),
        "n_samples": decoding.n,
        "ns": ns,
        "gold": gold_info,
        "gold_mean": float(gold.mean()),
        "prompts_all_right": int((gold.min(axis=1) == 1).sum()),
        "prompts_all_wrong": int((gold.max(axis=1) == 0).sum()),
        "reward_models": {name: {**described[name], **reports[name]} for name in rms},
        "oracle": oracle,
        "data_fingerprint": provenance["data_fingerprint"],
        "data_source": provenance["source"],
        "generation": {"generated": gen_stats.generated, "from_cache": gen_stats.from_cache},
        "seed": int(cfg.seed),
        "wall_seconds": time.perf_counter() - t0,
        "run": run_info(cfg.paths.root_dir),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    table = bon_markdown(result)
    write_text(out_dir / "bon.md", table)
    write_text(out_dir / "bon.csv", bon_csv(result))
    bon_figures(result, out_dir)
    write_json(out_dir / "bon.json", result)  # last: its presence means the run is complete
    log.info("wrote %s\n%s", out_dir, table)
    print(table)
    return result


def _fmt(entry: dict | None, scale: float = 100.0) -> str:
    if entry is None:
        return "-"
    ci = entry.get("ci")
    text = f"{scale * entry['value']:.1f}"
    return text + (f" [{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]" if ci else "")


def bon_markdown(result: dict) -> str:
    ns = result["ns"]
    big = str(ns[-1])
    head = ["reward model", "pairwise acc. (%)", *[f"gold@{n}" for n in ns], f"gain@{big}", "peak n"]
    title = (
        f"Best-of-n on {result['task']} ({result['n_prompts']} prompts x {result['n_samples']} samples of "
        f"{result['policy']}; gold: {result['gold']['kind']}; mean gold of a sample "
        f"{100 * result['gold_mean']:.1f}%). Gold scores in %, intervals over prompts."
    )
    lines = [
        title,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    rows = [*result["reward_models"].items(), ("oracle (gold as proxy)", result["oracle"])]
    for name, r in rows:
        cells = [
            name,
            _fmt(r["pairwise_accuracy"]),
            *[f"{100 * r['per_n'][str(n)]['gold']['value']:.1f}" for n in ns],
            _fmt(r["per_n"][big]["gain"]),
            str(r["peak"]["n"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bon_csv(result: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["reward_model", "n", "kl", "gold", "gold_lo", "gold_hi", "proxy", "gain", "pairwise_accuracy"])
    for name, r in [*result["reward_models"].items(), ("oracle", result["oracle"])]:
        acc = r["pairwise_accuracy"]["value"] if r["pairwise_accuracy"] else ""
        for key, e in r["per_n"].items():
            ci = e["gold"]["ci"] or (None, None)
            w.writerow([name, key, e["kl"], e["gold"]["value"], ci[0], ci[1], e["proxy"], e["gain"]["value"], acc])
    return buf.getvalue()


def bon_figures(result: dict, out_dir: Path) -> list[Path]:
    """``curves/<rm>.png``: gold and proxy against KL_BoN (proxy on its own axis); ``curves.png``: gold of all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, r in result["reward_models"].items():
        entries = list(r["per_n"].values())
        kl = [e["kl"] for e in entries]
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(kl, [e["gold"]["value"] for e in entries], "o-", color="C0", label="gold")
        ax.fill_between(kl, *zip(*[e["gold"]["ci"] or (e["gold"]["value"],) * 2 for e in entries]), alpha=0.2)
        ax.set_xlabel("KL(best-of-n || policy), nats")
        ax.set_ylabel("gold score of the pick", color="C0")
        twin = ax.twinx()
        twin.plot(kl, [e["proxy"] for e in entries], "s--", color="C1", label="proxy")
        twin.set_ylabel("proxy score of the pick", color="C1")
        ax.set_title(name, fontsize=9)
        fig.tight_layout()
        paths.append(save_figure(out_dir / "curves" / f"{name}.png", fig))
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in [*result["reward_models"].items(), ("oracle", result["oracle"])]:
        entries = list(r["per_n"].values())
        style = "k:" if name == "oracle" else "o-"
        ax.plot([e["kl"] for e in entries], [e["gold"]["value"] for e in entries], style, label=name, ms=3)
    ax.set_xlabel("KL(best-of-n || policy), nats")
    ax.set_ylabel("gold score of the pick")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    paths.append(save_figure(out_dir / "curves.png", fig))
    plt.close(fig)
    return paths
