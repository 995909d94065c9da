"""Converters of today's preference sets, on records shaped as their cards document them (Tulu 2.5 splits,
UltraFeedback binarized, Skywork 80K and the Tulu 3 mixture share one layout; HelpSteer2 and HelpSteer3 their own),
with their malformed cases: an empty response, a tie, a conversation that does not alternate; and a local Tulu 2.5
split read end to end with its skips counted in the run's data record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmlab.data.converters import CONVERTERS
from rmlab.data.pairs import MalformedRow, SkippedRow
from rmlab.data.preference import load_preferences
from rmlab.utils.config import compose_config


def _msgs(*turns):
    return [{"role": r, "content": c} for r, c in turns]


# allenai/tulu-2.5-preference-data (EasyLM's output: chosen, rejected, source), multi-turn
TULU25 = {
    "chosen": _msgs(("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a prime."), ("assistant", " 7 ")),
    "rejected": _msgs(("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a prime."), ("assistant", "8")),
    "source": "hh-rlhf",
}
# HuggingFaceH4/ultrafeedback_binarized, train_prefs
UF = {
    "prompt": "Name a prime.", "prompt_id": "abc",
    "chosen": _msgs(("user", "Name a prime."), ("assistant", "7")),
    "rejected": _msgs(("user", "Name a prime."), ("assistant", "8")),
    "messages": _msgs(("user", "Name a prime."), ("assistant", "7")), "score_chosen": 8.0, "score_rejected": 5.0,
}  # fmt: skip


def test_messages_pair_reads_every_card_layout():
    (e,) = CONVERTERS["messages_pair"](TULU25, "hh_rlhf_60k#0")
    assert e.prompt == (("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a prime."))
    assert (e.chosen, e.rejected, e.source) == ("7", "8", "hh-rlhf")
    (u,) = CONVERTERS["messages_pair"](UF, "train_prefs#0")
    assert u.prompt == (("user", "Name a prime."),) and u.meta["score_chosen"] == 8.0
    # Tulu 3 mixture (id, prompt, chosen, rejected, source) and Skywork 80K (chosen, rejected, source), with a system
    tulu3 = {"id": "x1", "prompt": "Name a prime.", "source": "if", **{k: UF[k] for k in ("chosen", "rejected")}}
    assert CONVERTERS["messages_pair"](tulu3, "t#0")[0].meta["id"] == "x1"
    sky = {"chosen": _msgs(("system", "Be brief."), *[(m["role"], m["content"]) for m in UF["chosen"]]),
           "rejected": _msgs(("system", "Be brief."), *[(m["role"], m["content"]) for m in UF["rejected"]])}  # fmt: skip
    assert CONVERTERS["messages_pair"](sky, "s#0")[0].prompt[0] == ("system", "Be brief.")


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"score_rejected": 8.0}, SkippedRow, "tie"),
        ({"rejected": _msgs(("user", "Name a prime."), ("assistant", "  "))}, MalformedRow, "empty response"),
        ({"chosen": _msgs(("user", "a"), ("user", "b"), ("assistant", "7"))}, MalformedRow, "not alternating"),
        ({"rejected": _msgs(("user", "Name an odd prime."), ("assistant", "8"))}, MalformedRow, "before their final"),
        ({"chosen": "7"}, MalformedRow, "field 'chosen' must be a non-empty list"),
        ({"chosen": _msgs(("user", "Name a prime."), ("user", "7"))}, MalformedRow, "not alternating"),
    ],
)
def test_messages_pair_malformed_and_ties(change, error, match):
    with pytest.raises(error, match=match):
        CONVERTERS["messages_pair"]({**UF, **change}, "r#0")


# nvidia/HelpSteer2 preference/preference.jsonl.gz: a two-turn prompt in the card's <extra_id_1> encoding
HS2 = {
    "split": "train",
    "prompt": "Hi\n<extra_id_1>Assistant\nHello!\n<extra_id_1>User\nName a prime.",
    "response_1": "8", "response_2": "7", "preference_strength": 2,
    "preference_statement": "@Response 2 is better than @Response 1.", "preference_elaboration": "...",
}  # fmt: skip
# nvidia/HelpSteer3 preference
HS3 = {"domain": "stem", "language": "english", "context": _msgs(("user", "Name a prime.")),
       "response1": "7", "response2": "8", "overall_preference": -1, "individual_preference": []}  # fmt: skip


def test_helpsteer_sign_conventions_and_turns():
    (e,) = CONVERTERS["helpsteer2_preference"](HS2, "p#0")
    assert e.prompt == (("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a prime.")) and e.chosen == "7"
    (f,) = CONVERTERS["helpsteer3"](HS3, "p#0")  # -1: response1 slightly better
    assert (f.chosen, f.rejected, f.meta["domain"]) == ("7", "8", "stem")


@pytest.mark.parametrize(
    "name, row, error, match",
    [
        ("helpsteer2_preference", {**HS2, "preference_strength": 0}, SkippedRow, "tie"),
        ("helpsteer2_preference", {**HS2, "split": "val"}, SkippedRow, "split 'val'"),
        ("helpsteer2_preference", {**HS2, "response_2": ""}, MalformedRow, "response_2"),
        ("helpsteer2_preference", {**HS2, "prompt": "Hi\n<extra_id_1>User\nagain"}, MalformedRow, "alternating"),
        ("helpsteer2_preference", {**HS2, "preference_strength": 4}, MalformedRow, "-3..3"),
        ("helpsteer3", {**HS3, "overall_preference": 0}, SkippedRow, "tie"),
        ("helpsteer3", {**HS3, "response1": " "}, MalformedRow, "response1"),
        ("helpsteer3", {**HS3, "context": _msgs(("user", "a"), ("assistant", "b"))}, MalformedRow, "user turn"),
    ],
)
def test_helpsteer_malformed_and_ties(name, row, error, match):
    with pytest.raises(error, match=match):
        CONVERTERS[name](row, "p#0")


def test_a_local_tulu25_split_end_to_end(tmp_path):
    """A local copy of one split: its rows in, ties and malformed rows counted (skip_malformed), the run's record
    saying so."""
    split = tmp_path / "tulu25" / "nectar_60k-00000-of-00001.jsonl"
    split.parent.mkdir()
    rows = [
        {**TULU25, "chosen": [*TULU25["chosen"][:-1], {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(30)
    ]
    rows += [{**UF, "score_rejected": 8.0}, {**UF, "rejected": "oops"}]  # a tie and a malformed row
    split.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = compose_config(
        "train_rm",
        [f"paths.root_dir={Path(__file__).parents[1]}", "preference=tulu25", "preference.split=nectar_60k",
         f"preference.data_dir={split.parent}", "preference.heldout_pairs=5", "preference.skip_malformed=true",
         "contamination.enabled=false"],
    )  # fmt: skip
    got = load_preferences(cfg.preference, seed=0)
    assert len(got.train) == 25 and len(got.heldout) == 5
    assert got.info["skipped_rows"] == {"tie (score_chosen == score_rejected)": 1} and got.info["malformed_rows"] == 1
