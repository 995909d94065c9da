"""The ``rmlab`` command: one subcommand per entry point (``rmlab eval-rm model=... benchmark=rm_bench``), each a
Hydra app over the configs shipped with the package (``conf/`` of a checkout, or ``rmlab/_conf`` in a wheel), so it
runs from any working directory. ``scripts/<name>.py`` are aliases. Before Hydra parses the command line the
project root goes into the environment, model specs are rewritten (see :mod:`rmlab.utils.config`), and an
experiment of another entry point stops the run with the command that runs it."""

from __future__ import annotations

import os
import sys
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
    run_entry(find_entry(argv[0]), argv[1:])


def alias(config: str) -> None:
    """The body of ``scripts/<config>.py``: the same as ``rmlab <command>`` with the script's arguments."""
    run_entry(by_config(config), sys.argv[1:])


def run_entry(entry: Entry, argv: list[str]) -> None:
    """Run one entry point with Hydra overrides ``argv`` (``-m``, ``--cfg job`` and Hydra's other flags included)."""
    from rmlab.utils.config import CONF_DIR, ROOT, conf_dirs, rewrite_model_overrides

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
        fn(cfg)

    sys.argv = [f"rmlab {entry.command}", f"hydra.job.name={entry.config}", *argv]
    task()


def run(main: Callable[[], object], groups: tuple[str, ...] = ("model",)) -> None:
    """Call a script's own ``@hydra.main`` function with the project root in the environment and model specs
    rewritten (for a script not yet in :data:`ENTRIES`; the lab's scripts are aliases of ``rmlab``)."""
    from rmlab.utils.config import ROOT, rewrite_model_overrides

    os.environ.setdefault("RMLAB_ROOT", str(ROOT))
    sys.argv = [sys.argv[0], *rewrite_model_overrides(sys.argv[1:], groups)]
    main()
