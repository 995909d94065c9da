"""Chat formatting: named templates are exact; the tokenizer's own is never silently replaced."""

import pytest

from rmlab.models.chat_format import ChatFormatter


def test_tulu_template_is_exact(tokenizer):
    pair = ChatFormatter(tokenizer, "tulu").format("Hi?", "Hello.")
    assert pair.prefix == "<|user|>\nHi?\n<|assistant|>\n"
    assert pair.text == "<|user|>\nHi?\n<|assistant|>\nHello." + tokenizer.eos_token


def test_tokenizer_template_prefix_and_braces(tokenizer):
    pair = ChatFormatter(tokenizer, "tokenizer").format("use {braces}", "ok {x}")
    assert pair.text.startswith(pair.prefix)
    assert "use {braces}" in pair.prefix and pair.text[len(pair.prefix) :].startswith("ok {x}")


def test_missing_tokenizer_template_is_an_error(tokenizer):
    class NoTemplate:
        chat_template = None
        name_or_path = "bare-tokenizer"

    with pytest.raises(ValueError, match="has no chat template"):
        ChatFormatter(NoTemplate(), "tokenizer")
    with pytest.raises(ValueError, match="unknown chat template 'alpaca'"):
        ChatFormatter(tokenizer, "alpaca")


def test_fingerprint_changes_with_the_formatting(tokenizer):
    fps = {ChatFormatter(tokenizer, t).fingerprint for t in ("tokenizer", "tulu", "plain")}
    fps.add(ChatFormatter(tokenizer, "tokenizer", system_prompt="Be brief.").fingerprint)
    assert len(fps) == 4
