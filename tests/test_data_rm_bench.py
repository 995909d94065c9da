"""RM-Bench loading and validation, on the real release files and on hand-made bad files."""

import json

import pytest

from rmlab.data.errors import DataValidationError
from rmlab.data.rm_bench import data_fingerprint, load_rm_bench, subsample

GOOD = {"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"], "subset": "s"}


def test_real_local_files(rm_bench_dir):
    items, prov = load_rm_bench(data_dir=str(rm_bench_dir), hub_id=None)
    counts = {}
    for it in items:
        counts[it.domain] = counts.get(it.domain, 0) + 1
    # SOURCES.md: chat 129, code 228, safety-refuse 284, safety-response 157; math is not in the local copy
    assert counts == {"chat": 129, "code": 228, "safety-refuse": 284, "safety-response": 157}
    assert prov["source_domains"] == ["chat", "code", "safety-refuse", "safety-response"]
    keys = [it.key for it in items]
    assert len(set(keys)) == len(keys)
    shared_ids = {it.id for it in items if it.domain == "chat"} & {it.id for it in items if it.domain == "code"}
    assert len(shared_ids) == 23  # ids collide across domains; keys do not
    assert {it.metric_domain for it in items} == {"chat", "code", "safety"}


def test_subsample_is_seeded_and_per_domain(rm_bench_dir):
    items, _ = load_rm_bench(data_dir=str(rm_bench_dir), hub_id=None, domains=["chat", "code"])
    a, b = subsample(items, 5, seed=0), subsample(items, 5, seed=0)
    assert [it.key for it in a] == [it.key for it in b]
    assert sum(it.domain == "chat" for it in a) == 5 and sum(it.domain == "code" for it in a) == 5
    assert [it.key for it in subsample(items, 5, seed=1)] != [it.key for it in a]
    assert data_fingerprint(a) != data_fingerprint(items)


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return tmp_path


@pytest.mark.parametrize(
    "record, message",
    [
        ({**GOOD, "chosen": ["a", "b"]}, r"chat_filtered.json, record id=1 \(#0\): field 'chosen' must be a list of 3"),
        ({**GOOD, "rejected": ["d", "  ", "f"]}, r"record id=1 \(#0\): field 'rejected\[1\]' \(detailed_plain\)"),
        ({**GOOD, "prompt": ""}, r"record id=1 \(#0\): field 'prompt' must be a non-empty string"),
        ({k: v for k, v in GOOD.items() if k != "id"}, r"chat_filtered.json, record #0: missing field 'id'"),
        ({**GOOD, "chosen": ["a", "b", 3]}, r"field 'chosen\[2\]'"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, record, message):
    _write(tmp_path, "chat_filtered.json", [record])
    with pytest.raises(DataValidationError, match=message):
        load_rm_bench(data_dir=str(tmp_path), hub_id=None, domains=["chat"])


def test_malformed_json_names_the_file(tmp_path):
    _write(tmp_path, "code_filtered.json", '[{"id": 1, "prompt": ')
    with pytest.raises(DataValidationError, match=r"code_filtered.json: not valid JSON"):
        load_rm_bench(data_dir=str(tmp_path), hub_id=None, domains=["code"])


def test_unknown_domain_and_duplicates(tmp_path):
    _write(tmp_path, "total_dataset.json", [{**GOOD, "domain": "poetry"}])
    with pytest.raises(DataValidationError, match=r"field 'domain' is 'poetry'"):
        load_rm_bench(data_dir=str(tmp_path), hub_id=None)
    _write(tmp_path, "total_dataset.json", [{**GOOD, "domain": "chat"}, {**GOOD, "domain": "chat"}])
    with pytest.raises(DataValidationError, match=r"record id=1 \(#1\): duplicate key \('chat', 1\)"):
        load_rm_bench(data_dir=str(tmp_path), hub_id=None)


def test_total_dataset_preferred_and_same_ids_in_two_domains(tmp_path):
    _write(tmp_path, "total_dataset.json", [{**GOOD, "domain": "chat"}, {**GOOD, "domain": "code"}])
    items, prov = load_rm_bench(data_dir=str(tmp_path), hub_id=None)
    assert [it.key for it in items] == [("chat", 1), ("code", 1)]
    assert prov["files"] == [str(tmp_path / "total_dataset.json")]


def test_hub_path_through_datasets(tmp_path):
    """With no local directory the loader calls ``datasets.load_dataset(hub_id)``; a dataset directory stands in
    for the Hub repo here (the same call resolves ``THU-KEG/RM-Bench`` for users online)."""
    repo = tmp_path / "RM-Bench"
    repo.mkdir()
    rows = [{**GOOD, "id": i, "domain": d} for i, d in enumerate(["chat", "math", "safety-refuse"])]
    (repo / "total_dataset.json").write_text(json.dumps(rows))
    items, prov = load_rm_bench(data_dir=str(tmp_path / "absent"), hub_id=str(repo), domains=["chat", "math"])
    assert [it.key for it in items] == [("chat", 0), ("math", 1)]
    assert prov["source"] == str(repo) and prov["source_domains"] == ["chat", "math"]


def test_no_data_anywhere(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist and no hub_id"):
        load_rm_bench(data_dir=str(tmp_path / "absent"), hub_id=None)
