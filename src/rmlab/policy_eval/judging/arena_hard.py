"""A policy's Arena-Hard-Auto v0.1 score, raw and style-controlled: the library body of ``scripts/arena_hard.py``.

RM-Bench Sec. 5.1 correlates a reward model's chat hard accuracy with its PPO policy's style-control score, the
relative drop (raw - SC) / raw of the policy's Arena-Hard-Auto v0.1 score when style control is on. Here, as
lmarena/arena-hard-auto@3071ef9 does it (data folder's SOURCES.md, "How upstream scores"):

1. **Answers**: the policy answers the 500 questions (``question.jsonl``) greedily, up to ``answer.max_new_tokens``
   (upstream ``config/gen_answer_config.yaml:5-6``: temperature 0.0, ``max_tokens`` 4096), through the generation cache
   (:func:`rmlab.policy_eval.evaluate.sample_cached`), so a killed run resumes and a finished one generates
   nothing; ``max_examples`` takes the first questions of the file.
2. **Verdicts**: the judge (``conf/model/judge_*.yaml``: a local model or an OpenAI-compatible endpoint, cached by
   conversation) compares each answer with the baseline's (gpt-4-0314) in two games, game 1 with the baseline as
   A, game 2 swapped (``gen_judgment.py:66-93``), with upstream's prompt ``arena_hard_v0.1``
   (``config/judge_config.yaml:17-21``): a first answer without any verdict tag is followed up once
   (``gen_judgment.py:95-114``), and a verdict is read only if the text holds exactly one distinct label. A verdict
   becomes battle rows against the baseline (``show_result.py:25-105``): a strong verdict (``A>>B`` / ``B>>A``)
   weighs 3, any other 1, an unparsable one 0 (no row).
3. **Scores**: the raw and style-controlled Bradley-Terry fits of :mod:`rmlab.metrics.arena_hard` over a named
   pool: the policy and the baseline, plus any local battle sets ``pool.battles`` names. The raw score does not
   depend on the pool; the SC score does (SOURCES.md, "Consequence (pool dependence)"), so the pool is recorded.

``judge.judge.prompt`` may name another pairwise prompt (e.g. ``rewardbench_pair_v2``, whose plain verdicts weigh
1); ``arena_hard.json`` records which prompt judged and whether it is upstream's (``judge.upstream_prompt``), and
how the verdicts were read (``judge.verdict_reading``: generated, or a local judge's label log-probabilities).
Outputs (atomic): ``answers.jsonl``, ``judgements.jsonl``, ``arena_hard.md`` and, last, ``arena_hard.json``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rmlab.data.arena_hard import (
    Battle,
    battle_style_arrays,
    battles_fingerprint,
    load_answers,
    load_battles,
    load_questions,
)
from rmlab.data.errors import DataValidationError
from rmlab.generation.chat import ask_judge, build_judge_chat
from rmlab.generation.decoding import Decoding
from rmlab.metrics.arena_hard import arena_hard_scores, style_control_drop, style_controlled_scores
from rmlab.models.handle import open_model
from rmlab.policy_eval.evaluate import PolicyModel, policy_config, prompt_text, sample_cached
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.judge_prompts import JUDGE_PROMPTS, JudgePrompt
from rmlab.utils.hashing import stable_hash
from rmlab.utils.io import write_json, write_jsonl, write_text
from rmlab.utils.loggers import build_logger
from rmlab.utils.run_info import run_info
from rmlab.utils.style_features import STYLE_FEATURES, style_metadata, style_vector, token_lengths

log = logging.getLogger(__name__)

TASK = "arena_hard_v0.1"  # the generation cache's task name
UPSTREAM_PROMPT = "arena_hard_v0.1"  # upstream's judge prompt (rmlab.scoring.judge_prompts)
STRONG_WEIGHT = 3  # show_result.py --weight default (:111,144)
# a parsed verdict -> (who it prefers, in the game's A/B order; how many battle rows it makes): upstream's five
# labels (regex \[\[([AB<>=]+)\]\]) and the three of the lab's pairwise parsers (A, B, tie)
VERDICT_ROWS = {
    "A>>B": ("A", STRONG_WEIGHT),
    "A>B": ("A", 1),
    "A": ("A", 1),
    "A=B": ("tie", 1),
    "tie": ("tie", 1),
    "B>A": ("B", 1),
    "B": ("B", 1),
    "B>>A": ("B", STRONG_WEIGHT),
}


def verdict_battles(qid: str, game: int, verdict: str | None, *, baseline: str, policy: str) -> list[Battle]:
    """The battle rows of one game's verdict, baseline as ``model_a`` (game 1: A = baseline; game 2: A = policy)."""
    if verdict is None:
        return []  # unparsable: weight 0
    if verdict not in VERDICT_ROWS:
        raise ValueError(f"question_id={qid}, game {game}: verdict {verdict!r} is not one of {sorted(VERDICT_ROWS)}")
    prefers, weight = VERDICT_ROWS[verdict]
    if prefers == "tie":
        winner = "tie"
    else:
        baseline_slot = "A" if game == 1 else "B"
        winner = "model_a" if prefers == baseline_slot else "model_b"
    return [Battle(qid, baseline, policy, winner)] * weight


def judge_template(cfg: DictConfig) -> JudgePrompt:
    """``judge.judge.prompt``: a registered pairwise prompt (upstream's ``arena_hard_v0.1`` by default)."""
    name = cfg.judge.judge.get("prompt")
    if not name:
        raise ValueError(f"judge.judge.prompt is not set: name a pairwise judge prompt ({JUDGE_PROMPTS.names()})")
    template = JUDGE_PROMPTS[str(name)]
    if template.mode != "pairwise":
        raise ValueError(f"judge.judge.prompt={name!r} is a {template.mode} prompt; Arena-Hard needs a pairwise one")
    return template


def _features(texts: dict[str, str]) -> dict[str, list[int]]:
    """[token_len, headers, lists, bold] of each answer, recomputed from its text (``add_markdown_info.py``)."""
    qids = list(texts)
    lengths = token_lengths([texts[q] for q in qids])
    return {q: style_vector(style_metadata(texts[q], n)) for q, n in zip(qids, lengths)}


def _pool_battles(cfg: DictConfig, data_dir: Path, baseline: str) -> tuple[list[Battle], dict, dict]:
    """The local battle sets ``pool.battles`` adds to the pool, their answers' style features, and what was read."""
    battles, features, info = [], {}, {}
    for name, spec in (cfg.pool.get("battles") or {}).items():
        rows, left_out = load_battles(data_dir / spec.file, models=list(spec.models), baseline=baseline)
        battles += rows
        for model in spec.models:
            answers = load_answers(data_dir / "model_answer" / f"{model}.jsonl")
            features[model] = _features({q: a.content for q, a in answers.items()})
        info[name] = {
            "file": str(spec.file),
            "models": list(spec.models),
            "rows": len(rows),
            "rows_left_out": left_out,
            "fingerprint": battles_fingerprint(rows),
        }
    return battles, features, info


def fit_pool(battles: list[Battle], features: dict, *, policy: str, baseline: str, cfg: DictConfig) -> dict:
    """Raw and SC scores of ``policy`` over the pool's battles; ``score: None`` with the reason when the policy has
    no battle row (every verdict unparsed) or the fit cannot be made (e.g. it won or lost every row: the raw
    Bradley-Terry fit has no finite optimum)."""
    mine = [b for b in battles if b.model_b == policy]
    wins, ties = sum(b.winner == "model_b" for b in mine), sum(b.winner == "tie" for b in mine)
    counted = {"rows": len(mine), "wins": wins, "ties": ties, "losses": len(mine) - wins - ties}
    if not mine:
        return {"score": None, "reason": "no parsable verdict: no battle row to fit", "policy_rows": counted}
    # every battle is against the baseline: the raw score is the policy's share of its own rows (SOURCES.md step 3)
    counted["raw_by_count"] = 100.0 * (wins + ties / 2) / len(mine)
    columns = ([b.model_a for b in battles], [b.model_b for b in battles], [b.winner for b in battles])
    rounds, seed = int(cfg.n_rounds), int(cfg.seed)
    try:
        raw = arena_hard_scores(*columns, baseline=baseline, n_rounds=rounds, seed=seed)
        fa, fb = battle_style_arrays(battles, features, "arena_hard pool")
        sc = style_controlled_scores(
            *columns,
            fa,
            fb,
            baseline=baseline,
            feature_names=STYLE_FEATURES,
            c=cfg.penalty_c,
            n_rounds=rounds,
            seed=seed,
        )
    except RuntimeError as err:
        return {"score": None, "reason": f"the Bradley-Terry fit failed: {err}", "policy_rows": counted}
    return {
        "score": {
            "raw": raw.score[policy],
            "raw_ci": raw.ci.get(policy),
            "sc": sc.score[policy],
            "sc_ci": sc.ci.get(policy),
            "relative_drop": style_control_drop(raw.score[policy], sc.score[policy]),
            "style_coef": sc.style_coef,
            "pool_scores": {m: {"raw": raw.score[m], "sc": sc.score[m]} for m in raw.score},
        },
        "policy_rows": counted,
    }


def evaluate_arena_hard(cfg: DictConfig, *, on_chunk=None) -> dict:
    """Answer, judge and score ``cfg.policy`` on Arena-Hard-Auto v0.1; return ``arena_hard.json``'s content."""
    t0 = time.perf_counter()
    out_dir, data_dir, baseline = Path(cfg.paths.output_dir), Path(cfg.data_dir), str(cfg.baseline)
    questions = load_questions(data_dir / "question.jsonl")
    if cfg.get("max_examples") is not None:
        questions = dict(list(questions.items())[: int(cfg.max_examples)])
    base_answers = load_answers(data_dir / "model_answer" / f"{baseline}.jsonl")
    if missing := [q for q in questions if q not in base_answers]:
        raise DataValidationError(f"{data_dir}/model_answer/{baseline}.jsonl: no answer to question_id={missing[0]}")

    pol = policy_config(cfg)
    policy_name = str(pol.name)  # the policy's name in the battles: it must not be another model's of the pool
    pool_battles, features, pool_info = _pool_battles(cfg, data_dir, baseline)
    if policy_name == baseline or policy_name in features:
        raise ValueError(f"policy.name={policy_name!r} names another model of the pool; rename the policy")
    handle = open_model(pol, cache_dir=cfg.paths.model_cache_dir, padding_side="left")
    model = PolicyModel(cfg, handle.resolved, handle.tokenizer, handle.formatter)
    decoding = Decoding(name="greedy", max_new_tokens=int(cfg.answer.max_new_tokens))
    contexts = {q: prompt_text(handle.formatter, text, "") for q, text in questions.items()}
    samples, gen_stats, gen_key = sample_cached(
        cfg, pol, handle.resolved, handle.formatter, model, TASK, decoding, contexts, on_chunk=on_chunk, desc=TASK
    )
    answers = {q: samples[q][0] for q in questions}

    template = judge_template(cfg)
    chat = build_judge_chat(cfg.judge, cache_dir=cfg.paths.model_cache_dir, device=cfg.device, seed=int(cfg.seed))
    describe = {"scorer": "judge", "mode": template.mode, "prompt": template.id, **chat.describe}
    cache_key = stable_hash(describe, length=24)
    conversations = []
    for q, text in questions.items():  # game 1: A = baseline; game 2: swapped
        base = base_answers[q].content
        conversations += [template.messages(text, base, answers[q]), template.messages(text, answers[q], base)]
    texts, details, judge_stats = ask_judge(
        template,
        chat,
        conversations,
        ScoreCache(cfg.paths.score_cache_dir, cache_key, describe=describe),
        chunk_size=int(cfg.judge.judge.get("chunk_size", 16)),
        on_chunk=on_chunk,
        progress=bool(cfg.generation.get("progress", True)),
    )
    verdicts = [template.parse(t) for t in texts]

    battles, judged = [], []
    for i, q in enumerate(questions):
        for game in (1, 2):
            k = 2 * i + game - 1
            battles += verdict_battles(q, game, verdicts[k], baseline=baseline, policy=policy_name)
            judged.append({"question_id": q, "game": game, "verdict": verdicts[k], "judgement": texts[k], **details[k]})
    features[policy_name] = _features(answers)
    features[baseline] = _features({q: a.content for q, a in base_answers.items()})
    fitted = fit_pool([*battles, *pool_battles], features, policy=policy_name, baseline=baseline, cfg=cfg)

    counts = Counter("unparsed" if v is None else v for v in verdicts)
    result = {
        "benchmark": "arena_hard_v0.1",
        "policy": policy_name,
        "policy_spec": str(pol.pretrained),
        "policy_fingerprint": handle.resolved.fingerprint,
        "chat_formatting": handle.formatter.fingerprint,
        "baseline": baseline,
        **fitted,
        "pool": {
            "name": str(cfg.pool.name),
            "models": [policy_name, baseline, *(m for i in pool_info.values() for m in i["models"])],
            "battle_sets": pool_info,
            "rows": len(battles) + len(pool_battles),
        },
        "questions": len(questions),
        "verdicts": {"games": len(verdicts), "counts": dict(sorted(counts.items())), "unparsed": counts["unparsed"]},
        "judge": {
            "name": chat.name,
            "spec": chat.spec,
            "prompt": template.id,
            "prompt_source": template.source,
            "upstream_prompt": template.id == UPSTREAM_PROMPT,
            "verdict_reading": chat.describe.get("verdict", "generate"),
            "second_attempts": sum(d.get("attempts", 1) == 2 for d in details),
            "strong_weight": STRONG_WEIGHT,
            "cache_key": cache_key,
            "generated": judge_stats.generated,
            "from_cache": judge_stats.from_cache,
            **chat.describe,
        },
        "generation": {
            "backend": cfg.generation.backend,
            "decoding": decoding.describe(),
            "generated": gen_stats.generated,
            "from_cache": gen_stats.from_cache,
            "cache_key": gen_key,
        },
        "fit": {"n_rounds": int(cfg.n_rounds), "penalty_c": cfg.penalty_c, "seed": int(cfg.seed)},
        "data_fingerprint": stable_hash(
            {"questions": questions, "baseline": [base_answers[q].content for q in questions]}
        ),
        "data_dir": str(data_dir),
        "seed": int(cfg.seed),
        "wall_seconds": time.perf_counter() - t0,
        "run": run_info(cfg.paths.root_dir),
        "judge_config": OmegaConf.to_container(cfg.judge, resolve=True),
    }
    write_jsonl(out_dir / "answers.jsonl", ({"question_id": q, "answer": answers[q]} for q in questions))
    write_jsonl(out_dir / "judgements.jsonl", judged)
    table = arena_hard_markdown(result)
    write_text(out_dir / "arena_hard.md", table)
    logger = build_logger(
        cfg, output_dir=out_dir, config=OmegaConf.to_container(cfg, resolve=True), name=f"{policy_name}-arena-hard"
    )
    try:
        score = result["score"] or {}
        logger.log_metrics({f"arena_hard/{k}": score[k] for k in ("raw", "sc", "relative_drop") if k in score})
    finally:
        logger.finish()
    write_json(out_dir / "arena_hard.json", result)  # last: its presence means the stage finished
    log.info("wrote %s\n%s", out_dir, table)
    print(table)
    return result


def arena_hard_markdown(result: dict) -> str:
    """The score (or why there is none), the verdict counts, and the settings that make it comparable."""
    judge, v, pool = result["judge"], result["verdicts"], result["pool"]
    prompt = judge["prompt"] + ("" if judge["upstream_prompt"] else " (not upstream's prompt)")
    if judge.get("verdict_reading") == "logprob":
        prompt += ", verdicts read from the labels' log-probabilities"
    lines = [
        (
            f"Arena-Hard-Auto v0.1: {result['policy']} against {result['baseline']}, {result['questions']} "
            f"questions, judge {judge['name']} with prompt `{prompt}`."
        ),
        "",
    ]
    s = result["score"]
    if s is None:
        lines.append(f"No score: {result['reason']}.")
    else:
        ci = {k: "-" if not s[k] else f"[{s[k][0]:.1f}, {s[k][1]:.1f}]" for k in ("raw_ci", "sc_ci")}
        lines += [
            "| raw | 95% CI | style-controlled | 95% CI | relative drop (raw - SC) / raw | pool |",
            "|---|---|---|---|---|---|",
            (
                f"| {s['raw']:.1f} | {ci['raw_ci']} | {s['sc']:.1f} | {ci['sc_ci']} | {s['relative_drop']:+.3f} | "
                f"{pool['name']} ({', '.join(pool['models'])}) |"
            ),
        ]
    rows = result["policy_rows"]
    lines += [
        "",
        f"Verdicts ({v['games']} games, two per question): "
        + ", ".join(f"{k} {n}" for k, n in v["counts"].items())
        + f"; battle rows of the policy: {rows['rows']} (wins {rows['wins']}, ties {rows['ties']}, losses "
        f"{rows['losses']}; a strong verdict weighs {judge['strong_weight']}, an unparsed one 0).",
    ]
    return "\n".join(lines) + "\n"
