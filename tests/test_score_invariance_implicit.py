"""Implicit rewards do not depend on how they were batched (issue #30, item 3): with a reference and without one
(sum, mean), fp32 and bf16. The method, the pairs and the helpers are tests/test_score_invariance.py's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.precision import score_tolerance
from rmlab.scoring.scorers import ImplicitRewardScorer
from tests.helpers import tolerances as tol
from tests.test_score_invariance import (
    BATCHINGS,
    BATCHINGS_BF16,
    _alone_logprobs,
    _batched,
    _check,
    _left_padded_logprobs,
    invariance_pairs,
)

pytestmark = pytest.mark.numeric


@pytest.fixture(scope="module")
def pairs(rm_bench_dir) -> list[tuple[str, str]]:
    return invariance_pairs(rm_bench_dir)


# the implicit cases without a reference share the batched forward and the gather with the case with one, which runs
# every batching; they differ in the last reduction (sum or mean of one model's log-probs), checked on three
# batchings: one at a time unpacked, a padded batch in another order, one packed batch reversed
BATCHINGS_ONE_MODEL = [(1, False, 0), (7, False, 2), ("all", True, 1)]


# bf16 is emulated on CPUs without AVX512-BF16/AMX (here about 25 s per pass over the pairs, 454 s for the old case),
# so its case is one model (the reference's subtraction is checked in fp32), 8 pairs and BATCHINGS_BF16 (padded and
# packed, batched, in other orders). No bf16 mean: a random tiny LM's mean log-probability is about -log(vocabulary)
# for every text (spread ~0.07 around -10.8), inside the bf16 bound (2 x 6e-2 x 10.8 = 1.3), so a score read from the
# wrong row would pass and the case could not fail. The mean shares the bf16 forward and gather with the sum case;
# only the last reduction differs, and it is checked in fp32.
@pytest.mark.parametrize(
    ("mode", "with_reference", "dtype"),
    [("sum", True, torch.float32), ("sum", False, torch.float32), ("avg", False, torch.float32),
     ("sum", False, torch.bfloat16)],
)  # fmt: skip
def test_implicit_rewards_ignore_batching_padding_packing_and_order(
    pairs, tiny_lm_dir, tiny_ref_dir, mode, with_reference, dtype
):
    if dtype == torch.bfloat16:
        pairs = pairs[:8]  # emulated bf16 over the LM head's 49k-word vocabulary costs ~10x fp32 here
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=dtype).eval()
    reference = AutoModelForCausalLM.from_pretrained(tiny_ref_dir, dtype=dtype).eval() if with_reference else None
    scorer = ImplicitRewardScorer(
        policy, tok, ChatFormatter(tok, "tulu"), max_length=4096, device="cpu", reference=reference, mode=mode
    )
    encoded = [scorer.encode(p, r) for p, r in pairs]
    models = [policy, reference] if with_reference else [policy]

    def reward(lps: list[torch.Tensor]) -> float:
        d = lps[0] - lps[1] if with_reference else lps[0]
        return float(d.sum() if mode == "sum" else d.mean())

    ref = np.array([reward([_alone_logprobs(m, e) for m in models]) for e in encoded])
    batchings = BATCHINGS_BF16 if dtype != torch.float32 else BATCHINGS if with_reference else BATCHINGS_ONE_MODEL
    runs = {f"bs={b},packed={p},order={o}": _batched(scorer, pairs, b, p, o) for b, p, o in batchings}
    left = [_left_padded_logprobs(m, encoded, tok.pad_token_id) for m in models]
    runs["left-padded"] = np.array([reward([lp[i] for lp in left]) for i in range(len(encoded))])
    if dtype == torch.float32:
        cfg = AutoConfig.from_pretrained(tiny_lm_dir)
        # per response token one log-softmax value; logits of these models are O(1) (magnitude 1); a sum carries
        # one error per token, a mean at most the largest; a reward with a reference two models' errors
        bounds = np.array([
            len(models) * tol.forward_diff(cfg, len(e.input_ids), "logprob",
                                           tokens=len(e.input_ids) - e.response_start if mode == "sum" else 1)
            for e in encoded
        ])  # fmt: skip
    else:
        bounds = 2 * len(models) * score_tolerance("bfloat16", ref)
    _check(f"implicit {mode} reference={with_reference} {dtype}", ref, runs, bounds)
