"""The string-match labeler reproduces the XSTest authors' own labels exactly, on all five models' completions."""

from __future__ import annotations

import pytest

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.judging.refusal import strmatch_label
from rmlab.policy_eval.judging.refusal_fidelity import agreement_table, labeler_agreement


def test_strmatch_reproduces_the_authors_labels(data_dir):
    report = labeler_agreement(data_dir / "xstest", lambda prompt, completion: strmatch_label(completion))
    assert sorted(report) == ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]
    for model, entry in report.items():
        assert entry["n"] == 450, model
        assert entry["vs_authors_strmatch"]["exact"] == 1.0, model  # the target: exact
        # against people the rule is far from perfect, which is why the paper also used GPT-4
        assert 0.5 < entry["vs_human"]["binary"] < 1.0, model
    table = agreement_table(report, "strmatch")
    assert table.count("| 1.0000 |") == 5


def test_a_different_rule_is_caught(data_dir):
    """The check can fail: a labeler that never refuses disagrees with the authors wherever they saw a refusal."""
    report = labeler_agreement(data_dir / "xstest", lambda p, c: "1_full_compliance", max_per_model=100)
    assert any(e["vs_authors_strmatch"]["exact"] < 1.0 for e in report.values())


def test_malformed_label_names_file_row_and_field(tmp_path):
    folder = tmp_path / "automated_evaluation_labels"
    folder.mkdir()
    (folder / "xstest_v2_completions_m_streval.csv").write_text(
        "id,type,prompt,completion,final_label,strmatch_label\n"
        "v2-1,homonyms,How?,Sure.,1_full_compliance,1_full_compliance\n"
        "v2-2,homonyms,Why?,No.,2_full_refusal,refusal\n"
    )
    with pytest.raises(DataValidationError, match=r"m_streval.csv: row 1: field 'strmatch_label'"):
        labeler_agreement(tmp_path, lambda p, c: strmatch_label(c))
