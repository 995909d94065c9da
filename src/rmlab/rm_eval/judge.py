"""LLM judges as reward models (``model.kind: judge``): a benchmark's comparisons decided by a generative judge.

The benchmark lists its chosen-vs-rejected comparisons (``comparisons``: RM-Bench's nine style cells per prompt,
RewardBench's one pair, RewardMATH's correct solution against each of nine incorrect ones) and turns one outcome
per comparison into its usual metrics (``compute_comparisons``). In between, the judge:

- ``pairwise``: asks about every comparison twice, the chosen response as A and then as B; the outcome follows
  :func:`rmlab.metrics.judge.pairwise_outcome` (a win needs both orders to prefer the chosen response);
- ``rating``: rates every distinct response once (1-10) and compares the two ratings
  (:func:`rmlab.metrics.judge.rating_outcome`: strictly higher wins, as the benchmarks count scores).

The prompt is the benchmark's own (``benchmark.judge_prompts[mode]``) unless ``model.judge.prompt`` names another
(:data:`rmlab.scoring.judge_prompts.JUDGE_PROMPTS`). The verdict is generated, or, for a local judge in pairwise
mode with ``model.judge.verdict=logprob``, read from the probabilities of the prompt's verdict labels
(:func:`rmlab.generation.chat.ask_judge`); either way both orders are asked and must agree. Answers live in the
score cache under a key covering the judge model (weights fingerprint and chat formatting, or endpoint URL and
model name), decoding or reading, backend, mode and prompt, each entry keyed by the full conversation text; the
parsed verdicts are recomputed from the cached text, so a better parser needs no new requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from rmlab.benchmarks.base import Comparison
from rmlab.generation.backends import GenStats
from rmlab.generation.chat import EndpointChat, LocalChat, ask_judge, build_judge_chat
from rmlab.metrics.judge import flip_positions, outcome_counts, pairwise_outcome, preference, rating_outcome
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.judge_prompts import JUDGE_PROMPTS, MODES, JudgePrompt, ends_with_scale
from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)

JUDGE_KIND = "judge"  # model.kind of a generative judge


@dataclass
class JudgeRun:
    """What a judge decided and how: outcomes in the order of ``benchmark.comparisons``, the run's summary for
    ``metrics.json``, the cache key's content, and one row per judge call for ``judgements.jsonl``."""

    outcomes: list[str]
    summary: dict
    describe: dict
    cache_key: str
    name: str
    spec: str
    formatting: dict | None
    judgements: list[dict]
    stats: GenStats
    preferences: list[tuple] | None = None  # pairwise: per comparison, each order's preference (chosen first, then
    # rejected first), for benchmarks whose rule reads the orders apart (JudgeBench); None for ratings


def judge_prompt(cfg: DictConfig) -> JudgePrompt:
    """``model.judge.prompt``, else the benchmark's own for the mode; its mode must be the judge's."""
    mode = str(cfg.model.judge.mode)
    if mode not in MODES:
        raise ValueError(f"model.judge.mode={mode!r}: choose one of {MODES}")
    name = cfg.model.judge.get("prompt") or (cfg.benchmark.get("judge_prompts") or {}).get(mode)
    if not name:
        raise ValueError(
            f"benchmark {cfg.benchmark.name} names no {mode} judge prompt (benchmark.judge_prompts.{mode}); set "
            f"model.judge.prompt to one of {', '.join(JUDGE_PROMPTS.names())}"
        )
    template = JUDGE_PROMPTS[str(name)]
    if template.mode != mode:
        raise ValueError(f"judge prompt {template.id!r} is a {template.mode} prompt, but model.judge.mode={mode!r}")
    return template


def build_chat(cfg: DictConfig) -> LocalChat | EndpointChat:
    """The judge model ``model.judge.backend`` names; neither loads weights nor sends a request yet."""
    return build_judge_chat(cfg.model, cache_dir=cfg.paths.model_cache_dir, device=cfg.device, seed=int(cfg.seed))


def judge_benchmark(
    cfg: DictConfig, comparisons: Sequence[Comparison], *, on_chunk: Callable[[int], None] | None = None
) -> JudgeRun:
    """Decide every comparison with the judge ``cfg.model`` describes, through the score cache."""
    template = judge_prompt(cfg)
    multi_turn = [c.label for c in comparisons if isinstance(c.prompt, tuple)]
    if multi_turn:
        raise ValueError(
            f"{len(multi_turn)} comparisons have multi-turn prompts ({', '.join(multi_turn[:3])} ...); the judge "
            "prompts take a single question (rewardbench judges two-turn prompts with another template and scores "
            "longer ones 0.5 unjudged)"
        )
    chat = build_chat(cfg)
    describe = {"scorer": JUDGE_KIND, "mode": template.mode, "prompt": template.id, **chat.describe}
    cache_key = stable_hash(describe, length=24)
    cache = ScoreCache(cfg.paths.score_cache_dir, cache_key, describe=describe)
    log.info("judge: %s", describe)
    ask = {
        "chunk_size": int(cfg.model.judge.get("chunk_size", 16)),
        "on_chunk": on_chunk,
        "progress": bool(cfg.scoring.get("progress", True)),
    }
    run = _pairwise if template.mode == "pairwise" else _rating
    outcomes, judgements, extra, stats = run(template, chat, comparisons, cache, ask)
    counts = outcome_counts(outcomes)
    summary = {
        "mode": template.mode,
        "prompt": template.id,
        "prompt_source": template.source,
        "verdict_reading": getattr(chat, "reading", "generate"),
        "backend": chat.describe["backend"],
        "comparisons": len(outcomes),
        "outcomes": counts,
        "position_flips": counts["position_flip"],
        "ties": counts["tie"],
        "unparsed": counts["unparsed"],
        **extra,
    }
    log.info("judge outcomes: %s", counts)
    return JudgeRun(
        outcomes,
        summary,
        describe,
        cache_key,
        cfg.model.get("name") or chat.name,
        chat.spec,
        chat.formatting,
        judgements,
        stats,
        [
            (preference("chosen_first", j["verdicts"][0]), preference("rejected_first", j["verdicts"][1]))
            for j in judgements
        ]
        if template.mode == "pairwise"
        else None,
    )


def _pairwise(template: JudgePrompt, chat, comparisons: Sequence[Comparison], cache: ScoreCache, ask: dict):
    conversations = []
    for c in comparisons:  # the chosen response as A, then as B
        conversations += [
            template.messages(c.prompt, c.chosen, c.rejected),
            template.messages(c.prompt, c.rejected, c.chosen),
        ]
    texts, details, stats = ask_judge(template, chat, conversations, cache, **ask)
    verdicts = [template.parse(t) for t in texts]
    first, second = verdicts[0::2], verdicts[1::2]
    outcomes = [pairwise_outcome(a, b) for a, b in zip(first, second)]
    judgements = [
        {"comparison": c.label, "outcome": o, "verdicts": [a, b], "judgements": [ta, tb], "details": [da, db]}
        for c, o, a, b, ta, tb, da, db in zip(
            comparisons, outcomes, first, second, texts[0::2], texts[1::2], details[0::2], details[1::2]
        )
    ]
    extra = {
        "requests": len(conversations),
        "second_attempts": sum(d.get("attempts", 1) == 2 for d in details),
        "unparsed_verdicts": sum(v is None for v in verdicts),
        "position_flips_same_slot": flip_positions(first, second),
    }
    return outcomes, judgements, extra, stats


def _rating(template: JudgePrompt, chat, comparisons: Sequence[Comparison], cache: ScoreCache, ask: dict):
    index: dict[tuple[str, str], int] = {}  # each distinct (prompt, response) is rated once
    labels, conversations = [], []
    for c in comparisons:
        for text, label in ((c.chosen, c.chosen_label), (c.rejected, c.rejected_label)):
            if (c.prompt, text) not in index:
                index[(c.prompt, text)] = len(conversations)
                labels.append(label)
                conversations.append(template.messages(c.prompt, text))
    texts, _, stats = ask_judge(template, chat, conversations, cache, **ask)
    ratings = [template.parse(t) for t in texts]
    outcomes = [
        rating_outcome(ratings[index[(c.prompt, c.chosen)]], ratings[index[(c.prompt, c.rejected)]])
        for c in comparisons
    ]
    judgements = [{"response": lab, "rating": r, "judgement": t} for lab, r, t in zip(labels, ratings, texts)]
    extra = {
        "requests": len(conversations),
        "unparsed_verdicts": sum(r is None for r in ratings),
        # "7/10" at the end: rewardbench's rule reads the 10 (rewardbench_rating_strict reads the 7)
        "rating_ends_with_scale": sum(ends_with_scale(t) for t in texts),
    }
    return outcomes, judgements, extra, stats


_READ = {"generate": "generated", "logprob": "read from the labels' log-probabilities (nothing generated)"}


def judge_table(summary: dict) -> str:
    """What the judge decided, under the benchmark's table: one row of outcome counts."""
    o = summary["outcomes"]
    return (
        f"Judge: {summary['mode']}, prompt `{summary['prompt']}` ({summary['prompt_source']}), "
        f"{summary['requests']} judge calls, verdicts {_READ[summary.get('verdict_reading', 'generate')]}.\n\n"
        "| comparisons | win | loss | tie | position flip | unparsed |\n|---|---|---|---|---|---|\n"
        f"| {summary['comparisons']} | {o['win']} | {o['loss']} | {o['tie']} | {o['position_flip']} | "
        f"{o['unparsed']} |\n\nOnly wins count; ties and position flips are the benchmark's ties; an unparsed verdict "
        "is never a win.\n" + _scale_note(summary)
    )


def _scale_note(summary: dict) -> str:
    n = summary.get("rating_ends_with_scale", 0)
    if not n:
        return ""
    return f'\n{n} ratings end in "n/10" or "n out of 10"; prompt `{summary["prompt"]}` reads ' + (
        "n.\n" if summary["prompt"].endswith("_strict") else "10 there (rewardbench's rule; `_strict` reads n).\n"
    )
