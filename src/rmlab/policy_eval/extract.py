"""Answer extraction from free-form generations, after the open-instruct evaluation scripts that Tulu 2.5 used.

- GSM8k (``open-instruct/eval/gsm/run_eval.py``): drop thousands separators, take the **last number** in the
  output. We compare numerically (``18.00`` equals ``18``; open-instruct compares strings, which only differs
  for trailing zeros) and strip a currency sign or unit glued to the number.
- BBH (``open-instruct/eval/bbh/run_eval.py``): the text after "the answer is" up to the next period; without
  that phrase, the whole output. Matching is exact after lower-casing and dropping surrounding punctuation and
  spaces, so "(A)" matches "(A)" and "A", and "True." matches "True".
"""

from __future__ import annotations

import re
import string

_NUMBER = re.compile(r"[-+]?\d*\.\d+|[-+]?\d+")
_ANSWER_IS = re.compile(r"[Tt]he answer is:?\s*(.*?)(?:\.(?:\s|$)|\n|$)", re.DOTALL)


def last_number(text: str) -> str | None:
    """The last number in ``text`` as written (commas between digits removed), or None."""
    found = _NUMBER.findall(re.sub(r"(?<=\d),(?=\d)", "", text))
    return found[-1] if found else None


def gsm8k_target(answer_field: str) -> str:
    """The reference number of a GSM8k ``answer`` field (the text after ``####``)."""
    if "####" not in answer_field:
        raise ValueError(f"GSM8k answer has no '####' marker: {answer_field[-80:]!r}")
    return re.sub(r"(?<=\d),(?=\d)", "", answer_field.split("####")[-1].strip())


def numbers_equal(prediction: str | None, target: str) -> bool:
    if prediction is None:
        return False
    try:
        return abs(float(prediction) - float(target)) < 1e-6
    except ValueError:
        return prediction.strip() == target.strip()


def bbh_answer(text: str) -> str:
    """What follows "the answer is" (last occurrence), or the whole output when the phrase is missing."""
    found = _ANSWER_IS.findall(text)
    return found[-1].strip() if found else text.strip()


def _normalise(text: str) -> str:
    return text.strip().strip(string.punctuation + " ").lower().replace("(", "").replace(")", "").strip()


def bbh_match(prediction: str, target: str) -> bool:
    return _normalise(prediction) == _normalise(target)
