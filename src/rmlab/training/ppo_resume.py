"""Checkpoints that resume TRL's PPO loop (``trl.experimental.ppo.PPOTrainer`` has none of its own).

TRL's ``train()`` always starts at update 1, and its own checkpoints hold the policy only (not the value model).
What we add is the bookkeeping around TRL's loop, with accelerate doing the saving:

- every ``recipe.save_every`` updates, :class:`PPOCheckpoint` writes ``accelerator.save_state`` (policy and value
  weights, optimizer, RNG states; sharded under DeepSpeed / FSDP), the scheduler and the trainer state
  (update, episode, log history) to ``checkpoints/update-<k>``, then points ``checkpoints/last`` at it (an atomic
  rename: a kill mid-save leaves the previous checkpoint in place) and removes the older one;
- :class:`SeededEpochs` shuffles each pass over the prompts with a generator seeded by seed + epoch, so the data
  order at any update is known;
- :func:`resume_trainer` restores that state into a freshly built trainer, continues the interrupted pass from
  the batch it stopped at, and shortens TRL's loop to the updates that remain; a callback puts the update and
  episode counters back at train start.

On one process, a resumed run's updates are the same as an uninterrupted run's (``tests/test_train_ppo.py`` checks
the weights and the logged curves).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from torch.utils.data import RandomSampler
from transformers import TrainerCallback

from rmlab.training.resume import resolve_resume
from rmlab.utils.io import write_text

log = logging.getLogger(__name__)

LAST = "last"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def _newest(checkpoints: Path) -> Path | None:
    pointer = checkpoints / LAST
    return checkpoints / pointer.read_text().strip() if pointer.is_file() else None


def find_resume(resume: str | None, run_dir: Path) -> tuple[Path | None, dict]:
    """The checkpoint to continue from (see :mod:`rmlab.training.resume`: ``last`` fails when there is none,
    ``auto`` then starts from the SFT model) and the record of that decision."""
    ckpt, record = resolve_resume(resume, checkpoint_dir(run_dir), _newest, what="PPO")
    if ckpt is not None and not (ckpt / "trainer_state.json").is_file():
        raise FileNotFoundError(f"resume={resume}: {ckpt} is not a PPO checkpoint (no trainer_state.json)")
    return ckpt, record


class PPOCheckpoint(TrainerCallback):
    """Save a resumable checkpoint every ``every`` updates (after TRL's scheduler step for that update)."""

    def __init__(self, trainer, run_dir: Path, every: int):
        self.trainer, self.root, self.every = trainer, checkpoint_dir(run_dir), int(every)

    def on_step_end(self, args, state, control, **kwargs):
        if self.every > 0 and state.global_step % self.every == 0:
            self.save(state)

    def save(self, state) -> Path:
        t = self.trainer
        name = f"update-{state.global_step}"
        final, tmp = self.root / name, self.root / f".{name}.tmp"
        # Several processes: every rank writes its own RNG state into tmp (accelerate's save_state has no barrier
        # of its own), so rank 0 clears tmp before anyone writes and publishes it only after everyone has.
        if t.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        t.accelerator.wait_for_everyone()
        t.accelerator.save_state(str(tmp))
        t.accelerator.wait_for_everyone()
        if t.accelerator.is_main_process:
            torch.save(t.lr_scheduler.state_dict(), tmp / "ppo_scheduler.pt")
            (tmp / "trainer_state.json").write_text(
                json.dumps(
                    {"global_step": state.global_step, "episode": state.episode, "log_history": state.log_history}
                )
            )
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            pointer = self.root / LAST
            previous = pointer.read_text().strip() if pointer.is_file() else None
            write_text(pointer, name)
            if previous and previous != name:
                shutil.rmtree(self.root / previous, ignore_errors=True)
            log.info("PPO checkpoint: %s", final)
        t.accelerator.wait_for_everyone()
        return final


class _RestoreCounters(TrainerCallback):
    """TRL's ``train()`` zeroes the update and episode counters before ``on_train_begin``; put them back."""

    def __init__(self, saved: dict, total_updates: int):
        self.saved, self.total = saved, total_updates

    def on_train_begin(self, args, state, control, **kwargs):
        state.global_step = self.saved["global_step"]
        state.episode = self.saved["episode"]
        state.max_steps = self.total
        state.log_history = list(self.saved["log_history"])


class SeededEpochs:
    """TRL's prompt loader, shuffled per pass by a generator seeded with ``seed + epoch``: the order of any pass is
    known without replaying the run (with the default sampler each pass draws from the global RNG, whose state at
    that pass's start no checkpoint holds). Every process gets the same order, as accelerate requires."""

    def __init__(self, dataloader, seed: int):
        self.dataloader, self.seed, self.epoch = dataloader, int(seed), 0
        self.generator = torch.Generator()
        _random_sampler(dataloader).generator = self.generator

    def __iter__(self):
        self.generator.manual_seed(self.seed + self.epoch)
        self.epoch += 1
        yield from self.dataloader

    def __len__(self):
        return len(self.dataloader)


def _random_sampler(dataloader) -> RandomSampler:
    """The shuffling sampler under a (possibly accelerate-wrapped) dataloader."""
    todo, seen = [dataloader], set()
    while todo:
        obj = todo.pop()
        if isinstance(obj, RandomSampler):
            return obj
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        todo += [getattr(obj, a, None) for a in ("sampler", "batch_sampler", "base_dataloader")]
    raise TypeError(f"{type(dataloader).__name__}: no RandomSampler found (the PPO prompts are not shuffled?)")


class _ThenRepeat:
    """A loader whose first pass continues an iterator already started, and whose later passes are the
    loader's own (TRL cycles through the prompts when ``total_episodes`` exceeds them)."""

    def __init__(self, started, loader):
        self.started, self.loader = started, loader

    def __iter__(self):
        if self.started is not None:
            started, self.started = self.started, None
            yield from started
        yield from self.loader

    def __len__(self):
        return len(self.loader)


def resume_trainer(trainer, ckpt: Path) -> int:
    """Load ``ckpt`` into ``trainer`` (built as for a fresh run) so that ``trainer.train()`` does the remaining
    updates only. Returns the number of updates already done."""
    saved = json.loads((ckpt / "trainer_state.json").read_text())
    done, total = int(saved["global_step"]), int(trainer.args.num_total_batches)
    if done >= total:
        raise ValueError(f"{ckpt}: the checkpoint is at update {done} of {total}; nothing is left to train")
    loader = trainer.dataloader
    if not isinstance(loader, SeededEpochs):
        raise TypeError("resume needs the prompt order of rmlab.training.ppo_resume.SeededEpochs (set by setup_ppo)")
    loader.epoch, skip = divmod(done, len(loader))  # the pass the run was in, and the batches it had consumed
    started = iter(loader)
    for _ in range(skip):
        next(started)
    trainer.accelerator.load_state(str(ckpt))
    trainer.lr_scheduler.load_state_dict(torch.load(ckpt / "ppo_scheduler.pt", weights_only=True))
    trainer.dataloader = _ThenRepeat(started, loader)
    trainer.args.num_total_batches = total - done
    trainer.add_callback(_RestoreCounters(saved, total))
    log.info("resuming PPO from %s: update %d of %d", ckpt, done, total)
    return done
