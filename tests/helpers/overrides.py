"""Config overrides that several tests share: a PPO run small enough for seconds on a CPU."""

from __future__ import annotations


def tiny_ppo_recipe(total_episodes: int = 8) -> list[str]:
    """Rollouts of 6 tokens, 2 prompts x 2 accumulation steps per update, one epoch and one mini-batch."""
    return [
        "prompts.heldout=3",
        "recipe.response_length=6",
        "recipe.rollouts_per_device_batch=2",
        "recipe.gradient_accumulation=2",
        f"recipe.total_episodes={total_episodes}",
        "recipe.rollout_forward_batch=2",
        "recipe.max_prompt_length=256",
        "recipe.ppo_epochs=1",
        "recipe.num_mini_batches=1",
        "recipe.lr=1e-3",
    ]
