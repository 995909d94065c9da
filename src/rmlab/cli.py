"""Shared start-up for the Hydra entry points in ``scripts/``: the project root in the environment and model
specs rewritten before Hydra parses the command line (see :mod:`rmlab.utils.config`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from rmlab.utils.config import ROOT, rewrite_model_overrides


def run(main: Callable[[], object], groups: tuple[str, ...] = ("model",)) -> None:
    """Call a ``@hydra.main`` function with the project root in the environment and model specs rewritten
    (for the config ``groups`` that take a spec: ``model``, or ``policy`` for policy evaluation)."""
    os.environ.setdefault("RMLAB_ROOT", str(ROOT))
    sys.argv = [sys.argv[0], *rewrite_model_overrides(sys.argv[1:], groups)]
    main()
