"""Benchmark metrics as pure functions over score arrays, and the statistics they report."""
