"""Train a classifier reward model (Bradley-Terry, PyTorch Lightning):
an alias of `rmlab train-rm preference=hh_rlhf model=<backbone>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("train_rm")
