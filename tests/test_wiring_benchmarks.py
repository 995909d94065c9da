"""From scores to published numbers: every metric of RM-Bench, RewardBench and RewardMATH recomputed by hand.

Each test runs ``evaluate_rm`` end to end (real config, real data loading, score cache, metric code, outputs on
disk) with one substitution at the leaf: the classifier scorer class, which turns an encoded (prompt, response)
into a float, is replaced by one whose score is a known function of the raw text, :func:`text_score`. The tiny
classifier checkpoint is still resolved and loaded; only its forward pass is not used. The expected numbers are
computed here with plain loops over the raw JSON files (``json``, no rmlab loader or metric function) and compared
with ``metrics.json`` and ``scores.jsonl``.

Why ``(len(prompt) + sum of the response's code points) % mod``:

- it is pseudo-random with respect to side and style, so matrix cells and accuracies land well inside (0, 1)
  (a plain length score would put RM-Bench's lower triangle near 1 and its upper triangle near 0, where a
  transposed matrix or a permuted style order would hardly move the easy / hard numbers);
- each domain's matrix differs from its transpose, from the matrix of swapped chosen / rejected
  (``M'[i][j] = 1 - M[j][i] - ties[j][i] / n``) and from every permutation of the style order, of one side or
  both (checked in :func:`_assert_wiring_errors_would_show`), so none of those wiring errors, nor a reshape of
  a prompt's six scores into the wrong (2, 3) layout, could leave the numbers unchanged;
- the response's content counts, not only its length: a solution whose steps are joined by spaces instead of
  newlines, or a truncated or re-formatted response, scores differently;
- the prompt length is inside the modulus, so a response scored against another record's prompt (an
  off-by-one pairing, records keyed by id only although chat and code share 23 ids) changes the order of scores;
- about 1 comparison in ``mod`` is a tie, so "ties lose" (and the tie counts, and MRR's pessimistic ranks) are
  exercised, not just assumed.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.scorers import SCORERS
from tests.helpers.tolerances import worst_case

# Every value _close compares is a (weighted) mean of per-item outcomes in [0, 1] (wins, ties, reciprocal ranks),
# computed by the evaluator and again here in another order: per way <= 2 roundings an item (a reciprocal rank, its
# addition) over at most MAX_ITEMS items, plus <= 32 for cell, section, domain and overall means and weights; the
# weighted means have positive terms, so their error stays relative to a value <= 1 (Higham Lemma 3.1)
MAX_ITEMS = 1000  # the most items one mean here averages: RM-Bench's 798 records (asserted below)
TOL = worst_case(2 * (2 * MAX_ITEMS + 32), 1.0)
RM_BENCH_FILES = ("chat", "code", "safety-refuse", "safety-response")  # the local copy has no math file
STYLES = 3


def text_score(prompt: str, response: str, mod: int) -> float:
    """The prompt's length plus the sum of the response's code points, modulo ``mod``."""
    return float((len(prompt) + sum(map(ord, response))) % mod)


@dataclass(frozen=True)
class _Encoded:
    input_ids: list  # only its length is used (batching, token counts)
    response_start: int
    score: float


@pytest.fixture
def text_scorer(monkeypatch):
    """Install a classifier scorer that scores ``text_score(prompt, response, mod)``; returns a setter for mod."""
    state = {"mod": 11}

    class TextFunctionScorer:
        """ClassifierScorer's interface (constructor, ``encode``, ``__call__``), the score a function of the text."""

        def __init__(self, model, tokenizer, formatter, *, max_length, device):
            pass

        def encode(self, prompt, response):
            assert isinstance(prompt, str) and isinstance(response, str)
            return _Encoded(list(range(1 + len(response) // 64)), 0, text_score(prompt, response, state["mod"]))

        def __call__(self, batch):
            return np.array([e.score for e in batch], dtype=np.float64)

    # The registry has no override API; monkeypatch restores the real classifier after the test.
    monkeypatch.setitem(SCORERS._items, "classifier", TextFunctionScorer)
    return lambda mod: state.update(mod=mod)


def _run(eval_cfg, model_dir: Path, overrides: list[str]) -> tuple[dict, dict, list[dict], Path]:
    cfg = eval_cfg([f"model={model_dir}", "scoring.batch_size=256", *overrides])
    returned = evaluate_rm(cfg)
    out = Path(cfg.paths.output_dir)
    on_disk = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert on_disk["scorer"]["scorer"] == "classifier"
    return returned, on_disk, rows, out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL


# ----------------------------------------------------------------------------------------------------------------
# RM-Bench
# ----------------------------------------------------------------------------------------------------------------


def _rm_bench_records(files: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    return [(domain, rec) for domain, recs in files.items() for rec in recs]


def _expected_rm_bench(records: list[tuple[str, dict]], mod: int) -> dict:
    """The paper's definition, by hand: per metric domain the 3x3 win matrix over prompts, ties lose."""
    by_domain: dict[str, list[tuple[list[float], list[float]]]] = {}
    for domain, rec in records:
        metric_domain = "safety" if domain in ("safety-refuse", "safety-response") else domain
        chosen = [text_score(rec["prompt"], t, mod) for t in rec["chosen"]]
        rejected = [text_score(rec["prompt"], t, mod) for t in rec["rejected"]]
        by_domain.setdefault(metric_domain, []).append((chosen, rejected))
    out = {}
    for d, pairs in by_domain.items():
        n = len(pairs)
        wins = [[0] * STYLES for _ in range(STYLES)]
        ties = [[0] * STYLES for _ in range(STYLES)]
        for chosen, rejected in pairs:
            for i in range(STYLES):
                for j in range(STYLES):
                    wins[i][j] += chosen[i] > rejected[j]
                    ties[i][j] += chosen[i] == rejected[j]
        m = [[wins[i][j] / n for j in range(STYLES)] for i in range(STYLES)]
        out[d] = {
            "n": n,
            "matrix": m,
            "ties": ties,
            "n_ties": sum(map(sum, ties)),
            "wins": wins,
            "hard": (m[0][1] + m[0][2] + m[1][2]) / 3,  # upper triangle: chosen in the plainer style
            "normal": (m[0][0] + m[1][1] + m[2][2]) / 3,  # diagonal
            "easy": (m[1][0] + m[2][0] + m[2][1]) / 3,  # lower triangle
            "avg": sum(map(sum, m)) / 9,
        }
    return out


def _assert_wiring_errors_would_show(exp: dict, domain: str) -> None:
    """The scorer must not make the check weak: cells strictly inside (0, 1), some ties, and the matrix differs
    from what a transposed matrix, swapped chosen / rejected or a permuted style order (of both sides, or of one
    side only) would report."""
    m, n = exp["matrix"], exp["n"]
    assert all(0 < c < 1 for row in m for c in row) and exp["n_ties"] > 0, domain
    transposed = [[m[j][i] for j in range(STYLES)] for i in range(STYLES)]
    swapped = [[(n - exp["wins"][j][i] - exp["ties"][j][i]) / n for j in range(STYLES)] for i in range(STYLES)]
    assert m != transposed and m != swapped, domain
    for perm in itertools.permutations(range(STYLES)):
        if list(perm) != list(range(STYLES)):
            both = [[m[perm[i]][perm[j]] for j in range(STYLES)] for i in range(STYLES)]
            rows = [[m[perm[i]][j] for j in range(STYLES)] for i in range(STYLES)]
            cols = [[m[i][perm[j]] for j in range(STYLES)] for i in range(STYLES)]
            assert m != both and m != rows and m != cols, (domain, perm)


def _check_rm_bench(m: dict, expected: dict, domains: list[str]) -> None:
    assert m["domains_scored"] == domains
    assert m["missing_domains"] == [d for d in ("chat", "math", "code", "safety") if d not in domains]
    for d in domains:
        got, exp = m["domains"][d], expected[d]
        assert got["n"] == exp["n"], d
        assert got["matrix"] == exp["matrix"], d  # wins / n: the same division, exactly
        assert got["ties"] == exp["ties"] and got["n_ties"] == exp["n_ties"], d
        for k in ("easy", "normal", "hard", "avg"):
            assert _close(got[k], exp[k]), (d, k, got[k], exp[k])
        _assert_wiring_errors_would_show(exp, d)
    for k in ("easy", "normal", "hard"):
        assert _close(m["difficulty"][k], sum(expected[d][k] for d in domains) / len(domains)), k
    partial = sum(expected[d]["avg"] for d in domains) / len(domains)
    assert _close(m["partial_overall"]["value"], partial) and m["partial_overall"]["domains"] == domains


def _check_rm_bench_rows(rows: list[dict], records: list[tuple[str, dict]], mod: int) -> None:
    raw = {(domain, rec["id"]): rec for domain, rec in records}
    assert len(rows) == len(raw) and {(r["domain"], r["id"]) for r in rows} == set(raw)
    for r in rows:
        rec = raw[(r["domain"], r["id"])]
        assert r["chosen"] == [text_score(rec["prompt"], t, mod) for t in rec["chosen"]], (r["domain"], r["id"])
        assert r["rejected"] == [text_score(rec["prompt"], t, mod) for t in rec["rejected"]], (r["domain"], r["id"])


def test_rm_bench_numbers_recomputed_from_the_raw_files(eval_cfg, tiny_classifier_dir, rm_bench_dir, text_scorer):
    """All 798 local prompts (chat, code, safety-refuse, safety-response), no subsampling."""
    files = {d: json.loads((rm_bench_dir / f"{d}_filtered.json").read_text(encoding="utf-8")) for d in RM_BENCH_FILES}
    records = _rm_bench_records(files)
    returned, m, rows, out = _run(
        eval_cfg,
        tiny_classifier_dir,
        ["benchmark=rm_bench", f"benchmark.data_dir={rm_bench_dir}", "bootstrap.n_boot=20"],
    )
    assert returned["domains"] == m["domains"] and returned["partial_overall"] == m["partial_overall"]
    expected = _expected_rm_bench(records, 11)
    assert m["n_records"] == len(records) == 798
    assert {d: e["n"] for d, e in expected.items()} == {"chat": 129, "code": 228, "safety": 284 + 157}
    _check_rm_bench(m, expected, ["chat", "code", "safety"])
    assert m["overall"] is None and m["overall_ci"] is None  # math is missing locally
    # safety pools prompts: it is not the mean of the two files' matrices (284 vs 157 prompts)
    split = [
        _expected_rm_bench([(d, r) for d, r in records if d == name], 11)["safety"]["avg"]
        for name in ("safety-refuse", "safety-response")
    ]
    assert not _close(expected["safety"]["avg"], sum(split) / 2)  # a real difference: more than rounding explains
    _check_rm_bench_rows(rows, records, 11)
    assert m["scoring"]["unique_pairs"] == len(
        {(rec["prompt"], t) for _, rec in records for t in (*rec["chosen"], *rec["rejected"])}
    )
    table = (out / "table.md").read_text()
    for d in ("chat", "code", "safety"):
        assert (
            f"| {d} | {expected[d]['n']} | {100 * expected[d]['easy']:.2f} | {100 * expected[d]['normal']:.2f} | "
            f"{100 * expected[d]['hard']:.2f} | {100 * expected[d]['avg']:.2f}" in table
        ), d


def _math_stand_in(data_dir: Path, n: int) -> list[dict]:
    """RM-Bench-format math records for the missing math file, built from real RewardBench math-prm solutions.

    Prompt = the problem; chosen = the correct solution, rejected = the incorrect one, each in three styles
    (concise = the last step, detailed plain = all steps one per line, detailed markdown = numbered steps).
    Ids are the problem ids (small ints), so they collide with chat and code ids: keys must include the domain.
    """
    rows = json.loads((data_dir / "reward-math" / "rewardbench-math" / "RewardBench_math.json").read_text())
    problems: dict = {}
    for r in rows:
        side = "chosen" if r["solution_reference"] == "human_to_GPT-4" else "rejected"
        problems.setdefault(r["problem_id"], {"prompt": r["problem"]})[side] = r["eval_solution"]

    def styles(steps):
        return [steps[-1], "\n".join(steps), "\n".join(f"{k}. {s}" for k, s in enumerate(steps, 1))]

    return [
        {
            "id": pid,
            "prompt": p["prompt"],
            "chosen": styles(p["chosen"]),
            "rejected": styles(p["rejected"]),
            "subset": "math-prm-stand-in",
            "domain": "math",
        }
        for pid, p in list(problems.items())[:n]
    ]


def test_rm_bench_overall_with_all_four_domains_from_total_dataset(
    eval_cfg, tiny_classifier_dir, data_dir, rm_bench_dir, text_scorer, tmp_path
):
    """total_dataset.json (records carry their domain): the real four files plus a math stand-in, so that
    ``overall`` (mean of the four domain scores) is defined."""
    records = []
    for d in RM_BENCH_FILES:
        for rec in json.loads((rm_bench_dir / f"{d}_filtered.json").read_text(encoding="utf-8")):
            records.append((d, {**rec, "domain": d}))
    records += [("math", rec) for rec in _math_stand_in(data_dir, 120)]
    bench = tmp_path / "rm-bench-total"
    bench.mkdir()
    (bench / "total_dataset.json").write_text(json.dumps([rec for _, rec in records]))
    text_scorer(13)
    _, m, rows, _ = _run(
        eval_cfg, tiny_classifier_dir, ["benchmark=rm_bench", f"benchmark.data_dir={bench}", "bootstrap.n_boot=0"]
    )
    expected = _expected_rm_bench(records, 13)
    domains = ["chat", "math", "code", "safety"]
    _check_rm_bench(m, expected, domains)
    overall = sum(expected[d]["avg"] for d in domains) / 4
    assert m["overall"] is not None and _close(m["overall"], overall)
    # overall = mean of easy, normal, hard averaged over domains (the paper's identity)
    assert _close(overall, sum(sum(expected[d][k] for d in domains) / 4 for k in ("easy", "normal", "hard")) / 3)
    assert m["difficulty_complete"] is True and m["missing_domains"] == []
    _check_rm_bench_rows(rows, records, 13)


def test_rm_bench_subsample_keeps_records_and_scores_together(eval_cfg, tiny_classifier_dir, rm_bench_dir, text_scorer):
    """With max_per_domain the sample is the loader's; whatever it picked, the numbers must be those of exactly
    the records named in scores.jsonl (looked up in the raw files by source domain and id)."""
    files = {d: json.loads((rm_bench_dir / f"{d}_filtered.json").read_text(encoding="utf-8")) for d in RM_BENCH_FILES}
    _, m, rows, _ = _run(
        eval_cfg,
        tiny_classifier_dir,
        [
            "benchmark=rm_bench",
            f"benchmark.data_dir={rm_bench_dir}",
            "benchmark.max_per_domain=25",
            "bootstrap.n_boot=0",
        ],
    )
    by_key = {(d, rec["id"]): rec for d, recs in files.items() for rec in recs}
    picked = [(r["domain"], by_key[(r["domain"], r["id"])]) for r in rows]
    assert sorted(d for d, _ in picked) == sorted([d for d in RM_BENCH_FILES for _ in range(25)])
    expected = _expected_rm_bench(picked, 11)
    assert {d: e["n"] for d, e in expected.items()} == {"chat": 25, "code": 25, "safety": 50}
    for d in ("chat", "code", "safety"):
        got, exp = m["domains"][d], expected[d]
        assert got["n"] == exp["n"] and got["matrix"] == exp["matrix"] and got["ties"] == exp["ties"], d
        for k in ("easy", "normal", "hard", "avg"):
            assert _close(got[k], exp[k]), (d, k)
    _check_rm_bench_rows(rows, picked, 11)


# ----------------------------------------------------------------------------------------------------------------
# RewardBench
# ----------------------------------------------------------------------------------------------------------------

# RewardBench's official per-subset weights, written out here rather than imported: allenai/reward-bench
# rewardbench/constants.py EXAMPLE_COUNTS (compared with upstream's file: math-prm counted as 6 x 164 = 984 so
# that math and the six hep-* subsets weigh equally; xstest-should-refuse 154 / should-respond 250 as
# rewardbench >= 0.1.3 (allenai/reward-bench@6552e93)
# has them), and its sections (SUBSET_MAPPING).
WEIGHTS = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "math-prm": 984,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "Safety": [
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}
PRIOR = ["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]  # counted in Prior Sets, unweighted


def _math_prm_pairs(data_dir: Path) -> list[dict]:
    """RewardBench math-prm from the RewardMATH-format file: per problem (file order) the human_to_GPT-4 solution
    is chosen, the other one rejected; a solution's text is its steps joined by newlines."""
    rows = json.loads((data_dir / "reward-math" / "rewardbench-math" / "RewardBench_math.json").read_text())
    problems: dict = {}
    for r in rows:
        side = "chosen" if r["solution_reference"] == "human_to_GPT-4" else "rejected"
        problems.setdefault(r["problem_id"], {"id": r["problem_id"], "prompt": r["problem"]})[side] = "\n".join(
            r["eval_solution"]
        )
    return list(problems.values())


def _accuracy(pairs: list[dict], mod: int) -> tuple[float, int]:
    c = [text_score(p["prompt"], p["chosen"], mod) for p in pairs]
    r = [text_score(p["prompt"], p["rejected"], mod) for p in pairs]
    return sum(a > b for a, b in zip(c, r)) / len(pairs), sum(a == b for a, b in zip(c, r))


@pytest.mark.parametrize("max_per_subset", [None, 60])
def test_reward_bench_math_prm_recomputed(eval_cfg, tiny_classifier_dir, data_dir, text_scorer, max_per_subset):
    pairs = _math_prm_pairs(data_dir)
    assert len(pairs) == 447
    if max_per_subset:
        pairs = pairs[:max_per_subset]  # "the first N pairs of each subset"
    _, m, rows, _ = _run(
        eval_cfg,
        tiny_classifier_dir,
        [
            "benchmark=reward_bench",
            f"benchmark.data_dir={data_dir / 'reward-math' / 'rewardbench-math'}",
            f"benchmark.max_per_subset={max_per_subset or 'null'}",
            "bootstrap.n_boot=20",
        ],
    )
    acc, ties = _accuracy(pairs, 11)
    assert 0.3 < acc < 0.7 and ties > 0  # not a degenerate check
    assert set(m["subsets"]) == {"math-prm"}
    sub = m["subsets"]["math-prm"]
    assert sub["n"] == len(pairs) and sub["accuracy"] == acc and sub["ties"] == ties
    assert m["n_pairs"] == len(pairs)
    reasoning = m["sections"]["Reasoning"]
    assert reasoning["score"] is None and reasoning["partial_score"] == pytest.approx(acc, abs=TOL)
    assert reasoning["subsets_present"] == ["math-prm"]
    for name in ("Chat", "Chat Hard", "Safety"):
        assert m["sections"][name]["score"] is None and m["sections"][name]["partial_score"] is None
    assert m["missing_subsets"] == [s for sec in SECTIONS.values() for s in sec if s != "math-prm"]
    assert m["overall"] is None and m["prior_sets"] is None
    by_id = {p["id"]: p for p in pairs}
    assert [r["id"] for r in rows] == [p["id"] for p in pairs]
    for r in rows:
        p = by_id[r["id"]]
        assert (r["chosen"], r["rejected"]) == (
            text_score(p["prompt"], p["chosen"], 11),
            text_score(p["prompt"], p["rejected"], 11),
        ), r["id"]


@pytest.mark.parametrize("with_prior_sets", [False, True])
def test_reward_bench_sections_and_overall_with_every_subset(
    eval_cfg, tiny_classifier_dir, data_dir, text_scorer, tmp_path, with_prior_sets
):
    """A local directory in RewardBench's own row format with all 23 subsets (and optionally the prior sets and
    anthropic_harmless, which is scored but not counted), each subset a different-sized slice of the real
    math-prm pairs, so subset accuracies differ and the section weights matter."""
    pairs = _math_prm_pairs(data_dir)
    names = [s for sec in SECTIONS.values() for s in sec]
    if with_prior_sets:
        names += [*PRIOR, "anthropic_harmless"]
    slices, lo = {}, 0
    for k, name in enumerate(names):
        size = 6 + (k * 5) % 11  # 6..16 pairs, varying
        slices[name] = pairs[lo : lo + size]
        lo += size
    assert lo <= len(pairs)
    bench = tmp_path / "reward-bench"
    bench.mkdir()
    with (bench / "pairs.jsonl").open("w") as fh:
        for name, chunk in slices.items():
            for p in chunk:
                fh.write(
                    json.dumps(
                        {
                            "subset": name,
                            "id": p["id"],
                            "prompt": p["prompt"],
                            "chosen": p["chosen"],
                            "rejected": p["rejected"],
                        }
                    )
                    + "\n"
                )
    _, m, _, _ = _run(
        eval_cfg, tiny_classifier_dir, ["benchmark=reward_bench", f"benchmark.data_dir={bench}", "bootstrap.n_boot=0"]
    )
    acc = {name: _accuracy(chunk, 11)[0] for name, chunk in slices.items()}
    assert len(set(acc.values())) > 10  # the weights make a difference
    for name, chunk in slices.items():
        assert m["subsets"][name]["n"] == len(chunk) and m["subsets"][name]["accuracy"] == acc[name], name
    section = {
        s: sum(WEIGHTS[x] * acc[x] for x in subs) / sum(WEIGHTS[x] for x in subs) for s, subs in SECTIONS.items()
    }
    unweighted = {s: sum(acc[x] for x in subs) / len(subs) for s, subs in SECTIONS.items()}
    # weights are observable: 1e-3 is > 1e12 u, far above any rounding of these means (TOL is ~4.5e-13)
    assert any(abs(section[s] - unweighted[s]) > 1e-3 for s in SECTIONS)
    for s in SECTIONS:
        assert _close(m["sections"][s]["score"], section[s]), s
        assert m["sections"][s]["subsets_missing"] == []
    assert m["missing_subsets"] == []
    if with_prior_sets:
        prior = sum(acc[x] for x in PRIOR) / 4
        assert _close(m["prior_sets"], prior)
        # (2 Chat + 2 Chat Hard + 2 Safety + 2 Reasoning + Prior Sets) / 9: prior sets at weight 0.5
        overall = (2 * sum(section.values()) + prior) / 9
    else:
        assert m["prior_sets"] is None
        overall = sum(section.values()) / 4
    assert _close(m["overall"], overall)
    assert m["n_pairs"] == sum(len(c) for c in slices.values())


# ----------------------------------------------------------------------------------------------------------------
# RewardMATH
# ----------------------------------------------------------------------------------------------------------------


def _expected_reward_math(rows: list[dict], mod: int, max_problems: int | None = None) -> dict:
    """Per problem (file order): the human_to_GPT-4 solution against the others. accuracy = strictly above all,
    with ties = at least as high as all, reciprocal rank = 1 / (1 + number of incorrect scoring >= correct)."""
    problems: dict = {}
    for r in rows:
        p = problems.setdefault(
            r["problem_id"],
            {"problem": r["problem"], "subject": r["subject"], "level": r["level"], "correct": None, "incorrect": []},
        )
        s = text_score(r["problem"], "\n".join(r["eval_solution"]), mod)
        if r["solution_reference"] == "human_to_GPT-4":
            p["correct"] = s
        else:
            p["incorrect"].append(s)
    outcomes = []
    for pid, p in list(problems.items())[:max_problems]:
        c, w = p["correct"], p["incorrect"]
        outcomes.append(
            {
                "id": pid,
                "subject": p["subject"],
                "level": p["level"],
                "scores": [c, *w],
                "win": all(c > x for x in w),
                "win_ties": all(c >= x for x in w),
                "rr": 1 / (1 + sum(x >= c for x in w)),
            }
        )

    def block(sel):
        n = len(sel)
        return {
            "n": n,
            "accuracy": sum(o["win"] for o in sel) / n,
            "accuracy_with_ties": sum(o["win_ties"] for o in sel) / n,
            "mrr": sum(o["rr"] for o in sel) / n,
        }

    out = block(outcomes)
    out["by_subject"] = {s: block([o for o in outcomes if o["subject"] == s]) for s in {o["subject"] for o in outcomes}}
    out["by_level"] = {str(v): block([o for o in outcomes if o["level"] == v]) for v in {o["level"] for o in outcomes}}
    out["outcomes"] = outcomes
    return out


def _check_reward_math(m: dict, rows: list[dict], exp: dict, k: int = 9) -> None:
    assert m["benchmark"] == "reward_math" and m["n"] == exp["n"] == m["n_records"]
    for key in ("accuracy", "accuracy_with_ties", "mrr"):
        assert _close(m[key], exp[key]), (key, m[key], exp[key])
    for group in ("by_subject", "by_level"):
        assert set(m[group]) == set(exp[group]), group
        for name, e in exp[group].items():
            assert m[group][name]["n"] == e["n"], (group, name)
            for key in ("accuracy", "accuracy_with_ties", "mrr"):
                assert _close(m[group][name][key], e[key]), (group, name, key)
    # random baselines: accuracy 1/(k+1), MRR = H_{k+1}/(k+1)
    assert _close(m["random_baseline"]["accuracy"], 1 / (k + 1))
    assert _close(m["random_baseline"]["mrr"], sum(1 / r for r in range(1, k + 2)) / (k + 1))
    assert [r["problem_id"] for r in rows] == [o["id"] for o in exp["outcomes"]]
    assert [r["score"] for r in rows] == [o["scores"] for o in exp["outcomes"]]
    assert all(r["solution_reference"][0] == "human_to_GPT-4" for r in rows)


# The two problems of the authors' sample by hand, scores of [correct, 9 incorrect]:
#   mod 11: problem 0   [4; 9 9 8 2 5 10 5 1 2]: 6 incorrect score >= 4 -> no win, rank 7;
#           problem 399 [10; 1 10 7 1 4 2 0 7 2]: one incorrect ties at 10 -> a win only with ties, rank 2.
#           accuracy 0, with ties 1/2, MRR (1/7 + 1/2) / 2
#   mod 15: problem 0   [11; 14 8 11 6 1 14 8 3 9]: 3 incorrect score >= 11 -> rank 4;
#           problem 399 [11; 8 10 7 1 4 6 6 3 3]: a strict win, rank 1.  accuracy 1/2, with ties 1/2, MRR (1/4 + 1) / 2
@pytest.mark.parametrize(
    "mod, accuracy, with_ties, mrr", [(11, 0.0, 0.5, (1 / 7 + 1 / 2) / 2), (15, 0.5, 0.5, (1 / 4 + 1) / 2)]
)
def test_reward_math_sample_recomputed(
    eval_cfg, tiny_classifier_dir, data_dir, text_scorer, mod, accuracy, with_ties, mrr
):
    path = data_dir / "reward-math" / "sample" / "RewardMATH_direct.json"
    raw = json.loads(path.read_text())
    text_scorer(mod)
    _, m, rows, _ = _run(
        eval_cfg, tiny_classifier_dir, ["benchmark=reward_math_sample", f"benchmark.path={path}", "bootstrap.n_boot=20"]
    )
    exp = _expected_reward_math(raw, mod)
    assert (exp["accuracy"], exp["accuracy_with_ties"]) == (accuracy, with_ties) and _close(exp["mrr"], mrr)
    _check_reward_math(m, rows, exp)
    assert set(m["by_subject"]) == {"Algebra"} and set(m["by_level"]) == {"1", "5"}


def test_reward_math_nine_incorrect_recomputed(eval_cfg, tiny_classifier_dir, data_dir, text_scorer, tmp_path):
    """The full RewardMATH file is not local: a stand-in in its row format with 80 problems, each the real
    math-prm problem with its correct solution and 9 incorrect ones (its own and those of the next 8 problems),
    subject and level kept; max_problems keeps the first 60."""
    rows = json.loads((data_dir / "reward-math" / "rewardbench-math" / "RewardBench_math.json").read_text())
    problems: dict = {}
    for r in rows:
        side = "correct" if r["solution_reference"] == "human_to_GPT-4" else "incorrect"
        problems.setdefault(r["problem_id"], {"row": r})[side] = r["eval_solution"]
    plist = list(problems.values())[:88]
    out_rows = []
    for i, p in enumerate(plist[:80]):
        base = p["row"]
        sols = [("human_to_GPT-4", p["correct"])] + [(f"model-{j}", plist[i + j]["incorrect"]) for j in range(9)]
        for ref, steps in sols:
            out_rows.append(
                {
                    "problem": base["problem"],
                    "eval_solution": steps,
                    "solution_reference": ref,
                    "subject": base["subject"],
                    "level": base["level"],
                    "problem_id": base["problem_id"],
                }
            )
    path = tmp_path / "RewardMATH_direct.json"
    path.write_text(json.dumps(out_rows))
    text_scorer(7)
    _, m, scored, _ = _run(
        eval_cfg,
        tiny_classifier_dir,
        ["benchmark=reward_math", f"benchmark.path={path}", "benchmark.max_problems=60", "bootstrap.n_boot=20"],
    )
    exp = _expected_reward_math(out_rows, 7, max_problems=60)
    assert exp["n"] == 60
    # not degenerate: some strict wins, some wins only with ties, reciprocal ranks spread over several values
    assert 0 < exp["accuracy"] < exp["accuracy_with_ties"] < 1
    assert len({o["rr"] for o in exp["outcomes"]}) >= 5
    assert len(exp["by_subject"]) >= 3 and len(exp["by_level"]) >= 3
    _check_reward_math(m, scored, exp)
