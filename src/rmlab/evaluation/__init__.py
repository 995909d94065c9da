"""Evaluation stages: reward models on benchmarks (and, later, policies on downstream tasks)."""
