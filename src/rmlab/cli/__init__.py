"""The ``rmlab`` command: one subcommand per entry point (``rmlab eval-rm model=... benchmark=rm_bench``), each a
Hydra app over the configs shipped with the package (``conf/`` of a checkout, or ``rmlab/_conf`` in a wheel), so it
runs from any working directory. ``scripts/<name>.py`` are aliases. Before Hydra parses the command line the
project root goes into the environment, model specs are rewritten (see :mod:`rmlab.utils.config`), and an
experiment of another entry point stops the run with the command that runs it."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable

from rmlab.cli.entries import ENTRIES, Entry, by_config, find_entry

__all__ = ["ENTRIES", "alias", "main", "run", "run_entry"]

HELP = ("-h", "--help")


def main(argv: list[str] | None = None) -> None:
    """``rmlab <command> [overrides]``; ``rmlab --help`` lists the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in HELP:
        from rmlab.cli.help import overview

        print(overview())
        return
    from rmlab.utils.config import ENTRY_ENV

    # Lightning's DDP launcher restarts this program for ranks 1..N-1 with the arguments Hydra parsed, which do
    # not include the command name; they inherit the environment, which names the entry point
    inherited = os.environ.get(ENTRY_ENV)
    if inherited and (argv[0].startswith("-") or "=" in argv[0]):  # a relaunched rank: overrides only
        run_entry(by_config(inherited), argv)
        return
    run_entry(find_entry(argv[0]), argv[1:])


def alias(config: str) -> None:
    """The body of ``scripts/<config>.py``: the same as ``rmlab <command>`` with the script's arguments."""
    run_entry(by_config(config), sys.argv[1:])


def run_entry(entry: Entry, argv: list[str]) -> None:
    """Run one entry point with Hydra overrides ``argv`` (``-m``, ``--cfg job`` and Hydra's other flags included)."""
    from rmlab.utils.config import CONF_DIR, ENTRY_ENV, ROOT, conf_dirs, rewrite_model_overrides

    dirs = conf_dirs(argv)
    if any(a in HELP for a in argv):
        from rmlab.cli.help import entry_help

        print(entry_help(entry, argv, dirs))
        return
    from rmlab.cli.experiments import check_experiments

    os.environ.setdefault("RMLAB_ROOT", str(ROOT))
    argv = rewrite_model_overrides(argv, entry.groups)
    check_experiments(entry, argv, dirs)
    import hydra

    fn = entry.fn()

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=entry.config)
    def task(cfg) -> None:
        from rmlab.utils.io import DiskFullError

        try:
            fn(cfg)
        except DiskFullError as err:  # one line naming the file, not a traceback
            raise SystemExit(f"rmlab {entry.config}: {err}") from err

    os.environ[ENTRY_ENV] = entry.config
    argv, scratch = _other_rank_dirs(argv)
    # argv[0] stays the program that runs (the ``rmlab`` script, a script alias, or ``rmlab/cli/__main__.py``), so
    # that Lightning can start the other ranks of a DDP run with it (see ENTRY_ENV)
    sys.argv = [sys.argv[0], *_with_job_name(argv, entry.config)]
    try:
        task()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _other_rank_dirs(argv: list[str]) -> tuple[list[str], str | None]:
    """Ranks 1..N-1 of a launch (``RANK`` > 0: torchrun, ``accelerate launch``) keep no Hydra output of their own.

    Rank 0's run directory holds the run (the trainers move every rank there: ``agree_on_run_dir``), and Hydra
    would give every other rank a directory of its own (``${now:...}`` read per process) holding only its config
    files and log. Those ranks write no ``.hydra/`` (``hydra.output_subdir=null``), and without ``hydra.run.dir``
    on the command line run in a scratch directory removed when they finish; returns ``(argv, scratch)``."""
    rank = os.environ.get("RANK", "")
    if not rank.isdigit() or int(rank) == 0 or any(a in ("-m", "--multirun") for a in argv):
        return argv, None
    extra, scratch = [], None
    if not any(a.startswith("hydra.output_subdir=") for a in argv):
        extra.append("hydra.output_subdir=null")
    if not any(a.startswith("hydra.run.dir=") for a in argv):
        scratch = tempfile.mkdtemp(prefix=f"rmlab-rank{rank}-")
        extra.append(f"hydra.run.dir={scratch}")
    return [*argv, *extra], scratch


# Hydra's flags that take a value (``--info`` takes one of its choices, optionally)
_VALUED = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir"}
_VALUED |= {"--experimental-rerun"}
_INFO = {"-i", "--info"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def _with_job_name(argv: list[str], config: str) -> list[str]:
    """``argv`` as Hydra's parser takes it, with ``hydra.job.name=<config>`` added unless the user names the job:
    flags (and their values) first, then every override. Hydra's parser rejects overrides on both sides of a flag
    (``a=1 --cfg job b=2``), which adding the job name anywhere would otherwise cause."""
    flags, overrides, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            overrides.append(arg)
        else:
            flags.append(arg)
            takes = arg in _VALUED or (arg in _INFO and i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES)
            if takes and i + 1 < len(argv):
                flags.append(argv[i + 1])
                i += 1
        i += 1
    if not any(o.startswith("hydra.job.name=") for o in overrides):
        overrides.append(f"hydra.job.name={config}")
    return [*flags, *overrides]


def run(main: Callable[[], object], groups: tuple[str, ...] = ("model",)) -> None:
    """Call a script's own ``@hydra.main`` function with the project root in the environment and model specs
    rewritten (for a script not yet in :data:`ENTRIES`; the lab's scripts are aliases of ``rmlab``)."""
    from rmlab.utils.config import ROOT, rewrite_model_overrides

    os.environ.setdefault("RMLAB_ROOT", str(ROOT))
    sys.argv = [sys.argv[0], *rewrite_model_overrides(sys.argv[1:], groups)]
    main()
