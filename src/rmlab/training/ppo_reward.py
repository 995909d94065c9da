"""The PPO reward, computed through text: the evaluator's own classifier scorer on the formatted conversation.

TRL's PPO reads the reward model's head at the last token of ``query + response`` with the response cut at EOS.
Our reward models are trained (and evaluated) on the chat template's full rendering, which for many templates
ends with a token *after* EOS (SmolLM2: ``<|im_end|>`` then a newline), so TRL's readout position is one the head
never saw in training. :class:`TextReward` instead decodes the response, formats ``(prompt, response)`` with the
reward model's chat template and scores it with :class:`rmlab.scoring.scorers.ClassifierScorer`: the PPO reward
is then exactly what ``scripts/eval_rm.py`` would give that conversation. :func:`text_rewards` routes TRL's
``get_reward`` calls for this one module through it (the value model keeps TRL's own path).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch

from rmlab.scoring.scorers import ClassifierScorer


class TextReward(torch.nn.Module):
    """:param scorer: the reward model's :class:`ClassifierScorer`. :param prompts: each training or held-out
    query (its token ids, no padding) -> the prompt turns it was built from. :param tokenizer: the policy's.
    :param missing_eos_reward: the reward of a rollout without the policy's EOS token (None: the reward model's
    score, whatever the ending)."""

    def __init__(
        self,
        scorer: ClassifierScorer,
        prompts: dict[tuple[int, ...], tuple],
        tokenizer,
        missing_eos_reward: float | None = None,
    ):
        super().__init__()
        self.model = scorer.model  # a submodule, so that .to(device) moves it
        self.scorer, self.prompts, self.tokenizer = scorer, prompts, tokenizer
        self.missing_eos_reward = missing_eos_reward
        self.response_lengths: list[int] = []  # of every scored response, for the response-length curve

    def score(self, prompts: Sequence[tuple], responses: Sequence[Sequence[int]]) -> torch.Tensor:
        """Rewards of response token ids (EOS and anything after it are dropped) to their prompts."""
        texts = [self.tokenizer.decode(list(r), skip_special_tokens=True) for r in responses]
        self.response_lengths += [len(r) for r in responses]
        encoded = [self.scorer.encode(p, t) for p, t in zip(prompts, texts)]
        return torch.tensor(self.scorer(encoded), dtype=torch.float32)

    def forward(self, query_responses: torch.Tensor, pad_token_id: int, context_length: int) -> torch.Tensor:
        prompts, responses = [], []
        for row in query_responses.tolist():
            query = row[:context_length]
            start = next((i for i, t in enumerate(query) if t != pad_token_id), len(query))  # left padding
            key = tuple(query[start:])
            if key not in self.prompts:
                raise KeyError("a PPO query is not one of the prompts this reward was built for")
            prompts.append(self.prompts[key])
            response = row[context_length:]
            responses.append(response[: response.index(pad_token_id)] if pad_token_id in response else response)
        rewards = self.score(prompts, responses)
        if self.missing_eos_reward is not None:  # TRL keeps the EOS token in the rollouts it scores
            no_eos = torch.tensor([self.tokenizer.eos_token_id not in r for r in responses])
            rewards[no_eos] = float(self.missing_eos_reward)
        return rewards.to(query_responses.device)


@contextmanager
def text_rewards():
    """While active, TRL's PPO ``get_reward`` scores :class:`TextReward` modules through text."""
    from trl.experimental.ppo import ppo_trainer

    original = ppo_trainer.get_reward

    def get_reward(model, query_responses, pad_token_id, context_length):
        if isinstance(model, TextReward):
            return None, model(query_responses, pad_token_id, context_length), None
        return original(model, query_responses, pad_token_id, context_length)

    ppo_trainer.get_reward = get_reward
    try:
        yield
    finally:
        ppo_trainer.get_reward = original
