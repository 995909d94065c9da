"""RMB (Zhou et al., ICLR 2025, arXiv 2410.09893; Zhou-Zoey/RMB-Reward-Model-Benchmark): helpfulness and
harmlessness, as pairs (``Pairwise_set``) and as best-of-N lists (``BoN_set``).

Files (``RMB_dataset/<Pairwise_set|BoN_set>/<Helpfulness|Harmlessness>/**.json``, optionally ``.gz``) hold JSON
lists. A pair: ``pair_uid``, ``conversation_input`` (chat turns ``{role, content, language}``, the last one the
user's), ``chosen`` and ``reject`` (``{llm_name, answer}``), ``category_path``. A list: ``bon_uid``,
``conversation_input``, ``bon_best``, ``loser_list`` (2-6 ``{llm_name, answer}``), ``category_path``
(``../shared/data/rmb/SOURCES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataUnavailableError, DataValidationError
from rmlab.data.files import read_records
from rmlab.utils.hashing import stable_hash

SETS = {"pairwise": "Pairwise_set", "bon": "BoN_set"}
GOALS = ("Helpfulness", "Harmlessness")
# the paper's counts (upstream fig/{helpful,harmless}_dataset_table.pdf, via SOURCES.md): pairs / lists per section
PAPER_COUNTS = {
    ("pairwise", "Helpfulness"): 10067,
    ("pairwise", "Harmlessness"): 7064,
    ("bon", "Helpfulness"): 2109,
    ("bon", "Harmlessness"): 1677,
}
_FIELDS = {"pairwise": ("pair_uid", "chosen", "reject"), "bon": ("bon_uid", "bon_best", "loser_list")}


@dataclass(frozen=True)
class RmbItem:
    """A pair (one loser) or a best-of-N list (2-6 losers): the best response must outscore every loser."""

    set: str  # "pairwise" | "bon"
    goal: str  # "Helpfulness" | "Harmlessness"
    uid: str
    category_path: str
    conversation: tuple  # ((role, content), ...), ending with the user's turn
    best: str
    losers: tuple[str, ...]

    @property
    def section(self) -> str:
        return section_name(self.set, self.goal)

    @property
    def key(self) -> str:
        return f"{self.set}/{self.uid}"


def section_name(kind: str, goal: str) -> str:
    return f"{'Pairwise' if kind == 'pairwise' else 'BoN'} {goal}"


def _answer(value, where: str, field: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
        raise DataValidationError(f"{where}: field '{field}' must be an object with a string 'answer'")
    return value["answer"]


def _conversation(value, where: str) -> tuple:
    if not isinstance(value, list) or not value:
        raise DataValidationError(f"{where}: field 'conversation_input' must be a non-empty list of turns")
    turns = []
    for t, turn in enumerate(value):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("user", "assistant")
            or not isinstance(turn.get("content"), str)
        ):
            raise DataValidationError(f"{where}: field 'conversation_input' turn {t} needs a role and a content")
        turns.append((turn["role"], turn["content"]))
    if turns[-1][0] != "user":
        raise DataValidationError(f"{where}: field 'conversation_input' must end with the user's turn")
    return tuple(turns)


def validate_items(rows, *, source: str, kind: str, goal: str) -> list[RmbItem]:
    uid_field, best_field, other_field = _FIELDS[kind]
    out = []
    if not isinstance(rows, list):
        raise DataValidationError(f"{source}: expected a JSON list of records")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, record #{index}: expected a JSON object")
        uid = row.get(uid_field)
        where = f"{source}, record #{index} ({uid_field}={uid!r})"
        if not isinstance(uid, str | int) or uid == "":
            raise DataValidationError(f"{where}: field '{uid_field}' is missing")
        best = _answer(row.get(best_field), where, best_field)
        if kind == "pairwise":
            losers = (_answer(row.get(other_field), where, other_field),)
        else:
            others = row.get(other_field)
            if not isinstance(others, list) or not others:
                raise DataValidationError(f"{where}: field '{other_field}' must be a non-empty list")
            losers = tuple(_answer(o, where, f"{other_field}[{i}]") for i, o in enumerate(others))
        path = row.get("category_path")
        if not isinstance(path, str) or not path.startswith(f"{SETS[kind]}/{goal}"):
            raise DataValidationError(f"{where}: field 'category_path' is {path!r}, expected {SETS[kind]}/{goal}/...")
        out.append(
            RmbItem(kind, goal, str(uid), path, _conversation(row.get("conversation_input"), where), best, losers)
        )
    return out


def rmb_files(root: Path, kind: str, goal: str) -> list[Path]:
    base = root / "RMB_dataset" / SETS[kind] / goal
    return sorted(p for p in base.rglob("*") if p.name.endswith((".json", ".json.gz")))


def load_rmb(
    *, data_dir: str | None, sets: list[str], goals: list[str], max_per_file: int | None = None
) -> tuple[list[RmbItem], dict]:
    """The chosen sets and goals from ``data_dir`` (upstream's tree, ``RMB_dataset/...``). Upstream publishes the
    data on GitHub only (no Hub dataset): a missing directory is an error naming it."""
    if not data_dir or not (Path(data_dir) / "RMB_dataset").is_dir():
        raise DataUnavailableError(
            f"RMB: no RMB_dataset/ under {data_dir!r}; clone Zhou-Zoey/RMB-Reward-Model-Benchmark and point "
            "benchmark.data_dir (or RMB_DATA_DIR) at it"
        )
    root = Path(data_dir)
    items, files, seen = [], [], set()
    for kind in sets:
        if kind not in SETS:
            raise ValueError(f"RMB set {kind!r}: choose from {sorted(SETS)}")
        for goal in goals:
            if goal not in GOALS:
                raise ValueError(f"RMB goal {goal!r}: choose from {GOALS}")
            for path in rmb_files(root, kind, goal):
                got = validate_items(read_records(path), source=str(path), kind=kind, goal=goal)
                for k, item in enumerate(got):
                    if item.key in seen:
                        raise DataValidationError(f"{path}, record #{k}: duplicate uid {item.uid!r} in the {kind} set")
                    seen.add(item.key)
                items += got[:max_per_file] if max_per_file else got
                files.append(str(path))
    if not items:
        raise DataValidationError(f"RMB: no records under {root} for sets {sets} and goals {goals}")
    fp = stable_hash(sorted([i.key, i.category_path, list(i.conversation), i.best, list(i.losers)] for i in items))
    return items, {"source": str(root.resolve()), "files": files, "data_fingerprint": fp}
