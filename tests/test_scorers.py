"""Scorers against direct computations on tiny random models with SmolLM2's real tokenizer."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.peers import rewardbench_features, rewardbench_module
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)

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


# allenai/tulu-v2.5-dpo-13b-nectar-60k@766f5da tokenizer_config.json: the Tulu-2.5 models' own chat template
TULU25_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n' + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
TRIPLES = [(p, r, "I would rather not say.") for p, r in PAIRS]


def _rewardbench_dpo():
    """rewardbench 0.1.4's ``rewardbench/dpo.py``, loaded from the installed package by path (the package's
    ``__init__`` imports its model zoo, which needs transformers 4; this module needs only torch and numpy)."""
    try:
        return rewardbench_module("dpo.py")
    except RuntimeError as err:
        pytest.fail(str(err))


def _rewardbench_rewards(dpo_module, policy, ref, tok, mode: str, prompt: str, chosen: str, rejected: str):
    """The (chosen, rejected) rewards and token rows rewardbench computes, its dataset built as
    ``rewardbench/utils.py:prepare_dialogue_from_tokenizer`` builds a single-turn example."""
    from types import SimpleNamespace

    feature = rewardbench_features(tok, prompt, chosen, rejected)
    inference = dpo_module.DPOInference(policy, ref, tok, SimpleNamespace(device="cpu"), ref_free_norm=mode)
    row = inference.tokenize_row(feature)
    batch = {k: torch.tensor([v]) for k, v in row.items() if k.startswith(("chosen_", "rejected_"))}
    with torch.no_grad():
        c, r = inference.inference_step(batch, ref_free=ref is None)
    return (c.item(), r.item()), row


@pytest.mark.parametrize("template", ["smollm2", "tulu25", "tulu_named"])
@pytest.mark.parametrize("mode", ["with_reference", "avg", "sum", "norm"])
def test_rewardbench_token_set_gives_rewardbenchs_own_rewards(template, mode, tiny_lm_dir, tiny_ref_dir):
    """The oracle is the peer's code itself: rewardbench's DPO scorer (which RM-Bench runs) on the same pairs gives
    the same token ids, the same response start and the same rewards in every mode."""
    dpo_module = _rewardbench_dpo()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    if template != "smollm2":
        tok.chat_template = TULU25_TEMPLATE  # rewardbench applies a model's own template; ours, as named or as its own
    if tok.bos_token is None:  # as RM-Bench's scripts/run_dpo.py sets it
        tok.bos_token = tok.eos_token
    policy = _lm(tiny_lm_dir)
    ref = _lm(tiny_ref_dir) if mode == "with_reference" else None
    fmt = ChatFormatter(tok, "tulu" if template == "tulu_named" else "tokenizer")
    ours = ImplicitRewardScorer(
        policy,
        tok,
        fmt,
        max_length=2048,
        device="cpu",
        reference=ref,
        mode="avg" if ref else mode,
        tokens="rewardbench",
    )
    for prompt, chosen, rejected in TRIPLES:
        theirs, row = _rewardbench_rewards(
            dpo_module, policy, ref, tok, "avg" if ref else mode, prompt, chosen, rejected
        )
        for side, response, want in (("chosen", chosen, theirs[0]), ("rejected", rejected, theirs[1])):
            e = ours.encode(prompt, response)
            assert e.input_ids == row[f"{side}_input_ids"]
            assert e.response_start == sum(1 for label in row[f"{side}_labels"] if label == -100)
            assert ours([e])[0] == pytest.approx(want, abs=1e-4)


def test_the_two_token_sets(tiny_lm_dir, tok):
    """rewardbench's set = the assistant header + the response + the template's end + one EOS; ``response`` = the
    response as rendered after the generation prompt. With a reference the header's terms cancel in a comparison;
    reference-free ``avg`` changes."""
    policy = _lm(tiny_lm_dir)
    tulu = ChatFormatter(tok, "tulu")
    eos = tok.eos_token
    rb = ImplicitRewardScorer(policy, tok, tulu, max_length=2048, device="cpu", tokens="rewardbench")
    plain = ImplicitRewardScorer(policy, tok, tulu, max_length=2048, device="cpu", tokens="response")
    e_rb, e_plain = rb.encode("Say hi", "Hello!"), plain.encode("Say hi", "Hello!")
    assert tok.decode(e_rb.input_ids[e_rb.response_start :]) == f"<|assistant|>\nHello!{eos}\n{eos}"
    assert tok.decode(e_plain.input_ids[e_plain.response_start :]) == f"Hello!{eos}"
    assert rb([e_rb])[0] != pytest.approx(plain([e_plain])[0], abs=1e-4)
    with pytest.raises(ValueError, match="token set"):
        ImplicitRewardScorer(policy, tok, tulu, max_length=2048, device="cpu", tokens="header")
