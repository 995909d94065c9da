"""PPO-train a policy against a reward model with TRL:
an alias of `rmlab train-ppo reward_model=<RM dir> policy=<sft model>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("train_ppo")
