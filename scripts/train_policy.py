"""Train a policy against a reward model (GRPO, RLOO or PPO):
an alias of `rmlab train-policy algo=grpo reward_model=<RM dir> policy=<sft model>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("train_policy")
