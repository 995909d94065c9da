"""From a ``model`` config to a scorer: resolve the model(s), key the score cache, build the scorer lazily.

Everything that changes a score is in the cache key: the weights' fingerprint (and the reference's), the scorer
kind and mode, the formatting, dtype and max length. The weights are loaded only when a score is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rmlab.models.handle import ModelHandle, open_model
from rmlab.models.loading import (
    ResolvedModel,
    checkpoint_architectures,
    detect_kind,
    is_classifier_checkpoint,
    load_causal_lm,
    load_classifier,
    load_tokenizer,
    pick_device,
    quantization_kwargs,
    require_same_vocabulary,
    resolve_dtype,
    resolve_model,
)
from rmlab.scoring.scorers import SCORERS, TOKEN_SETS
from rmlab.scoring.style_baselines import STYLE_KINDS
from rmlab.utils.hashing import stable_hash
from rmlab.utils.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class ScorerPlan:
    """What will score: a description (the cache key's content) and a factory that loads the weights."""

    name: str
    describe: dict
    factory: Callable[[], object]
    formatting: dict | None = None  # where the formatting came from (ModelHandle.describe)
    dtype_choice: dict | None = None  # the configured dtype, the one used, and why (``auto`` resolves per device)

    @property
    def cache_key(self) -> str:
        return stable_hash(self.describe, length=24)


def model_display_name(model_cfg) -> str:
    return model_cfg.get("name") or Path(str(model_cfg.pretrained)).name


@dataclass
class PlanInputs:
    """What a scorer kind's plan builder gets: the model config, its resolved handle and the choices made so far."""

    model_cfg: object
    handle: ModelHandle
    architectures: list[str]
    describe: dict  # the cache key's content; a builder adds what its kind makes part of a score
    dtype: str
    dtype_why: str
    device: str
    max_length: int
    quantization: str | None
    seed: int
    cache_dir: str


# scorer kind -> plan builder: (inputs) -> (factory, dtype, why). A new kind registers its builder here; a kind with
# a scorer but no builder is refused by name, never built as another kind.
PLAN_BUILDERS: Registry[Callable[[PlanInputs], tuple[Callable[[], object], str, str]]] = Registry("scorer kind")


def plan_scorer(model_cfg, *, cache_dir: str, device: str = "auto", seed: int = 0) -> ScorerPlan:
    """Resolve ``model_cfg`` (see ``conf/model/*.yaml``) into a :class:`ScorerPlan`."""
    if model_cfg.get("kind") in STYLE_KINDS:  # a style heuristic: no weights, no tokenizer, no formatting
        kind = str(model_cfg.kind)
        describe = {"scorer": kind, "version": 1}
        return ScorerPlan(
            name=model_cfg.get("name") or f"{kind} baseline",
            describe=describe,
            factory=SCORERS[kind],
            formatting=None,
            dtype_choice={"configured": "exact", "used": "exact", "why": "an integer count: the same on every machine"},
        )
    device = pick_device(device)
    dtype, dtype_why = resolve_dtype(str(model_cfg.get("dtype", "float32")), device)  # a mistyped one fails here
    handle = open_model(model_cfg, cache_dir=cache_dir)
    resolved = handle.resolved
    architectures = checkpoint_architectures(resolved)
    kind = model_cfg.get("kind", "auto")
    if kind == "auto":
        kind = detect_kind(resolved, architectures)
        log.info("model %s: kind 'auto' -> %s (from its config.json architectures)", resolved.spec, kind)
    builder = PLAN_BUILDERS[kind]  # unknown kinds fail here, with the list of valid ones
    formatter = handle.formatter
    max_length = int(model_cfg.get("max_length", 2048))
    log.info("model %s: dtype %s (%s)", resolved.spec, dtype, dtype_why)
    describe = {
        "scorer": kind,
        "model": resolved.fingerprint,
        "formatting": formatter.fingerprint,
        "dtype": dtype,
        "max_length": max_length,
    }
    if formatter.requested != formatter.template:  # `rewardbench`: which of its branches this tokenizer took
        describe["rendering"] = formatter.resolved
    quantization = model_cfg.get("quantization")
    if quantization is not None:  # 8-bit weights give other scores: another cache key
        quantization_kwargs(quantization, device)  # fails now, naming the switch, where it cannot load
        describe["quantization"] = str(quantization)
    inputs = PlanInputs(model_cfg, handle, architectures, describe, dtype, dtype_why, device, max_length,
                        quantization, seed, cache_dir)  # fmt: skip
    factory, dtype, dtype_why = builder(inputs)
    log.info("scorer: %s", {**describe, "spec": resolved.spec})
    return ScorerPlan(
        name=model_display_name(model_cfg),
        describe=describe,
        factory=factory,
        formatting=handle.describe(),
        dtype_choice={"configured": str(model_cfg.get("dtype", "float32")), "used": dtype, "why": dtype_why},
    )


@PLAN_BUILDERS.register("classifier")
def _classifier_plan(x: PlanInputs):
    """A sequence classifier: its head's output is the reward (a new head, when the checkpoint has none, is seeded)."""
    if not is_classifier_checkpoint(x.architectures):  # a new, seeded head: the seed is part of the model
        x.describe["new_head_seed"] = x.seed
    resolved, tokenizer, formatter = x.handle.resolved, x.handle.tokenizer, x.handle.formatter

    def factory():
        loading = {"dtype": x.dtype, "device": x.device, "quantization": x.quantization}
        model, _ = load_classifier(resolved, pad_token_id=tokenizer.pad_token_id, seed=x.seed, **loading)
        return SCORERS["classifier"](model, tokenizer, formatter, max_length=x.max_length, device=x.device)

    return factory, x.dtype, x.dtype_why


@PLAN_BUILDERS.register("implicit")
def _implicit_plan(x: PlanInputs):
    """A causal LM's implicit (DPO) reward, against its reference model or reference-free."""
    model_cfg, handle, describe = x.model_cfg, x.handle, x.describe
    resolved, tokenizer, formatter = handle.resolved, handle.tokenizer, handle.formatter
    dtype, dtype_why = x.dtype, x.dtype_why
    reference = _reference_spec(model_cfg, handle)
    ref_resolved = None
    if reference is not None:
        ref_resolved = resolve_model(reference, cache_dir=x.cache_dir, revision=model_cfg.get("reference_revision"))
        _check_same_tokenizer(tokenizer, load_tokenizer(ref_resolved), resolved, ref_resolved)
        describe["reference"] = ref_resolved.fingerprint
        log.info("model %s: reference %s", resolved.spec, reference)
        if str(model_cfg.get("dtype", "float32")) == "auto" and dtype != "float32":
            # a reward with a reference is the difference of two sums of hundreds of log-probs: bf16 rounding
            # flipped 6 of 36 RM-Bench decisions against float32 in the bench (docs/performance.md)
            dtype, dtype_why = "float32", "auto: float32 for implicit rewards with a reference (bf16 flips decisions)"
            describe["dtype"] = dtype
            log.info("model %s: dtype %s (%s)", resolved.spec, dtype, dtype_why)
    else:
        describe["ref_free_mode"] = str(model_cfg.get("ref_free_mode", "avg"))
    describe["tokens"] = str(model_cfg.get("implicit_tokens", "rewardbench"))
    if describe["tokens"] not in TOKEN_SETS:
        raise ValueError(f"model.implicit_tokens={describe['tokens']!r}: choose one of {TOKEN_SETS}")

    def factory():
        policy = load_causal_lm(resolved, dtype=dtype, device=x.device, quantization=x.quantization)
        ref = (  # RM-Bench's run_dpo.py loads the reference as the policy
            load_causal_lm(ref_resolved, dtype=dtype, device=x.device, quantization=x.quantization)
            if ref_resolved
            else None
        )
        return SCORERS["implicit"](
            policy, tokenizer, formatter, max_length=x.max_length, device=x.device, reference=ref,
            mode=describe.get("ref_free_mode", "avg"), tokens=describe["tokens"],
        )  # fmt: skip

    return factory, dtype, dtype_why


def _reference_spec(model_cfg, handle: ModelHandle) -> str | None:
    """``reference: auto`` takes the reference named in the model's own metadata, else none (reference-free)."""
    resolved = handle.resolved
    ref = model_cfg.get("reference", "auto")
    if ref == "auto":
        ref = handle.meta.get("reference_model")
        if ref:
            log.info("model %s: reference model %s (from its metadata)", resolved.spec, ref)
        else:
            log.info(
                "model %s: no reference in its metadata; scoring reference-free (%s)",
                resolved.spec,
                model_cfg.get("ref_free_mode", "avg"),
            )
    return ref or None


def _check_same_tokenizer(tok, ref_tok, resolved: ResolvedModel, ref_resolved: ResolvedModel) -> None:
    require_same_vocabulary(
        tok,
        ref_tok,
        (
            f"policy {resolved.spec!r} and reference {ref_resolved.spec!r} have different vocabularies; the implicit "
            "reward compares log-probs of the same tokens and needs one tokenizer"
        ),
    )
