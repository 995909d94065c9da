"""RewardMATH and RewardBench-math loading on the real files, and malformed problems."""

import json

import pytest

from rmlab.data.errors import DataValidationError
from rmlab.data.reward_bench import load_reward_bench
from rmlab.data.reward_math import group_problems, load_reward_math


def test_sample_and_rewardbench_math(data_dir):
    problems, prov = load_reward_math(path=str(data_dir / "reward-math/sample/RewardMATH_direct.json"), hub_id=None)
    assert len(problems) == 2 and all(len(p.incorrect) == 9 for p in problems)
    assert all(p.correct.reference == "human_to_GPT-4" for p in problems)
    assert problems[0].correct.text == "\n".join(problems[0].correct.steps)
    pairs, prov = load_reward_bench(data_dir=str(data_dir / "reward-math/rewardbench-math"), hub_id=None)
    assert len(pairs) == 447 and {p.subset for p in pairs} == {"math-prm"}
    assert prov["subsets_found"] == ["math-prm"]


def _rows(n_incorrect=9, n_correct=1):
    refs = ["human_to_GPT-4"] * n_correct + [f"m{j}" for j in range(n_incorrect)]
    return [
        {
            "problem": "2+2?",
            "problem_id": 7,
            "eval_solution": ["step 1", "so 4"],
            "solution_reference": r,
            "subject": "Algebra",
            "level": 1,
        }
        for r in refs
    ]


def test_malformed_problems(tmp_path):
    with pytest.raises(DataValidationError, match=r"problem_id=7 \(first row #0\): 8 incorrect solutions; expected 9"):
        group_problems(_rows(8), source="x.json", n_incorrect=9)
    with pytest.raises(DataValidationError, match=r"problem_id=7 .*: 2 correct solutions"):
        group_problems(_rows(9, 2), source="x.json", n_incorrect=9)
    bad = _rows()
    bad[3]["eval_solution"] = []
    with pytest.raises(DataValidationError, match=r"x.json, row #3 \(problem_id=7\): field 'eval_solution'"):
        group_problems(bad, source="x.json", n_incorrect=9)
    path = tmp_path / "RewardMATH_direct.json"
    path.write_text(json.dumps(_rows()))
    problems, _ = load_reward_math(path=str(path), hub_id=None)
    assert problems[0].subject == "Algebra" and problems[0].level == 1
