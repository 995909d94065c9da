"""RewardBench 2 data (Malik et al. 2025, arXiv 2506.01937; Hub ``allenai/reward-bench-2``, split ``test``, 1,865
prompts). The data are on the Hub only (``../shared/data/reward-bench-2/SOURCES.md``); a local directory may hold the
Hub's parquet file or its JSON-lines export.

A row (the dataset card's ``dataset_info``): ``id`` (a string; in Ties ``ref:<n>`` or ``tied:<n>``), ``prompt``
(single-turn), ``chosen`` (a list: one correct completion, several in Ties), ``rejected`` (a list: three, several in
Ties), ``num_correct`` (= ``len(chosen)``), ``subset`` (one of :data:`SUBSETS`, spelled so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataUnavailableError, DataValidationError
from rmlab.data.files import data_files, read_records
from rmlab.utils.hashing import stable_hash

# paper Table 2 and the dataset card
SUBSET_SIZES = {"Factuality": 475, "Precise IF": 160, "Math": 183, "Safety": 450, "Focus": 495, "Ties": 102}
SUBSETS = tuple(SUBSET_SIZES)
TIES = "Ties"
_TIES_ID = re.compile(
    r"^(ref|tied):(\d+)$"
)  # upstream splits the id on ":" (rewardbench/utils.py process_single_model)


@dataclass(frozen=True)
class BonPrompt:
    id: str
    subset: str
    prompt: str
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]

    @property
    def completions(self) -> tuple[str, ...]:
        """Upstream's unrolled order (``load_bon_dataset_v2``): the correct completions first."""
        return self.chosen + self.rejected


def validate_rows(rows, *, source: str) -> list[BonPrompt]:
    out, seen = [], set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, record #{index}: expected a JSON object")
        where = f"{source}, record #{index} (id={row.get('id')!r})"
        rid, subset = row.get("id"), row.get("subset")
        if not isinstance(rid, str) or not rid:
            raise DataValidationError(f"{where}: field 'id' must be a non-empty string")
        if subset not in SUBSET_SIZES:
            raise DataValidationError(f"{where}: field 'subset' is {subset!r}, expected one of {list(SUBSETS)}")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise DataValidationError(f"{where}: field 'prompt' must be a non-empty string")
        lists = {}
        for field in ("chosen", "rejected"):
            value = row.get(field)
            if hasattr(value, "tolist"):  # a parquet list column read by pandas
                value = value.tolist()
            if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
                raise DataValidationError(f"{where}: field '{field}' must be a non-empty list of strings")
            lists[field] = tuple(value)
        if "num_correct" in row and row["num_correct"] != len(lists["chosen"]):
            raise DataValidationError(
                f"{where}: field 'num_correct' is {row['num_correct']!r} but 'chosen' has {len(lists['chosen'])}"
            )
        if subset == TIES and not _TIES_ID.match(rid):
            raise DataValidationError(f"{where}: field 'id' of a Ties row must be 'ref:<n>' or 'tied:<n>'")
        if subset != TIES and len(lists["chosen"]) != 1:
            raise DataValidationError(
                f"{where}: field 'chosen' has {len(lists['chosen'])} completions; outside Ties the metric takes one"
            )
        if (subset, rid) in seen:
            raise DataValidationError(f"{where}: duplicate id in subset {subset}")
        seen.add((subset, rid))
        out.append(BonPrompt(rid, subset, row["prompt"], lists["chosen"], lists["rejected"]))
    return out


def ties_key(prompt: BonPrompt) -> tuple[str, int]:
    """``("ref" | "tied", prompt number)`` of a Ties row."""
    kind, number = _TIES_ID.match(prompt.id).groups()
    return kind, int(number)


def load_reward_bench_2(
    *,
    data_dir: str | None,
    hub_id: str | None,
    split: str = "test",
    subsets: list[str] | None = None,
    max_per_subset: int | None = None,
) -> tuple[list[BonPrompt], dict]:
    """From ``data_dir`` when it holds ``*.parquet`` / ``*.jsonl`` / ``*.json`` files, else the Hub."""
    files = data_files(data_dir)
    if files:
        prompts = [p for f in files for p in validate_rows(read_records(f), source=str(f))]
        where = str(Path(data_dir).resolve())
    elif hub_id:
        import datasets

        where = f"{hub_id} ({split})"
        prompts = validate_rows(iter(datasets.load_dataset(hub_id, split=split)), source=where)
    else:
        raise DataUnavailableError(f"RewardBench 2: no data files in {data_dir!r} and no hub_id configured")
    if subsets:
        prompts = [p for p in prompts if p.subset in subsets]
    if max_per_subset:
        counts: dict[str, int] = {}
        prompts = [p for p in prompts if counts.setdefault(p.subset, 0) < max_per_subset and _bump(counts, p.subset)]
    if not prompts:
        raise DataValidationError(f"RewardBench 2: no prompts in {where}")
    fp = stable_hash(sorted([p.subset, p.id, p.prompt, list(p.chosen), list(p.rejected)] for p in prompts))
    return prompts, {"source": where, "files": [str(f) for f in files], "data_fingerprint": fp}


def _bump(counts: dict, key: str) -> bool:
    counts[key] += 1
    return True
