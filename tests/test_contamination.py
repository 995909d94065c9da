"""Contamination check: exact and n-gram overlap on hand-made prompts, then on the real data: HH-RLHF's test pairs
against RM-Bench (whose chat prompts include AlpacaEval's helpful-base questions), counted, listed, and dropped on
request; a benchmark that cannot be read is reported as not checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmlab.data.contamination import BenchmarkIndex, ngrams, prompt_text
from rmlab.data.preference import load_preferences
from rmlab.training.contamination import decontaminate
from rmlab.utils.config import compose_config

ROOT = Path(__file__).parents[1]


def test_exact_and_ngram_overlap_by_hand():
    words = " ".join(f"w{i}" for i in range(20))  # 20 distinct words: 20 - 13 + 1 = 8 13-grams
    index = BenchmarkIndex("toy", [("toy/1", "What  is 2+2?"), ("toy/2", words)], n=13)
    assert prompt_text((("system", "x"), ("user", "WHAT is\n2+2?"))) == "what is 2+2?"
    assert index.match((("user", "what is 2+2?"),), 0.5) == ("exact", "toy/1")  # case and spacing aside
    # the first 16 words: 4 13-grams, all in the benchmark's -> 100% overlap
    assert index.match(" ".join(f"w{i}" for i in range(16)), 0.5) == ("ngram", "toy/2")
    # 13 benchmark words then 13 new ones: 14 13-grams of which 1 is shared (1/14 < 0.5)
    mixed = " ".join([*(f"w{i}" for i in range(13)), *(f"v{i}" for i in range(13))])
    assert len(ngrams(mixed, 13)) == 14 and index.match(mixed, 0.5) is None
    assert index.match(mixed, 1 / 14) == ("ngram", "toy/2")
    assert index.match("what is 3+3?", 0.5) is None  # shorter than 13 words: exact rule only


def _cfg(overrides):
    return compose_config("train_rm", [f"paths.root_dir={ROOT}", "preference.max_pairs=2000", *overrides])


def _load(cfg):
    return decontaminate(load_preferences(cfg.preference, seed=0), cfg)


def test_hh_rlhf_against_rm_bench_counted_and_dropped(data_dir):
    only_rm_bench = "contamination.benchmarks={rm_bench: [], reward_bench_2: []}"
    kept = _load(_cfg([only_rm_bench]))
    c = kept.info["contamination"]
    rm = c["benchmarks"]["rm_bench"]
    assert c["checked"] and rm["train"] > 0 and rm["exact"] > 0 and c["dropped"] == 0
    assert rm["train"] + rm["heldout"] == rm["exact"] + rm["ngram"] == len(c["matches"])  # fewer than max_listed
    # every listed match is real: the exact ones are equal texts
    pairs = {e.id: e for e in kept.train + kept.heldout}
    assert all(m["pair"] in pairs and m["item"].startswith(("chat/", "safety")) for m in c["matches"])
    # RewardBench 2 is Hub-only and the tests are offline: reported as not checked, with the reason
    assert "reward_bench_2" in c["not_checked"]
    dropped = _load(_cfg([only_rm_bench, "preference.decontaminate=true"]))
    assert dropped.info["contamination"]["dropped"] == rm["train"] + rm["heldout"]
    assert len(dropped.train) == len(kept.train) - rm["train"]
    assert {m["pair"] for m in c["matches"]}.isdisjoint(e.id for e in dropped.train + dropped.heldout)
    assert dropped.info["train_pairs"] == len(dropped.train) != kept.info["train_pairs"]


def test_switched_off():
    assert _load(_cfg(["contamination.enabled=false"])).info["contamination"] == {"checked": False}


@pytest.mark.parametrize("name", ["hh_rlhf", "nectar", "stack_exchange", "chatbot_arena_2023", "policy_samples"])
def test_every_preference_config_has_the_switch(name):
    assert compose_config("train_rm", [f"preference={name}"]).preference.decontaminate is False
