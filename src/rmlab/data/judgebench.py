"""JudgeBench data (Tan et al., ICLR 2025, arXiv 2410.12784; Hub ``ScalerLab/JudgeBench``, splits ``gpt`` with 350
pairs and ``claude`` with 270), and the authors' own judge outputs.

A pair is a question and two responses by the same model, one objectively correct and one not; ``label`` (``A>B``
or ``B>A``) names the correct one. Rows (upstream ``data/*.jsonl``): ``pair_id`` (the key: ``original_id`` is null
outside MMLU-Pro), ``source`` (``mmlu-pro-<category>``, ``livebench-reasoning``, ``livebench-math``,
``livecodebench``), ``question``, ``response_A``, ``response_B``, ``label``. An output file adds ``judgments``: two
games, ``(A, B)`` then ``(B, A)``, each with a ``decision`` in its own frame (``../shared/data/judgebench/SOURCES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataUnavailableError, DataValidationError
from rmlab.data.files import read_records
from rmlab.utils.hashing import stable_hash

SPLIT_FILES = {  # upstream data/ file per split (the Hub dataset's split names)
    "gpt": "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl",
    "claude": "dataset=judgebench,response_model=claude-3-5-sonnet-20240620.jsonl",
}
SPLIT_SIZES = {"gpt": 350, "claude": 270}  # paper §3 / App. A.3, and the README
# upstream run_judge.py:94-95: a pair's category is the prefix of its source
CATEGORIES = {
    "knowledge": "mmlu-pro",
    "reasoning": "livebench-reasoning",
    "math": "livebench-math",
    "coding": "livecodebench",
}
LABELS = ("A>B", "B>A")


@dataclass(frozen=True)
class JudgePair:
    pair_id: str
    source: str
    question: str
    response_a: str
    response_b: str
    label: str  # "A>B" (A is the correct response) or "B>A"

    @property
    def category(self) -> str:
        return category_of(self.source)

    @property
    def correct(self) -> str:
        return self.response_a if self.label == "A>B" else self.response_b

    @property
    def incorrect(self) -> str:
        return self.response_b if self.label == "A>B" else self.response_a


def category_of(source: str) -> str:
    for name, prefix in CATEGORIES.items():
        if source.startswith(prefix):
            return name
    raise KeyError(source)


def validate_pairs(rows, *, source: str) -> list[JudgePair]:
    """Rows as upstream writes them; a bad record is an error naming the file, the record and the field."""
    pairs, seen = [], set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, record #{index}: expected a JSON object")
        where = f"{source}, record #{index} (pair_id={row.get('pair_id')!r})"
        for field in ("pair_id", "source", "question", "response_A", "response_B"):
            if not isinstance(row.get(field), str) or not row[field].strip():
                raise DataValidationError(f"{where}: field '{field}' must be a non-empty string")
        if row.get("label") not in LABELS:
            raise DataValidationError(f"{where}: field 'label' is {row.get('label')!r}, expected one of {LABELS}")
        try:
            category_of(row["source"])
        except KeyError:
            raise DataValidationError(
                f"{where}: field 'source' is {row['source']!r}, which starts with none of {sorted(CATEGORIES.values())}"
            ) from None
        if row["pair_id"] in seen:
            raise DataValidationError(f"{where}: duplicate pair_id")
        seen.add(row["pair_id"])
        pairs.append(
            JudgePair(
                row["pair_id"], row["source"], row["question"], row["response_A"], row["response_B"], row["label"]
            )
        )
    return pairs


def load_judgebench(
    *, data_dir: str | None, hub_id: str | None, split: str = "gpt", max_pairs: int | None = None
) -> tuple[list[JudgePair], dict]:
    """One split, from ``data_dir`` (upstream's ``data/`` files) when it holds the split's file, else the Hub."""
    if split not in SPLIT_FILES:
        raise ValueError(f"JudgeBench split {split!r}: choose one of {sorted(SPLIT_FILES)}")
    local = Path(data_dir) / SPLIT_FILES[split] if data_dir else None
    if local is not None and local.is_file():
        pairs, files, where = validate_pairs(read_records(local), source=str(local)), [str(local)], str(local.resolve())
    elif hub_id:
        import datasets

        where = f"{hub_id} ({split})"
        pairs, files = validate_pairs(iter(datasets.load_dataset(hub_id, split=split)), source=where), []
    else:
        raise DataUnavailableError(f"JudgeBench: {local} does not exist and no hub_id is configured")
    if max_pairs:
        pairs = pairs[: int(max_pairs)]
    fp = stable_hash(sorted([p.pair_id, p.source, p.question, p.response_a, p.response_b, p.label] for p in pairs))
    return pairs, {"source": where, "files": files, "data_fingerprint": fp, "split": split}


def read_judge_outputs(path: str | Path) -> dict[str, tuple[str | None, ...]]:
    """An upstream output file (``outputs/*.jsonl[.gz]``): each pair's game decisions, each in its own game's
    frame, keyed by ``pair_id`` (upstream appends pairs as they finish, so the file order is not the data's)."""
    out: dict[str, tuple[str | None, ...]] = {}
    for index, row in enumerate(read_records(path)):
        where = f"{path}, record #{index} (pair_id={row.get('pair_id')!r})"
        games = row.get("judgments")
        if not isinstance(games, list) or not 1 <= len(games) <= 2:
            raise DataValidationError(f"{where}: field 'judgments' must be a list of one or two games")
        if row.get("pair_id") in out:
            raise DataValidationError(f"{where}: duplicate pair_id")
        out[row["pair_id"]] = tuple(g.get("decision") if isinstance(g, dict) else None for g in games)
    return out
