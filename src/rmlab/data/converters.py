"""Source rows -> :class:`PreferenceExample`, one converter per preference dataset.

Each converter takes one row as its source distributes it and a row id, and returns zero or more pairs, or raises
:class:`MalformedRow`. The rule each follows is stated in its docstring with its source.
"""

from __future__ import annotations

import random
import re

from rmlab.data.pairs import MalformedRow, PreferenceExample
from rmlab.utils.registry import Registry

CONVERTERS: Registry = Registry("preference converter")

_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_hh_transcript(text: str) -> list[tuple[str, str]]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b"`` -> ``[("user", "a"), ("assistant", "b")]``."""
    if not isinstance(text, str):
        raise MalformedRow(f"transcript must be a string, got {type(text).__name__}")
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise MalformedRow("transcript does not start with a '\\n\\nHuman: ' turn")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [(roles[parts[i]], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


def split_at_divergence(chosen: list[tuple[str, str]], rejected: list[tuple[str, str]]) -> tuple[tuple, str, str]:
    """Shared leading turns, then the first turn where the two conversations differ (both must be assistant
    turns); later turns are ignored."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == len(chosen) or n == len(rejected):
        raise MalformedRow("'chosen' and 'rejected' do not diverge (identical, or one extends the other)")
    if chosen[n][0] != "assistant" or rejected[n][0] != "assistant":
        raise MalformedRow("the first differing turn is not an assistant turn in both conversations")
    if not chosen[n][1] or not rejected[n][1] or not any(role == "user" for role, _ in chosen[:n]):
        raise MalformedRow("empty response, or no user turn before it")
    return tuple(chosen[:n]), chosen[n][1], rejected[n][1]


@CONVERTERS.register("hh_rlhf")
def hh_rlhf(row: dict, row_id: str) -> list[PreferenceExample]:
    """Anthropic HH-RLHF ``{chosen, rejected}`` transcripts (``\\n\\nHuman: ... \\n\\nAssistant: ...``).

    Tulu-2.5 rule (hamishivi/EasyLM ``conversion_scripts/convert_preference_data.py``, the script the
    allenai/tulu-2.5-preference-data card names): split into user / assistant turns; the prompt is the longest run
    of identical leading turns; chosen and rejected are the first differing turns, which must be assistant turns;
    later turns are ignored; pairs that never diverge or have an empty turn are dropped.
    """
    for field in ("chosen", "rejected"):
        if field not in row:
            raise MalformedRow(f"missing field '{field}'")
    prompt, chosen, rejected = split_at_divergence(
        parse_hh_transcript(row["chosen"]), parse_hh_transcript(row["rejected"])
    )
    return [PreferenceExample("hh_rlhf", row_id, prompt, chosen, rejected)]


@CONVERTERS.register("stack_exchange_paired")
def stack_exchange_paired(row: dict, row_id: str) -> list[PreferenceExample]:
    """``lvwerra/stack-exchange-paired`` ``{qid, question, response_j, response_k}``: j was rated above k.

    Tulu-2.5 rule (EasyLM ``convert_preference_data.py``; the Tulu-2.5 StackExchange models use "a 60k random
    subsample of the StackExchange paired dataset"): prompt = question, chosen = response_j, rejected =
    response_k. That dataset is built from HuggingFaceH4/stack-exchange-preferences by pairing answers of
    strictly different ``pm_score`` (at most 10 pairs per question), with HTML turned into markdown.
    """
    fields = ("question", "response_j", "response_k")
    for f in fields:
        if not isinstance(row.get(f), str) or not row[f].strip():
            raise MalformedRow(f"field '{f}' must be a non-empty string")
    if row["response_j"].strip() == row["response_k"].strip():
        raise MalformedRow("'response_j' and 'response_k' are identical")
    return [
        PreferenceExample(
            "stack_exchange",
            row_id,
            (("user", row["question"].strip()),),
            row["response_j"].strip(),
            row["response_k"].strip(),
            {"qid": row.get("qid")},
        )
    ]


def _messages(conv, field: str) -> list[tuple[str, str]]:
    if not isinstance(conv, list) or not conv:
        raise MalformedRow(f"field '{field}' must be a non-empty list of messages")
    turns = []
    for m in conv:
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant")
            or not isinstance(m.get("content"), str)
        ):
            raise MalformedRow(f"field '{field}' has a message without a user/assistant role and string content")
        turns.append((m["role"], m["content"].strip()))
    return turns


@CONVERTERS.register("chatbot_arena_2023")
def chatbot_arena_2023(row: dict, row_id: str) -> list[PreferenceExample]:
    """``lmsys/chatbot_arena_conversations``: two models' conversations and the user's vote.

    Rule: ties (``tie``, ``tie (bothbad)``) are dropped (returned as no pair, not as malformed); the winner's
    conversation is chosen, the other rejected; both must share their leading turns, and the first differing turn
    (an assistant turn) is compared, as for HH-RLHF. The Tulu-2.5 card gives 20,465 pairs but not its script; this
    is the common public rule (drop ties, winner = chosen).
    """
    winner = row.get("winner")
    if winner not in ("model_a", "model_b", "tie", "tie (bothbad)"):
        raise MalformedRow(f"field 'winner' is {winner!r}")
    if winner.startswith("tie"):
        return []
    a, b = (
        _messages(row.get("conversation_a"), "conversation_a"),
        _messages(row.get("conversation_b"), "conversation_b"),
    )
    chosen, rejected = (a, b) if winner == "model_a" else (b, a)
    prompt, c, r = split_at_divergence(chosen, rejected)
    return [
        PreferenceExample(
            "chatbot_arena_2023",
            row_id,
            prompt,
            c,
            r,
            {"model_a": row.get("model_a"), "model_b": row.get("model_b"), "winner": winner},
        )
    ]


@CONVERTERS.register("nectar")
def nectar(row: dict, row_id: str) -> list[PreferenceExample]:
    """``berkeley-nest/Nectar`` ``{prompt: "\\\\n\\\\nHuman: ...\\\\n\\\\nAssistant:", answers: [{answer, model, rank}]}``.

    Tulu-2.5 rule (EasyLM ``convert_preference_data.py``, Nectar branch): the prompt transcript is parsed into
    turns like HH-RLHF; answers are sorted by rank (1 = best); chosen = the rank-1 answer; rejected = one of the
    other answers drawn uniformly at random. Here the draw is seeded by the row id, so it is reproducible.
    """
    prompt = parse_hh_transcript(row.get("prompt"))
    if prompt and prompt[-1] == ("assistant", ""):
        prompt = prompt[:-1]  # the trailing empty "Assistant:" cue
    if not prompt or prompt[-1][0] != "user":
        raise MalformedRow("field 'prompt' must end with a user turn")
    answers = row.get("answers")
    if not isinstance(answers, list) or len(answers) < 2:
        raise MalformedRow("field 'answers' must list at least two answers")
    try:
        ranked = sorted(answers, key=lambda a: float(a["rank"]))
        texts = [a["answer"].strip() for a in ranked]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MalformedRow(f"field 'answers' has an answer without a numeric 'rank' and a string 'answer' ({err})")
    j = 1 + random.Random(row_id).randrange(len(texts) - 1)
    if not texts[0] or not texts[j] or texts[0] == texts[j]:
        raise MalformedRow("empty or identical chosen / rejected answers")
    return [
        PreferenceExample(
            "nectar",
            row_id,
            tuple(prompt),
            texts[0],
            texts[j],
            {"chosen_rank": ranked[0]["rank"], "rejected_rank": ranked[j]["rank"]},
        )
    ]


def with_answer_prefix(answer_prefix: str, sample: str) -> str:
    """A sampled continuation as the assistant's whole turn: the task's answer prefix (part of the prompt when it
    was sampled), then the sample, a space between unless one is there."""
    if not answer_prefix:
        return sample
    return answer_prefix + (sample if sample[:1] in (" ", "\n") else " " + sample)


@CONVERTERS.register("policy_samples")
def policy_samples(row: dict, row_id: str) -> list[PreferenceExample]:
    """A policy's own samples with gold scores: a row of a ``best_of_n`` run's ``samples.jsonl``
    (``{id, prompt, answer_prefix, samples, gold}``).

    Rule (ours): the samples are ordered by gold score, best first (ties in sampling order); the k-th best is
    paired with the k-th worst while the first scores higher, so every pair prefers the sample the gold check
    prefers and no sample is in two pairs. A prompt whose samples all score the same gives no pair.
    """
    prompt, samples, gold = row.get("prompt"), row.get("samples"), row.get("gold")
    if not isinstance(prompt, str) or not prompt:
        raise MalformedRow("field 'prompt' must be a non-empty string")
    if not isinstance(samples, list) or not isinstance(gold, list) or len(samples) != len(gold):
        raise MalformedRow("fields 'samples' and 'gold' must be lists of the same length")
    try:
        scores = [float(g) for g in gold]
    except (TypeError, ValueError) as err:
        raise MalformedRow(f"field 'gold' must hold numbers ({err})") from None
    prefix = row.get("answer_prefix") or ""
    order = sorted(range(len(samples)), key=lambda i: -scores[i])
    pairs = []
    for k in range(len(order) // 2):
        good, bad = order[k], order[-1 - k]
        if scores[good] <= scores[bad]:
            break
        pairs.append(
            PreferenceExample(
                "policy_samples",
                f"{row_id}:{k}",
                (("user", prompt),),
                with_answer_prefix(prefix, samples[good]),
                with_answer_prefix(prefix, samples[bad]),
                {"prompt_id": row.get("id"), "gold": (scores[good], scores[bad])},
            )
        )
    return pairs
