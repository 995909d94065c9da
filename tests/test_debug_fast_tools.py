"""``debug=fast`` for the benches and checks (bench-scoring, bench-generation, bench-train-rm, measure-score-bounds,
gpu-check), which read no other command's runs: a third of tests/test_debug_fast.py, in a file of its own so that
`make test`'s pytest-xdist workers run it beside the other two."""

from __future__ import annotations

from tests.test_debug_fast import STANDALONE_TOOLS, _overrides, run_debug_fast

# not marked slow: the end-to-end path on tiny inputs that `make test` (CI) runs for every entry point


def test_the_benches_and_checks_run_with_debug_fast(tmp_path, monkeypatch, tiny_lm_dir, tiny_classifier_dir, data_dir):
    overrides = _overrides(tmp_path, tiny_lm_dir, tiny_classifier_dir)
    run_debug_fast({c: overrides[c] for c in STANDALONE_TOOLS}, tmp_path, monkeypatch, data_dir)
