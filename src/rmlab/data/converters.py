"""Source rows -> :class:`PreferenceExample`, one converter per preference dataset.

Each converter takes one row as its source distributes it and a row id, and returns zero or more pairs, or raises
:class:`MalformedRow` (a broken row) or :class:`SkippedRow` (a row that is by rule no pair, such as a tie: counted
by reason). The rule each follows is stated in its docstring with its source.
"""

from __future__ import annotations

import random
import re

from rmlab.data.pairs import MalformedRow, PreferenceExample, SkippedRow
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
        raise SkippedRow("tie")
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


def chat_messages(conv, field: str) -> list[tuple[str, str]]:
    """``[{role, content}, ...]`` -> turns: an optional system turn, then user and assistant alternating from a
    user turn, every content a string (stripped)."""
    if not isinstance(conv, list) or not conv:
        raise MalformedRow(f"field '{field}' must be a non-empty list of messages")
    turns = []
    for k, m in enumerate(conv):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise MalformedRow(f"field '{field}', message {k}: needs a string 'content'")
        turns.append((m.get("role"), m["content"].strip()))
    body = turns[1:] if turns[0][0] == "system" else turns
    expected = ["user", "assistant"]
    for k, (role, _) in enumerate(body):
        if role != expected[k % 2]:
            raise MalformedRow(f"field '{field}': turn {k} is {role!r}, expected {expected[k % 2]!r} (not alternating)")
    return turns


def final_turn_pair(chosen: list[tuple[str, str]], rejected: list[tuple[str, str]]) -> tuple[tuple, str, str]:
    """Two conversations that share every turn but the last, an assistant turn: (prompt, chosen, rejected)."""
    if len(chosen) != len(rejected) or chosen[:-1] != rejected[:-1]:
        raise MalformedRow("'chosen' and 'rejected' differ before their final turn")
    if chosen[-1][0] != "assistant":
        raise MalformedRow("the final turn is not an assistant turn")
    if not chosen[-1][1] or not rejected[-1][1]:
        raise MalformedRow("empty response")
    return tuple(chosen[:-1]), chosen[-1][1], rejected[-1][1]


@CONVERTERS.register("messages_pair")
def messages_pair(row: dict, row_id: str) -> list[PreferenceExample]:
    """``{chosen: [messages], rejected: [messages], ...}``: two whole conversations that differ in the final
    assistant turn. The layout of allenai/tulu-2.5-preference-data (every split, ``source`` per row; EasyLM
    ``conversion_scripts/convert_preference_data.py``), HuggingFaceH4/ultrafeedback_binarized (``*_prefs`` splits,
    with ``score_chosen`` / ``score_rejected``), Skywork-Reward-Preference-80K and the Tulu 3 preference mixtures
    (their cards). The pair is taken as given; where the row carries both scores and they are equal it is a tie,
    counted and skipped (the cards are silent on ties; a tie states no preference)."""
    chosen = chat_messages(row.get("chosen"), "chosen")
    rejected = chat_messages(row.get("rejected"), "rejected")
    prompt, c, r = final_turn_pair(chosen, rejected)
    sc, sr = row.get("score_chosen"), row.get("score_rejected")
    if sc is not None and sr is not None and float(sc) == float(sr):
        raise SkippedRow("tie (score_chosen == score_rejected)")
    meta = {k: row[k] for k in ("source", "prompt_id", "id", "score_chosen", "score_rejected") if k in row}
    return [PreferenceExample(str(row.get("source") or "messages_pair"), row_id, prompt, c, r, meta)]


def _signed_preference(row: dict, field: str, first: str, second: str) -> tuple[str, str, int]:
    """NVIDIA's -3..3 preference (negative: the first response is better; 0: about the same, a counted tie)."""
    strength = row.get(field)
    if isinstance(strength, bool) or not isinstance(strength, int) or not -3 <= strength <= 3:
        raise MalformedRow(f"field '{field}' must be an integer in -3..3, got {strength!r}")
    if strength == 0:
        raise SkippedRow("tie (preference 0)")
    a, b = row.get(first), row.get(second)
    for name, text in ((first, a), (second, b)):
        if not isinstance(text, str) or not text.strip():
            raise MalformedRow(f"field '{name}' must be a non-empty string")
    return (a.strip(), b.strip(), strength) if strength < 0 else (b.strip(), a.strip(), strength)


_EXTRA_ID = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")


@CONVERTERS.register("helpsteer2_preference")
def helpsteer2_preference(row: dict, row_id: str, split: str | None = "train") -> list[PreferenceExample]:
    """nvidia/HelpSteer2 ``preference/preference.jsonl.gz`` (card, "Preferences", 1 Oct 2024): ``prompt``,
    ``response_1``, ``response_2``, ``preference_strength`` in -3..3 (negative: response 1 better), ``split``.
    Multi-turn prompts hold earlier turns separated by ``<extra_id_1>Assistant`` / ``<extra_id_1>User`` lines (the
    card's "Dataset Description"). Rows of another ``split`` than the configured one, and ties, are counted skips."""
    if split is not None and row.get("split") != split:
        raise SkippedRow(f"split {row.get('split')!r}")
    text = row.get("prompt")
    if not isinstance(text, str) or not text.strip():
        raise MalformedRow("field 'prompt' must be a non-empty string")
    parts = _EXTRA_ID.split(text)
    turns = [("user", parts[0].strip())]
    for k in range(1, len(parts) - 1, 2):
        turns.append((parts[k].lower(), parts[k + 1].strip()))
    if any(role != ("user", "assistant")[k % 2] or not content for k, (role, content) in enumerate(turns)):
        raise MalformedRow("field 'prompt': turns are not user / assistant alternating, or one is empty")
    if turns[-1][0] != "user":
        raise MalformedRow("field 'prompt' does not end with a user turn")
    c, r, strength = _signed_preference(row, "preference_strength", "response_1", "response_2")
    return [PreferenceExample("helpsteer2", row_id, tuple(turns), c, r, {"preference_strength": strength})]


@CONVERTERS.register("helpsteer3")
def helpsteer3(row: dict, row_id: str) -> list[PreferenceExample]:
    """nvidia/HelpSteer3 preference rows (card): ``context`` (OpenAI-style messages ending with a user turn),
    ``response1``, ``response2``, ``overall_preference`` in -3..3 (negative: response 1 better), ``domain``,
    ``language``. Ties (0) are counted skips (NVIDIA's NeMo-RL ``format_helpsteer3`` keeps them as chosen ==
    rejected, which is no preference)."""
    turns = chat_messages(row.get("context"), "context")
    if turns[-1][0] != "user":
        raise MalformedRow("field 'context' does not end with a user turn")
    c, r, strength = _signed_preference(row, "overall_preference", "response1", "response2")
    meta = {"overall_preference": strength, "domain": row.get("domain"), "language": row.get("language")}
    return [PreferenceExample("helpsteer3", row_id, tuple(turns), c, r, meta)]
