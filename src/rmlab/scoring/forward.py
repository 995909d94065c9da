"""Decoder forward passes for scoring that compute each thing once and nothing that is not read.

Three savings over calling a causal LM on padded full sequences and reading its logits:

- **Packed rows, no padding.** A batch's sequences are laid end to end in one row (position ids restarting for each)
  and attention runs per sequence (:func:`packed_attention`), so no FLOP goes to padding, and the matmuls see one
  long row: on a CPU their efficiency grows with the rows' token count, which made a prompt's responses, batched
  on their own and padded, slower than length-bucketed batches of any responses.
- **A prompt's tokens encoded once.** The responses to one prompt start with the same tokens (the rendered prompt,
  and in rewardbench's token set the assistant header). In a packed row they appear once, followed by each
  response's own tokens; each response attends to the prefix's keys and, causally, to its own
  (:func:`prefix_causal_attention`: the two attention blocks merged by their log-sum-exps, as flash attention
  merges key blocks). Hidden states at the prefix positions are read from the prefix, so a scored position inside
  it (the header's tokens) is computed once. With float32 weights the scores equal the padded, unshared pass's to
  rounding (tests check 1e-5).
- **The LM head only where a log-prob is read, a chunk at a time.** The backbone's final hidden states are
  gathered at the positions that predict a scored token, and the head (vocabulary x hidden) runs over those in
  chunks whose float32 logits stay under :data:`HEAD_CHUNK_BYTES`; each chunk gives ``logit[target] -
  logsumexp(logits)`` in float32 and is dropped. Peak memory therefore does not grow with vocabulary x sequence
  length, and log-prob sums accumulate in float32 whatever the compute dtype.

The head must be a plain linear map of the final hidden state (``logits = lm_head(h)``), as in the Llama, Mistral,
Qwen, OLMo and Phi-3 families (Tulu 2, Tulu 2.5, SmolLM2, Zephyr, Qwen 2.5 ...), and the model must run on
transformers' SDPA attention. Other models (soft-capped or scaled logits, another attention implementation) go
through their own forward on padded batches: slower, never different (:func:`fast_path`).

The packed attention is registered with transformers' attention and mask interfaces as ``rmlab_sdpa``; outside a
packed pass (training, generation) it is transformers' own SDPA path, unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

# Model types whose causal-LM forward is exactly ``lm_head(backbone(...).last_hidden_state)`` and whose attention
# layers call transformers' attention interface; tested against each family's own logits (tests/test_forward.py).
PLAIN_HEAD_TYPES = frozenset(
    {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "olmo", "olmo2", "phi3", "smollm3"}
)
# Logit transforms some architectures apply after the head; any of them set disables the fast path.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_logits_scaling")
HEAD_CHUNK_BYTES = 256 * 2**20  # float32 logits materialised at once, at most
# On a CPU, bf16/fp16 head matmuls stay efficient on few rows while the float32 softmax over the vocabulary runs
# from cache only when the chunk is small: 64 rows (about 12 MiB of logits at 49k words) was 1.8x faster than
# 1,365 rows for SmolLM2's head in bf16; float32 matmuls want many rows (measured, docs/performance.md).
CPU_HALF_HEAD_CHUNK_BYTES = 12 * 2**20
ATTENTION = "rmlab_sdpa"  # the attention implementation the scorers set (see the module docstring)
_LAYOUT = contextvars.ContextVar("rmlab_packed_layout", default=None)  # the Layout of the pass under way


def backbone_of(model):
    """The decoder stack under a task head (``model.model`` for Llama-style checkpoints)."""
    return getattr(model, model.base_model_prefix)


def fast_path(model) -> bool:
    """Whether the packed pass and :func:`token_logprobs` reproduce ``model``'s own outputs (see module doc)."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in PLAIN_HEAD_TYPES:
        return False
    if any(getattr(cfg, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return False
    return getattr(cfg, "_attn_implementation", None) in ("sdpa", ATTENTION)


@dataclass
class Layout:
    """Sequences laid end to end in one row. A segment is ``(start, end, prefix)``: packed positions start to end,
    continuing the segment at the packed range ``prefix``, or standing alone when ``prefix`` is None."""

    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    segments: list[tuple[int, int, tuple[int, int] | None]] = field(default_factory=list)
    where: list[tuple[int, int, int]] = field(default_factory=list)  # per row: prefix start, prefix length, own start

    def add(self, ids: Sequence[int], first_position: int = 0, prefix: tuple[int, int] | None = None) -> int:
        start = len(self.ids)
        self.ids.extend(ids)
        self.positions.extend(range(first_position, first_position + len(ids)))
        self.segments.append((start, len(self.ids), prefix))
        return start

    def index(self, row: int, lo: int, hi: int) -> torch.Tensor:
        """Packed indices of a row's positions lo to hi."""
        p_start, p_len, own = self.where[row]
        return torch.tensor([p_start + p if p < p_len else own + p - p_len for p in range(lo, hi)], dtype=torch.long)


def pack(rows: Sequence[Sequence[int]], runs: Sequence[tuple[int, int]]) -> Layout:
    """Lay ``rows`` out in one packed row. ``runs`` splits them into consecutive ``(count, prefix_len)`` runs whose
    rows share their first ``prefix_len`` tokens (0: nothing shared); the shared tokens are laid out once."""
    if sum(n for n, _ in runs) != len(rows):
        raise ValueError(f"runs cover {sum(n for n, _ in runs)} rows, the batch has {len(rows)}")
    layout, r = Layout(), 0
    for count, prefix_len in runs:
        members = rows[r : r + count]
        if prefix_len and (
            min(len(m) for m in members) <= prefix_len
            or any(m[:prefix_len] != members[0][:prefix_len] for m in members)
        ):
            raise ValueError(f"rows {r}..{r + count - 1} do not share {prefix_len} tokens and keep one of their own")
        shared = layout.add(members[0][:prefix_len]) if prefix_len else 0
        for m in members:
            own = layout.add(m[prefix_len:], prefix_len, (shared, shared + prefix_len) if prefix_len else None)
            layout.where.append((shared, prefix_len, own))
        r += count
    return layout


def prefix_causal_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale=None) -> torch.Tensor:
    """SDPA of ``query`` (the last ``q`` positions) over ``key``/``value`` (``P + q`` positions, heads repeated):
    the first ``P`` keys visible to every query, the last ``q`` causally. ``(batch, heads, q, head_dim)``."""
    q_len, kv_len = query.shape[2], key.shape[2]
    prefix = kv_len - q_len
    if query.device.type != "cpu":  # GPU kernels take the bottom-right causal mask without computing masked blocks
        if prefix == 0:
            return F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scale)
        mask = torch.ones(q_len, kv_len, dtype=torch.bool, device=query.device).tril(prefix)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
    dtype = query.dtype
    if dtype != torch.float32:  # PyTorch's CPU flash kernel ran 1.2-1.6x faster in float32 than in bf16 (measured)
        query, key, value = query.float(), key.float(), value.float()
    if prefix == 0:
        return F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scale).to(dtype)
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu  # returns the log-sum-exp as well
    out_p, lse_p = flash(query, key[:, :, :prefix], value[:, :, :prefix], scale=scale)[:2]
    out_s, lse_s = flash(query, key[:, :, prefix:], value[:, :, prefix:], is_causal=True, scale=scale)[:2]
    top = torch.maximum(lse_p, lse_s)
    w_p, w_s = torch.exp(lse_p - top)[..., None], torch.exp(lse_s - top)[..., None]
    return ((out_p * w_p + out_s * w_s) / (w_p + w_s)).to(dtype)


def packed_attention(query, key, value, layout: Layout, scale=None) -> torch.Tensor:
    """Attention of a packed row, segment by segment (``(1, heads, tokens, head_dim)``, heads repeated)."""
    dtype = query.dtype
    if query.device.type == "cpu" and dtype != torch.float32:  # cast the row once, not each segment
        query, key, value = query.float(), key.float(), value.float()
    out = torch.empty_like(query)
    for start, end, prefix in layout.segments:
        if prefix is None:
            k, v = key[:, :, start:end], value[:, :, start:end]
        else:
            k = torch.cat([key[:, :, prefix[0] : prefix[1]], key[:, :, start:end]], 2)
            v = torch.cat([value[:, :, prefix[0] : prefix[1]], value[:, :, start:end]], 2)
        out[:, :, start:end] = prefix_causal_attention(query[:, :, start:end], k, v, scale=scale)
    return out.to(dtype)


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    layout = _LAYOUT.get()
    if layout is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    out = packed_attention(query, repeat_kv(key, groups), repeat_kv(value, groups), layout, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def _mask(*args, **kwargs):
    """No mask in a packed pass (:func:`_attention` has the layout); transformers' SDPA mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    return None if _LAYOUT.get() is not None else sdpa_mask(*args, **kwargs)


def use_packed_attention(model) -> None:
    """Give a model on transformers' SDPA attention the ``rmlab_sdpa`` attention (registered on first use)."""
    if model.config._attn_implementation not in ("sdpa", ATTENTION):
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    if ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(ATTENTION, _attention)
        AttentionMaskInterface.register(ATTENTION, _mask)
    if model.config._attn_implementation != ATTENTION:
        model.set_attn_implementation(ATTENTION)


@contextlib.contextmanager
def _packed(layout: Layout):
    token = _LAYOUT.set(layout)
    try:
        yield
    finally:
        _LAYOUT.reset(token)


def hidden_at(
    backbone, rows: Sequence[Sequence[int]], positions: Sequence[tuple[int, int]], runs: Sequence[tuple[int, int]]
) -> list[torch.Tensor]:
    """Final hidden states of each row at its positions lo to hi (one ``(hi - lo, hidden)`` tensor per row), from
    one packed pass (:func:`pack`, ``runs`` as there)."""
    if backbone.config._attn_implementation != ATTENTION:
        raise RuntimeError("a packed pass needs the rmlab_sdpa attention: call use_packed_attention(model) first")
    device = next(backbone.parameters()).device
    layout = pack(rows, runs)
    ids = torch.tensor([layout.ids], device=device)
    position_ids = torch.tensor([layout.positions], device=device)
    with _packed(layout):
        hidden = backbone(input_ids=ids, position_ids=position_ids, use_cache=False).last_hidden_state[0]
    return [hidden[layout.index(row, lo, hi).to(device)] for row, (lo, hi) in enumerate(positions)]


def token_logprobs(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, *, vocab: int | None = None
) -> torch.Tensor:
    """float32 ``log p(target | hidden)`` per row of ``hidden`` (N x hidden), the head run a chunk at a time
    (``head`` may be the identity on rows that already are logits; then give ``vocab``)."""
    vocab = vocab or head.weight.shape[0]
    half_on_cpu = hidden.device.type == "cpu" and hidden.dtype != torch.float32
    chunk = max(1, (CPU_HALF_HEAD_CHUNK_BYTES if half_on_cpu else HEAD_CHUNK_BYTES) // (4 * vocab))
    out = torch.empty(len(targets), dtype=torch.float32, device=hidden.device)
    for lo in range(0, len(targets), chunk):
        logits = head(hidden[lo : lo + chunk]).float()  # log-softmax and its sums in float32, whatever the dtype
        out[lo : lo + chunk] = -F.cross_entropy(logits, targets[lo : lo + chunk], reduction="none")
    return out


def scored_logprobs(
    model, rows: Sequence[Sequence[int]], starts: Sequence[int], runs: Sequence[tuple[int, int]]
) -> list[torch.Tensor]:
    """Per row, float32 log-probs of tokens ``starts[row]`` to the end (position t-1 predicts token t)."""
    use_packed_attention(model)
    bounds = [(max(int(s), 1), len(r)) for s, r in zip(starts, rows)]  # token 0 has no prediction
    hidden = hidden_at(backbone_of(model), rows, [(s - 1, n - 1) for s, n in bounds], runs)
    device = hidden[0].device
    targets = torch.cat([torch.as_tensor(r[s:n], dtype=torch.long) for r, (s, n) in zip(rows, bounds)]).to(device)
    logps = token_logprobs(model.get_output_embeddings(), torch.cat(hidden), targets)
    return list(torch.split(logps, [n - s for s, n in bounds]))


def last_hidden(model, rows: Sequence[Sequence[int]], runs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The final hidden state at each row's last token (rows x hidden): what a decoder classifier's head reads."""
    use_packed_attention(model)
    return torch.cat(hidden_at(backbone_of(model), rows, [(len(r) - 1, len(r)) for r in rows], runs))
