"""Experiments that chain stages (train, evaluate, analyse); each stage is reused from its outputs on disk."""
