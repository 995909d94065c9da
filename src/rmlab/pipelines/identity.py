"""A stage's identity: everything that determines its result, and nothing else.

Three parts, recorded in the stage's ``stage.json``:

- **config**: the stage's config as its entry point composes it (``conf/<entry>.yaml`` + the stage's overrides),
  fully resolved, so that an edited default in ``conf/recipe/*.yaml`` or ``conf/task/*.yaml`` changes it, minus
  the keys that cannot change a result (:data:`NOT_RESULTS_TOP`, :data:`NOT_RESULTS_ANY`, :data:`NOT_RESULTS_LABELS`: where outputs
  go, loggers, progress bars, labels);
- **inputs**: a content fingerprint of every local file or directory the config points at (data files, a local
  model directory), in place of its path, so an edited data file changes the identity and a moved copy of the
  same data does not. Paths inside the pipeline's stage directory are other stages' outputs: they stay as
  names relative to it, and those names already carry the upstream stage's identity;
- **code**: the version of this package, a hash of its source tree, and the versions of the libraries that
  compute results (:func:`code_version`). A stage directory is named by the config and inputs alone; the code
  part decides whether a finished stage may be reused (see :mod:`rmlab.pipelines.stages`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from rmlab.models.fingerprint import fingerprint_weights
from rmlab.utils.hashing import file_sha256, stable_hash

# Top-level keys that decide where things go or how they are shown, never what is computed.
NOT_RESULTS_TOP = ("paths", "logger", "hydra", "task_name", "run_name", "resume", "check_replicas")
# Keys, at any depth, that only show progress or name things for humans.
NOT_RESULTS_ANY = ("progress", "enable_progress_bar", "enable_model_summary")
# Labels inside model groups: the name shown in tables.
NOT_RESULTS_LABELS = (("model", "name"), ("policy", "name"))

# Libraries whose version can change a number this lab reports.
_LIBRARIES = (
    "torch",
    "transformers",
    "trl",
    "pytorch-lightning",
    "accelerate",
    "peft",
    "datasets",
    "numpy",
    "scipy",
    "lm_eval",
)
_SOURCE = Path(__file__).resolve().parents[1]  # src/rmlab


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"rmlab": version, "source": hash of src/rmlab, "libraries": {...}}``, computed once per process."""
    from rmlab import __version__

    h = hashlib.sha256()
    for path in sorted(p for p in _SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(_SOURCE)).encode())
        h.update(path.read_bytes())
    return {"rmlab": __version__, "source": h.hexdigest()[:16], "libraries": {n: _version(n) for n in _LIBRARIES}}


@functools.lru_cache(maxsize=4096)
def _memo_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)  # size and mtime are in the key: an edited file is hashed again


def _files_digest(root: Path, files) -> str:
    """One hash over the relative paths and contents of ``files`` under ``root``."""
    digests = []
    for p in sorted(files):
        st = p.stat()
        digests.append((str(p.relative_to(root)), _memo_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)))
    return stable_hash(digests)


def fingerprint_path(path: str | os.PathLike, *, cache_dir: str | None = None) -> str:
    """Content fingerprint of a file, or of a directory tree (every file's relative path and content; a model
    directory by its config and weights, as the score cache keys it). Memoised by path, size and mtime."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return "file:" + _memo_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)[:16]
    try:
        return "weights:" + fingerprint_weights(path, cache_dir=cache_dir)
    except FileNotFoundError:  # not a model directory: every file counts
        pass
    return "tree:" + _files_digest(path, (p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))


def _is_dir_key(key: str) -> bool:
    return key.endswith(("dir", "path", "file"))


def _strip(node, top: bool = True):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if (top and k in NOT_RESULTS_TOP) or k in NOT_RESULTS_ANY:
                continue
            if top and isinstance(v, dict):
                v = {kk: vv for kk, vv in v.items() if (k, kk) not in NOT_RESULTS_LABELS}
            out[k] = _strip(v, top=False)
        return out
    if isinstance(node, list):
        return [_strip(v, top=False) for v in node]
    return node


def fingerprint_globs(root: Path, patterns: list[str]) -> str:
    """Fingerprint of the files of ``root`` that match ``patterns`` (a data dir read through ``files`` globs)."""
    return "files:" + _files_digest(root, {p for pattern in patterns for p in root.glob(pattern) if p.is_file()})


def _replace_paths(node, where: str, *, stages_root: Path, data_dir: Path, inputs: dict, cache_dir: str | None):
    """Replace path strings by what identifies their content (see the module docstring); record them in inputs."""
    if (
        isinstance(node, dict)
        and isinstance(node.get("data_dir"), str)
        and isinstance(node.get("files"), list)
        and Path(node["data_dir"]).is_dir()
    ):  # a data dir read through globs: only the files they match count
        key = f"{where}.data_dir" if where else "data_dir"
        fp = fingerprint_globs(Path(node["data_dir"]), [str(f) for f in node["files"]])
        inputs[key] = {"path": node["data_dir"], "files": node["files"], "fingerprint": fp}
        node = {**node, "data_dir": f"input:{fp}"}
    if isinstance(node, dict):
        return {
            k: _replace_paths(
                v,
                f"{where}.{k}" if where else k,
                stages_root=stages_root,
                data_dir=data_dir,
                inputs=inputs,
                cache_dir=cache_dir,
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _replace_paths(
                v, f"{where}[{i}]", stages_root=stages_root, data_dir=data_dir, inputs=inputs, cache_dir=cache_dir
            )
            for i, v in enumerate(node)
        ]
    if not isinstance(node, str) or not node or "\n" in node or len(node) > 4096:
        return node
    candidate = Path(node).expanduser()
    if candidate.is_absolute():
        try:
            return "stage:" + str(candidate.resolve().relative_to(stages_root))
        except ValueError:
            pass
    elif _is_dir_key(where.rsplit(".", 1)[-1]) and (data_dir / node).exists():
        candidate = data_dir / node  # task files are named relative to paths.data_dir
    else:
        return node
    if not candidate.exists():
        return node  # e.g. a local data dir that is absent here: the loader falls back to the Hub id
    fp = fingerprint_path(candidate, cache_dir=cache_dir)
    inputs[where] = {"path": str(candidate), "fingerprint": fp}
    return f"input:{fp}"


def stage_identity(
    entry: str, overrides: list[str], *, groups: tuple[str, ...], stages_root: str | os.PathLike
) -> dict:
    """``{"entry", "config", "inputs"}`` of a stage (the code part is :func:`code_version`, checked apart)."""
    from rmlab.utils.config import compose_config, rewrite_model_overrides

    cfg = compose_config(entry, rewrite_model_overrides(list(overrides), groups))
    with open_dict(cfg):
        cfg.paths.output_dir = "<stage>"  # not known yet, and not part of the result
        for key in NOT_RESULTS_TOP:  # dropped before resolving: a logger may name the running Hydra job
            if key != "paths" and key in cfg:
                del cfg[key]
    container = OmegaConf.to_container(cfg, resolve=True)
    paths = container.get("paths", {})
    inputs: dict = {}
    config = _replace_paths(
        _strip(container),
        "",
        stages_root=Path(stages_root).resolve(),
        data_dir=Path(paths.get("data_dir", ".")),
        inputs=inputs,
        cache_dir=paths.get("model_cache_dir"),
    )
    return {"entry": entry, "config": config, "inputs": inputs}


def identity_hash(identity: dict, length: int = 10) -> str:
    return stable_hash({"entry": identity["entry"], "config": identity["config"]}, length=length)
