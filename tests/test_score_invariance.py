"""Scores do not depend on how they were batched (issue #30, item 3). The implicit-reward cases are in
tests/test_score_invariance_implicit.py (a file of their own, so that `make test`'s workers run them side by side).

Per scorer kind (classifier; implicit with a reference; implicit without one, sum and mean; a judge's label
log-probabilities) the same real RM-Bench texts are scored with batch size 1, 2, 7 and all, packed and unpacked, in
three orders, and once more by a left-padded forward written here with Hugging Face calls alone; the right-padded
path is the scorers' own. Every score must agree with one unpadded, one-at-a-time forward within the derived bound
of :mod:`tests.helpers.tolerances` (fp32), or the measured bound of :mod:`rmlab.scoring.precision` (bf16), and the
bound must be far below the spread of the scores (a score read from the wrong row fails).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rmlab.data.rm_bench import load_rm_bench
from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.precision import score_tolerance
from rmlab.scoring.score_bounds import scores_under
from rmlab.scoring.scorers import ClassifierScorer
from tests.conftest import ROOT
from tests.helpers import tolerances as tol

pytestmark = pytest.mark.numeric

# (batch size, packed, order); "all" is every pair in one batch; orders: 0 as given, 1 reversed, 2 shuffled
BATCHINGS = [
    (1, False, 0),
    (2, False, 1),
    (7, False, 2),
    ("all", False, 0),
    (1, True, 1),
    (7, True, 2),
    ("all", True, 0),
]
BATCHINGS_BF16 = [(7, False, 2), ("all", True, 1)]


def invariance_pairs(rm_bench_dir) -> list[tuple[str, str]]:
    """Real (prompt, response) pairs, each once: one RM-Bench record per domain, its six responses (some of which are
    the same text)."""
    items, _ = load_rm_bench(data_dir=rm_bench_dir, hub_id=None, max_per_domain=1, seed=0)
    return list(dict.fromkeys((it.prompt, r) for it in items for r in (*it.chosen, *it.rejected)))


@pytest.fixture(scope="module")
def pairs(rm_bench_dir) -> list[tuple[str, str]]:
    return invariance_pairs(rm_bench_dir)


def _batched(scorer, pairs, batch_size, packed, order) -> np.ndarray:
    return scores_under(scorer, pairs, None if batch_size == "all" else batch_size, packed, order)


def _left_padded(model, rows: list[list[int]], pad_id: int):
    """One left-padded batch through the Hugging Face model: input ids, mask, positions counted from each row's first
    real token."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :], mask[i, width - len(r) :] = torch.tensor(r), 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions, width


@torch.inference_mode()
def _left_padded_rewards(model, encoded, pad_id: int) -> np.ndarray:
    ids, mask, positions, _ = _left_padded(model, [e.input_ids for e in encoded], pad_id)
    hidden = model.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    return model.score(hidden[:, -1]).float()[:, 0].double().numpy()  # the last token of every row is real


def _response_logprobs(model, hidden: torch.Tensor, ids: list[int], start: int) -> torch.Tensor:
    """log p(ids[start:]) from the hidden states at the positions before them: the LM head and the log-softmax on
    those rows only, which is what ``model(...).logits`` computes there (a Llama's logits are ``lm_head`` of each
    row's hidden state), without a full-vocabulary log-softmax over every prompt and pad position (4 GB and most of
    the test's time for a padded batch of the real pairs)."""
    logits = model.get_output_embeddings()(hidden[start - 1 : len(ids) - 1])
    return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids[start:])[:, None])[:, 0]


@torch.inference_mode()
def _left_padded_logprobs(model, encoded, pad_id: int) -> list[torch.Tensor]:
    ids, mask, positions, width = _left_padded(model, [e.input_ids for e in encoded], pad_id)
    hidden = model.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    out = []
    for i, e in enumerate(encoded):
        off = width - len(e.input_ids)  # row i's tokens sit at off .. width - 1
        out.append(_response_logprobs(model, hidden[i, off:], e.input_ids, e.response_start))
    return out


@torch.inference_mode()
def _alone_logprobs(model, e) -> torch.Tensor:
    hidden = model.model(input_ids=torch.tensor([e.input_ids])).last_hidden_state[0]
    return _response_logprobs(model, hidden, e.input_ids, e.response_start)


def _check(name, ref: np.ndarray, runs: dict[str, np.ndarray], bounds: np.ndarray) -> None:
    worst = {k: float((np.abs(v - ref) / bounds).max()) for k, v in runs.items()}
    dev = max(float(np.abs(v - ref).max()) for v in runs.values())
    print(f"\n{name}: max |deviation| {dev:.2e}, largest share of the bound {max(worst.values()):.2e} ({worst})")
    for k, v in runs.items():
        assert np.all(np.abs(v - ref) <= bounds), (name, k, np.abs(v - ref).max(), bounds.min())
    # non-vacuity: reading a neighbour's score (a wrong row) breaks the bound for most pairs (two different texts
    # may score alike by chance; bf16's bound is ~12% of these tiny models' score range, so more often there)
    broken = np.abs(np.roll(ref, 1) - ref) > bounds
    assert broken.mean() >= 0.5, (name, broken.mean(), bounds.max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_classifier_scores_ignore_batching_padding_packing_and_order(pairs, tiny_classifier_dir, dtype):
    tok = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir, dtype=dtype).eval()
    scorer = ClassifierScorer(model, tok, ChatFormatter(tok, "tulu"), max_length=4096, device="cpu")
    encoded = [scorer.encode(p, r) for p, r in pairs]
    with torch.inference_mode():
        ref = np.array([model.score(model.model(input_ids=torch.tensor([e.input_ids])).last_hidden_state[:, -1])
                        .float().item() for e in encoded])  # fmt: skip
    runs = {f"bs={b},packed={p},order={o}": _batched(scorer, pairs, b, p, o) for b, p, o in BATCHINGS}
    runs["left-padded"] = _left_padded_rewards(model, encoded, tok.pad_token_id)
    if dtype == torch.float32:
        cfg = AutoConfig.from_pretrained(tiny_classifier_dir)
        w = model.state_dict()
        # |w.h| <= |w| |h| <= |w| sqrt(hidden) max|norm gain| (Cauchy-Schwarz; h is RMS-normalised): the read-out's
        # magnitude; the sequence length is each row's own
        scale = float(w["score.weight"].norm() * w["model.norm.weight"].abs().max()) * cfg.hidden_size**0.5
        bounds = np.array([tol.forward_diff(cfg, len(e.input_ids), "classifier", magnitude=scale) for e in encoded])
    else:
        bounds = 2 * score_tolerance("bfloat16", ref)  # two runs, each within the measured bound
    _check(f"classifier {dtype}", ref, runs, bounds)


def test_judge_label_logprobs_ignore_batching_and_order(pairs, tiny_lm_dir, tmp_path):
    """The ``logprob`` judge reading (lm-eval's loglikelihood under the hood): the labels' log-probabilities after
    a context equal a direct forward's, whatever the batch size and the order of the requests."""
    from omegaconf import OmegaConf

    from rmlab.generation.chat import LocalChat

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    requests = [(f"{p}\n\n{r}\n\nVerdict: [[", label) for p, r in pairs[:9] for label in ("A]]", "B]]")]
    cfg = AutoConfig.from_pretrained(tiny_lm_dir)
    ref, bounds = [], []
    for context, label in requests:
        ctx = tok(context)["input_ids"]
        full = tok(context + label)["input_ids"]
        assert full[: len(ctx)] == ctx  # the label starts a token of its own here
        with torch.inference_mode():
            hidden = model.model(input_ids=torch.tensor([full])).last_hidden_state[0]
            ref.append(float(_response_logprobs(model, hidden, full, len(ctx)).sum()))
        bounds.append(tol.forward_diff(cfg, len(full), "logprob", tokens=len(full) - len(ctx)))
    ref, bounds = np.array(ref), np.array(bounds)
    runs = {}
    for batch_size, order in [(1, 0), (2, 1), (7, 2), (len(requests), 0)]:
        idx = list(range(len(requests)))
        if order == 1:
            idx.reverse()
        elif order == 2:
            random.Random(3).shuffle(idx)
        model_cfg = OmegaConf.load(ROOT / "conf" / "model" / "judge_local.yaml")
        model_cfg.pretrained, model_cfg.judge.local.batch_size = str(tiny_lm_dir), batch_size
        chat = LocalChat(model_cfg, cache_dir=str(tmp_path / "models"), device="cpu", seed=0, max_new_tokens=4,
                         reading="logprob")  # fmt: skip
        got, _ = chat.loglikelihoods(
            [requests[i] for i in idx], ScoreCache(tmp_path / f"judge-{batch_size}-{order}", "k"), chunk_size=5,
            progress=False,
        )  # fmt: skip
        out = np.empty(len(requests))
        out[idx] = got
        runs[f"bs={batch_size},order={order}"] = out
    worst = max(float(np.abs(v - ref).max()) for v in runs.values())
    print(
        f"\njudge label log-probabilities: max |deviation| {worst:.2e} (bounds {bounds.min():.1e}..{bounds.max():.1e})"
    )
    for k, v in runs.items():
        assert np.all(np.abs(v - ref) <= bounds), (k, np.abs(v - ref).max())
    # the two labels' log-probabilities differ by far more than the bound: a swapped label breaks it
    assert np.all(np.abs(ref[0::2] - ref[1::2]) > bounds[0::2] + bounds[1::2])
