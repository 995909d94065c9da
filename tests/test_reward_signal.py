"""The reward-signal diagnostic: its statistics on hand-made scores, and the entry point on tiny models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from rmlab.diagnostics.reward_signal import signal_stats
from tests.conftest import ROOT


def test_spread_statistics_on_hand_made_rewards():
    rewards = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 8.0]])
    lengths = np.array([[10, 20, 30], [30, 20, 10]])
    eos = np.array([[True, True, False], [True, False, False]])
    out = signal_stats(rewards, lengths, eos, greedy=np.array([2.0, 7.0]), n_boot=200)
    assert out["mean_reward"] == pytest.approx(4.0)
    within = (np.var([1, 2, 3], ddof=1) + np.var([5, 5, 8], ddof=1)) / 2
    between = np.var([2.0, 6.0], ddof=1)
    assert out["within_prompt_sd"] == pytest.approx(within**0.5)
    assert out["between_prompt_sd"] == pytest.approx(between**0.5)
    assert out["within_fraction_of_variance"] == pytest.approx(within / (within + between))
    assert out["best_of_k_gain"]["mean"] == pytest.approx(((3 - 2) + (8 - 6)) / 2)
    # pairs of prompt 1: |1-2|, |1-3|, |2-3| -> 4/3; prompt 2: 0, 3, 3 -> 2; best of 2 gains half the pair gap
    assert out["pair_gap"]["mean"] == pytest.approx((4 / 3 + 2) / 2)
    # two prompts with gains 1 and 2: a resampled mean is 1, 1.5 or 2 (probabilities 1/4, 1/2, 1/4), so of 200
    # resamples about 50 are exactly 1 and 50 exactly 2, and the 2.5% and 97.5% percentiles are those values
    lo, hi = out["best_of_k_gain"]["ci"]
    assert (lo, hi) == (1.0, 2.0)
    centred_len = [-10, 0, 10, 10, 0, -10]
    centred_r = [-1, 0, 1, -1, -1, 2]
    assert out["length_r_within_prompt"]["r"] == pytest.approx(stats.pearsonr(centred_len, centred_r).statistic)
    # prompt 1: ended (1, 2) vs cut (3): 1.5 - 3; prompt 2: ended (5) vs cut (5, 8): 5 - 6.5
    assert out["eos_minus_cut"]["mean"] == pytest.approx(-1.5) and out["eos_minus_cut"]["n_prompts"] == 2
    assert out["greedy_minus_sampled"]["mean"] == pytest.approx(((2 - 2) + (7 - 6)) / 2)
    assert out["eos_rate"] == pytest.approx(0.5) and out["mean_length"] == pytest.approx(20)


def test_constant_scores_and_bad_shapes():
    flat = signal_stats(np.ones((3, 4)), np.full((3, 4), 5), np.ones((3, 4), bool), n_boot=50)
    assert flat["within_fraction_of_variance"] is None and flat["length_r_within_prompt"] is None
    assert flat["eos_minus_cut"] is None and flat["best_of_k_gain"]["mean"] == 0
    with pytest.raises(ValueError, match="at least 2 samples"):
        signal_stats(np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1), bool))
    with pytest.raises(ValueError, match="shape of rewards"):
        signal_stats(np.ones((3, 2)), np.ones((3, 3)), np.ones((3, 2), bool))


@pytest.mark.slow
def test_entry_point_samples_and_scores(tmp_path, tiny_lm_dir, tiny_classifier_dir, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "scripts/reward_signal.py",
        f"policy={tiny_lm_dir}",
        f"reward_model={tiny_classifier_dir}",
        "preference.max_pairs=24",
        "preference.heldout_pairs=8",
        "recipe.max_prompt_length=256",
        "recipe.response_length=5",
        "n_prompts=3",
        "samples_per_prompt=3",
        "bootstrap.n_boot=50",
        "device=cpu",
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "reward_signal" / "runs").iterdir()
    out = json.loads((run / "reward_signal.json").read_text())
    assert out["n_prompts"] == 3 and out["samples_per_prompt"] == 3 and out["policy"] == str(tiny_lm_dir)
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["samples"]) == len(r["rewards"]) == 3 for r in rows)
    rewards = np.array([r["rewards"] for r in rows])
    assert out["mean_reward"] == pytest.approx(rewards.mean())  # the statistics are of the written scores
    greedy = np.array([r["reward_greedy"] for r in rows])
    assert out["greedy_minus_sampled"]["mean"] == pytest.approx((greedy - rewards.mean(axis=1)).mean())
