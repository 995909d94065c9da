"""Scorers against direct computations on tiny random models with SmolLM2's real tokenizer."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer

PAIRS = [
    ("What is 2+2?", "4"),
    ("Name a prime number larger than ten, and explain briefly.", "Eleven is prime: its only divisors are 1 and 11."),
    ("Say hi", "Hello there! How can I help you today?"),
]


@pytest.fixture(scope="module")
def tok(tiny_lm_dir):
    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def _lm(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _hand_logprobs(model, ids: list[int], start: int) -> torch.Tensor:
    """log p(token t | tokens < t) for t >= start, one position at a time from the full logits."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    return torch.stack([torch.log_softmax(logits[t - 1].double(), -1)[ids[t]] for t in range(start, len(ids))])


def test_classifier_equals_direct_forward(tiny_classifier_dir):
    tok = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    assert tok.pad_token == "<|endoftext|>"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir, dtype=torch.float32).eval()
    fmt = ChatFormatter(tok, "tokenizer")
    scorer = ClassifierScorer(model, tok, fmt, max_length=2048, device="cpu")
    batched = scorer([scorer.encode(p, r) for p, r in PAIRS])  # one padded batch
    for (p, r), got in zip(PAIRS, batched):
        text = fmt.format(p, r).text
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            direct = model(**enc).logits[0, 0].item()
        assert got == pytest.approx(direct, abs=1e-5)
    assert len(set(np.round(batched, 6))) == len(PAIRS)  # a real head gives distinct scores


def test_implicit_reward_with_reference_is_summed_log_ratio_over_response_tokens(tiny_lm_dir, tiny_ref_dir, tok):
    policy, ref = _lm(tiny_lm_dir), _lm(tiny_ref_dir)
    fmt = ChatFormatter(tok, "tokenizer")
    scorer = ImplicitRewardScorer(policy, tok, fmt, max_length=2048, device="cpu", reference=ref)
    encoded = [scorer.encode(p, r) for p, r in PAIRS]
    got = scorer(encoded)
    for (p, r), e, g in zip(PAIRS, encoded, got):
        prompt_ids = tok(fmt.format(p, r).prefix, add_special_tokens=False)["input_ids"]
        assert e.response_start == len(prompt_ids) and e.input_ids[: len(prompt_ids)] == prompt_ids
        want = (
            (_hand_logprobs(policy, e.input_ids, e.response_start) - _hand_logprobs(ref, e.input_ids, e.response_start))
            .sum()
            .item()
        )
        assert g == pytest.approx(want, abs=1e-4)
        with_prompt = (_hand_logprobs(policy, e.input_ids, 1) - _hand_logprobs(ref, e.input_ids, 1)).sum().item()
        assert abs(with_prompt - want) > 1e-3  # prompt tokens really are excluded


def test_reference_free_modes(tiny_lm_dir, tok):
    policy = _lm(tiny_lm_dir)
    fmt = ChatFormatter(tok, "tokenizer")
    out = {}
    for mode in ("sum", "avg", "norm"):
        scorer = ImplicitRewardScorer(policy, tok, fmt, max_length=2048, device="cpu", mode=mode)
        encoded = [scorer.encode(p, r) for p, r in PAIRS]
        out[mode] = scorer(encoded)
    for i, e in enumerate(encoded):
        lp = _hand_logprobs(policy, e.input_ids, e.response_start)
        assert out["sum"][i] == pytest.approx(lp.sum().item(), abs=1e-4)
        assert out["avg"][i] == pytest.approx(lp.mean().item(), abs=1e-5)
        assert out["norm"][i] == pytest.approx(-lp.norm().item(), abs=1e-4)
    with pytest.raises(ValueError, match="reference-free mode"):
        ImplicitRewardScorer(policy, tok, fmt, max_length=2048, device="cpu", mode="median")


def test_policy_equal_to_reference_gives_zero_reward(tiny_lm_dir, tok):
    policy = _lm(tiny_lm_dir)
    scorer = ImplicitRewardScorer(
        policy, tok, ChatFormatter(tok, "tulu"), max_length=2048, device="cpu", reference=policy
    )
    assert np.abs(scorer([scorer.encode(p, r) for p, r in PAIRS])).max() < 1e-5


def test_batching_does_not_change_scores(tiny_lm_dir, tok):
    policy = _lm(tiny_lm_dir)
    scorer = ImplicitRewardScorer(policy, tok, ChatFormatter(tok, "tulu"), max_length=2048, device="cpu", mode="sum")
    encoded = [scorer.encode(p, r) for p, r in PAIRS]
    together = scorer(encoded)
    alone = np.array([scorer([e])[0] for e in encoded])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_left_truncation_keeps_the_response(tiny_lm_dir, tok):
    policy = _lm(tiny_lm_dir)
    scorer = ImplicitRewardScorer(policy, tok, ChatFormatter(tok, "tokenizer"), max_length=24, device="cpu")
    e = scorer.encode("long prompt " * 50, "short answer")
    assert len(e.input_ids) == 24
    full = ImplicitRewardScorer(policy, tok, ChatFormatter(tok, "tokenizer"), max_length=4096, device="cpu")
    f = full.encode("long prompt " * 50, "short answer")
    assert e.input_ids == f.input_ids[-24:]
    assert len(e.input_ids) - e.response_start == len(f.input_ids) - f.response_start
