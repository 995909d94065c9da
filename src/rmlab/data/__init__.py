"""Benchmark and preference data: loaders, schemas, validation, local-dir-or-hub resolution."""
