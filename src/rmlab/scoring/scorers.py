"""Reward-model scorers: a sequence classifier's scalar, or a DPO model's implicit reward.

Both turn an encoded (prompt, response) pair into one float. They run under ``torch.inference_mode`` on
whatever device the config names; nothing here is CUDA-specific.

- Classifier: the scalar head read at the last attended token (decoder backbones), or the model's own pooled
  output (encoders). Reading at the last *attended* token, not "the last token that is not the pad id", keeps the
  score right when a model's pad token equals its EOS token and the template ends with EOS.
- Implicit reward (Rafailov et al. 2023, DPO; RM-Bench Sec. 4.2): with a reference model,
  ``sum_t log pi(y_t|x,y_<t) - log pi_ref(y_t|x,y_<t)`` over response tokens only (no beta, no length
  normalisation). Without a reference, RewardBench's reference-free modes (allenai/reward-bench,
  ``rewardbench/dpo.py``): ``sum`` = sum of response log-probs, ``avg`` = their mean, ``norm`` = minus the L2 norm
  of the response log-prob vector.

Which tokens are the "response" (``tokens``):

- ``rewardbench``: as rewardbench's DPO scorer counts them (``rewardbench/dpo.py`` ``tokenize_row`` and
  ``build_tokenized_answer`` at v0.1.4, which RM-Bench's ``scripts/run_dpo.py`` runs): the prompt rendered without
  the assistant header, BOS prepended (EOS when the tokenizer has no BOS, as RM-Bench sets it); everything after it
  (the assistant header, the response, the template's end-of-turn text) tokenised jointly with the prompt and
  split where the prompt's own tokens end (one token earlier if the last one merged); one EOS appended. The
  published RM-Bench and RewardBench DPO numbers are computed this way. With a reference the header's terms are
  equal for every response to a prompt, but reference-free ``avg`` and ``norm`` depend on them.
- ``response``: the response as the chat template renders it after the generation prompt, tokenised on its own
  (the tokens TRL's DPO trainer, and :mod:`rmlab.training.train_dpo`, optimise).

Truncation is ours in both (the last ``max_length`` tokens); rewardbench cuts prompts to 128 tokens when a pair
exceeds 2048 tokens, which changes only such long pairs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.forward import backbone_of, fast_path, last_hidden, scored_logprobs, token_logprobs
from rmlab.utils.registry import Registry

SCORERS: Registry[type] = Registry("scorer")
REF_FREE_MODES = ("avg", "sum", "norm")
TOKEN_SETS = ("rewardbench", "response")


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    response_start: int  # index of the first response token in input_ids (0 when the prompt was truncated away)


def _encode(tokenizer, text: str, add_special_tokens: bool) -> list[int]:
    return tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]


def truncate_left(ids: list[int], response_start: int, max_length: int) -> Encoded:
    """Keep the last ``max_length`` tokens (RM-Bench prompts come first; responses are what is scored)."""
    cut = max(0, len(ids) - max_length)
    return Encoded(ids[cut:], max(0, response_start - cut))


def _pad(batch: list[Encoded], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):  # right padding
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[row, : len(e.input_ids)] = 1
    return ids.to(device), mask.to(device)


@SCORERS.register("classifier")
class ClassifierScorer:
    """Scores with an ``AutoModelForSequenceClassification`` that has one output."""

    def __init__(self, model, tokenizer, formatter: ChatFormatter, *, max_length: int, device: str):
        self.model, self.tokenizer, self.formatter = model, tokenizer, formatter
        self.max_length, self.device = max_length, device
        # a decoder with a per-position linear head, on the fast path: packed rows, a prompt's tokens encoded once
        self.packs = isinstance(getattr(model, "score", None), torch.nn.Linear) and fast_path(model)

    def encode(self, prompt: str, response: str) -> Encoded:
        pair = self.formatter.format(prompt, response)
        return truncate_left(self.formatter.token_ids(pair.text), 0, self.max_length)

    @torch.inference_mode()
    def __call__(self, batch: list[Encoded], runs: list[tuple[int, int]] | None = None) -> np.ndarray:
        """Scores of ``batch``: one packed row when ``runs`` (consecutive ``(count, shared prefix length)``, see
        :func:`rmlab.scoring.forward.pack`) is given and the model packs, else a right-padded batch."""
        if runs is not None and self.packs:
            hidden = last_hidden(self.model, [e.input_ids for e in batch], runs)
            return self.model.score(hidden)[:, 0].double().cpu().numpy()
        ids, mask = _pad(batch, self.tokenizer.pad_token_id, self.device)
        return classifier_rewards(self.model, ids, mask).double().cpu().numpy()


def classifier_rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One scalar per row, read at the last attended token of right-padded rows (decoder classifiers).

    Models whose head is not a per-position linear ``score`` layer (BERT-style encoders pool the first token)
    are called as they are. Shared by scoring and reward-model training.
    """
    head = getattr(model, "score", None)
    if not isinstance(head, torch.nn.Linear):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()
    backbone = getattr(model, model.base_model_prefix)
    hidden = backbone(input_ids=input_ids, attention_mask=causal_mask_arg(attention_mask)).last_hidden_state
    last = attention_mask.sum(dim=1) - 1  # right padding: last attended position
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return head(pooled)[:, 0].float()


def response_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, starts: torch.Tensor
) -> list[torch.Tensor]:
    """Per-row float32 log-probs of the response tokens (positions ``starts[row]`` .. last attended).

    Models on the fast path (:func:`rmlab.scoring.forward.fast_path`) run the head only at the positions that
    predict a response token, a chunk at a time (:func:`~rmlab.scoring.forward.token_logprobs`). Others take the
    model's own ``logits_to_keep`` with a boolean mask, so their head (with any soft-capping or scaling) is applied
    as the model defines it.
    """
    lengths = attention_mask.sum(dim=1).tolist()
    bounds = [(max(int(s), 1), int(n)) for s, n in zip(starts, lengths)]  # token 0 has no prediction
    targets = torch.cat([input_ids[row, start:end] for row, (start, end) in enumerate(bounds)])
    if fast_path(model):  # the backbone on the padded batch, the head only at the scored positions, chunked
        hidden = backbone_of(model)(input_ids=input_ids, attention_mask=causal_mask_arg(attention_mask))
        picked = torch.cat([hidden.last_hidden_state[row, s - 1 : n - 1] for row, (s, n) in enumerate(bounds)])
        logps = token_logprobs(model.get_output_embeddings(), picked, targets)
        return list(torch.split(logps, [end - start for start, end in bounds]))
    keep = torch.zeros_like(attention_mask, dtype=torch.bool)
    for row, (start, end) in enumerate(bounds):
        keep[row, start - 1 : end - 1] = True  # position t-1 predicts token t
    if _accepts_logits_to_keep(model):
        logits = model(input_ids=input_ids, attention_mask=causal_mask_arg(attention_mask), logits_to_keep=keep).logits
        logits = logits.reshape(-1, logits.shape[-1])  # (response tokens in the batch, vocab)
    else:
        logits = model(input_ids=input_ids, attention_mask=causal_mask_arg(attention_mask)).logits[keep]
    logps = token_logprobs(torch.nn.Identity(), logits, targets, vocab=logits.shape[-1])  # float32, chunk by chunk
    return list(torch.split(logps, [end - start for start, end in bounds]))


def causal_mask_arg(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """The attention mask to pass a causal decoder on a right-padded batch: none at all.

    Under causal attention a real token only sees earlier positions, and with right padding those are all real,
    so the padding mask changes nothing that is read out; leaving it out lets SDPA take its ``is_causal`` path,
    which skips the masked half of the attention matrix (about 2x less attention work on CPU and GPU).
    """
    right_padded = bool((attention_mask[:, :-1] >= attention_mask[:, 1:]).all())
    if not right_padded:
        raise ValueError("causal scoring expects right-padded batches")
    return None


def _accepts_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


@SCORERS.register("implicit")
class ImplicitRewardScorer:
    """DPO implicit reward; ``reference=None`` selects a reference-free ``mode``."""

    def __init__(
        self,
        policy,
        tokenizer,
        formatter: ChatFormatter,
        *,
        max_length: int,
        device: str,
        reference=None,
        mode: str = "avg",
        tokens: str = "response",
    ):
        if reference is None and mode not in REF_FREE_MODES:
            raise ValueError(f"unknown reference-free mode {mode!r}; choose one of {REF_FREE_MODES}")
        if tokens not in TOKEN_SETS:
            raise ValueError(f"unknown implicit-reward token set {tokens!r}; choose one of {TOKEN_SETS}")
        self.policy, self.reference, self.mode, self.tokens = policy, reference, mode, tokens
        self.tokenizer, self.formatter = tokenizer, formatter
        self.max_length, self.device = max_length, device
        self.packs = all(fast_path(m) for m in (policy, reference) if m is not None)  # see ClassifierScorer

    def encode(self, prompt: str, response: str) -> Encoded:
        """The ids of the conversation and where its scored part starts (``tokens``, see the module docstring)."""
        if self.tokens == "rewardbench":
            return self._encode_rewardbench(prompt, response)
        # prompt and response tokenised separately and concatenated, so the boundary is exact (as TRL does)
        pair = self.formatter.format(prompt, response)
        prompt_ids = self.formatter.token_ids(pair.prefix)
        response_ids = _encode(self.tokenizer, pair.text[len(pair.prefix) :], False)
        if not response_ids:
            raise ValueError(f"response tokenises to nothing: {response[:80]!r}")
        return truncate_left(prompt_ids + response_ids, len(prompt_ids), self.max_length)

    def _encode_rewardbench(self, prompt: str, response: str) -> Encoded:
        tok = self.tokenizer
        pair = self.formatter.format_user_only(prompt, response)
        answer = pair.text[len(pair.prefix) :]
        full = _encode(tok, pair.prefix + answer, False)
        prompt_ids = _encode(tok, pair.prefix, False)
        start = len(prompt_ids) if full[: len(prompt_ids)] == prompt_ids else len(prompt_ids) - 1  # a merged token
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        ids = [bos, *full, tok.eos_token_id]
        return truncate_left(ids, 1 + start, self.max_length)

    def _logprobs(self, model, batch: list[Encoded], runs: list[tuple[int, int]] | None) -> list[torch.Tensor]:
        if runs is not None and self.packs:
            return scored_logprobs(model, [e.input_ids for e in batch], [e.response_start for e in batch], runs)
        ids, mask = _pad(batch, self.tokenizer.pad_token_id, self.device)
        return response_logprobs(model, ids, mask, torch.tensor([e.response_start for e in batch]))

    @torch.inference_mode()
    def __call__(self, batch: list[Encoded], runs: list[tuple[int, int]] | None = None) -> np.ndarray:
        """Rewards of ``batch``: one packed row when ``runs`` is given and the models pack (as
        :meth:`ClassifierScorer.__call__`), else right-padded batches."""
        policy = self._logprobs(self.policy, batch, runs)
        if self.reference is not None:
            # the same model as its own reference (a DPO policy before training): every reward is exactly 0
            same = self.reference is self.policy
            ref = policy if same else self._logprobs(self.reference, batch, runs)
            rewards = [(p - r).sum() for p, r in zip(policy, ref)]
        elif self.mode == "sum":
            rewards = [p.sum() for p in policy]
        elif self.mode == "avg":
            rewards = [p.mean() for p in policy]
        else:  # norm
            rewards = [-torch.linalg.vector_norm(p, ord=2) for p in policy]
        return torch.stack(rewards).double().cpu().numpy()
