"""Reward-model evaluation: a reward model scored on a benchmark (:mod:`rmlab.benchmarks`) through the score cache."""
