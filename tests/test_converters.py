"""Preference converters on rows written in each source's real format."""

import pytest

from rmlab.data.converters import CONVERTERS, parse_hh_transcript
from rmlab.data.pairs import SkippedRow
from rmlab.data.preference import MalformedRow


def test_hh_rlhf_multi_turn_and_divergence():
    row = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Boil an egg?\n\nAssistant: Nine minutes in boiling water.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Boil an egg?\n\nAssistant: Eggs come from hens.",
    }
    (ex,) = CONVERTERS["hh_rlhf"](row, "helpful-base/test.jsonl.gz#0")
    assert ex.prompt == (("user", "Hi"), ("assistant", "Hello!"), ("user", "Boil an egg?"))
    assert ex.chosen == "Nine minutes in boiling water." and ex.rejected == "Eggs come from hens."
    # divergence earlier than the last turn: compare the first differing assistant turns, ignore the rest
    row2 = {
        "chosen": "\n\nHuman: Q\n\nAssistant: A1\n\nHuman: more\n\nAssistant: B1",
        "rejected": "\n\nHuman: Q\n\nAssistant: A2\n\nHuman: more\n\nAssistant: B2",
    }
    (ex2,) = CONVERTERS["hh_rlhf"](row2, "x#1")
    assert ex2.prompt == (("user", "Q"),) and (ex2.chosen, ex2.rejected) == ("A1", "A2")
    with pytest.raises(MalformedRow, match="do not diverge"):
        CONVERTERS["hh_rlhf"]({"chosen": row["chosen"], "rejected": row["chosen"]}, "x#2")
    with pytest.raises(MalformedRow, match="missing field 'rejected'"):
        CONVERTERS["hh_rlhf"]({"chosen": row["chosen"]}, "x#3")
    assert parse_hh_transcript("\n\nHuman: a\n\nAssistant: b") == [("user", "a"), ("assistant", "b")]


def test_stack_exchange_paired():
    row = {
        "qid": 42,
        "question": "How do I reverse a list?",
        "date": "2012-01-01",
        "metadata": ["u"],
        "response_j": "Use `l[::-1]`.",
        "response_k": "Write a loop.",
    }
    (ex,) = CONVERTERS["stack_exchange_paired"](row, "train#0")
    assert ex.prompt == (("user", "How do I reverse a list?"),) and ex.chosen == "Use `l[::-1]`."
    assert ex.meta["qid"] == 42
    with pytest.raises(MalformedRow, match="'response_k' must be a non-empty string"):
        CONVERTERS["stack_exchange_paired"]({**row, "response_k": ""}, "train#1")


def _conv(user, answer):
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def test_chatbot_arena_winner_ties_and_malformed():
    row = {
        "question_id": "q1",
        "model_a": "vicuna-13b",
        "model_b": "alpaca-13b",
        "winner": "model_b",
        "conversation_a": _conv("Prime > 10?", "12"),
        "conversation_b": _conv("Prime > 10?", "11"),
        "turn": 1,
        "language": "English",
    }
    (ex,) = CONVERTERS["chatbot_arena_2023"](row, "train#0")
    assert (ex.chosen, ex.rejected) == ("11", "12") and ex.prompt == (("user", "Prime > 10?"),)
    with pytest.raises(SkippedRow, match="tie"):
        CONVERTERS["chatbot_arena_2023"]({**row, "winner": "tie (bothbad)"}, "train#1")
    with pytest.raises(MalformedRow, match="field 'winner'"):
        CONVERTERS["chatbot_arena_2023"]({**row, "winner": "model_c"}, "train#2")


def test_nectar_rank_one_against_a_seeded_random_other():
    row = {
        "prompt": "\n\nHuman: Give me a synonym for happy.\n\nAssistant:",
        "turns": 1,
        "num_responses": 3,
        "answers": [
            {"answer": "Sad.", "model": "m7", "rank": 3},
            {"answer": "Joyful.", "model": "gpt-4", "rank": 1},
            {"answer": "Glad, I guess.", "model": "m2", "rank": 2},
        ],
        "source": ["anthropic-hh"],
    }
    (ex,) = CONVERTERS["nectar"](row, "train#0")
    assert ex.prompt == (("user", "Give me a synonym for happy."),) and ex.chosen == "Joyful."
    assert ex.rejected in {"Sad.", "Glad, I guess."}
    assert CONVERTERS["nectar"](row, "train#0")[0].rejected == ex.rejected  # reproducible
    with pytest.raises(MalformedRow, match="at least two answers"):
        CONVERTERS["nectar"]({**row, "answers": row["answers"][:1]}, "train#1")


def test_contents_are_stripped_as_easylm_formats_training_pairs():
    """EasyLM (Tulu 2.5's trainer) strips every message's content; ``preference.strip_content`` does the same at
    load time, and a response that is only whitespace becomes a counted malformed row, never an empty target."""
    from rmlab.data.pairs import PreferenceExample
    from rmlab.data.preference import convert_rows, stripped

    rows = [
        {"question": "  How do I reverse a list?\n", "response_j": "Use `l[::-1]`.\n\n", "response_k": " Loop. "},
        {"question": "Q", "response_j": "fine", "response_k": " \n "},
    ]
    for row in rows:
        row.update(qid=1, date="2012", metadata=[])
    kwargs = {
        "converter": CONVERTERS["stack_exchange_paired"],
        "id_prefix": "t",
        "where": "t.jsonl",
        "skip_malformed": True,
    }
    malformed = []
    (ex,) = convert_rows(rows, **kwargs, malformed=malformed, strip=True)
    assert ex.prompt == (("user", "How do I reverse a list?"),) and (ex.chosen, ex.rejected) == (
        "Use `l[::-1]`.",
        "Loop.",
    )
    assert [(m["file"], m["row"]) for m in malformed] == [("t.jsonl", 1)]  # counted, with its file and row
    blank = PreferenceExample("s", "s#0", (("user", "Q"),), "fine", "\n\t ")
    with pytest.raises(MalformedRow, match="empty once stripped"):
        stripped(blank)
    padded = PreferenceExample("s", "s#1", (("system", " Be brief.\n"), ("user", "\nQ ")), " yes\n", "no\n\n")
    assert stripped(padded) == PreferenceExample("s", "s#1", (("system", "Be brief."), ("user", "Q")), "yes", "no")
