"""A lab reward model as a TRL reward function (``GRPOTrainer`` / ``RLOOTrainer`` ``reward_funcs``).

TRL calls a reward function with the batch's ``prompts`` and ``completions`` (for a conversational dataset, lists of
``{role, content}`` messages; else strings) and dataset columns as keyword arguments, and takes one float per
completion. :class:`RewardFunction` turns each (prompt messages, completion) into the lab's ``(turns, response)``
and scores it with the evaluator's own :class:`rmlab.scoring.scorers.ClassifierScorer` in the reward model's own
formatting (its ``rmlab_meta.json`` or, for a Hub model, its chat template): the reward a policy is trained on is
exactly what ``rmlab eval-rm`` gives that conversation, token for token (``tests/test_reward_function.py``). Only a
sequence classifier can serve: an implicit (DPO) reward or a judge is refused, with the reason, before training.

With ``shuffle=True`` it is the RL path's null control: every completion is paid the reward of a completion of the
same prompt drawn by a uniformly random permutation of the prompt's group (seeded per call). Each group keeps its
rewards, so their scale and spread are the reward model's, but which completion gets which is independent of the
completion: a group-relative advantage (GRPO's group-normalised reward, RLOO's leave-one-out) then has conditional
mean 0 given the completion, and the expected policy gradient is exactly 0. A policy that still gains under it
gains from the optimiser, not from the reward (``docs/performance.md``, "GRPO controls on arithmetic").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rmlab.scoring.scorers import ClassifierScorer


def prompt_turns(prompt) -> tuple[tuple[str, str], ...]:
    """TRL's prompt as the lab's turns: a list of ``{role, content}`` messages, or a string (one user message)."""
    if isinstance(prompt, str):
        return (("user", prompt),)
    turns = tuple((m["role"], m["content"]) for m in prompt)
    if not turns or turns[-1][0] != "user":
        raise ValueError(f"a reward-function prompt must end with a user message, got {[r for r, _ in turns]}")
    return turns


def completion_text(completion) -> str:
    """TRL's completion as text: a string, or the assistant message(s) of a conversational completion."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if m.get("role", "assistant") == "assistant")


class RewardFunction:
    """Callable as TRL expects (``__name__`` names it in TRL's logs); ``batch_size`` completions per forward pass."""

    def __init__(
        self, scorer: ClassifierScorer, *, name: str = "reward_model", batch_size: int = 8, turns=None,
        shuffle: bool = False, seed: int = 0,
    ):  # fmt: skip
        self.scorer, self.__name__, self.batch_size = scorer, name, int(batch_size)
        self.turns = turns  # the prompts' turns by a dataset's `prompt_index` column, when the prompt is pre-rendered
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.calls, self.scored = 0, 0

    def encode(self, prompts: Sequence, completions: Sequence, prompt_index: Sequence[int] | None = None) -> list:
        if prompt_index is not None and self.turns is not None:
            prompts = [self.turns[int(i)] for i in prompt_index]
        return [
            self.scorer.encode(p if isinstance(p, tuple) else prompt_turns(p), completion_text(c))
            for p, c in zip(prompts, completions)
        ]

    def __call__(self, prompts: Sequence, completions: Sequence, prompt_index=None, **_columns) -> list[float]:
        encoded = self.encode(prompts, completions, prompt_index)
        out: list[float] = []
        for start in range(0, len(encoded), self.batch_size):
            out += [float(x) for x in self.scorer(encoded[start : start + self.batch_size])]
        if self.shuffle:
            groups = prompt_index if prompt_index is not None else [repr(p) for p in prompts]
            out = shuffle_within_groups(out, groups, np.random.default_rng([self.seed, self.calls]))
        self.calls, self.scored = self.calls + 1, self.scored + len(out)
        return out


def shuffle_within_groups(values: Sequence[float], groups: Sequence, rng: np.random.Generator) -> list[float]:
    """``values`` permuted among the positions that share a group key (a uniformly random permutation per group;
    positions of a group need not be adjacent); each group keeps its multiset of values."""
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} rewards for {len(groups)} group keys")
    out = list(values)
    positions: dict = {}
    for i, g in enumerate(groups):
        positions.setdefault(int(g) if isinstance(g, (int, np.integer)) else g, []).append(i)
    for idx in positions.values():
        for dst, src in zip(idx, rng.permutation(idx)):
            out[dst] = values[src]
    return out


def check_reward_model_kind(rm_handle) -> None:
    """Only a sequence classifier serves as a reward function: a DPO model or a policy the lab saved is refused."""
    kind = (rm_handle.meta or {}).get("kind")  # what the lab trained it as; None for a Hub checkpoint
    if kind not in (None, "classifier"):
        raise ValueError(
            f"reward model {rm_handle.resolved.spec}: a {kind} model cannot serve as a reward function; GRPO and RLOO "
            "here take a sequence classifier (train one with `rmlab train-rm`, or give a Hub classifier)"
        )


def reward_function(rm_handle, *, max_length: int, device: str, batch_size: int = 8) -> RewardFunction:
    """The reward model of ``rm_handle`` (a :class:`rmlab.models.handle.ModelHandle`) as a reward function; only a
    sequence classifier qualifies."""
    from rmlab.models.loading import load_classifier

    check_reward_model_kind(rm_handle)
    model, _ = load_classifier(
        rm_handle.resolved, dtype="float32", device="cpu", pad_token_id=rm_handle.tokenizer.pad_token_id
    )
    scorer = ClassifierScorer(
        model.eval(), rm_handle.tokenizer, rm_handle.formatter, max_length=max_length, device=device
    )
    return RewardFunction(scorer, name=f"rm:{rm_handle.resolved.spec}", batch_size=batch_size)


def _last_user(turns) -> str:
    if isinstance(turns, str):
        return turns
    users = [content for role, content in turns if role == "user"]
    return users[-1] if users else ""


class TaskGold:
    """A task's exact gold check as a TRL reward function, given weight 0 by train-policy: every training
    completion's gold score is logged beside the reward model's (``rewards/gold/mean``, the gold curve) and never
    enters the advantage. Each training prompt is found among the task's examples by its (last) user turn."""

    __name__ = "gold"

    def __init__(self, task, examples, turns, ctx):
        self.task, self.turns, self.ctx = task, turns, ctx
        self.by_prompt = {_last_user(ex.user): ex for ex in examples}
        missing = [i for i, t in enumerate(turns) if _last_user(t) not in self.by_prompt]
        if missing:
            raise ValueError(
                f"task={task.name}: {len(missing)} of {len(turns)} training prompts are not among its prompts "
                f"(first: {_last_user(turns[missing[0]])[:80]!r}); monitor the task the prompts came from"
            )

    def describe(self) -> dict:
        return {"task": self.task.name, "prompts": len(self.turns), "weight": 0.0}

    def __call__(self, prompts, completions, prompt_index=None, **_columns) -> list[float]:
        if prompt_index is None:
            raise ValueError("the gold monitor needs the dataset's prompt_index column")
        examples = [self.by_prompt[_last_user(self.turns[int(i)])] for i in prompt_index]
        return [float(self.task.gold(ex, completion_text(c), self.ctx)) for ex, c in zip(examples, completions)]
