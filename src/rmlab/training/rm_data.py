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


class PreferenceDataModule(pl.LightningDataModule):
    def __init__(self, train: Sequence[PreferenceExample], heldout: Sequence[PreferenceExample],
                 formatter: ChatFormatter, *, max_length: int, micro_batch_pairs: int, eval_batch_pairs: int,
                 num_workers: int = 0):
        super().__init__()
        self.formatter, self.max_length = formatter, max_length
        self.micro_batch_pairs, self.eval_batch_pairs, self.num_workers = micro_batch_pairs, eval_batch_pairs, num_workers
        self.train_pairs, self.dropped_train = tokenize_pairs(train, formatter, max_length)
        self.heldout_pairs, self.dropped_heldout = tokenize_pairs(heldout, formatter, max_length)
        log.info("pairs: %d train (%d dropped as longer than %d tokens), %d held out (%d dropped)",
                 len(self.train_pairs), self.dropped_train, max_length, len(self.heldout_pairs), self.dropped_heldout)
        if not self.train_pairs:
            raise ValueError(f"every training pair is longer than max_length={max_length}")
        self.pad_id = formatter.tokenizer.pad_token_id

    def _loader(self, pairs, batch, shuffle):
        return DataLoader(pairs, batch_size=batch, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=lambda b: collate_pairs(b, self.pad_id))

    def train_dataloader(self):
        return self._loader(self.train_pairs, self.micro_batch_pairs, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.heldout_pairs, self.eval_batch_pairs, shuffle=False)

    @property
    def train_tokens(self) -> int:
        return sum(len(c) + len(r) for c, r in self.train_pairs)
