"""IFEval: the local copy's counts, hand-made generations scored by the official checkers (strict and loose, prompt
and instruction level), an instruction whose checker lacks its NLTK data counted as unscored (never as failed),
the headline switch, and bad records named by file, line and field."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.tasks import TASKS
from rmlab.policy_eval.tasks.base import ScoreContext
from rmlab.policy_eval.tasks.ifeval import follows
from tests.conftest import ROOT


def _task(data_dir, **over):
    cfg = OmegaConf.load(ROOT / "conf" / "task" / "ifeval.yaml")
    for k, v in over.items():
        OmegaConf.update(cfg, k, v)
    return TASKS["ifeval"](cfg, data_dir)


def _punkt_available() -> bool:
    import nltk

    try:
        nltk.data.find("tokenizers/punkt")
        return True
    except LookupError:
        return False


@pytest.fixture(scope="module")
def examples(data_dir):
    examples, prov = _task(data_dir).load()
    return {int(e.reference["key"]): e for e in examples}, prov


def test_the_local_copy_is_the_whole_set(examples):
    by_key, prov = examples
    # ../shared/data/ifeval/SOURCES.md: 541 prompts, 834 instructions
    assert len(by_key) == 541 and sum(len(e.reference["instruction_id_list"]) for e in by_key.values()) == 834
    assert prov["files"][0].endswith("ifeval/input_data.jsonl")


def test_hand_made_generations_strict_and_loose(data_dir, examples):
    by_key, _ = examples
    task = _task(data_dir)
    # 1001: punctuation:no_comma; 1019: change_case:english_lowercase (each the prompt's only instruction)
    outputs = {
        1001: "Day one: Tokyo. Day two: Kyoto.",  # no comma: followed
        1019: "Sure, here is my question:\nwhat are the boys holding?",  # a comma and a capital in line 1 only
    }
    chosen = [by_key[k] for k in outputs]
    gens = {"greedy": {by_key[k].id: [v] for k, v in outputs.items()}}
    rows, m = task.score(chosen, gens, ScoreContext(n_boot=0))
    r1001, r1019 = rows
    assert (r1001["strict"], r1001["loose"]) == ([True], [True])
    # strict reads the whole response (capital S); loose also tries it without its first line: lowercase
    assert (r1019["strict"], r1019["loose"]) == ([False], [True])
    assert m["prompt_strict"]["value"] == 0.5 and m["prompt_loose"]["value"] == 1.0
    assert m["metric"] == "prompt_level_loose_acc" and m["value"] == 1.0 and m["unscored_prompts"] == 0
    # the headline is a switch; every level is reported whatever it is
    _, m2 = _task(data_dir, headline="prompt_strict").score(chosen, gens, ScoreContext(n_boot=0))
    assert (m2["metric"], m2["value"]) == ("prompt_level_strict_acc", 0.5)
    # an empty response follows nothing (upstream: `response.strip() and ...`)
    rows, _ = task.score(chosen[:1], {"greedy": {chosen[0].id: ["   "]}}, ScoreContext(n_boot=0))
    assert rows[0]["strict"] == [False] and rows[0]["loose"] == [False]


def test_a_checker_without_its_data_is_unscored_not_failed(data_dir, examples):
    by_key, _ = examples
    ex = by_key[1268]  # length_constraints:number_sentences, fewer than 6 sentences: NLTK's Punkt model counts them
    record = {**ex.reference, "prompt": ex.user}
    got = follows(record, "I felt calm today. I walked. I slept well.")
    if _punkt_available():
        assert got == {"strict": [True], "loose": [True], "unscored": {}}
    else:
        assert got["strict"] == [None] and "number_sentences: NLTK data missing" in got["unscored"][0]
        rows, m = _task(data_dir).score([ex], {"greedy": {ex.id: ["x."]}}, ScoreContext(n_boot=0))
        assert rows[0]["prompt_loose"] is None and m["unscored_prompts"] == 1 and m["prompt_loose"]["n"] == 0
    # a prompt mixing a scorable instruction with it: the scorable one is still scored
    mixed = {**record, "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_sentences"],
             "kwargs": [{}, record["kwargs"][0]]}  # fmt: skip
    got = follows(mixed, "One. Two, three.")
    assert got["strict"][0] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("prompt"), "field 'prompt' must be a non-empty string"),
        (lambda r: r.update(kwargs=[]), "field 'kwargs' must be a list of 1 objects"),
        (lambda r: r.update(instruction_id_list=["punctuation:no_commas"]), "names unknown instructions"),
        (lambda r: r.update(key="7"), "field 'key' must be an integer"),
    ],
)
def test_a_bad_record_is_named(tmp_path, change, message):
    rows = [{"key": 1, "prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}]
    rows.append(dict(rows[0], key=2))
    change(rows[1])
    (tmp_path / "ifeval").mkdir()
    (tmp_path / "ifeval" / "input_data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataValidationError, match=rf"input_data.jsonl, line 2 .*{message}"):
        _task(tmp_path).load()
