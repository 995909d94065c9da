"""Best-of-n sampling and reward overoptimization curves:
an alias of `rmlab best-of-n policy=<spec> task=arithmetic reward_models.<name>=<spec>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("best_of_n")
