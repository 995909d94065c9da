"""Config composition for the entry points and the library: the project's config directory, its resolvers, and
model specs on the command line.

``model=<value>`` accepts a config name from ``conf/model/`` *or* a model spec (Hub id, local directory,
``wheel:<name>``); a spec is rewritten to ``model=auto model.pretrained=<spec>`` before Hydra parses the
command line, so the same code path serves both.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from omegaconf import OmegaConf

from rmlab.utils.specs import spec_shape

_CHECKOUT = Path(__file__).resolve().parents[3]  # the repository, in a source checkout (src/rmlab/utils/config.py)
_PACKAGED_CONF = Path(__file__).resolve().parents[1] / "_conf"  # a wheel: conf/ and experiments/ ship in the package
IN_CHECKOUT = (_CHECKOUT / "conf").is_dir() and (_CHECKOUT / "src" / "rmlab").is_dir()
# The project root that paths/default.yaml starts from (RMLAB_ROOT): the checkout (an editable install too), or the
# working directory when rmlab runs from a wheel (logs/ and .cache/ land there; RMLAB_* variables move them).
ROOT = _CHECKOUT if IN_CHECKOUT else Path.cwd()
CONF_DIR = _CHECKOUT / "conf" if IN_CHECKOUT else _PACKAGED_CONF

log = logging.getLogger(__name__)

if not OmegaConf.has_resolver("basename"):  # ${basename:/a/b/c} -> c (W&B group of a sweep, for one)
    OmegaConf.register_new_resolver("basename", lambda path: Path(str(path)).name)


# The entry point (root config name) a process runs; the rmlab command sets it, so that the processes a run starts
# by running its program again (Lightning's DDP ranks) run the same entry point (rmlab.cli.main).
ENTRY_ENV = "RMLAB_ENTRY"


def native_bf16(device: str | None = None) -> bool:
    """Whether bf16 matmuls run natively here: a CUDA device with bf16, or a CPU with AVX512-BF16 or AMX.
    Elsewhere PyTorch emulates bf16 on the CPU, and bf16 autocast is many times slower than fp32.

    :param device: ``cpu`` asks about the CPU, ``cuda[:n]`` about the GPU; ``None`` about the GPU when there is one.
    """
    import torch

    on_gpu = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    if on_gpu:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


if not OmegaConf.has_resolver("native_bf16"):  # ${native_bf16:bf16-mixed,32-true}: the first where bf16 is native
    OmegaConf.register_new_resolver("native_bf16", lambda yes, no: yes if native_bf16() else no)


# Every group that takes a model holds configs of conf/model/: ``model`` itself, and ``policy`` (placed at the key
# ``policy`` by ``model@policy`` in the defaults lists of train_ppo, eval_policy, reward_signal, bench_generation).
MODEL_GROUP = "model"


def conf_dirs(argv: list[str] = ()) -> list[Path]:
    """The config directories Hydra searches: the project's, then the ``file://`` entries of a
    ``hydra.searchpath=[file:///my/conf,...]`` override in ``argv`` (a user's own configs)."""
    dirs = [CONF_DIR]
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "hydra.searchpath":
            dirs += [Path(v.strip().strip("'\"")[7:]) for v in value.strip("[]").split(",") if "file://" in v]
    return dirs


def _is_config(group: str, name: str, dirs: list[Path] | None = None) -> bool:
    return any((d / MODEL_GROUP / f"{name}.yaml").is_file() for d in dirs or [CONF_DIR])


def _choice(group: str) -> str:
    """How to override the config choice of ``group`` on the command line."""
    return group if group == MODEL_GROUP else f"{MODEL_GROUP}@{group}"


def check_model_spec(group: str, value: str) -> None:
    """Refuse, at once, a ``model=`` value that can be nothing but a typo: not a config in ``conf/<group>/``, not a
    ``wheel:`` spec, not a path (existing, or written as one: ``/``, ``.``, ``~``, or two or more ``/``) and not
    shaped like a Hub id (``org/name``). Without this, ``model=smolm2`` becomes a Hub download that fails after
    half a minute of network retries."""
    if spec_shape(value) is not None:
        return
    names = sorted(p.stem for p in (CONF_DIR / MODEL_GROUP).glob("*.yaml"))
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise SystemExit(
        f"{group}={value}: not a config in conf/{MODEL_GROUP}/, a local directory, a wheel: spec or a Hub id "
        f"(org/name). {hint}Configs: {', '.join(names)}"
    )


def rewrite_model_overrides(argv: list[str], groups: tuple[str, ...] = ("model",)) -> list[str]:
    """Turn ``model=<spec>`` into ``model=auto model.pretrained=<spec>`` when ``<spec>`` is not a config name, and
    ``policy=<name>`` into ``model@policy=<name>`` (policies are configs of conf/model/ too).

    A comma-separated sweep must be all config names or all specs.
    """
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~")
        if not sep or group not in groups or not value:
            out.append(arg)
            continue
        values = value.split(",")
        is_cfg = [_is_config(group, v, conf_dirs(argv)) for v in values]
        prefix = key[: len(key) - len(group)]
        if all(is_cfg):
            out.append(f"{prefix}{_choice(group)}={value}")
        elif not any(is_cfg):
            for v in values:
                check_model_spec(group, v)
            quoted = ",".join(f"'{v}'" for v in values)
            out += [f"{prefix}{_choice(group)}=auto", f"{group}.pretrained={quoted}"]
        else:
            raise SystemExit(f"{arg}: mix of config names and model specs in one sweep; use one kind")
    return out


def compose_config(config_name: str, overrides: list[str]):
    """Compose ``conf/<config_name>.yaml`` from inside a running Hydra app or from plain Python."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)
