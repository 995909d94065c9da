"""``debug=fast`` for the entry points that read no other command's runs (the benches, the GPU check, the
best-of-n, Arena-Hard and reward-signal stages, a whole experiment): the other half of tests/test_debug_fast.py, in
a file of its own so that `make test`'s pytest-xdist workers run the two halves side by side."""

from __future__ import annotations

from tests.test_debug_fast import STANDALONE, _overrides, run_debug_fast

# not marked slow: the end-to-end path on tiny inputs that `make test` (CI) runs for every entry point


def test_the_standalone_entry_points_run_with_debug_fast(
    tmp_path, monkeypatch, tiny_lm_dir, tiny_classifier_dir, data_dir
):
    overrides = _overrides(tmp_path, tiny_lm_dir, tiny_classifier_dir)
    run_debug_fast({c: overrides[c] for c in STANDALONE}, tmp_path, monkeypatch, data_dir)
