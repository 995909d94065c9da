"""The shape of a model spec, stated once: what ``model=<value>`` can be besides a config name.

``wheel:<name>`` is a model shipped in a PyPI wheel; a value written as a path (starting with ``/``, ``.`` or ``~``,
or with two or more ``/``) or naming an existing file or directory is a local path; ``org/name`` is a Hub id.
Anything else can only be a config name (or a typo of one). :func:`rmlab.utils.config.check_model_spec` refuses
typos with this rule before anything loads; :func:`rmlab.models.loading.resolve_model` resolves by it.
"""

from __future__ import annotations

import re
from pathlib import Path

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def written_as_path(value: str) -> bool:
    """A value that can only mean a local path, whether or not it exists."""
    return value.startswith(("/", ".", "~")) or value.count("/") > 1


def spec_shape(value: str) -> str | None:
    """``wheel`` | ``path`` | ``hub`` for a model spec, None for a value that can only be a config name."""
    if value.startswith("wheel:"):
        return "wheel"
    if written_as_path(value) or Path(value).expanduser().exists():
        return "path"
    return "hub" if HUB_ID.match(value) else None
