"""Preference pairs -> tokenised, padded batches for reward-model training (a LightningDataModule).

Pairs are formatted with the model's chat template (:class:`rmlab.models.chat_format.ChatFormatter`); a pair
whose chosen or rejected conversation is longer than ``max_length`` tokens is dropped (the Tulu-2.5 RM recipe
drops over-long pairs rather than truncating them) and the drop is counted. A batch holds the chosen
conversations of its pairs followed by their rejected ones, right-padded, so one forward pass scores both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from rmlab.data.preference import PreferenceExample
from rmlab.models.chat_format import ChatFormatter

log = logging.getLogger(__name__)


def tokenize_pairs(pairs: Sequence[PreferenceExample], formatter: ChatFormatter, max_length: int
                   ) -> tuple[list[tuple[list[int], list[int]]], int]:
    """``[(chosen ids, rejected ids)]`` and the number of pairs dropped for length."""
    tok = formatter.tokenizer
    out, dropped = [], 0
    for p in pairs:
        ids = [tok(formatter.format(p.prompt, resp).text, add_special_tokens=formatter.add_special_tokens)["input_ids"]
               for resp in (p.chosen, p.rejected)]
        if max(len(i) for i in ids) > max_length:
            dropped += 1
            continue
        out.append((ids[0], ids[1]))
    return out, dropped


def collate_pairs(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    rows = [c for c, _ in pairs] + [r for _, r in pairs]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Batches of pairs of similar length, in random order (what ``transformers``' ``group_by_length`` does):
    each epoch shuffles the pairs, cuts them into mega-batches of ``batch * mega`` pairs, sorts each mega-batch by
    length and splits it into batches; the batches are then shuffled. Less padding, the same data per epoch."""

    def __init__(self, lengths: Sequence[int], batch: int, *, mega: int = 50, seed: int = 0):
        self.lengths, self.batch, self.mega, self.seed, self.epoch = list(lengths), batch, mega, seed, 0

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        size = self.batch * self.mega
        batches = []
        for lo in range(0, len(order), size):
            chunk = sorted(order[lo : lo + size], key=lambda i: -self.lengths[i])
            batches += [chunk[j : j + self.batch] for j in range(0, len(chunk), self.batch)]
        for k in torch.randperm(len(batches), generator=g).tolist():
            yield batches[k]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch - 1) // self.batch


class PreferenceDataModule(pl.LightningDataModule):
    def __init__(self, train: Sequence[PreferenceExample], heldout: Sequence[PreferenceExample],
                 formatter: ChatFormatter, *, max_length: int, micro_batch_pairs: int, eval_batch_pairs: int,
                 num_workers: int = 0, group_by_length: bool = False, seed: int = 0, shuffle: bool = True):
        super().__init__()
        self.group_by_length, self.seed, self.shuffle = group_by_length, seed, shuffle
        self.formatter, self.max_length = formatter, max_length
        self.micro_batch_pairs, self.eval_batch_pairs, self.num_workers = micro_batch_pairs, eval_batch_pairs, num_workers
        self.train_pairs, self.dropped_train = tokenize_pairs(train, formatter, max_length)
        self.heldout_pairs, self.dropped_heldout = tokenize_pairs(heldout, formatter, max_length)
        log.info("pairs: %d train (%d dropped as longer than %d tokens), %d held out (%d dropped)",
                 len(self.train_pairs), self.dropped_train, max_length, len(self.heldout_pairs), self.dropped_heldout)
        if not self.train_pairs:
            raise ValueError(f"every training pair is longer than max_length={max_length}")
        self.pad_id = formatter.tokenizer.pad_token_id

    def _collate(self, batch):
        return collate_pairs(batch, self.pad_id)

    def train_dataloader(self):
        if self.group_by_length:
            sampler = LengthGroupedBatches([len(c) + len(r) for c, r in self.train_pairs], self.micro_batch_pairs,
                                           seed=self.seed)
            return DataLoader(self.train_pairs, batch_sampler=sampler, num_workers=self.num_workers,
                              collate_fn=self._collate)
        return DataLoader(self.train_pairs, batch_size=self.micro_batch_pairs, shuffle=self.shuffle,
                          num_workers=self.num_workers, collate_fn=self._collate)

    def val_dataloader(self):
        # held-out pairs scored longest first in fixed order: little padding, and results do not depend on it
        order = sorted(self.heldout_pairs, key=lambda p: -max(len(p[0]), len(p[1])))
        return DataLoader(order, batch_size=self.eval_batch_pairs, shuffle=False, num_workers=self.num_workers,
                          collate_fn=self._collate)
