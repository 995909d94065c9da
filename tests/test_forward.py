"""Scoring forward passes (rmlab.scoring.forward): the chunked head, the shared-prefix pass and its attention, and the
batches that use them, each against the plain computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rmlab.models.chat_format import ChatFormatter
from rmlab.models.loading import resolve_dtype
from rmlab.scoring import forward
from rmlab.scoring.batching import MIN_SHARED_TOKENS, common_prefix_length, plan_batches
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.driver import score_pairs
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer
from tests.helpers.models import tiny_config

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)

PROMPTS = [
    "Explain why the sky is blue in two sentences, for a ten-year-old who asked at dinner.",
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
]
RESPONSES = [
    "Sunlight scatters off air molecules.",
    "Blue light is scattered more than red light by the small molecules in the air, so the sky looks blue.",
    "**Short answer:** Rayleigh scattering.\n\n- Blue light has a shorter wavelength\n- It scatters more",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
]


def _tiny(model_type: str, tokenizer, seed: int = 0, **extra):
    """A random tiny causal LM of a given family on SmolLM2's tokenizer."""
    from transformers import AutoModelForCausalLM

    cfg = tiny_config(tokenizer, model_type, **extra)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg).eval()


def _own_logprobs(model, ids: list[int], start: int) -> torch.Tensor:
    """The plain computation: the model's own full logits, log-softmax, the response tokens' entries."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits, -1)[start - 1 : len(ids) - 1].gather(1, torch.tensor(ids[start:])[:, None])[:, 0]


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral"])
def test_chunked_head_equals_the_models_own_log_softmax(model_type, tokenizer, monkeypatch):
    model = _tiny(model_type, tokenizer)
    assert forward.fast_path(model)
    monkeypatch.setattr(forward, "HEAD_CHUNK_BYTES", 4 * model.config.vocab_size * 3)  # 3 positions per chunk
    rows = [tokenizer(p + r)["input_ids"] for p, r in zip(PROMPTS, RESPONSES)]
    starts = [5, 9]
    with torch.no_grad():
        got = forward.scored_logprobs(model, rows, starts, [(1, 0), (1, 0)])
    for row, start, lp in zip(rows, starts, got):
        assert lp.dtype == torch.float32
        torch.testing.assert_close(lp, _own_logprobs(model, row, start), atol=1e-5, rtol=1e-5)


def test_soft_capped_logits_leave_the_fast_path(tokenizer):
    """A head the model transforms after the linear map (Gemma 2's soft-capping) is not reproduced by the fast
    path, so such a model is scored through its own forward."""
    model = _tiny("gemma2", tokenizer, head_dim=8, final_logit_softcapping=0.5)
    assert not forward.fast_path(model)
    scorer = ImplicitRewardScorer(model, tokenizer, ChatFormatter(tokenizer), max_length=4096, device="cpu")
    enc = scorer.encode(PROMPTS[0], RESPONSES[1])
    expected = _own_logprobs(model, enc.input_ids, enc.response_start).mean().item()
    assert not scorer.packs
    assert scorer([enc], runs=[(1, 0)])[0] == pytest.approx(expected, abs=1e-5)


def test_prefix_causal_attention_equals_bottom_right_masked_sdpa():
    torch.manual_seed(0)
    for prefix, own in [(1, 5), (17, 3), (40, 40)]:
        q = torch.randn(2, 4, own, 16)
        k, v = torch.randn(2, 4, prefix + own, 16), torch.randn(2, 4, prefix + own, 16)
        mask = torch.ones(own, prefix + own, dtype=torch.bool).tril(prefix)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(forward.prefix_causal_attention(q, k, v), expected, atol=1e-5, rtol=1e-5)


def test_common_prefix_leaves_each_row_a_token():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # a row that is a prefix of another keeps its last
    assert common_prefix_length([[7, 8]]) == 0


def test_plan_batches_packs_a_prompts_tokens_once_within_the_token_cap():
    shared = list(range(20))
    group = [shared + [2 + i] + [1] * (n - 1) for i, n in enumerate((100, 95, 50, 10))]  # own: 100, 95, 50, 10
    singles = [[5, 6, 7], [1, 2, 3]]
    plan = plan_batches([group, singles], batch_size=8, max_tokens=1000)
    assert len(plan) == 1 and sorted(plan[0].members) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert plan[0].runs == [(4, 20), (1, 0), (1, 0)]  # the group's 20 tokens laid out once; the singles alone
    small = plan_batches([group, singles], batch_size=8, max_tokens=150)
    assert all(
        sum(p + sum(len(group[i]) - p for g, i in b.members if g == 0) for _, p in b.runs[:1]) <= 150
        for b in small
        if b.members[0][0] == 0
    )
    assert sorted(m for b in small for m in b.members) == sorted(m for b in plan for m in b.members)
    assert plan == plan_batches([group, singles], batch_size=8, max_tokens=1000)  # a resumed run plans the same
    short = [[1] * (MIN_SHARED_TOKENS - 1) + [2, 3], [1] * (MIN_SHARED_TOKENS - 1) + [4]]
    assert all(p == 0 for b in plan_batches([short], batch_size=8) for _, p in b.runs)
    padded = plan_batches([group, singles], batch_size=2, packed=False)
    assert all(b.runs is None and len(b.members) <= 2 for b in padded)


def test_pack_lays_shared_tokens_once_and_maps_positions():
    rows = [[1, 2, 3, 4, 5], [1, 2, 3, 9], [7, 8]]
    layout = forward.pack(rows, [(2, 3), (1, 0)])
    assert layout.ids == [1, 2, 3, 4, 5, 9, 7, 8]
    assert layout.positions == [0, 1, 2, 3, 4, 3, 0, 1]
    assert layout.segments == [(0, 3, None), (3, 5, (0, 3)), (5, 6, (0, 3)), (6, 8, None)]
    assert layout.index(1, 1, 4).tolist() == [1, 2, 5]
    with pytest.raises(ValueError, match="do not share"):
        forward.pack([[1, 2, 3], [1, 5, 3]], [(2, 2)])


def _pairs():
    return [(p, r) for p in PROMPTS for r in RESPONSES]


def _score(scorer, tmp_path, packed: bool, max_tokens: int | None = None) -> np.ndarray:
    cache = ScoreCache(tmp_path / f"packed{packed}{max_tokens}", "k")
    scores, stats = score_pairs(
        _pairs(),
        scorer_factory=lambda: scorer,
        cache=cache,
        batch_size=8,
        max_tokens=max_tokens,
        progress=False,
        packed=packed,
    )
    return scores, stats


@pytest.mark.parametrize("tokens", ["rewardbench", "response"])
@pytest.mark.parametrize("reference", [False, True])
def test_shared_prefix_scores_equal_unshared_implicit(tokens, reference, tokenizer, tmp_path):
    """Packed rows with the prompt's tokens encoded once give the rewards of padded rows encoding them for every
    response (float32), for both token sets: in rewardbench's the scored tokens start inside the shared prefix."""
    policy, ref = _tiny("llama", tokenizer, 0), (_tiny("llama", tokenizer, 1) if reference else None)
    scorer = ImplicitRewardScorer(
        policy, tokenizer, ChatFormatter(tokenizer), max_length=4096, device="cpu", reference=ref, tokens=tokens
    )
    unshared, st0 = _score(scorer, tmp_path, packed=False)
    shared, st1 = _score(scorer, tmp_path, packed=True)
    assert st0.tokens_shared == 0 and st1.tokens_shared > 0
    np.testing.assert_allclose(shared, unshared, atol=1e-5, rtol=0)
    assert np.ptp(unshared) > 1e-3  # the rewards differ between responses: the comparison is not vacuous


def test_shared_prefix_scores_equal_unshared_classifier(tiny_classifier_dir, tmp_path):
    from rmlab.models.loading import ResolvedModel, load_classifier, load_tokenizer

    resolved = ResolvedModel("tiny", str(tiny_classifier_dir), True, None, "fp")
    tok = load_tokenizer(resolved)
    model, _ = load_classifier(resolved, dtype="float32", device="cpu", pad_token_id=tok.pad_token_id)
    scorer = ClassifierScorer(model, tok, ChatFormatter(tok), max_length=4096, device="cpu")
    assert scorer.packs
    unshared, _ = _score(scorer, tmp_path, packed=False)
    shared, stats = _score(scorer, tmp_path, packed=True, max_tokens=120)  # several packed passes per prompt
    assert stats.tokens_shared > 0
    np.testing.assert_allclose(shared, unshared, atol=1e-5, rtol=0)
    assert np.ptp(unshared) > 1e-3


def test_dtype_auto_follows_native_bf16(monkeypatch):
    from rmlab.utils import config

    monkeypatch.setattr(config, "native_bf16", lambda device=None: True)
    assert resolve_dtype("auto", "cpu")[0] == "bfloat16"
    monkeypatch.setattr(config, "native_bf16", lambda device=None: False)
    dtype, why = resolve_dtype("auto", "cpu")
    assert dtype == "float32" and "not native" in why
    assert resolve_dtype("float16", "cpu") == ("float16", "configured")
    with pytest.raises(ValueError, match="unknown"):
        resolve_dtype("fp8", "cpu")


def test_classifier_scores_equal_rewardbenchs_pipeline(tiny_classifier_dir, tmp_path):
    """The benchmark's baseline is rewardbench's own RewardBenchPipeline (left padding, a padding mask); ours reads
    right-padded rows without a mask, prompts shared. Same scores, so the speed-up is not bought with others."""
    from rmlab.models.loading import ResolvedModel, load_classifier, load_tokenizer
    from rmlab.scoring.peers import rewardbench_classifier_scores

    resolved = ResolvedModel("tiny", str(tiny_classifier_dir), True, None, "fp")
    tok = load_tokenizer(resolved)
    model, _ = load_classifier(resolved, dtype="float32", device="cpu", pad_token_id=tok.pad_token_id)
    fmt = ChatFormatter(tok)
    pairs = _pairs()[:4]  # one prompt, four responses: item 0 chosen (styles 0-1), rejected (styles 0-1)
    texts = {(0, side, s): fmt.format(*pairs[2 * side + s]).text for side in (0, 1) for s in (0, 1)}
    theirs = rewardbench_classifier_scores(model, tok, texts, 1, batch_size=8, max_length=4096)
    scorer = ClassifierScorer(model, tok, fmt, max_length=4096, device="cpu")
    ours, _ = _score(scorer, tmp_path, packed=True)
    np.testing.assert_allclose(theirs.reshape(-1), ours[:4], atol=1e-5, rtol=0)


def test_dtype_auto_keeps_float32_for_implicit_rewards_with_a_reference(
    tiny_lm_dir, tiny_ref_dir, tmp_path, monkeypatch
):
    """bf16 where native, except for a reward that is the difference of two log-prob sums (measured flips)."""
    from omegaconf import OmegaConf

    from rmlab.scoring.build import plan_scorer
    from rmlab.utils import config

    monkeypatch.setattr(config, "native_bf16", lambda device=None: True)
    base = {"pretrained": str(tiny_lm_dir), "kind": "implicit", "dtype": "auto", "chat_template": "tokenizer"}
    free = plan_scorer(OmegaConf.create({**base, "reference": None}), cache_dir=str(tmp_path), device="cpu")
    assert free.describe["dtype"] == "bfloat16" and free.dtype_choice["configured"] == "auto"
    ref = plan_scorer(OmegaConf.create({**base, "reference": str(tiny_ref_dir)}), cache_dir=str(tmp_path), device="cpu")
    assert ref.describe["dtype"] == "float32" and "reference" in ref.dtype_choice["why"]
