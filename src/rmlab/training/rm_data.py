"""Preference pairs -> tokenised, padded batches for reward-model training (a LightningDataModule).

Pairs are formatted with the model's chat template (:class:`rmlab.models.chat_format.ChatFormatter`); a pair
whose chosen or rejected conversation is longer than ``max_length`` tokens is dropped (the Tulu-2.5 RM recipe
drops over-long pairs rather than truncating them) and the drop is counted. A batch holds the chosen
conversations of its pairs followed by their rejected ones, right-padded, so one forward pass scores both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from rmlab.data.preference import PreferenceExample
from rmlab.models.chat_format import ChatFormatter

log = logging.getLogger(__name__)


def tokenize_pairs(
    pairs: Sequence[PreferenceExample], formatter: ChatFormatter, max_length: int
) -> tuple[list[tuple[list[int], list[int]]], int]:
    """``[(chosen ids, rejected ids)]`` and the number of pairs dropped for length."""
    out, dropped = [], 0
    for p in pairs:
        ids = [formatter.token_ids(formatter.format(p.prompt, resp).text) for resp in (p.chosen, p.rejected)]
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


class SeededBatches(torch.utils.data.Sampler):
    """Batches of pair indices whose order is a function of (seed, epoch) alone, and that can start mid-epoch.

    Why not ``DataLoader(shuffle=True)``: its order comes from the global RNG, and Lightning, resuming from a
    mid-epoch checkpoint with a loader it cannot restore, starts the epoch over with a new order (it warns that
    results are unreliable), so a resumed run trains on other batches than an uninterrupted one. Here Lightning
    sets the epoch (``set_epoch``, before the first batch of each epoch is drawn) and :meth:`resume_at` skips the
    batches a checkpoint had already consumed, so a killed-and-resumed run sees exactly the same batches.

    ``shuffle=False`` keeps the input order; ``group_by_length`` (``transformers``' ``group_by_length``) shuffles,
    cuts the pairs into mega-batches of ``batch * mega``, sorts each by length, splits it into batches and shuffles
    the batches: less padding, the same data per epoch.

    Data parallel (``num_replicas`` > 1): the batches are cut for the whole world, ``batch * num_replicas`` pairs
    each, by the same rule, and each rank takes its contiguous share of every one. So ``n`` processes with
    ``batch`` pairs see, step by step, exactly the pairs one process with ``n * batch`` pairs sees, and DDP's
    averaged gradient is the single process's gradient. Why not Lightning's ``DistributedSampler``: it cannot
    shard a batch sampler (Lightning refuses one that is not a ``BatchSampler``), and it interleaves pairs, which
    would break both length grouping and that equality. So that every rank gets the same number of non-empty,
    equal-sized batches, a world batch whose size is not a multiple of ``num_replicas`` (the epoch's last, or
    the last of a length group) repeats its own first pairs to the next multiple, as ``DistributedSampler`` pads
    an epoch: only that batch differs from one process's, by at most ``num_replicas - 1`` repeated pairs."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        group_by_length: bool = False,
        mega: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.lengths, self.batch, self.mega, self.seed = list(lengths), batch, mega, seed
        self.shuffle, self.group_by_length = shuffle, group_by_length
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """The next pass over epoch ``epoch`` starts after its first ``batches_done`` batches."""
        self._resume = (int(epoch), int(batches_done))

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of epoch ``epoch``: its share of each of the world's batches."""
        out = []
        for world in self.world_batches(epoch):
            share = len(world) // self.num_replicas
            out.append(world[self.rank * share : (self.rank + 1) * share])
        return out

    def world_batches(self, epoch: int) -> list[list[int]]:
        """The batches of all ranks together: ``batch * num_replicas`` pairs each, cut as one process with that
        batch size cuts them, a short one padded to a multiple of ``num_replicas`` (nothing for one process)."""
        n, size, world = len(self.lengths), self.batch * self.num_replicas, self.num_replicas
        g = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=g).tolist() if self.shuffle else list(range(n))
        if not (self.shuffle and self.group_by_length):
            batches = [order[lo : lo + size] for lo in range(0, n, size)]
        else:
            mega, grouped = size * self.mega, []
            for lo in range(0, n, mega):
                chunk = sorted(order[lo : lo + mega], key=lambda i: -self.lengths[i])
                grouped += [chunk[j : j + size] for j in range(0, len(chunk), size)]
            batches = [grouped[k] for k in torch.randperm(len(grouped), generator=g).tolist()]
        return [(b * world)[: -(-len(b) // world) * world] for b in batches]

    def __iter__(self):
        batches = self.batches(self.epoch)  # read when the first batch is drawn, after Lightning's set_epoch
        start = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            start = self._resume[1]
            self._resume = None
        yield from batches[start:]

    def __len__(self) -> int:
        size = self.batch * self.num_replicas
        return (len(self.lengths) + size - 1) // size


def lightning_position(ckpt_path: str | Path) -> tuple[int, int]:
    """(epoch, training batches of that epoch already consumed) stored in a Lightning checkpoint."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    progress = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    return int(state["epoch"]), int(progress["processed"])


class PreferenceDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: Sequence[PreferenceExample],
        heldout: Sequence[PreferenceExample],
        formatter: ChatFormatter,
        *,
        max_length: int,
        micro_batch_pairs: int,
        eval_batch_pairs: int,
        num_workers: int = 0,
        group_by_length: bool = False,
        seed: int = 0,
        shuffle: bool = True,
    ):
        super().__init__()
        self.group_by_length, self.seed, self.shuffle = group_by_length, seed, shuffle
        self.formatter, self.max_length = formatter, max_length
        self.micro_batch_pairs, self.eval_batch_pairs, self.num_workers = (
            micro_batch_pairs,
            eval_batch_pairs,
            num_workers,
        )
        self.train_pairs, self.dropped_train = tokenize_pairs(train, formatter, max_length)
        self.heldout_pairs, self.dropped_heldout = tokenize_pairs(heldout, formatter, max_length)
        log.info(
            "pairs: %d train (%d dropped as longer than %d tokens), %d held out (%d dropped)",
            len(self.train_pairs),
            self.dropped_train,
            max_length,
            len(self.heldout_pairs),
            self.dropped_heldout,
        )
        if not self.train_pairs:
            raise ValueError(f"every training pair is longer than max_length={max_length}")
        self.pad_id = formatter.tokenizer.pad_token_id

    def _collate(self, batch):
        return collate_pairs(batch, self.pad_id)

    def _collate_indexed(self, batch):
        """Held-out items are ``(position, pair)``: the positions let the ranks' shares be put back in order."""
        out = collate_pairs([pair for _, pair in batch], self.pad_id)
        out["index"] = torch.tensor([i for i, _ in batch], dtype=torch.long)
        return out

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Continue a run killed mid-epoch: the training batches of ``epoch`` start after ``batches_done``."""
        self._resume = (epoch, batches_done)

    def _world(self) -> tuple[int, int]:
        """(world size, this process's rank) of the trainer running this module; (1, 0) outside one."""
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self):
        world, rank = self._world()
        sampler = SeededBatches(
            [len(c) + len(r) for c, r in self.train_pairs],
            self.micro_batch_pairs,
            seed=self.seed,
            shuffle=self.shuffle,
            group_by_length=self.group_by_length,
            num_replicas=world,
            rank=rank,
        )
        if getattr(self, "_resume", None):
            sampler.resume_at(*self._resume)
        return DataLoader(
            self.train_pairs, batch_sampler=sampler, num_workers=self.num_workers, collate_fn=self._collate
        )

    def val_dataloader(self):
        # held-out pairs scored longest first in fixed order: little padding, and results do not depend on it;
        # under data parallelism each rank scores every world-size-th pair of that order, each pair once
        order = sorted(self.heldout_pairs, key=lambda p: -max(len(p[0]), len(p[1])))
        world, rank = self._world()
        return DataLoader(
            list(enumerate(order))[rank::world],
            batch_size=self.eval_batch_pairs,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self._collate_indexed,
        )
