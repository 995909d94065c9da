"""Evaluate a policy on GSM8k, BBH, HumanEval+, MBPP+, ToxiGen, XSTest:
an alias of `rmlab eval-policy policy=<hub id | dir | name> task=<task | all>`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("eval_policy")
