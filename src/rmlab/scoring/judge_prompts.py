"""Judge prompts of the reward-model benchmarks, and how each one's verdict is read from a judge's text.

A template is the benchmark authors' own text (system message and user message, verbatim but for the names of
the placeholders) and the verdict format it asks for. Sources, read at these commits:

- ``rewardbench_pair_v2``: allenai/reward-bench@6b95524 (v0.1.4) ``rewardbench/generative.py:103-111``
  (``prompt_v2``, the system message) and ``:141-149`` (``MTBENCH_V2``, the user message), rendered as
  ``format_judge_answers`` does (``:349-356``); verdict ``[[A]]`` / ``[[B]]`` (``process_judgement``, ``:489-495``).
  RM-Bench (THU-KEG/RM-Bench@73c52d7) has no judge code of its own: its ``allenai_rewardbench`` submodule
  (allenai/reward-bench@1266638) carries this same prompt and parser, so it is RM-Bench's default too.
- ``rewardbench_rating``: the same file, ``ratings_prompt`` (``:596-612``), no system message (``:637``); the
  rating is the integer 1-10 that ends the text (``:677-683``), so "7/10" reads as 10: such answers are counted
  (:func:`ends_with_scale`), and ``rewardbench_rating_strict`` is the same prompt with them read as 7.
- ``rewardmath_pair`` / ``rewardmath_rating``: kimsh0507/RewardMATH_official@cde06ab
  ``prompt/experiments_prompts.yaml:14-28`` (``llm_judgement_pair``) and ``:1-13`` (``llm_judgement``), system
  message + user message (``src/prompts.py:321-332``), solutions as numbered steps (``src/utils/utils.py:16-24``,
  rendered by the benchmark plug-in); verdict ``Judgement: [[A]]`` / ``Rating: [[5]]``
  (``src/inference_reward.py:200-228``).
- ``rmbench_boxed``: the prompt RM-Bench's README gives for its DPSK-R1 baseline (``README.md:54-76``), a user
  message only; verdict ``\\boxed{A>>B}`` ... ``\\boxed{B>>A}`` with ``\\boxed{A=B}`` a tie. The README gives no
  parser; ours reads the last boxed verdict.
- ``arena_hard_v0.1``: lmarena/arena-hard-auto@3071ef9 ``config/judge_config.yaml:19`` (system message) and ``:21``
  (user message, one question and two answers, composed by ``gen_judgment.py:66-93``); five verdicts ``[[A>>B]]``
  ... ``[[B>>A]]`` read with upstream's own rule (:func:`parse_arena_hard_verdict`), and upstream's second attempt
  when the first answer holds no verdict tag at all (``gen_judgment.py:95-114``, :class:`FollowUp`). The verdict
  keeps its strength (``A>>B``); :func:`rmlab.metrics.judge.verdict_side` reduces it to ``A`` / ``B`` / ``tie``
  where only the side counts.

Parsing is stricter than some sources in one direction only: an unreadable verdict is ``None`` (counted by the
caller and never a win), where RewardMATH's rating parser falls back to a rating of 1 and its pairwise parser
takes the first capital A or B after ``Judgement:`` (so ``Judgement: Assistant B`` reads as A). Where a text
holds several tags, the last one is the verdict (judges explain first and often quote the format on the way);
rewardbench reads ``[[A]]`` anywhere before looking for ``[[B]]``. Arena-Hard's parser is upstream's exactly (two
different labels are no verdict), because its scores are compared with a published leaderboard. docs/fidelity.md
lists each difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from rmlab.utils.registry import Registry

MODES = ("pairwise", "rating")
RATING_RANGE = (1, 10)


@dataclass(frozen=True)
class FollowUp:
    """A second attempt at a verdict: where ``needed(text)`` holds for the judge's first answer, the conversation
    goes on with that answer and ``prompt`` as the next user turn, and the verdict is read from both answers
    together (Arena-Hard's ``number_of_judgment_attempts: 2``)."""

    prompt: str
    needed: Callable[[str], bool]


@dataclass(frozen=True)
class JudgePrompt:
    """One judge protocol: its messages and its verdict parser.

    ``user`` is a ``str.format`` template over ``{question}`` and ``{answer_a}``, ``{answer_b}`` (pairwise) or
    ``{answer}`` (rating); ``parse`` maps the judge's text to a verdict (pairwise: ``A`` / ``B`` / ``tie``, or one
    of :data:`ARENA_HARD_LABELS` for prompts that grade the preference) or an integer rating in 1-10, and to
    ``None`` when no verdict can be read. ``follow_up``: the source's second attempt, if it makes one.
    ``verdict_prefix`` and ``verdict_choices``: the start of the verdict the prompt asks for and each complete label
    it offers after it (ties only where the prompt offers one), so that ``parse(verdict_prefix + choice)`` is that
    label's verdict: what a judge's next-token probabilities are read against (``model.judge.verdict=logprob``).
    """

    id: str
    mode: str
    system: str | None
    user: str
    parse: Callable[[str], str | int | None]
    source: str
    follow_up: FollowUp | None = None
    verdict_prefix: str = ""
    verdict_choices: tuple[str, ...] = ()

    def messages(self, question: str, *answers: str) -> list[dict]:
        """The chat messages for one judgement: two answers (A, B) in pairwise mode, one in rating mode."""
        if self.mode == "pairwise":
            a, b = answers
            user = self.user.format(question=question, answer_a=a, answer_b=b)
        else:
            (answer,) = answers
            user = self.user.format(question=question, answer=answer)
        system = [] if self.system is None else [{"role": "system", "content": self.system}]
        return [*system, {"role": "user", "content": user}]


JUDGE_PROMPTS: Registry[JudgePrompt] = Registry("judge prompt")


def _register(prompt: JudgePrompt) -> JudgePrompt:
    if prompt.mode not in MODES:
        raise ValueError(f"judge prompt {prompt.id!r}: mode {prompt.mode!r} is not one of {MODES}")
    unread = [c for c in prompt.verdict_choices if prompt.parse(prompt.verdict_prefix + c) is None]
    if unread:
        raise ValueError(f"judge prompt {prompt.id!r}: its parser reads no verdict in the label(s) {unread}")
    return JUDGE_PROMPTS.register(prompt.id)(prompt)


_TAG = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_TAG_VERDICT = {"A": "A", "B": "B", "C": "tie"}  # [[C]]: MT-Bench's tie tag, which rewardbench's v2 prompt dropped


def parse_bracket_verdict(text: str, anchor: str | None = None) -> str | None:
    """``A`` / ``B`` / ``tie`` from ``[[A]]`` / ``[[B]]`` / ``[[C]]``, the last tag in the text; with ``anchor``
    (RewardMATH's ``Judgement:``) only the text after its last occurrence counts, and a bare letter right after
    the anchor (``Judgement: B``) is read too."""
    after = text.rsplit(anchor, 1)[1] if anchor and anchor in text else None
    tags = _TAG.findall(text if after is None else after)
    if tags:
        return _TAG_VERDICT[tags[-1]]
    if after is not None:
        bare = re.match(r"[\s*\"'(]*([AB])\b", after)
        if bare:
            return bare.group(1)
    return None


_BOXED = re.compile(r"\\boxed\{\s*(A\s*>>\s*B|A\s*>\s*B|A\s*=\s*B|B\s*>\s*A|B\s*>>\s*A)\s*\}")


def parse_boxed_verdict(text: str) -> str | None:
    """RM-Bench's README format: the last ``\\boxed{A>>B}``, ``{A>B}`` (A), ``{A=B}`` (tie), ``{B>A}``,
    ``{B>>A}`` (B)."""
    found = _BOXED.findall(text)
    if not found:
        return None
    verdict = re.sub(r"\s", "", found[-1])
    return "tie" if verdict == "A=B" else verdict[0]


# Arena-Hard-Auto v0.1 (lmarena/arena-hard-auto@3071ef9): config/judge_config.yaml:17 and the five labels of :19
ARENA_HARD_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")
ARENA_HARD_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")


def parse_arena_hard_verdict(text: str) -> str | None:
    """Upstream's ``get_score`` (``gen_judgment.py:22-32``): every match of ``\\[\\[([AB<>=]+)\\]\\]``; exactly one
    distinct label is the verdict, none or several different ones are no verdict (the same label repeated is
    fine). A single label outside the five (``[[A]]``, ``[[A>>>B]]``) is upstream's score string all the same,
    which ``show_result.py:45-46`` then weighs 0; here it is ``None`` at once."""
    found = set(ARENA_HARD_PATTERN.findall(text))
    if len(found) != 1:
        return None
    (label,) = found
    return label if label in ARENA_HARD_LABELS else None


def has_no_arena_hard_tag(text: str) -> bool:
    """Upstream's condition for a second attempt (``get_score``'s ``try_again``): no match of the pattern at all;
    two different labels are final."""
    return ARENA_HARD_PATTERN.search(text) is None


def _in_range(value: int) -> int | None:
    return value if RATING_RANGE[0] <= value <= RATING_RANGE[1] else None


def parse_trailing_rating(text: str) -> int | None:
    """rewardbench's rule: the integer 1-10 that ends the text (``\\b([1-9]|10)\\b\\s*$``); ours also reads it
    wrapped as ``[[7]]`` or followed by a full stop."""
    found = re.search(r"(?:\[\[\s*)?\b([1-9]|10)\b(?:\s*\]\])?\s*\.?\s*$", text.strip())
    return int(found.group(1)) if found else None


# a rating written against its scale at the very end ("7/10", "3 out of 10."): rewardbench's rule reads the 10
_SCALE_ENDING = re.compile(r"\b([1-9]|10)\s*(?:/|out\s+of)\s*10\s*\.?\s*$", re.IGNORECASE)


def ends_with_scale(text: str) -> bool:
    """Whether ``text`` ends in "n/10" or "n out of 10", which :func:`parse_trailing_rating` (rewardbench's rule)
    reads as 10: such answers are counted (``rating_ends_with_scale`` in ``metrics.json``)."""
    return _SCALE_ENDING.search(text.strip()) is not None


def parse_trailing_rating_strict(text: str) -> int | None:
    """rewardbench's rule, except that a text ending in "n/10" or "n out of 10" is rated n, not 10 (the
    ``rewardbench_rating_strict`` prompt: the same text, this parser)."""
    found = _SCALE_ENDING.search(text.strip())
    return int(found.group(1)) if found else parse_trailing_rating(text)


def parse_labelled_rating(text: str) -> int | None:
    """RewardMATH's rule: the first integer after the last ``Rating:`` (``Rating: [[7]]`` -> 7); without the
    label, the last ``[[n]]`` in the text. Outside 1-10, or absent: ``None`` (RewardMATH: a rating of 1)."""
    if "Rating:" in text:
        found = re.search(r"-?\d+", text.rsplit("Rating:", 1)[1])  # signed: "-3" is out of range, not 3
        return _in_range(int(found.group(0))) if found else None
    tags = re.findall(r"\[\[\s*(\d+)\s*\]\]", text)
    return _in_range(int(tags[-1])) if tags else None


RB_V2 = "allenai/reward-bench@6b95524"
RMATH = "kimsh0507/RewardMATH_official@cde06ab"

# MT-Bench's pairwise judge instructions (Zheng et al. 2023), which rewardbench and RewardMATH both use verbatim up to
# the verdict format each asks for
_PAIR_INTRO = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's "
    "instructions and answers the user's question better. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your "
    "evaluation by comparing the two responses and provide a short explanation. Avoid any position biases and "
    "ensure that the order in which the responses were presented does not influence your decision. Do not "
    "allow the length of the responses to influence your evaluation. Do not favor certain names of the "
    "assistants. Be as objective as possible. After providing your explanation, output your final verdict by "
)
_PAIR_USER = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant "
    "A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
# Arena-Hard's user message (judge_config.yaml:21, with {question_1}, {answer_1}, {answer_2} renamed), which
# RM-Bench's boxed prompt ends with too
_ARENA_USER = (
    "<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant "
    "A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)

_register(
    JudgePrompt(
        id="rewardbench_pair_v2",
        mode="pairwise",
        system=(
            _PAIR_INTRO
            + 'strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better.'
        ),
        user=_PAIR_USER,
        parse=parse_bracket_verdict,
        source=f"{RB_V2}:rewardbench/generative.py:103-111,141-149,489-495",
        verdict_prefix="[[",
        verdict_choices=("A]]", "B]]"),  # the prompt offers no tie
    )
)

_register(
    JudgePrompt(
        id="rewardbench_rating",
        mode="rating",
        system=None,
        user=(
            "\n### Task Description\nPlease act as an impartial judge and evaluate the quality of the response "
            "provided by an\nAI assistant to the user query displayed below.\n\nNotes:\n1- Your evaluation should "
            "consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of "
            "the response.\n2- Begin your evaluation by providing a short explanation.\n3- Be as objective as "
            "possible. After providing your explanation, please rate the response on a scale of 1 to 10. For your "
            "rating, only give a number between 1 and 10 (inclusive), do not use any markdown, and do not put any "
            "text after your final rating.\n\n[Query]\n{question}\n\n[Response]\n{answer}\n\n[Your judgement]"
        ),
        parse=parse_trailing_rating,
        source=f"{RB_V2}:rewardbench/generative.py:596-612,677-683",
    )
)
_register(  # the same prompt, with "7/10" and "3 out of 10" read as 7 and 3 where rewardbench's regex reads 10
    replace(
        JUDGE_PROMPTS["rewardbench_rating"],
        id="rewardbench_rating_strict",
        parse=parse_trailing_rating_strict,
        source=f"{RB_V2}:rewardbench/generative.py:596-612 (prompt); parser: ours",
    )
)

_register(
    JudgePrompt(
        id="rewardmath_pair",
        mode="pairwise",
        system=(
            _PAIR_INTRO
            + 'strictly following this format: "Judgement: [[A]]" if assistant A is better, "Judgement: [[B]]" if '
            "assistant B is better."
        ),
        user=_PAIR_USER,
        parse=lambda text: parse_bracket_verdict(text, anchor="Judgement:"),
        source=f"{RMATH}:prompt/experiments_prompts.yaml:14-28; src/inference_reward.py:208-221",
        verdict_prefix="Judgement: [[",
        verdict_choices=("A]]", "B]]"),
    )
)

_register(
    JudgePrompt(
        id="rewardmath_rating",
        mode="rating",
        system=(
            "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to "
            "the user question displayed below. Your evaluation should consider factors such as the helpfulness, "
            "relevance, accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by "
            "providing a short explanation. Be as objective as possible. After providing your explanation, please "
            'rate the response on a scale of 1 to 10 by strictly following this format: "[[rating]]", for example: '
            '"Rating: [[5]]". Let\'s think step by step.'
        ),
        user=(
            "[Question]\n{question}\n[The Start of Assistant\u2019s Answer]\nSolution:\n{answer}\n[The End of "
            "Assistant\u2019s Answer]"
        ),
        parse=parse_labelled_rating,
        source=f"{RMATH}:prompt/experiments_prompts.yaml:1-13; src/inference_reward.py:222-228",
    )
)

_register(
    JudgePrompt(
        id="rmbench_boxed",
        mode="pairwise",
        system=None,
        user=(
            "You will be shown a user prompt followed by two responses from different assistants. Your task is to "
            "decide which response is better. You may consider any criteria you find appropriate. Try your best and "
            "think carefully, deeply analyze the responses, and provide a final verdict.\nEnsure in the end that you "
            "should include the final verdict in the specified format as follows:\n\n1. Assistant A is significantly "
            "better: \\boxed{{A>>B}}\n2. Assistant A is slightly better: \\boxed{{A>B}}\n3. Tie, relatively the same: "
            "\\boxed{{A=B}}\n4. Assistant B is slightly better: \\boxed{{B>A}}\n5. Assistant B is significantly "
            "better: \\boxed{{B>>A}}\n\n" + _ARENA_USER
        ),
        parse=parse_boxed_verdict,
        source="THU-KEG/RM-Bench@73c52d7:README.md:54-76",
        verdict_prefix="\\boxed{",
        verdict_choices=("A>>B}", "A>B}", "A=B}", "B>A}", "B>>A}"),
    )
)

AH = "lmarena/arena-hard-auto@3071ef9"

_register(
    JudgePrompt(
        id="arena_hard_v0.1",
        mode="pairwise",
        system=(  # judge_config.yaml:19, verbatim (YAML escapes resolved)
            "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
            "to the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. "
            "Your job is to evaluate which assistant's answer is better.\n\nBegin your evaluation by generating your "
            "own answer to the prompt. You must provide your answers before judging any answers.\n\nWhen evaluating "
            "the assistants' answers, compare both assistants' answers with your answer. You must identify and "
            "correct any mistakes or inaccurate information.\n\nThen consider if the assistant's answers are "
            "helpful, relevant, and concise. Helpful means the answer correctly responds to the prompt or follows the "
            "instructions. Note when user prompt has any ambiguity or more than one interpretation, it is more "
            "helpful and appropriate to ask for clarifications or more information from the user than providing an "
            "answer based on assumptions. Relevant means all parts of the response closely connect or are "
            "appropriate to what is being asked. Concise means the response is clear and not verbose or excessive."
            "\n\nThen consider the creativity and novelty of the assistant's answers when needed. Finally, identify "
            "any missing important information in the assistants' answers that would be beneficial to include when "
            "responding to the user prompt.\n\nAfter providing your explanation, you must output only one of the "
            "following choices as your final verdict with a label:\n\n1. Assistant A is significantly better: "
            "[[A>>B]]\n2. Assistant A is slightly better: [[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. "
            "Assistant B is slightly better: [[B>A]]\n5. Assistant B is significantly better: [[B>>A]]\n\nExample "
            'output: "My final verdict is tie: [[A=B]]".'
        ),
        user=_ARENA_USER,
        parse=parse_arena_hard_verdict,
        source=f"{AH}:config/judge_config.yaml:17-21; gen_judgment.py:22-32,95-114",
        # gen_judgment.py:114, asked once (judge_config.yaml:18: number_of_judgment_attempts 2)
        follow_up=FollowUp(
            "continue your judgment and finish by outputting a final verdict label", has_no_arena_hard_tag
        ),
        verdict_prefix="[[",
        verdict_choices=tuple(f"{label}]]" for label in ARENA_HARD_LABELS),
    )
)
