"""One handle per model: a spec (config name, Hub id, local directory, ``wheel:``) loaded into its resolved
weights, metadata, tokenizer and chat formatter, with the formatting the model was trained with.

A model directory this lab writes records its formatting (``rmlab_meta.json``: ``formatting.chat_template``,
``formatting.system_prompt``). Whoever opens it gets that formatting, unless the config sets a key explicitly
(a non-null ``model.chat_template`` / ``system_prompt``); then the config wins, the run logs a warning, and
:meth:`ModelHandle.describe` records the override. A model without a record (a Hub checkpoint, a base model)
gets the config's value, else the defaults (:data:`DEFAULT_FORMATTING`: the tokenizer's own template).

So ``model=<a trained RM dir>`` evaluates it, and ``policy=<a PPO policy dir>`` generates from it, in the format
it was trained in, with no key to repeat; the stage plans of the pipelines rely on this.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

from rmlab.models.chat_format import ChatFormatter
from rmlab.models.loading import ResolvedModel, load_tokenizer, read_model_meta, resolve_model

log = logging.getLogger(__name__)

DEFAULT_FORMATTING = {"chat_template": "tokenizer", "system_prompt": None}


def recorded_formatting(meta: dict) -> dict:
    """The formatting a model directory records (also the older top-level ``chat_template`` key)."""
    if isinstance(meta.get("formatting"), dict):
        return {k: v for k, v in meta["formatting"].items() if k in DEFAULT_FORMATTING}
    return {"chat_template": meta["chat_template"]} if meta.get("chat_template") else {}


def resolve_formatting(model_cfg, meta: dict, fallback: dict | None = None) -> tuple[dict, dict]:
    """``(formatting, record)``: each key from the config when set (non-null), else from the model directory's
    record, else from ``fallback`` (e.g. a PPO reward model without a record takes the policy's), else the default.
    ``record`` says where each key came from and which recorded values the config overrode. A template other than
    the recorded one does not inherit the recorded system prompt (it belongs to the recorded template)."""
    recorded = recorded_formatting(meta)
    asked_template = model_cfg.get("chat_template") if model_cfg is not None else None
    if asked_template is not None and recorded.get("chat_template") not in (None, asked_template):
        # another template than the recorded one: the recorded system prompt went with that template, not this one
        recorded = {"chat_template": recorded["chat_template"]}
    out, source, overrides = {}, {}, {}
    for key, default in DEFAULT_FORMATTING.items():
        asked = model_cfg.get(key) if model_cfg is not None else None
        if asked is not None:
            out[key], source[key] = asked, "config"
            if key in recorded and recorded[key] != asked:
                overrides[key] = {"model_dir": recorded[key], "config": asked}
        elif key in recorded:
            out[key], source[key] = recorded[key], "model_dir"
        elif fallback is not None and key in fallback:
            out[key], source[key] = fallback[key], "fallback"
        else:
            out[key], source[key] = default, "default"
    return out, {"source": source, "overrides": overrides}


@dataclass
class ModelHandle:
    resolved: ResolvedModel
    meta: dict
    formatting: dict
    record: dict
    pad_token: str | None = None
    padding_side: str | None = None

    @property
    def spec(self) -> str:
        return self.resolved.spec

    @property
    def fingerprint(self) -> str:
        return self.resolved.fingerprint

    @functools.cached_property
    def tokenizer(self):
        return load_tokenizer(self.resolved, pad_token=self.pad_token, padding_side=self.padding_side or "right")

    @functools.cached_property
    def formatter(self) -> ChatFormatter:
        return ChatFormatter(self.tokenizer, self.formatting["chat_template"], self.formatting["system_prompt"])

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "fingerprint": self.fingerprint,
            "formatting": self.formatting,
            "formatting_source": self.record["source"],
            "formatting_overrides": self.record["overrides"],
        }


def open_model(
    model_cfg,
    *,
    cache_dir: str | os.PathLike,
    spec: str | None = None,
    padding_side: str | None = None,
    fallback_formatting: dict | None = None,
) -> ModelHandle:
    """Resolve ``model_cfg.pretrained`` (or ``spec``) and settle its formatting (see the module docstring); the
    tokenizer and the formatter load on first use."""
    get = model_cfg.get if model_cfg is not None else (lambda key, default=None: default)
    resolved = resolve_model(str(spec or model_cfg.pretrained), cache_dir=cache_dir, revision=get("revision"))
    meta = read_model_meta(resolved)
    formatting, record = resolve_formatting(model_cfg, meta, fallback_formatting)
    for key, o in record["overrides"].items():
        log.warning(
            "%s: %s=%r overrides the %r it was trained with (rmlab_meta.json)",
            resolved.spec,
            key,
            o["config"],
            o["model_dir"],
        )
    return ModelHandle(resolved, meta, formatting, record, pad_token=get("pad_token"), padding_side=padding_side)
