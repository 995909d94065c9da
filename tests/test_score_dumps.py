"""The leaderboard of the RewardMATH authors' published score dumps, and bad dumps."""

import copy
import json

import pytest

from rmlab.analysis.leaderboard import leaderboard_markdown
from rmlab.benchmarks.reward_math_dumps import leaderboard, load_dump
from rmlab.data.errors import DataValidationError


@pytest.fixture(scope="module")
def results_dir(data_dir):
    return data_dir / "reward-math" / "results"


def test_published_leaderboard(results_dir, capsys):
    rows = leaderboard(results_dir, n_boot=0)
    with capsys.disabled():  # the numbers go to the test log
        print("\n" + leaderboard_markdown(rows))
    rm = {(r["model"], r["aggregation"]): r for r in rows if r["benchmark"] == "reward_math"}
    rb = {(r["model"], r["aggregation"]): r for r in rows if r["benchmark"] == "reward_bench_math"}
    models = {m for m, _ in rm if not m.endswith("_pairwise")}
    assert len(models) == 22  # 9 classifiers, 9 direct judges, 4 PRMs (plus 9 pairwise judge files)
    # rows as the authors' eval.py counts them: the three 485-row judge files repeat their last two problems
    assert all(r["n"] == (485 if r["duplicate_rows"] else 483) for r in rm.values())
    assert all(r["n"] == 447 for r in rb.values())
    # internlm2-7b: 180 of 483 problems won outright (the authors' own strict rule)
    assert rm[("internlm2", None)]["accuracy"] == pytest.approx(180 / 483)
    # the three 485-row judge files: 2 exact repeats, counted by default; the de-duplicated reading beside it
    assert {m for (m, _), r in rm.items() if r["duplicate_rows"] == 2} == {"chatgpt", "gpt4", "gpt4o"}
    gpt4 = rm[("gpt4", None)]
    assert gpt4["accuracy"] == pytest.approx(109 / 485) and gpt4["other_reading"]["n"] == 483
    assert gpt4["other_reading"]["accuracy"] == pytest.approx(108 / 483)  # 22.47 vs 22.36: both printed
    assert "gpt4_reward.json (2 repeated rows): keep: n 485, accuracy 22.47" in leaderboard_markdown(rows)
    # 1-10 judge ratings tie a lot: the tie variants differ there
    assert rm[("gpt4", None)]["accuracy_with_ties"] > 2 * rm[("gpt4", None)]["accuracy"]
    assert {agg for (m, agg) in rm if m == "Math_Shepherd"} == {
        "min",
        "max",
        "prod",
        "geometric_mean",
        "mean",
        "mean_logit",
        "mean_odd",
        "last",
    }
    assert rb[("rewardbench_Skywork-Llama-3.1-8B", None)]["accuracy"] == pytest.approx(433 / 447)


def _write(tmp_path, rows, name="m.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


def _row(n_incorrect=9):
    refs = ["human_to_GPT-4"] + [f"model{j}" for j in range(n_incorrect)]
    return {"problem": "1+1?", "solution_reference": refs, "score": [float(j) for j in range(len(refs))]}


def test_bad_dumps_name_file_and_row(tmp_path):
    with pytest.raises(DataValidationError, match=r"9 solutions per problem; expected 10"):
        load_dump(_write(tmp_path, [_row(8)]))
    two = _row()
    two["solution_reference"][3] = "human_to_GPT-4"
    with pytest.raises(DataValidationError, match=r"m.json, row #0: 2 correct solutions"):
        load_dump(_write(tmp_path, [two]))
    missing = _row()
    missing["score"][4] = None
    with pytest.raises(DataValidationError, match=r"m.json, row #0, solution 4: missing or non-numeric score None"):
        load_dump(_write(tmp_path, [missing]))
    clash = [_row(), copy.deepcopy(_row())]
    clash[1]["score"][0] = 99.0
    with pytest.raises(DataValidationError, match=r"row #1: problem repeats row #0 with different content"):
        load_dump(_write(tmp_path, clash))


def test_exact_duplicates_are_counted_as_the_authors_do_or_dropped(tmp_path):
    path = _write(tmp_path, [_row(), _row()])
    kept = load_dump(path)
    assert kept.duplicate_rows == 1 and kept.duplicates_dropped == 0 and len(kept.problems) == 2
    dropped = load_dump(path, duplicates="drop")
    assert dropped.duplicates_dropped == 1 and len(dropped.problems) == 1 and dropped.kind == "scalar"
    with pytest.raises(ValueError, match="duplicates='once'; valid values: keep, drop"):
        load_dump(path, duplicates="once")
