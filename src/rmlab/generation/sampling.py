"""Batched generation with Hugging Face ``generate``: prompts sorted by length, left-padded, cut at EOS.

Used to compare policies on held-out prompts (PPO) and to sample several responses per prompt
(:mod:`rmlab.diagnostics.reward_signal`). Greedy by default, so the same prompts give the same responses on any batch
size; sampling is plain temperature sampling (no top-k or top-p), as in TRL's PPO rollouts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


@torch.inference_mode()
def generate_ids(
    model,
    queries: Sequence[Sequence[int]],
    *,
    pad_id: int,
    eos_id: int,
    max_new_tokens: int,
    batch_size: int = 8,
    device: str = "cpu",
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    progress: str | None = None,
) -> list[list[int]]:
    """Response token ids per query (up to and including the first EOS; no padding); ``progress``: the label of a
    progress bar over the batches (none without it)."""
    if pad_id == eos_id:
        raise ValueError("generation needs a pad token distinct from EOS, so that a response's EOS is visible")
    order = sorted(range(len(queries)), key=lambda i: len(queries[i]))
    out: list[list[int]] = [[] for _ in queries]
    gen = torch.Generator().manual_seed(seed)
    from tqdm.auto import tqdm

    for lo in tqdm(range(0, len(order), batch_size), desc=progress, unit="batch", disable=progress is None):
        idx = order[lo : lo + batch_size]
        width = max(len(queries[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
            ids[row, width - len(queries[i]) :] = torch.tensor(list(queries[i]))
            mask[row, width - len(queries[i]) :] = 1
        if do_sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        generated = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=1.0 if do_sample else None,
            top_k=0 if do_sample else None,  # as TRL's PPO
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
        for row, i in enumerate(idx):
            response = generated[row, width:].tolist()
            out[i] = (
                response[: response.index(eos_id) + 1] if eos_id in response else [t for t in response if t != pad_id]
            )
    return out
