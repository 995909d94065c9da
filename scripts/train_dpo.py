"""Train a DPO model with TRL (an implicit reward model):
an alias of `rmlab train-dpo preference=hh_rlhf model=<sft model>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("train_dpo")
