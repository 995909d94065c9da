"""Preference mixtures: exact per-component counts by weight (largest remainder, checked by hand), duplicates
across components kept once and counted, a component too small for its share named, and the counts in the record,
on the local HH-RLHF subsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmlab.data.errors import DataValidationError
from rmlab.data.preference import apportion, load_preferences
from rmlab.utils.config import compose_config

ROOT = Path(__file__).parents[1]


def test_apportion_by_hand():
    # 10 by 1:1:1 -> quotas 3.33 each, one extra to the first: 4, 3, 3
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    # 7 by 0.5:0.3:0.2 -> 3.5, 2.1, 1.4 -> floors 3, 2, 1, the one left to the largest remainder (0.5): 4, 2, 1
    assert apportion(7, [0.5, 0.3, 0.2]) == [4, 2, 1]
    assert apportion(0, [1, 2]) == [0, 0] and sum(apportion(60908, [3, 1, 1, 2])) == 60908
    with pytest.raises(ValueError, match="weights"):
        apportion(5, [0, 0])


def _mix(overrides):
    return compose_config(
        "train_rm", [f"paths.root_dir={ROOT}", "preference=mixture", "contamination.enabled=false", *overrides]
    ).preference


def test_the_default_mixture_has_exact_counts(data_dir):
    got = load_preferences(_mix([]), seed=0)
    parts = got.info["components"]
    assert [(p["train"], p["heldout"]) for p in parts.values()] == [(1000, 100), (1000, 100)]
    assert len(got.train) == 2000 and len(got.heldout) == 200
    for label in ("helpful", "harmless"):
        assert sum(e.id.startswith(f"{label}:") for e in got.train) == 1000
    assert {e.id for e in got.train}.isdisjoint(e.id for e in got.heldout)
    assert got.info["duplicates_removed"] == 0
    # the same seed gives the same mixture
    assert load_preferences(_mix([]), seed=0).info["train_fingerprint"] == got.info["train_fingerprint"]


def test_duplicates_across_components_are_kept_once_and_counted(data_dir):
    """helpful-base alone, then every HH-RLHF subset: the second component holds all of the first's pairs again."""
    mix = ("preference.mix=[{label: base, name: hh_rlhf, weight: 1, overrides: {files: ['helpful-base/*.jsonl.gz']}},"
           " {label: all, name: hh_rlhf, weight: 3}]")  # fmt: skip
    got = load_preferences(_mix([mix, "preference.max_pairs=400", "preference.heldout_pairs=40"]), seed=1)
    base, every = got.info["components"]["base"], got.info["components"]["all"]
    assert base["duplicates_removed"] == 0 and every["duplicates_removed"] == base["available"]
    assert (base["train"], every["train"], base["heldout"], every["heldout"]) == (100, 300, 10, 30)
    texts = [(e.prompt, e.chosen, e.rejected) for e in got.train + got.heldout]
    assert len(texts) == len(set(texts))


def test_a_component_too_small_is_named(data_dir):
    with pytest.raises(DataValidationError, match=r"component 'harmless' has \d+ pairs .* needs"):
        load_preferences(_mix(["preference.max_pairs=8000"]), seed=0)
    with pytest.raises(DataValidationError, match="labels must differ"):
        load_preferences(_mix(["preference.mix=[{name: hh_rlhf}, {name: hh_rlhf}]"]), seed=0)


def test_max_chars_leaves_long_pairs_out_before_sampling_in_sets_and_mixtures(data_dir):
    from rmlab.data.preference import pair_chars, read_examples

    cfg = compose_config(
        "train_rm", [f"paths.root_dir={ROOT}", "preference=hh_rlhf", "preference.files=['helpful-online/*.jsonl.gz']"]
    ).preference
    every, info = read_examples(cfg)
    assert info["longer_than_max_chars"] == 0
    cfg.max_chars = 1000
    short, info = read_examples(cfg)
    # counted, not lost silently: what was left out is exactly the pairs over the cap
    assert info["longer_than_max_chars"] == sum(pair_chars(e) > 1000 for e in every) == len(every) - len(short) > 0
    assert max(pair_chars(e) for e in short) <= 1000
    e = short[0]  # the rule: every prompt turn plus the longer response
    assert pair_chars(e) == sum(len(t) for _, t in e.prompt) + max(len(e.chosen), len(e.rejected))
    # a mixture passes its cap to every component that sets none
    got = load_preferences(
        _mix(["preference.max_chars=600", "preference.max_pairs=100", "preference.heldout_pairs=20"]), seed=0
    )
    assert all(pair_chars(x) <= 600 for x in got.train + got.heldout)
    assert all(c["longer_than_max_chars"] > 0 for c in got.info["components"].values())
