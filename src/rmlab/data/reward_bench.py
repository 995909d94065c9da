"""RewardBench data (Lambert et al. 2024; Hub ``allenai/reward-bench`` split ``filtered``, 2985 pairs in 23
subsets, and the prior sets ``allenai/pref-test-sets``).

Rows: ``prompt`` (a string; in the prior sets, possibly a list of earlier chat messages), ``chosen``,
``rejected``, ``subset``, ``id``. A local directory may hold such rows as ``*.json`` / ``*.jsonl`` files, or the
math-prm subset in RewardMATH's row format (``eval_solution`` step lists, ``human_to_GPT-4`` = chosen), as
``../shared/data/reward-math/rewardbench-math/`` does. Pairs are keyed by ``(subset, id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.data.reward_math import group_problems
from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)

PRIOR_SETS_DROPPED = ("pku_better", "pku_safer")  # RewardBench does not evaluate these splits


@dataclass(frozen=True)
class PreferencePair:
    subset: str
    id: int | str
    prompt: str | tuple  # a string, or a tuple of (role, content) turns for multi-turn prompts
    chosen: str
    rejected: str

    @property
    def key(self) -> tuple[str, int | str]:
        return (self.subset, self.id)


def _prompt(value, where: str) -> str | tuple:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value):
        return tuple((m["role"], m["content"]) for m in value)
    raise DataValidationError(f"{where}: field 'prompt' must be a non-empty string or a list of chat messages")


def validate_pairs(rows: Iterable[dict], *, source: str, subset: str | None = None) -> list[PreferencePair]:
    pairs, seen = [], set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(f"{source}, row #{index}: expected a JSON object")
        rid = row.get("id", index)
        where = f"{source}, row id={rid!r} (#{index})"
        name = subset or row.get("subset")
        if not isinstance(name, str) or not name:
            raise DataValidationError(f"{where}: missing field 'subset'")
        for field in ("chosen", "rejected"):
            if not isinstance(row.get(field), str) or not row[field].strip():
                raise DataValidationError(f"{where}: field '{field}' must be a non-empty string")
        pair = PreferencePair(name, rid, _prompt(row.get("prompt"), where), row["chosen"], row["rejected"])
        if pair.key in seen:
            raise DataValidationError(f"{where}: duplicate key {pair.key}")
        seen.add(pair.key)
        pairs.append(pair)
    return pairs


def pairs_from_math_rows(rows: list[dict], *, source: str) -> list[PreferencePair]:
    """math-prm in RewardMATH's format: one correct (chosen) and one incorrect (rejected) solution per problem."""
    problems = group_problems(rows, source=source, n_incorrect=1)
    return [PreferencePair("math-prm", p.problem_id, p.problem, p.correct.text, p.incorrect[0].text) for p in problems]


def load_local(data_dir: str | Path) -> tuple[list[PreferencePair], list[str]]:
    pairs, files = [], []
    for path in sorted(Path(data_dir).glob("*.json")) + sorted(Path(data_dir).glob("*.jsonl")):
        rows = read_records(path)
        if rows and isinstance(rows[0], dict) and "eval_solution" in rows[0]:
            pairs += pairs_from_math_rows(rows, source=str(path))
        else:
            pairs += validate_pairs(rows, source=str(path))
        files.append(str(path))
    keys = [p.key for p in pairs]
    if len(set(keys)) != len(keys):
        raise DataValidationError(f"{data_dir}: the same (subset, id) appears in two files")
    return pairs, files


def load_hub(hub_id: str, split: str, prior_sets_hub_id: str | None) -> list[PreferencePair]:
    import datasets

    pairs = validate_pairs(iter(datasets.load_dataset(hub_id, split=split)), source=f"{hub_id} ({split})")
    if prior_sets_hub_id:
        prior = datasets.load_dataset(prior_sets_hub_id)
        for name, ds in prior.items():
            if name in PRIOR_SETS_DROPPED:
                continue
            pairs += validate_pairs(iter(ds), source=f"{prior_sets_hub_id} ({name})", subset=name)
    return pairs


def load_reward_bench(
    *,
    data_dir: str | None,
    hub_id: str | None,
    split: str = "filtered",
    prior_sets_hub_id: str | None = None,
    subsets: list[str] | None = None,
    max_per_subset: int | None = None,
) -> tuple[list[PreferencePair], dict]:
    if data_dir and Path(data_dir).is_dir():
        pairs, files = load_local(data_dir)
        source = str(Path(data_dir).resolve())
    elif hub_id:
        pairs, files, source = load_hub(hub_id, split, prior_sets_hub_id), [], hub_id
    else:
        raise DataValidationError(f"RewardBench: data_dir {data_dir!r} does not exist and no hub_id is configured")
    if subsets:
        pairs = [p for p in pairs if p.subset in subsets]
    if max_per_subset:
        counts: dict[str, int] = {}
        kept = []
        for p in pairs:
            counts[p.subset] = counts.get(p.subset, 0) + 1
            if counts[p.subset] <= max_per_subset:
                kept.append(p)
        pairs = kept
    if not pairs:
        raise DataValidationError(f"RewardBench: no pairs in {source}")
    fp = stable_hash(sorted([p.subset, str(p.id), p.prompt, p.chosen, p.rejected] for p in pairs))
    return pairs, {
        "source": source,
        "files": files,
        "data_fingerprint": fp,
        "subsets_found": sorted({p.subset for p in pairs}),
    }
