"""What a downstream task is: examples to prompt with, decodings to sample them with, and a scorer.

A task is data plus three functions (lm-evaluation-harness's split of tasks, models and metrics): ``load`` reads
the examples (local copy first, then the Hub), the driver formats and generates (:mod:`rmlab.policy_eval.evaluate`),
``score`` turns generations into per-example rows and one headline metric with a bootstrap interval.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rmlab.generation.decoding import Decoding
from rmlab.metrics.bootstrap import bootstrap_mean_interval
from rmlab.utils.hashing import stable_hash

SUBSAMPLE_RNGS = ("shared", "per_file")


@dataclass(frozen=True)
class Example:
    id: str
    user: str | tuple  # the user turn of the chat prompt, or (role, content) turns ending with it (MATH's exemplars)
    answer_prefix: str = ""  # text the assistant turn starts with (e.g. "Answer:"), part of the prompt
    reference: dict = field(default_factory=dict)  # whatever scoring needs: target, tests, label, group
    # (user, answer_prefix) by decoding name, for decodings sampled from another prompt than the one above: the
    # source may prompt its decodings differently (open-instruct's HumanEval+ T=0.8 job used HumanEvalPack's
    # instructions, its T=0.1 job did not)
    by_decoding: dict[str, tuple[str, str]] = field(default_factory=dict)

    def turns(self, decoding: str) -> tuple[str, str]:
        """The user turn and the answer prefix that the decoding named ``decoding`` samples from."""
        return self.by_decoding.get(decoding, (self.user, self.answer_prefix))


def _fingerprinted(e: Example) -> tuple:
    """What the data fingerprint covers of an example; ``by_decoding`` only where set, so that the examples of
    tasks without per-decoding prompts keep the fingerprints they had."""
    row = (e.id, e.user, e.answer_prefix, e.reference)
    return (*row, e.by_decoding) if e.by_decoding else row


@dataclass
class ScoreContext:
    """What scorers may need beyond the generations (built lazily by the driver)."""

    seed: int = 0
    n_boot: int = 1000
    confidence: float = 0.95
    sandbox: object = None  # rmlab.policy_eval.sandbox.runner.Sandbox
    toxicity: object = None  # rmlab.policy_eval.judging.toxicity.ToxicityClassifier
    judge: object = None  # callable (prompt, completion) -> label, for XSTest
    progress: bool = True


class Task:
    """Base class: subclasses set ``group`` and implement ``_load`` and ``score``."""

    group: str = ""
    metric: str = ""
    higher_is_better: bool = True
    gold_context: tuple[str, ...] = ()  # the ScoreContext fields its gold check needs (e.g. "sandbox")

    def __init__(self, cfg, data_dir: str | Path):
        self.cfg = cfg
        self.name = str(cfg.name)
        self.data_dir = Path(data_dir)
        self.decodings = [Decoding.from_cfg(d) for d in cfg.decodings]

    def load(self) -> tuple[list[Example], dict]:
        examples, source, files = self._load()
        seen = set()
        for ex in examples:
            if ex.id in seen:
                raise ValueError(f"{self.name}: duplicate example id {ex.id!r} in {source}")
            seen.add(ex.id)
        return examples, {
            "source": source,
            "files": files,
            "data_fingerprint": stable_hash([_fingerprinted(e) for e in examples]),
        }

    def _load(self) -> tuple[list[Example], str, list[str]]:
        raise NotImplementedError

    def score(
        self, examples: Sequence[Example], generations: dict[str, dict[str, list[str]]], ctx: ScoreContext
    ) -> tuple[list[dict], dict]:
        """``generations[decoding][example id]`` = samples. Returns (rows, metrics)."""
        raise NotImplementedError

    def gold(self, example: Example, completion: str, ctx: ScoreContext) -> float:
        """The gold score of one sample (1.0 right, 0.0 wrong), for best-of-n; tasks with an exact check have one."""
        raise NotImplementedError(
            f"task {self.name!r} has no per-sample gold check; use a gold reward model (gold.kind=reward_model)"
        )

    # helpers ------------------------------------------------------------------------------------------
    def local_dir(self) -> Path | None:
        path = self.data_dir / str(self.cfg.local_dir)
        return path if path.is_dir() else None

    def subsample(self, items: list, k: int | None, seed: int, rng: random.Random | None = None) -> list:
        """A fixed random subset: ``rng.sample`` when a generator shared across files is given (open-instruct seeds
        one generator and draws every file's subset from it in turn), else ``random.Random(seed).sample``."""
        if k is None or k >= len(items):
            return items
        return (rng or random.Random(seed)).sample(items, k)

    def subsample_rng(self) -> random.Random | None:
        """The generator shared by the per-file draws (``subsample_rng: shared``, open-instruct's), or None for a
        fresh ``random.Random(subsample_seed)`` per file (``per_file``, the lab's rule before this release)."""
        mode = str(self.cfg.get("subsample_rng", "shared"))
        if mode not in SUBSAMPLE_RNGS:
            raise ValueError(f"task {self.name}: subsample_rng must be one of {SUBSAMPLE_RNGS}, got {mode!r}")
        return random.Random(int(self.cfg.subsample_seed)) if mode == "shared" else None

    def mean_metric(self, values: Sequence[float], ctx: ScoreContext, *, seed_offset: int = 0) -> dict:
        values = np.asarray(values, dtype=np.float64)
        ci = (
            bootstrap_mean_interval(values, n_boot=ctx.n_boot, confidence=ctx.confidence, seed=ctx.seed + seed_offset)
            if ctx.n_boot and len(values) > 1
            else None
        )
        return {"value": float(values.mean()) if len(values) else float("nan"), "ci": ci, "n": len(values)}
