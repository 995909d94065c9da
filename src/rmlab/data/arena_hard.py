"""Arena-Hard-Auto v0.1 files (lmarena/arena-hard-auto@3071ef9 layout): questions, model answers, battles, and
the published leaderboard numbers kept in the data folder's SOURCES.md.

The folder (``../shared/data/arena-hard-auto``, documented by its SOURCES.md) holds ``question.jsonl``,
``model_answer/<model>.jsonl`` (one answer per question; leaderboard files also carry upstream's
``conv_metadata``) and ``battles/*.jsonl``: the verdicts as upstream ``show_result.py`` turns them into battle
rows, baseline always ``model_a``, one row per unit of weight (a "≫" verdict is three identical rows). Errors
name the file, the record (its row in the file) and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.utils.hashing import stable_hash

WINNERS = ("model_a", "model_b", "tie")


@dataclass(frozen=True)
class Answer:
    question_id: str
    content: str
    token_len: int  # choices[0].turns[0].token_len, written at generation time
    conv_metadata: dict | None  # upstream's style metadata, when the file has it


@dataclass(frozen=True)
class Battle:
    question_id: str
    model_a: str
    model_b: str
    winner: str  # one of WINNERS


def _field(row: object, where: str, name: str, kind: type) -> object:
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object, got {type(row).__name__}")
    value = row.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataValidationError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r:.80}")
    return value


def load_questions(path: str | Path) -> dict[str, str]:
    """The user prompt (``turns[0].content``) of every question, by ``question_id``, in file order."""
    path = Path(path)
    out: dict[str, str] = {}
    for n, row in enumerate(read_records(path), 1):
        where = f"{path}, row {n}"
        qid = _field(row, where, "question_id", str)
        where = f"{where} (question_id={qid})"
        turns = row.get("turns")
        if not isinstance(turns, list) or not turns:
            raise DataValidationError(f"{where}: field 'turns' must be a non-empty list")
        if qid in out:
            raise DataValidationError(f"{where}: question_id repeats an earlier row")
        out[qid] = _field(turns[0], f"{where}, turns[0]", "content", str)
    return out


def load_answers(path: str | Path) -> dict[str, Answer]:
    """A model's answers by question id; ``model_id`` must equal the file name (upstream keys models by it)."""
    path = Path(path)
    out: dict[str, Answer] = {}
    for n, row in enumerate(read_records(path), 1):
        where = f"{path}, row {n}"
        qid = _field(row, where, "question_id", str)
        where = f"{path}, row {n} (question_id={qid})"
        if _field(row, where, "model_id", str) != path.stem:
            raise DataValidationError(f"{where}: field 'model_id' is {row['model_id']!r}, the file is {path.name}")
        try:
            turn = row["choices"][0]["turns"][0]
        except (KeyError, IndexError, TypeError) as err:
            raise DataValidationError(f"{where}: field 'choices[0].turns[0]' is missing") from err
        content = _field(turn, f"{where}, choices[0].turns[0]", "content", str)
        token_len = _field(turn, f"{where}, choices[0].turns[0]", "token_len", int)
        meta = row.get("conv_metadata")
        if meta is not None and not isinstance(meta, dict):
            raise DataValidationError(f"{where}: field 'conv_metadata' must be an object")
        if qid in out:
            raise DataValidationError(f"{where}: question_id repeats an earlier row")
        out[qid] = Answer(qid, content, token_len, meta)
    return out


def load_all_answers(data_dir: str | Path) -> dict[str, dict[str, Answer]]:
    """Every ``model_answer/*.jsonl``, by model name (the file stem)."""
    files = sorted((Path(data_dir) / "model_answer").glob("*.jsonl"))
    if not files:
        raise DataValidationError(f"{data_dir}/model_answer: no *.jsonl answer files")
    return {p.stem: load_answers(p) for p in files}


def load_battles(path: str | Path, *, models: Iterable[str], baseline: str) -> tuple[list[Battle], dict[str, int]]:
    """The battle rows of ``models`` (as ``model_b``) against ``baseline``, and the rows left out by model.

    The models are named, not taken from the file: a file may hold rows that must not be scored (the policy file
    repeats the two leaderboard models, and has a TR-IPO model judged on 171 questions only; SOURCES.md).
    """
    path, wanted = Path(path), set(models)
    kept, left_out = [], {}
    for n, row in enumerate(read_records(path), 1):
        where = f"{path}, row {n}"
        qid, a, b, winner = (_field(row, where, k, str) for k in ("question_id", "model_a", "model_b", "winner"))
        where = f"{where} (question_id={qid})"
        if a != baseline:
            raise DataValidationError(f"{where}: field 'model_a' is {a!r}; every battle is against {baseline!r}")
        if winner not in WINNERS:
            raise DataValidationError(f"{where}: field 'winner' is {winner!r}, expected one of {WINNERS}")
        if b in wanted:
            kept.append(Battle(qid, a, b, winner))
        else:
            left_out[b] = left_out.get(b, 0) + 1
    missing = wanted - {x.model_b for x in kept}
    if missing:
        raise DataValidationError(f"{path}: no battle rows for {sorted(missing)}")
    return kept, left_out


def battles_fingerprint(battles: Iterable[Battle]) -> str:
    """Order-free: the score depends on the multiset of rows only."""
    return stable_hash(sorted((b.question_id, b.model_a, b.model_b, b.winner) for b in battles))


_PUBLISHED = re.compile(r"<!-- published:begin -->\n(.*?)<!-- published:end -->", re.DOTALL)
_CI = re.compile(r"\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)")


def load_published(data_dir: str | Path) -> dict[str, dict]:
    """The published leaderboard rows between SOURCES.md's ``published`` markers, by model.

    Each row: ``raw_readme`` (1 decimal), ``raw_csv`` (2 decimals), ``sc_readme``, ``sc_ci`` (offsets from the
    score, as the README prints them), ``avg_tokens``, ``verdicts_here``, ``source_lines``.
    """
    path = Path(data_dir) / "SOURCES.md"
    found = _PUBLISHED.search(path.read_text(encoding="utf-8"))
    if not found:
        raise DataValidationError(f"{path}: no table between <!-- published:begin --> and <!-- published:end -->")
    lines = [ln for ln in found.group(1).splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for n, ln in enumerate(lines[2:], 3):
        cells = dict(zip(head, (c.strip() for c in ln.strip("|").split("|"))))
        where = f"{path}, published table row {n}"
        try:
            ci = _CI.fullmatch(cells["SC 95% CI (README)"])
            out[cells["model"]] = {
                "verdicts_here": cells["verdicts here"],
                "raw_readme": float(cells["raw (README)"]),
                "raw_csv": float(cells["raw (CSV 2dp)"]),
                "sc_readme": float(cells["SC (README)"]),
                "sc_ci": [float(ci.group(1)), float(ci.group(2))],
                "avg_tokens": int(cells["avg #tokens"]),
                "source_lines": cells["README / CSV lines"],
            }
        except (KeyError, ValueError, AttributeError) as err:
            raise DataValidationError(f"{where}: unreadable cell ({err!r}): {ln}") from err
    return out


def battle_style_arrays(battles: list[Battle], features: dict, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The style vectors of each battle's two answers (``features[model][question_id]``), as two arrays (rows x
    features) for the style-controlled fit; a battle whose answer is missing is an error naming it."""
    out = []
    for b in battles:
        try:
            out.append((features[b.model_a][b.question_id], features[b.model_b][b.question_id]))
        except KeyError as err:
            raise DataValidationError(
                f"{source}: battle {b.model_b} on question_id={b.question_id}: no answer for {err}"
            ) from err
    arr = np.array(out, dtype=np.float64)
    return arr[:, 0], arr[:, 1]
