"""``debug=fast`` for the stages that read no other command's runs (best-of-n, arena-hard, reward-signal, a whole
experiment, the Arena-Hard and XSTest fidelity checks): a third of tests/test_debug_fast.py, in a file of its own so
that `make test`'s pytest-xdist workers run it beside the other two."""

from __future__ import annotations

from tests.test_debug_fast import STANDALONE_STAGES, _overrides, run_debug_fast

# not marked slow: the end-to-end path on tiny inputs that `make test` (CI) runs for every entry point


def test_the_standalone_stages_run_with_debug_fast(tmp_path, monkeypatch, tiny_lm_dir, tiny_classifier_dir, data_dir):
    overrides = _overrides(tmp_path, tiny_lm_dir, tiny_classifier_dir)
    run_debug_fast({c: overrides[c] for c in STANDALONE_STAGES}, tmp_path, monkeypatch, data_dir)
