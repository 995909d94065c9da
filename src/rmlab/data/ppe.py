"""PPE data (Preference Proxy Evaluations, Frick et al. 2024, arXiv 2410.14872; lmarena).

Two kinds of set, each a Hub dataset whose card documents its fields:

- human preference, ``lmarena-ai/PPE-Human-Preference-V1`` (split ``test``, 16,038 Chatbot Arena battles): a single-
  turn ``prompt``, ``response_1`` (by ``model_a``) and ``response_2`` (by ``model_b``), the human ``winner``
  (``model_a``, ``model_b``, or a tie), ``language`` and the subset flags ``hard_prompt``, ``if_prompt``,
  ``math_prompt``, ``is_code``;
- correctness, ``lmarena-ai/PPE-<set>-Best-of-K`` (split ``train``) for MMLU-Pro, MATH, GPQA, IFEval and MBPP-Plus:
  per row a ``prompt``, 32 sampled responses ``response_1`` .. ``response_32`` by one ``model_name``, their
  verified correctness ``scores`` (32 booleans), and ``sampled_conflict_pairs`` (0-based index pairs of one correct
  and one incorrect response).

The authors' scoring code (github.com/lmarena/PPE) could not be read where this was written: the fields are the
dataset cards', the metrics are defined in :mod:`rmlab.benchmarks.ppe` and docs/fidelity.md says what is not
checked at source. Local copies (``benchmark.data_dir``): the Hub's parquet files, or JSON / JSON lines with the
same fields, ``<data_dir>/*.{parquet,jsonl,json}[.gz]`` for the human set and ``<data_dir>/<set>/...`` for each
correctness set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataUnavailableError, DataValidationError
from rmlab.data.files import data_files, read_records
from rmlab.utils.hashing import stable_hash

HUMAN_HUB_ID = "lmarena-ai/PPE-Human-Preference-V1"
HUMAN_ROWS = 16038  # the dataset card's row count, ties included
WINNERS = ("model_a", "model_b")  # anything else is a tie (Chatbot Arena: "tie", "tie (bothbad)")
FLAGS = ("hard_prompt", "if_prompt", "math_prompt", "is_code")  # the card's subset flags
# correctness sets: Hub id, rows (cards: MATH 512, GPQA 512, MBPP-Plus 507; MMLU-Pro and IFEval 512 each, from the
# blog's 2,555 prompts x 32 responses = 81,760 less the three counted ones)
CORRECTNESS = {
    "mmlu_pro": ("lmarena-ai/PPE-MMLU-Pro-Best-of-K", 512),
    "math": ("lmarena-ai/PPE-MATH-Best-of-K", 512),
    "gpqa": ("lmarena-ai/PPE-GPQA-Best-of-K", 512),
    "ifeval": ("lmarena-ai/PPE-IFEval-Best-of-K", 512),
    "mbpp_plus": ("lmarena-ai/PPE-MBPP-Plus-Best-of-K", 507),
}
K = 32


@dataclass(frozen=True)
class HumanPair:
    question_id: str
    prompt: str
    response_1: str
    response_2: str
    winner: str  # model_a | model_b | a tie
    language: str
    flags: tuple[str, ...]  # the FLAGS that are true

    @property
    def tie(self) -> bool:
        return self.winner not in WINNERS

    @property
    def chosen(self) -> str:
        return self.response_1 if self.winner == "model_a" else self.response_2

    @property
    def rejected(self) -> str:
        return self.response_2 if self.winner == "model_a" else self.response_1


@dataclass(frozen=True)
class BestOfKRow:
    set: str
    question_id: str
    model_name: str
    prompt: str
    responses: tuple[str, ...]
    correct: tuple[bool, ...]  # the card's ``scores``
    conflict_pairs: tuple[tuple[int, int], ...]  # (correct index, incorrect index), as the data order them

    @property
    def key(self) -> str:
        return f"{self.set}/question_id={self.question_id}/model={self.model_name}"


def _rows(directory: Path | None, hub_id: str | None, split: str, what: str) -> tuple[list[tuple[str, int, dict]], str]:
    """``(file, index, record)`` of every record, from ``directory``'s files when it has any, else the Hub."""
    files = data_files(directory)
    if files:
        return [(str(f), i, r) for f in files for i, r in enumerate(read_records(f))], str(directory.resolve())
    if not hub_id:
        raise DataUnavailableError(f"PPE {what}: no data files in {directory} and no hub_id is configured")
    import datasets

    where = f"{hub_id} ({split})"
    try:
        data = datasets.load_dataset(hub_id, split=split)
    except Exception as err:  # offline, or no access: the report card shows "no data (why)"
        raise DataUnavailableError(f"PPE {what}: no local files in {directory}, and {where} failed: {err}") from err
    return [(where, i, r) for i, r in enumerate(data)], where


def _text(row: dict, field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataValidationError(f"{where}: field '{field}' must be a non-empty string")
    return value


def validate_human(rows) -> list[HumanPair]:
    pairs, seen = [], set()
    for source, index, row in rows:
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, record #{index}: expected an object")
        where = f"{source}, record #{index} (question_id={row.get('question_id')!r})"
        qid = _text(row, "question_id", where)
        prompt, r1, r2 = (_text(row, f, where) for f in ("prompt", "response_1", "response_2"))
        winner = _text(row, "winner", where)
        if qid in seen:
            raise DataValidationError(f"{where}: duplicate question_id")
        seen.add(qid)
        flags = []
        for flag in FLAGS:
            if not isinstance(row.get(flag, False), bool):
                raise DataValidationError(f"{where}: field '{flag}' must be true or false, got {row[flag]!r}")
            if row.get(flag):
                flags.append(flag)
        pairs.append(HumanPair(qid, prompt, r1, r2, winner, str(row.get("language") or ""), tuple(flags)))
    return pairs


def validate_best_of_k(rows, set_name: str) -> list[BestOfKRow]:
    out, seen = [], set()
    for source, index, row in rows:
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, record #{index}: expected an object")
        where = f"{source}, record #{index} (question_id={row.get('question_id')!r})"
        qid, model = _text(row, "question_id", where), _text(row, "model_name", where)
        prompt = _text(row, "prompt", where)
        correct = row.get("scores")
        if not isinstance(correct, list) or len(correct) != K or not all(isinstance(c, bool) for c in correct):
            raise DataValidationError(f"{where}: field 'scores' must be a list of {K} true/false values")
        responses = tuple(_text(row, f"response_{j + 1}", where) for j in range(K))
        pairs = row.get("sampled_conflict_pairs")
        if not isinstance(pairs, list):
            raise DataValidationError(f"{where}: field 'sampled_conflict_pairs' must be a list of index pairs")
        conflict = []
        for j, pair in enumerate(pairs):
            ok = isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(p, int) for p in pair)
            if not ok or not all(0 <= p < K for p in pair) or correct[pair[0]] == correct[pair[1]]:
                raise DataValidationError(
                    f"{where}: field 'sampled_conflict_pairs' #{j} is {pair!r}: expected two indices in 0..{K - 1}, "
                    f"one of a correct and one of an incorrect response"
                )
            a, b = pair
            conflict.append((a, b) if correct[a] else (b, a))
        if (qid, model) in seen:
            raise DataValidationError(f"{where}: duplicate (question_id, model_name)")
        seen.add((qid, model))
        out.append(BestOfKRow(set_name, qid, model, prompt, responses, tuple(correct), tuple(conflict)))
    return out


def load_human(
    *, data_dir: str | None, hub_id: str | None = HUMAN_HUB_ID, max_pairs: int | None = None
) -> tuple[list[HumanPair], dict]:
    rows, where = _rows(Path(data_dir) if data_dir else None, hub_id, "test", "human preference")
    pairs = validate_human(rows)
    if max_pairs:
        pairs = pairs[: int(max_pairs)]
    fp = stable_hash(sorted([p.question_id, p.prompt, p.response_1, p.response_2, p.winner] for p in pairs))
    files = sorted({s for s, _, _ in rows if Path(s).is_file()})
    return pairs, {"source": where, "files": files, "data_fingerprint": fp}


def load_correctness(
    *, data_dir: str | None, sets: list[str], hub_ids: dict | None = None, max_per_set: int | None = None
) -> tuple[list[BestOfKRow], dict]:
    unknown = [s for s in sets if s not in CORRECTNESS]
    if unknown:
        raise ValueError(f"PPE correctness sets {unknown}: choose from {sorted(CORRECTNESS)}")
    items, sources, files = [], [], []
    for name in sets:
        hub_id = (hub_ids or {}).get(name, CORRECTNESS[name][0])
        directory = Path(data_dir) / name if data_dir else None
        rows, where = _rows(directory, hub_id, "train", name)
        got = validate_best_of_k(rows, name)
        items += got[: int(max_per_set)] if max_per_set else got
        sources.append(where)
        files += sorted({s for s, _, _ in rows if Path(s).is_file()})
    fp = stable_hash(
        sorted([r.key, r.prompt, list(r.responses), list(r.correct), list(r.conflict_pairs)] for r in items)
    )
    return items, {"source": "; ".join(sources), "files": files, "data_fingerprint": fp}
