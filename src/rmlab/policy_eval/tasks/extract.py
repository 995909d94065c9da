"""Answer extraction from free-form generations, after the open-instruct evaluation scripts that Tulu 2.5 used.

- GSM8k (``open-instruct/eval/gsm/run_eval.py``): drop thousands separators, take the **last number** in the
  output, signed, and compare it with the target as a number (``match=numeric``, the default: the GSM8k authors'
  exact final answer, ``18.00`` equal to ``18``). ``match=open_instruct`` is open-instruct's rule at 4c0e9e8
  (``run_eval.py:158-170``): its number pattern reads an integer without its sign, the whole output stands in when
  there is no number, and HF ``exact_match`` with ``ignore_case`` and ``ignore_punctuation`` deletes every ``-``
  and ``.``, so "-5" matches "5" and "3.5" matches "35". Kept as the faithful switch; docs/fidelity.md names it.
- BBH, extraction (allenai/open-instruct@4c0e9e8 ``eval/bbh/run_eval.py:162-168``): the text between the *first*
  "the answer is " and the next full stop on the same line; without such a span, the whole output, stripped
  (``extraction=open_instruct``, the default). ``extraction=last`` reads the last "the answer is" and needs no full
  stop (the lab's rule before this release).
- BBH, matching: the BBH authors' exact string match (Suzgun et al. 2022; ``match=exact``, the default): the
  extracted answer, stripped of surrounding spaces, equals the target. ``match=open_instruct`` is open-instruct's
  ``exact_match.compute(..., ignore_case=True, ignore_punctuation=True)`` (``run_eval.py:176``, HF ``evaluate``'s
  ``exact_match``): both sides lower-cased and every punctuation character deleted, so "-42" matches "42" and any
  two bracket sequences of the same length match. Kept as the faithful switch; docs/fidelity.md names it.
- MATH (open-instruct@4c0e9e8 ``eval/MATH/run_eval.py:165-177``, ``minerva_utils.py``): the span of "Final Answer:
  The final answer is ... . I hope it is correct." (Minerva's answer sentence, the one the 4 exemplars end with;
  none = unparsed), normalised with Minerva's rules (Lewkowycz et al. 2022, appendix D: units and filler words
  dropped, the last ``=`` side, the inside of ``$...$``, ``\\text``, ``\\boxed``, shorthand ``\\frac``/``\\sqrt``
  expanded), then compared with the normalised gold by Hendrycks et al.'s string equivalence (``is_equiv``: ``\\left``,
  ``\\dfrac``, spaces, ``a/b`` canonicalised), which lm-evaluation-harness ships unchanged as
  ``lm_eval.tasks.hendrycks_math.utils`` (the same code as open-instruct's copy; lm-eval's Minerva module has since
  changed its normaliser and needs antlr 4.11, so the appendix-D normaliser is written out here).
"""

from __future__ import annotations

import re
import string

_NUMBER = re.compile(r"[-+]?\d*\.\d+|[-+]?\d+")
# open-instruct's pattern reads a bar as well as a t before "he answer is" (a character class written "[t|T]")
_ANSWER_IS_FIRST = re.compile(r"[Tt|]he answer is (.*?)\.")
_ANSWER_IS_LAST = re.compile(r"[Tt]he answer is:?\s*(.*?)(?:\.(?:\s|$)|\n|$)", re.DOTALL)
_NUMBER_OPEN_INSTRUCT = re.compile(r"[-+]?\d*\.\d+|\d+")  # eval/gsm/run_eval.py:161: an integer loses its sign
GSM8K_MATCHES = ("numeric", "open_instruct")
BBH_EXTRACTIONS = ("open_instruct", "last")
BBH_MATCHES = ("exact", "open_instruct")


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


def gsm8k_prediction(text: str, match: str = "numeric") -> str | None:
    """The answer GSM8k reads from ``text`` under ``match`` (module docstring); None when it has no number
    (``open_instruct`` then reads the whole output, as upstream does)."""
    if match == "numeric":
        return last_number(text)
    if match == "open_instruct":
        found = _NUMBER_OPEN_INSTRUCT.findall(re.sub(r"(\d),(\d)", r"\1\2", text))
        return found[-1] if found else None
    raise ValueError(f"GSM8k match must be one of {GSM8K_MATCHES}, got {match!r}")


def gsm8k_match(prediction: str | None, target: str, match: str = "numeric", output: str = "") -> bool:
    """Whether GSM8k's ``prediction`` scores as ``target`` under ``match``; ``output``: the whole generation,
    open-instruct's prediction when it found no number."""
    if match == "numeric":
        return numbers_equal(prediction, target)
    if match == "open_instruct":
        pred = output if prediction is None else prediction
        return pred.lower().translate(_PUNCTUATION) == target.lower().translate(_PUNCTUATION)
    raise ValueError(f"GSM8k match must be one of {GSM8K_MATCHES}, got {match!r}")


def bbh_answer(text: str, extraction: str = "open_instruct") -> str:
    """The answer span of a BBH output (module docstring), or the whole output stripped when there is none."""
    if extraction == "open_instruct":
        found = _ANSWER_IS_FIRST.search(text)
        return found.group(1).strip() if found else text.strip()
    if extraction == "last":
        spans = _ANSWER_IS_LAST.findall(text)
        return spans[-1].strip() if spans else text.strip()
    raise ValueError(f"BBH extraction must be one of {BBH_EXTRACTIONS}, got {extraction!r}")


def has_answer_phrase(text: str, extraction: str = "open_instruct") -> bool:
    """Whether ``bbh_answer`` found its answer span (else it fell back to the whole output)."""
    return (_ANSWER_IS_FIRST if extraction == "open_instruct" else _ANSWER_IS_LAST).search(text) is not None


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def bbh_match(prediction: str, target: str, match: str = "exact") -> bool:
    """Whether an extracted BBH answer scores as the target under the rule ``match`` (module docstring)."""
    if match == "exact":
        return prediction.strip() == target.strip()
    if match == "open_instruct":
        return prediction.lower().translate(_PUNCTUATION) == target.lower().translate(_PUNCTUATION)
    raise ValueError(f"BBH match must be one of {BBH_MATCHES}, got {match!r}")


# Minerva's final-answer normalisation (Lewkowycz et al. 2022, appendix D), as open-instruct applies it to both the
# prediction and the gold answer: ordered string substitutions, then words and marks removed.
_MINERVA_SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), (r"\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)  # fmt: skip
_MINERVA_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots", "sue",
    "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals", "edges",
    "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2",
    "\\text{}^3", "\\text{\n}", "\\text{}", r"\mathrm{th}", r"^\circ", r"^{\circ}", r"\;", r",\!", "{,}", '"',
    "\\dots",
)  # fmt: skip
_MINERVA_FINAL = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")
_MINERVA_END = "I hope it is correct."


def minerva_final_answer(text: str) -> str | None:
    """The span after "Final Answer: The final answer is" up to ". I hope it is correct.", on one line; None when
    absent. As upstream, the closing sentence is appended before searching, so an output that stops right after
    "$6$. " still reads."""
    found = _MINERVA_FINAL.search(text + _MINERVA_END)
    return found.group(1).strip() if found else None


def minerva_normalize(answer: str) -> str:
    """A final answer normalised by Minerva's rules (module docstring), as ``normalize_final_answer`` does."""
    answer = answer.split("=")[-1]
    for before, after in _MINERVA_SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for removed in _MINERVA_REMOVED:
        answer = answer.replace(removed, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", r"$\3$", answer)  # the first $...$ span
    for command in ("text", "textbf", "overline"):
        answer = re.sub(rf"(\\{command}\{{)(.*?)(\}})", r"\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", r"\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", r"frac{\2}{\3}", answer)  # \fracab -> \frac{a}{b}
    answer = re.sub(r"(sqrt)([^{])", r"sqrt{\2}", answer)  # \sqrta -> \sqrt{a}
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():  # 100,000 -> 100000
        answer = answer.replace(",", "")
    return answer


def math_equivalent(prediction: str | None, target: str) -> bool:
    """Hendrycks et al.'s string equivalence of two normalised answers (lm-eval's ``hendrycks_math.utils``)."""
    from lm_eval.tasks.hendrycks_math.utils import is_equiv

    return prediction is not None and bool(is_equiv(prediction, target))


def math_boxed_answer(solution: str) -> str | None:
    """The content of the last ``\\boxed{...}`` of a MATH reference solution (the gold answer), or None."""
    from lm_eval.tasks.hendrycks_math.utils import last_boxed_only_string, remove_boxed

    boxed = last_boxed_only_string(solution)
    try:
        return remove_boxed(boxed) if boxed else None
    except AssertionError:
        return None
