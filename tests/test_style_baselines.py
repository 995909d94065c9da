"""The style null baselines (``model.kind: length | markdown``) through the whole evaluator: every score is the
heuristic's count of the raw response, ties are ties (not fragile), and they need no weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.utils.style_features import markdown_counts, token_lengths


def _responses(rm_bench_dir: Path) -> dict[int, tuple[list[str], list[str]]]:
    """Every chat record's chosen and rejected responses by id, read with plain json."""
    rows = json.loads((rm_bench_dir / "chat_filtered.json").read_text())
    return {r["id"]: (r["chosen"], r["rejected"]) for r in rows}


def _markdown(text: str) -> int:
    return sum(sum(f.values()) for f in markdown_counts(text).values())


@pytest.mark.parametrize("kind", ["length", "markdown"])
def test_baseline_scores_are_the_heuristic(eval_cfg, rm_bench_dir, kind):
    cfg = eval_cfg([f"model={kind}_baseline", "benchmark.max_per_domain=3", "bootstrap.n_boot=0"])
    m = evaluate_rm(cfg)
    assert m["model"] == f"{kind}-baseline" and m["scorer"] == {"scorer": kind, "version": 1}
    rows = [json.loads(x) for x in (Path(cfg.paths.output_dir) / "scores.jsonl").read_text().splitlines()]
    chat = [r for r in rows if r["domain"] == "chat"]
    count = (lambda t: token_lengths([t])[0]) if kind == "length" else _markdown
    raw = _responses(rm_bench_dir)
    assert len(chat) == 3
    for row in chat:
        chosen, rejected = raw[row["id"]]
        assert row["chosen"] == [count(t) for t in chosen] and row["rejected"] == [count(t) for t in rejected]
    assert m["fragile"]["fragile"] == 0 and m["fragile"]["dtype"] == "exact"  # integer counts cannot flip
    assert 0 <= m["partial_overall"]["value"] <= 1
