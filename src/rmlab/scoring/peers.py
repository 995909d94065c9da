"""The peer's own scoring code, driven as its command line drives it: rewardbench 0.1.4 (allenai/reward-bench),
which RM-Bench's ``scripts/run_rm.py`` and ``scripts/run_dpo.py`` copy. The baseline of ``scripts/bench_scoring.py``.

rewardbench is installed without its pinned dependencies (``make setup``: ``pip install --no-deps
rewardbench==0.1.4``); its package ``__init__`` imports a model zoo that needs transformers 4, so the two files
used here, ``rewardbench/models/pipeline.py`` (``RewardBenchPipeline``) and ``rewardbench/dpo.py``
(``DPOInference``), are loaded by path; they import only torch and numpy. The pipeline hard-codes
``.to("cuda")``; that one call is redirected to the benchmark's device, and nothing else is changed.

How rewardbench's CLI (``rewardbench/rewardbench.py``) drives them, and so how they are driven here:

- classifiers: ``RewardBenchPipeline`` (its ``default`` model config), left padding, batches of 8 rows in dataset
  order, per batch one call on the chosen texts then one on the rejected texts; RM-Bench's ``run_rm.py`` runs that
  once per style index (rows = chosen[i] vs rejected[i]).
- implicit rewards: ``DPOInference.tokenize_row`` on each row, TRL's ``DPODataCollatorWithPadding`` (moved to
  ``trl.experimental.utils`` in TRL 1.x), batches of 8, ``inference_step`` (chosen and rejected concatenated into
  one forward per model).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import torch

REWARDBENCH_VERSION = "0.1.4"


def rewardbench_module(relative: str, *, device: str | None = None) -> ModuleType:
    """``rewardbench/<relative>`` from the installed package, loaded by path; with ``device``, its hard-coded
    ``.to("cuda")`` becomes ``.to(device)`` (the one change; an error if the source does not have exactly one)."""
    try:
        dist = importlib.metadata.distribution("rewardbench")
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(
            f"rewardbench {REWARDBENCH_VERSION} is not installed: `make setup` installs it (pip install --no-deps "
            f"rewardbench=={REWARDBENCH_VERSION})"
        ) from err
    if dist.version != REWARDBENCH_VERSION:
        raise RuntimeError(f"rewardbench {dist.version} is installed; the baseline is {REWARDBENCH_VERSION}")
    path = dist.locate_file(f"rewardbench/{relative}")
    source = Path(path).read_text(encoding="utf-8")
    if device is not None:
        if source.count('.to("cuda")') != 1:
            raise RuntimeError(f"{path}: expected one hard-coded .to('cuda') to redirect")
        source = source.replace('.to("cuda")', f".to({device!r})")
    module = ModuleType(f"rewardbench_{relative.replace('/', '_').removesuffix('.py')}")
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102  (the installed peer's own source)
    return module


def rewardbench_functions(relative: str, names: Sequence[str], namespace: dict) -> dict:
    """Top-level functions of ``rewardbench/<relative>``, their source unchanged, compiled in ``namespace`` (the
    names they use) instead of the module: for a module whose imports pull in what this lab does not install
    (``utils.py`` imports fastchat and the model zoo only to define its loaders)."""
    import ast

    dist = importlib.metadata.distribution("rewardbench")
    if dist.version != REWARDBENCH_VERSION:
        raise RuntimeError(f"rewardbench {dist.version} is installed; the baseline is {REWARDBENCH_VERSION}")
    path = Path(dist.locate_file(f"rewardbench/{relative}"))
    source = path.read_text(encoding="utf-8")
    defs = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    missing = [n for n in names if n not in defs]
    if missing:
        raise RuntimeError(f"{path}: no top-level function(s) {missing}")
    scope = dict(namespace)
    for name in names:
        exec(compile(ast.Module([defs[name]], type_ignores=[]), str(path), "exec"), scope)  # noqa: S102
    return {name: scope[name] for name in names}


def rewardbench_classifier_scores(model, tokenizer, texts: dict, n_items: int, *, batch_size: int, max_length: int):
    """``(n_items, 2, styles)`` scores from ``RewardBenchPipeline``, as rewardbench's CLI runs it.

    :param texts: ``(item, side, style) -> formatted text`` (side 0 chosen, 1 rejected).
    """
    pipeline = rewardbench_module("models/pipeline.py", device=str(model.device))
    tokenizer.padding_side = "left"  # rewardbench.py: "padding experiments for determinism"
    tokenizer.truncation_side = "left"
    pipe = pipeline.RewardBenchPipeline("text-classification", model=model, tokenizer=tokenizer)
    kwargs = {"batch_size": batch_size, "truncation": True, "padding": True, "max_length": max_length}
    styles = 1 + max(s for _, _, s in texts)
    out = np.zeros((n_items, 2, styles))
    try:
        for s in range(styles):
            for lo in range(0, n_items, batch_size):
                rows = range(lo, min(lo + batch_size, n_items))
                for side in (0, 1):
                    logits = pipe([texts[(n, side, s)] for n in rows], **kwargs)
                    out[list(rows), side, s] = logits.float().cpu().numpy()[:, 0]
    finally:
        tokenizer.padding_side = "right"
    return out


def rewardbench_dpo_scores(policy, reference, tokenizer, features: list[dict], *, mode: str, batch_size: int):
    """``(n_rows, 2)`` chosen/rejected rewards from ``DPOInference``, as rewardbench's CLI runs it.

    :param features: rewardbench's rows: ``prompt`` (the chat-templated user turn), ``text_chosen``,
        ``text_rejected`` (whole conversations), as ``rewardbench.utils.prepare_dialogue_from_tokenizer`` builds them.
    """
    from trl.experimental.utils import DPODataCollatorWithPadding

    dpo = rewardbench_module("dpo.py")
    inference = dpo.DPOInference(
        policy, reference, tokenizer, SimpleNamespace(device=policy.device), ref_free_norm=mode
    )
    rows = [inference.tokenize_row(f) for f in features]
    collate = DPODataCollatorWithPadding(pad_token_id=tokenizer.pad_token_id, is_encoder_decoder=False)
    out = []
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            chosen, rejected = inference.inference_step(collate(rows[lo : lo + batch_size]), ref_free=reference is None)
            out.append(torch.stack([chosen, rejected], 1).float().numpy())
    return np.concatenate(out), rows


def rewardbench_features(tokenizer, prompt: str, chosen: str, rejected: str) -> dict:
    """One row as ``rewardbench/utils.py:prepare_dialogue_from_tokenizer`` builds a single-turn example."""
    user = [{"role": "user", "content": prompt}]
    return {
        "prompt": tokenizer.apply_chat_template(user, tokenize=False),
        "text_chosen": tokenizer.apply_chat_template(user + [{"role": "assistant", "content": chosen}], tokenize=False),
        "text_rejected": tokenizer.apply_chat_template(
            user + [{"role": "assistant", "content": rejected}], tokenize=False
        ),
    }
