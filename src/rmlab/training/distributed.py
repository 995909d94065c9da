"""What the trainers need to be rank-safe under data parallelism, with the engines' own process groups.

Lightning (``trainer.strategy=ddp``) and accelerate (``accelerate launch``, under TRL) start the processes and
own the process group; nothing here starts or wraps one. What is here: gathering the held-out rewards that each
rank scored for its share of the pairs (:func:`gather_rows`), checking that every rank holds the same weights
after every optimizer step (:class:`ReplicaCheck`, a test of the DDP invariant, off by default), refusing a
Lightning launch whose extra ranks could not start (:func:`check_relaunch`), and agreeing across
``accelerate launch``'s processes on one run directory (:func:`agree_on_run_dir`; Hydra gives each process a
directory of its own, ``${now:...}`` being read per process) and on rank 0's decisions (:func:`same_on_every_rank`).

Every output file of a run is written by rank 0 alone; the other ranks train and score and write nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)


def gather_rows(module: pl.LightningModule, rows: torch.Tensor) -> torch.Tensor:
    """Every rank's ``rows`` (a 2-D tensor, ranks may hold different numbers of rows) concatenated in rank order,
    on every rank. Two collectives: the row counts, then the rows padded to the largest count (all-gather needs
    equal shapes). One process: ``rows`` as they are."""
    if module.trainer.world_size == 1:
        return rows
    device = module.device
    counts = module.all_gather(torch.tensor([rows.shape[0]], device=device)).reshape(-1).tolist()
    padded = torch.zeros((max(counts), rows.shape[1]), dtype=rows.dtype, device=device)
    padded[: rows.shape[0]] = rows.to(device)
    gathered = module.all_gather(padded).cpu()  # (world, max count, columns)
    return torch.cat([gathered[r, :n] for r, n in enumerate(counts)])


def weights_digest(model: torch.nn.Module) -> int:
    """A 63-bit hash of every parameter's name, shape, dtype and bytes: equal digests mean equal weights."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        t = p.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return int.from_bytes(h.digest()[:8], "little") >> 1


class ReplicaCheck(pl.Callback):
    """After every optimizer step, all-gather a digest of the weights and fail at once if two ranks differ.

    DDP keeps replicas identical by averaging gradients before each step; a rank-dependent forward pass, a
    parameter outside the gradient all-reduce, or a non-deterministic optimizer would break that silently. A
    digest costs one pass over the weights per step (a second or so for 135M parameters on a CPU): for tests and
    debugging (``check_replicas=true``), not for long runs. Sharded strategies (FSDP, DeepSpeed) hold different
    shards on each rank by design, so the check refuses them."""

    def __init__(self) -> None:
        self.steps_checked = 0
        self._last_step = -1

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from pytorch_lightning.strategies import DDPStrategy, DeepSpeedStrategy, SingleDeviceStrategy

        strategy = trainer.strategy
        if isinstance(strategy, DeepSpeedStrategy) or not isinstance(strategy, (DDPStrategy, SingleDeviceStrategy)):
            raise TypeError(f"check_replicas: {type(strategy).__name__} shards the weights; use it with ddp only")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        if trainer.global_step == self._last_step:  # accumulating: no optimizer step since the last check
            return
        self._last_step = trainer.global_step
        digest = torch.tensor([weights_digest(pl_module)], dtype=torch.long, device=pl_module.device)
        digests = pl_module.all_gather(digest).reshape(-1).tolist()
        if len(set(digests)) > 1:
            raise RuntimeError(f"step {trainer.global_step}: the ranks' weights differ (digests by rank: {digests})")
        self.steps_checked += 1

    def record(self) -> dict:
        return {"steps_checked": self.steps_checked, "identical": True}


def check_relaunch(trainer: pl.Trainer, script: str) -> None:
    """Fail before training when Lightning would start the other ranks by running a program that is not ``script``.

    On one machine, Lightning's DDP starts ranks 1..N-1 by running ``sys.argv`` again with ``LOCAL_RANK`` set.
    That is right for ``python scripts/<script> ...``, and wrong when training runs inside another program: a
    pipeline stage run in-process, a submitit job (``python -m submitit.core._submit <folder>``: the extra
    ranks exit on its argument parser, Lightning then kills the job), pytest, or a ``-m`` sweep with Hydra's basic
    launcher (the ranks would run the whole sweep). Processes started by the cluster (SLURM tasks, torchrun) are
    not relaunched and pass. ``ddp_spawn`` is refused: its workers' held-out rewards never reach this process."""
    import sys

    from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
    from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    import __main__

    launcher = getattr(trainer.strategy, "launcher", None)
    if isinstance(launcher, _MultiProcessingLauncher) and trainer.world_size > 1:
        raise ValueError(
            "trainer.strategy=ddp_spawn: the spawned workers would hold the held-out rewards, which never reach "
            "the process that writes the outputs; use trainer.strategy=ddp"
        )
    if not isinstance(launcher, _SubprocessScriptLauncher) or launcher.num_processes == 1:
        return
    if launcher.cluster_environment.creates_processes_externally:
        return
    import os

    from rmlab.utils.config import ENTRY_ENV

    program = Path(getattr(__main__, "__file__", None) or "<interactive>").name
    sweep = any(a in ("-m", "--multirun") for a in sys.argv[1:])
    # the rmlab command (its script or ``python -m rmlab.cli``) restarts the entry point it runs (ENTRY_ENV)
    cli = program in ("rmlab", "__main__.py") and os.environ.get(ENTRY_ENV) == script.removesuffix(".py")
    if (program == script or cli) and not sweep:
        return
    raise RuntimeError(
        f"{launcher.num_processes} processes per node: Lightning starts ranks 1..{launcher.num_processes - 1} by "
        f"running this program again ({' '.join(sys.argv[:3])} ...), which is not scripts/{script} on its own"
        f"{' (a -m sweep: they would run the whole sweep)' if sweep else ''}. Run the training as its own "
        f"program: scripts/{script} (one run per process), a pipeline stage in a child process "
        f"(pipeline.train_rm.launch=[python]), or with the ranks started by the cluster (SLURM tasks_per_node = "
        f"devices, torchrun)."
    )


def is_main_process() -> bool:
    """Rank 0 of the process group, or of the launch before it exists (``RANK``, set by torchrun, accelerate and
    Lightning's children; ``SLURM_PROCID`` under srun); a single process is rank 0."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var):
            return int(os.environ[var]) == 0
    return True


def same_on_every_rank(obj):
    """Rank 0's ``obj`` on every rank (a decision each rank could otherwise take apart, such as which checkpoint to
    resume from, on a file system that may show the ranks different states); ``obj`` itself without a group."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def agree_on_run_dir(run_dir: Path, *, cpu: bool) -> Path:
    """Rank 0's run directory, on every rank of an ``accelerate launch`` (one directory holds the checkpoints,
    each rank's RNG state in them, and the outputs). Starts accelerate's process state (gloo on CPUs), which the
    trainer would start anyway; a single process gets ``run_dir`` back untouched.

    Hydra names the run directory by the time each process reads it, so without ``hydra.run.dir=<dir>`` on the
    command line every rank but 0 would have a directory of its own; the ``rmlab`` command runs those ranks in a
    scratch directory it removes (``rmlab.cli._other_rank_dirs``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return run_dir
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    shared = Path(same_on_every_rank(str(run_dir)))
    if shared != run_dir:
        log.info("rank %d: outputs go to rank 0's run directory %s", state.process_index, shared)
    return shared
