"""Arena-Hard-Auto v0.1 (RM-Bench Sec. 5.1): raw and style-controlled scores as upstream computes them, checked
against the published leaderboard from local data; and the reward-model style-bias diagnostic."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rmlab.analysis.arena_hard import PUBLISHED_POOL, write_arena_hard_fidelity
from rmlab.data.arena_hard import load_all_answers, load_battles, load_published
from rmlab.data.errors import DataValidationError
from rmlab.data.rm_bench import RMBenchItem
from rmlab.metrics.arena_hard import (
    arena_hard_scores,
    bt_design,
    fit_logistic,
    style_control_drop,
    style_controlled_scores,
    style_z,
)
from rmlab.metrics.style_bias import BIAS_FEATURES, response_features, rm_bench_style_bias
from rmlab.rm_eval.evaluate import evaluate_rm
from rmlab.scoring.scorers import SCORERS
from rmlab.utils.style_features import STYLE_FEATURES, markdown_counts, remove_code, token_lengths
from tests.conftest import compose_eval_cfg
from tests.helpers import tolerances as tol

BASELINE = "gpt-4-0314"
LEADERBOARD = ["gpt-4-0613", "gpt-3.5-turbo-0125"]


@pytest.fixture(scope="module")
def arena_dir(data_dir: Path) -> Path:
    path = data_dir / "arena-hard-auto"
    if not path.is_dir():
        if os.environ.get("RMLAB_REQUIRE_DATA") == "1":
            pytest.fail(f"Arena-Hard-Auto data expected at {path} (RMLAB_REQUIRE_DATA=1)")
        pytest.skip(f"no Arena-Hard-Auto data at {path}")
    return path


@pytest.fixture(scope="module")
def answers(arena_dir):
    return load_all_answers(arena_dir)


def _cols(battles):
    return [b.model_a for b in battles], [b.model_b for b in battles], [b.winner for b in battles]


# ---- published numbers from local data -------------------------------------------------------------------------


def test_published_table_is_read(arena_dir):
    pub = load_published(arena_dir)
    assert len(pub) == 16
    assert pub["gpt-4-0613"] == {
        "verdicts_here": "yes",
        "raw_readme": 37.9,
        "raw_csv": 37.90,
        "sc_readme": 49.7,
        "sc_ci": [-2.3, 2.5],
        "avg_tokens": 354,
        "source_lines": "SC L51, raw L135, CSV L27",
    }
    assert pub["gpt-3.5-turbo-0125"]["raw_csv"] == 23.34


def test_raw_scores_equal_the_published_ones(arena_dir):
    battles, left_out = load_battles(
        arena_dir / "battles" / "battles_gpt-4-0613_gpt-3.5-turbo-0125.jsonl", models=LEADERBOARD, baseline=BASELINE
    )
    assert left_out == {} and len(battles) == 2658
    raw = arena_hard_scores(*_cols(battles), baseline=BASELINE, n_rounds=20)
    pub = load_published(arena_dir)
    for model in LEADERBOARD:
        assert round(raw.score[model], 2) == pub[model]["raw_csv"], model
        mine = [b for b in battles if b.model_b == model]  # every battle against the baseline: a closed form
        wins = sum(b.winner == "model_b" for b in mine) + sum(b.winner == "tie" for b in mine) / 2
        # the fit's certified gradient (tolerances.bradley_terry_star) plus the closed form's 3 roundings of <= 100
        bound = tol.bradley_terry_star(len(battles), len(mine)) + tol.worst_case(3, 100)
        assert raw.score[model] == pytest.approx(100 * wins / len(mine), abs=bound)
        assert raw.ci[model][0] < raw.score[model] < raw.ci[model][1]
    assert raw.score[BASELINE] == 50 and raw.elo[BASELINE] == 1000 and raw.ci[BASELINE] == [50, 50]


def test_markdown_counts_equal_conv_metadata_in_every_leaderboard_row(answers):
    files = {m: a for m, a in answers.items() if any(x.conv_metadata for x in a.values())}
    assert len(files) == 16
    for model, by_q in files.items():
        for qid, a in by_q.items():
            stored = {k: v for k, v in a.conv_metadata.items() if k != "token_len"}
            assert markdown_counts(a.content) == stored, (model, qid)
            assert a.conv_metadata["token_len"] == a.token_len, (model, qid)


def test_token_counts_and_published_average_tokens(arena_dir, answers):
    pub = load_published(arena_dir)
    assert set(pub) <= set(answers)
    for model, by_q in answers.items():  # the 16 leaderboard files and the 5 policies
        lengths = token_lengths([a.content for a in by_q.values()])
        assert lengths == [a.token_len for a in by_q.values()], model
        if model in pub:
            assert int(np.mean(lengths)) == pub[model]["avg_tokens"], model  # show_result.py: int(mean)


def test_fidelity_entry_point_names_the_pool_of_every_style_controlled_score(arena_dir, tmp_path, capsys):
    cfg = compose_eval_cfg(tmp_path, config_name="arena_hard_fidelity", base=("n_rounds=5", f"data_dir={arena_dir}"))
    result = write_arena_hard_fidelity(cfg)
    on_disk = json.loads((tmp_path / "run" / "arena_hard_fidelity.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert "Style-controlled score, by pool" in (tmp_path / "run" / "arena_hard_fidelity.md").read_text()
    assert "all_seven" in capsys.readouterr().out
    assert {r["model"]: r["equal_2dp"] for r in result["raw"] if r["equal_2dp"] is not None} == dict.fromkeys(
        LEADERBOARD, True
    )
    assert len(result["raw"]) == 7 and result["battles"]["llama3_8b_policies"]["rows_left_out"] == {
        "gpt-4-0613": 1244,
        "gpt-3.5-turbo-0125": 1414,
        "Llama-3-Base-8B-TR_IPO-Alpha_0.6-UltraFeedback": 492,
    }
    assert all(r["published_avg_tokens"] in (None, r["avg_tokens"]) for r in result["tokens"])
    assert sum(r["published_avg_tokens"] is not None for r in result["tokens"]) == 16
    assert {r["pool"] for r in result["style_control"]} == {"leaderboard_pair", "llama3_8b_policies", "all_seven"}
    assert all(r["model"] in r["pool_models"] for r in result["style_control"])
    assert {r["pool"] for r in result["published_style_control"]} == {PUBLISHED_POOL}
    published_drop = {r["model"]: r["drop"] for r in result["published_style_control"]}
    # style_control_drop's own expression on the published 37.9 and 49.7 (parsed to the same floats): exact
    assert published_drop["gpt-4-0613"] == (37.9 - 49.7) / 37.9


# ---- the fits on hand-made battles -----------------------------------------------------------------------------


def test_bt_fit_on_a_hand_made_battle_set():
    """B (baseline) vs M: M wins one "≫" verdict (3 rows), B wins 1 row, 2 ties: M's win rate (3 + 2/2) / 6."""
    rows = [("M", "model_b")] * 3 + [("M", "model_a")] + [("M", "tie")] * 2
    raw = arena_hard_scores(["B"] * 6, [m for m, _ in rows], [w for _, w in rows], baseline="B", n_rounds=0)
    # a star design (every battle against B): the fit's certified gradient, plus the closed forms' roundings
    # (2 of magnitude 100; log10 within 1 ulp, a product and a sum: 4 of magnitude ~1120)
    assert raw.score["M"] == pytest.approx(100 * 4 / 6, abs=tol.bradley_terry_star(6, 6) + tol.worst_case(2, 100))
    elo_bound = tol.bradley_terry_star_elo(6, 6, 4 / 6) + tol.worst_case(4, 1000 + 400 * math.log10(2))
    assert raw.elo["M"] == pytest.approx(1000 + 400 * math.log10(2), abs=elo_bound)  # odds 4:2
    assert raw.n_battles == {"B": 6, "M": 6} and raw.ci == {}
    # a cycle, not a star: A beats B 2-1, B beats C 2-1, C beats A 2-1: all ratings equal
    a, b, w = [], [], []
    for x, y in (("A", "B"), ("B", "C"), ("C", "A")):
        a += [x] * 3
        b += [y] * 3
        w += ["model_a", "model_a", "model_b"]
    cycle = arena_hard_scores(a, b, w, baseline="A", n_rounds=0)
    # the certified gradient over the Hessian's smallest eigenvalue on its range, mapped to a win rate (tolerances)
    _, xy = bt_design(a, b, w)
    beta = fit_logistic(xy[:, :-1], xy[:, -1], c=None)
    bound = tol.win_rate_from_coef_error(tol.logistic_coef_error(xy[:, :-1], beta))
    assert cycle.score == pytest.approx({"A": 50, "B": 50, "C": 50}, abs=bound)


def test_bt_design_duplicates_battles_and_splits_ties():
    models, xy = bt_design(["B", "B", "B"], ["M", "M", "M"], ["model_a", "model_b", "tie"])
    assert models == ["B", "M"]
    ln10 = math.log(10)
    np.testing.assert_array_equal(xy[:, :2], [[ln10, -ln10]] * 6)  # the very float math.log(10) is stored: exact
    assert xy[:, 2].tolist() == [1, 0, 1, 1, 0, 0]  # the tie: an A win in copy 1, a B win in copy 2
    with pytest.raises(ValueError, match="winner"):
        bt_design(["B"], ["M"], ["draw"])


def test_style_z_is_upstreams_normalised_ratio():
    fa, fb = np.array([[9.0, 0], [1, 0], [4, 0]]), np.array([[0.0, 0], [1, 0], [5, 0]])
    d = np.array([9 / 10, 0 / 3, -1 / 10])  # (a - b) / (a + b + 1)
    z = style_z(fa, fb)
    # population std. The same divisions give the same d; mean, std, centring and scaling take <= 12 roundings a
    # side, of terms as large as (max|d| + |mean|) / std in z units: 24 in all (Higham Lemma 3.1)
    mag = (np.abs(d).max() + abs(d.mean())) / d.std()
    np.testing.assert_allclose(z[:, 0], (d - d.mean()) / d.std(), rtol=0, atol=tol.worst_case(24, mag))
    assert z[:, 1].tolist() == [0, 0, 0]  # never varies: 0 (upstream divides by zero)


def _random_battles(n: int = 600, seed: int = 0):
    """Four models, every pair (not only against the baseline), and a style feature that favours model_a."""
    rng = np.random.default_rng(seed)
    models = ["base", "m1", "m2", "m3"]
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    winner = rng.choice(["model_a", "model_b", "tie"], size=n, p=[0.45, 0.35, 0.2])
    feats_a, feats_b = rng.integers(0, 800, (n, 4)), rng.integers(0, 800, (n, 4))
    return [models[i] for i in a], [models[i] for i in b], winner.tolist(), feats_a, feats_b


def test_style_control_reduces_to_the_raw_fit_without_style():
    a, b, w, _, _ = _random_battles()
    zeros = np.zeros((len(w), 4))
    raw = arena_hard_scores(a, b, w, baseline="base", n_rounds=0)
    sc = style_controlled_scores(
        a, b, w, zeros, zeros, baseline="base", feature_names=STYLE_FEATURES, c=None, n_rounds=0
    )
    # zero style columns have zero gradient, so their coefficients stay 0 (next line) and both fits solve the raw
    # problem: each within the certified-gradient bound (tolerances.logistic_coef_error) of its optimum
    _, xy = bt_design(a, b, w)
    x, beta = xy[:, :-1], fit_logistic(xy[:, :-1], xy[:, -1], c=None)
    fit_error = tol.win_rate_from_coef_error(tol.logistic_coef_error(x, beta))
    assert sc.score == pytest.approx(raw.score, abs=2 * fit_error)
    assert sc.style_coef == dict.fromkeys(STYLE_FEATURES, 0.0)
    # upstream's L2 (C = 1) shrinks every coefficient a little: 1/2 |beta|^2 against 2 x 600 rows of log loss
    penalised = style_controlled_scores(
        a, b, w, zeros, zeros, baseline="base", feature_names=STYLE_FEATURES, n_rounds=0
    )
    # to first order the penalty moves beta by ridge H^+ beta: at most ridge |beta| / mu (mu on the models'
    # identified complement, tolerances.logistic_hessian_floor), plus both fits' convergence errors
    ridge = 1 / len(x)
    shift = ridge * np.linalg.norm(beta) / tol.logistic_hessian_floor(x, beta, ridge, n_models=4)
    shift_bound = tol.win_rate_from_coef_error(shift) + 2 * fit_error
    # and the shrinkage is real: larger than both fits' convergence errors
    assert penalised.score == pytest.approx(raw.score, abs=shift_bound) and penalised.score != pytest.approx(
        raw.score, abs=2 * fit_error
    )
    elo_bound = 400 * math.sqrt(2) * shift + 2 * tol.worst_case(3, 1114)  # Elo = 400 beta + 1000, re-anchored
    assert {m: e - 1114 + 1000 for m, e in penalised.elo.items()} == pytest.approx(raw.elo, abs=elo_bound)


def test_style_controlled_fit_is_sklearns_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    a, b, w, fa, fb = _random_battles(seed=1)
    _, xy = bt_design(a, b, w)
    x = np.hstack([xy[:, :-1], np.vstack([style_z(fa, fb)] * 2)])
    ours = fit_logistic(x, xy[:, -1], c=1.0)
    ref = sklearn.LogisticRegression(fit_intercept=False, C=1.0, tol=1e-12, max_iter=100_000).fit(x, xy[:, -1])
    # ours stops at max|grad| <= 1e-8, sklearn's L-BFGS at max|grad| <= tol = 1e-12 (assumed: it may also stop on a
    # relative decrease below 64 eps, whose gradient is not bounded); both within their gradient / mu of the optimum
    bound = tol.logistic_coef_error(x, ours, ridge=1 / len(x), n_models=4, grad_max=1e-8 + 1e-12)
    np.testing.assert_allclose(ours, ref.coef_[0], rtol=0, atol=bound)


def test_style_control_drop():
    assert style_control_drop(40.0, 30.0) == 0.25  # 10 / 40, exact in binary
    # SC raises gpt-4-0613; -0.3113 is printed to 4 decimals: half a unit in the last place, plus 2 roundings
    assert style_control_drop(37.9, 49.7) == pytest.approx(-0.3113, abs=5e-5 + tol.worst_case(2, 1.0))


def test_markdown_rules_remove_code_as_upstream():
    """Code's inner text goes (the fences stay), and with str.replace it also goes where it recurs outside code:
    the last "- x" is not counted, as upstream does not count it."""
    text = "# Title\n## Sub\n1. one\n  - two\n**bold** and __it__\n```python\n# comment\n```\n```\n- x\n```\n- x\n"
    assert remove_code(text) == "# Title\n## Sub\n1. one\n  - two\n**bold** and __it__\n``````\n``````"
    assert markdown_counts(text) == {
        "header_count": {"h1": 1, "h2": 1, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count": {"ordered": 1, "unordered": 1},
        "bold_count": {"**": 1, "__": 1},
    }


def test_bad_battle_rows_name_file_row_and_field(tmp_path):
    path = tmp_path / "battles.jsonl"
    path.write_text(
        '{"question_id": "q1", "model_a": "gpt-4-0314", "model_b": "m", "winner": "model_b"}\n'
        '{"question_id": "q2", "model_a": "gpt-4-0314", "model_b": "m", "winner": "draw"}\n'
    )
    with pytest.raises(DataValidationError, match=r"battles.jsonl, row 2 \(question_id=q2\): field 'winner'"):
        load_battles(path, models=["m"], baseline=BASELINE)
    path.write_text('{"question_id": "q1", "model_a": "m", "model_b": "gpt-4-0314", "winner": "tie"}\n')
    with pytest.raises(DataValidationError, match="row 1 .*field 'model_a'"):
        load_battles(path, models=["m"], baseline=BASELINE)


# ---- style bias of a reward model ------------------------------------------------------------------------------


def _items(n: int, seed: int = 0) -> list[RMBenchItem]:
    """Prompts whose six responses vary in length and markdown independently of side and style."""
    rng = np.random.default_rng(seed)

    def response() -> str:
        words = " ".join(["word"] * int(rng.integers(20, 400)))
        return words + "\n**bold**" * int(rng.integers(0, 4)) + "\n- item" * int(rng.integers(0, 5))

    return [
        RMBenchItem("chat", i, f"prompt {i}", tuple(response() for _ in range(3)), tuple(response() for _ in range(3)))
        for i in range(n)
    ]


def test_style_bias_recovers_known_coefficients():
    items, rng = _items(150), np.random.default_rng(1)
    true = {"chosen": 0.5, "length_kchars": 2.0, "bold_count": -0.3}
    scores = np.empty((len(items), 2, 3))
    for k, it in enumerate(items):
        offset = rng.normal(0, 5)  # the prompt's own level: absorbed by the fixed effect
        for side, texts in enumerate((it.chosen, it.rejected)):
            for s, t in enumerate(texts):
                scores[k, side, s] = (
                    offset
                    + true["chosen"] * (side == 0)
                    + true["length_kchars"] * len(t) / 1000
                    + true["bold_count"] * t.count("**bold**")
                    + rng.normal(0, 0.05)
                )
    result = rm_bench_style_bias(items, scores, n_boot=200, confidence=0.95, seed=0)
    # each coefficient's OLS standard error with known noise SD 0.05: 0.05 sqrt((X^T X)^-1_jj), X the features
    # demeaned within prompts (the fixed effects), the constant header_count column left out
    feats = np.array(
        [response_features(t, side == 0) for it in items for side in (0, 1) for t in (it.chosen, it.rejected)[side]]
    )
    feats = feats.reshape(len(items), 6, -1)
    feats = (feats - feats.mean(axis=1, keepdims=True)).reshape(len(items) * 6, -1)
    kept = [n for n in BIAS_FEATURES if n != "header_count"]
    x = feats[:, [BIAS_FEATURES.index(n) for n in kept]]
    se = dict(zip(kept, 0.05 * np.sqrt(np.diag(np.linalg.inv(x.T @ x)))))
    chat = result["domains"]["chat"]
    assert result["features"] == list(BIAS_FEATURES) and chat["n_prompts"] == 150 and chat["n_responses"] == 900
    assert chat["not_estimable"] == ["header_count"]  # no response has a header
    for name, coef in chat["coef"].items():  # noise SD 0.05 over 900 responses: standard errors of <= 0.0034
        lo, hi = chat["ci"][name]
        # 5 standard errors: a false failure with probability 5.7e-7 per coefficient (normal noise)
        assert coef == pytest.approx(true.get(name, 0.0), abs=5 * se[name]) and lo < coef < hi, name
        # the 95% interval's width is about 2 x 1.96 SE; a 200-resample percentile interval estimates it to within
        # ~10% (relative sd), so twice that width is > 10 sd away
        assert hi - lo < 2 * (2 * 1.96 * se[name]), name
    assert chat["within_r2"] > 0.9
    assert result["domains"]["all"]["coef"] == chat["coef"]


@dataclass(frozen=True)
class _Encoded:
    input_ids: list
    response_start: int
    score: float


def test_rm_bench_run_writes_style_bias_beside_its_heatmaps(eval_cfg, tiny_classifier_dir, rm_bench_dir, monkeypatch):
    """A scorer whose reward is 3 per 1000 characters plus a prompt-dependent level: the run recovers 3."""

    class LengthScorer:
        def __init__(self, model, tokenizer, formatter, *, max_length, device):
            pass

        def encode(self, prompt, response):
            return _Encoded([0] * (1 + len(response) // 64), 0, 3.0 * len(response) / 1000 + len(prompt) % 7)

        def __call__(self, batch):
            return np.array([e.score for e in batch])

    monkeypatch.setitem(SCORERS._items, "classifier", LengthScorer)
    cfg = eval_cfg([f"model={tiny_classifier_dir}", "benchmark.max_per_domain=4", "bootstrap.n_boot=50"])
    metrics = evaluate_rm(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "heatmap_chat.png").is_file() and (run / "style_bias.md").is_file()
    written = json.loads((run / "style_bias.json").read_text())
    assert written == metrics["style_bias"] and set(written["domains"]) == {"chat", "code", "safety", "all"}
    for domain, r in written["domains"].items():
        # NOT derived (issue #30): a zero-residual least-squares fit is off by about cond(X) m n u, and the design
        # (these RM-Bench responses' features) is not at hand here; 1e-6 and 1e-9 assume cond(X) < ~1e6
        assert r["coef"]["length_kchars"] == pytest.approx(3.0, abs=1e-6), domain
        assert r["within_r2"] == pytest.approx(1.0, abs=1e-9), domain
    assert "length_kchars" in (run / "style_bias.md").read_text()
