"""RM-Bench data: load, validate and key the style-substance pairs.

RM-Bench (Liu et al., ICLR 2025, arXiv 2410.16184) pairs every prompt with three chosen and three rejected
responses, one per style, ordered [concise, detailed plain text, detailed markdown]. The authors release one
JSON list per domain (``chat_filtered.json``, ``code_filtered.json``, ``math_filtered.json``,
``safety-refuse_filtered.json``, ``safety-response_filtered.json``) and a ``total_dataset.json`` whose records
carry a ``domain`` field; the Hub mirror is ``THU-KEG/RM-Bench``.

Ids repeat across domains (23 ids are shared by chat and code), so every record is keyed by ``(subset_file
domain, id)``; the metric domain pools safety-refuse and safety-response into ``safety`` as the paper does.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)

STYLES = ("concise", "detailed_plain", "detailed_markdown")
# The file-level domains of the release, in the order the paper's tables list them.
SOURCE_DOMAINS = ("chat", "math", "code", "safety-refuse", "safety-response")
# Metric domains: safety-refuse and safety-response are pooled (RM-Bench paper, Sec. 3 and Table 2).
METRIC_DOMAINS = ("chat", "math", "code", "safety")


def metric_domain(source_domain: str) -> str:
    """The domain a record is scored under: both safety files pool into ``safety``."""
    return "safety" if source_domain.startswith("safety") else source_domain


@dataclass(frozen=True)
class RMBenchItem:
    """One RM-Bench prompt with its chosen and rejected responses in the three styles."""

    domain: str  # source domain: chat, math, code, safety-refuse, safety-response
    id: int | str
    prompt: str
    chosen: tuple[str, str, str]
    rejected: tuple[str, str, str]
    subset: str = ""

    @property
    def key(self) -> tuple[str, int | str]:
        return (self.domain, self.id)

    @property
    def metric_domain(self) -> str:
        return metric_domain(self.domain)


def validate_record(record: object, *, source: str, index: int, domain: str | None) -> RMBenchItem:
    """Turn one raw JSON record into an :class:`RMBenchItem`, or raise naming file, record and field.

    :param record: the parsed JSON object.
    :param source: file name (or hub id) the record came from, used in error messages.
    :param index: position of the record in its file, used when the id itself is missing.
    :param domain: the domain implied by the file name; ``None`` when the record must carry its own.
    """
    where = f"{source}, record #{index}"
    if not isinstance(record, dict):
        raise DataValidationError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "id" not in record:
        raise DataValidationError(f"{where}: missing field 'id'")
    rid = record["id"]
    where = f"{source}, record id={rid!r} (#{index})"
    rec_domain = record.get("domain", domain)
    if rec_domain is None:
        raise DataValidationError(f"{where}: missing field 'domain'")
    if rec_domain not in SOURCE_DOMAINS:
        raise DataValidationError(f"{where}: field 'domain' is {rec_domain!r}, expected one of {SOURCE_DOMAINS}")
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataValidationError(f"{where}: field 'prompt' must be a non-empty string")
    styled = {}
    for field in ("chosen", "rejected"):
        value = record.get(field)
        if not isinstance(value, list) or len(value) != len(STYLES):
            got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
            raise DataValidationError(
                f"{where}: field '{field}' must be a list of {len(STYLES)} responses {STYLES}, got {got}"
            )
        for j, text in enumerate(value):
            if not isinstance(text, str) or not text.strip():
                raise DataValidationError(f"{where}: field '{field}[{j}]' ({STYLES[j]}) must be a non-empty string")
        styled[field] = tuple(value)
    return RMBenchItem(
        domain=rec_domain,
        id=rid,
        prompt=prompt,
        chosen=styled["chosen"],
        rejected=styled["rejected"],
        subset=str(record.get("subset", "")),
    )


def validate_records(records: Iterable[object], *, source: str, domain: str | None) -> list[RMBenchItem]:
    """Validate every record and reject duplicate ``(domain, id)`` keys."""
    items: list[RMBenchItem] = []
    seen: set[tuple[str, int | str]] = set()
    for index, record in enumerate(records):
        item = validate_record(record, source=source, index=index, domain=domain)
        if item.key in seen:
            raise DataValidationError(f"{source}, record id={item.id!r} (#{index}): duplicate key {item.key}")
        seen.add(item.key)
        items.append(item)
    return items


def load_local(data_dir: str | os.PathLike, domains: Sequence[str]) -> tuple[list[RMBenchItem], list[str]]:
    """Read RM-Bench from a directory holding ``total_dataset.json`` or the per-domain files.

    :return: the validated items of the requested source domains, and the list of files read.
    """
    root = Path(data_dir)
    total = root / "total_dataset.json"
    if total.is_file():
        items = validate_records(read_records(total), source=str(total), domain=None)
        return [it for it in items if it.domain in domains], [str(total)]
    items, files = [], []
    for domain in domains:
        path = root / f"{domain}_filtered.json"
        if not path.is_file():
            log.warning("RM-Bench: %s not found; domain %r is not scored", path, domain)
            continue
        items.extend(validate_records(read_records(path), source=str(path), domain=domain))
        files.append(str(path))
    return items, files


def load_hub(hub_id: str, domains: Sequence[str], split: str = "train") -> list[RMBenchItem]:
    """Load ``total_dataset.json`` through :func:`datasets.load_dataset` (hub id or dataset directory)."""
    import datasets

    ds = datasets.load_dataset(hub_id, split=split)
    items = validate_records(iter(ds), source=f"{hub_id} (split {split})", domain=None)
    return [it for it in items if it.domain in domains]


def subsample(items: Sequence[RMBenchItem], max_per_domain: int | None, seed: int) -> list[RMBenchItem]:
    """Deterministically keep at most ``max_per_domain`` items of each source domain (seeded, order kept)."""
    if not max_per_domain:
        return list(items)
    by_domain: dict[str, list[RMBenchItem]] = {}
    for it in items:
        by_domain.setdefault(it.domain, []).append(it)
    keep: set[tuple[str, int | str]] = set()
    for domain, group in by_domain.items():
        rng = random.Random(f"{seed}:{domain}")
        chosen = group if len(group) <= max_per_domain else rng.sample(group, max_per_domain)
        keep.update(it.key for it in chosen)
    return [it for it in items if it.key in keep]


def data_fingerprint(items: Sequence[RMBenchItem]) -> str:
    """A hash of exactly the records scored (order-independent)."""
    rows = sorted(
        ([it.domain, str(it.id), it.prompt, list(it.chosen), list(it.rejected)] for it in items),
        key=lambda r: (r[0], r[1]),
    )
    return stable_hash(rows)


def load_rm_bench(
    *,
    data_dir: str | None,
    hub_id: str | None,
    domains: Sequence[str] = SOURCE_DOMAINS,
    max_per_domain: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> tuple[list[RMBenchItem], dict]:
    """Load RM-Bench from a local directory when it exists, else from the Hub.

    :return: the items, and provenance (``source``, ``files``, ``domains_found``) for the metrics file.
    """
    unknown = [d for d in domains if d not in SOURCE_DOMAINS]
    if unknown:
        raise DataValidationError(f"unknown RM-Bench domain(s) {unknown}; known: {SOURCE_DOMAINS}")
    if data_dir and Path(data_dir).is_dir():
        items, files = load_local(data_dir, domains)
        source = str(Path(data_dir).resolve())
    elif hub_id:
        if data_dir:
            log.warning("RM-Bench: data_dir %s does not exist; loading %s from the Hub", data_dir, hub_id)
        items, files, source = load_hub(hub_id, domains, split), [], hub_id
    else:
        raise DataValidationError(f"RM-Bench: data_dir {data_dir!r} does not exist and no hub_id is configured")
    if not items:
        raise DataValidationError(f"RM-Bench: no records for domains {list(domains)} in {source}")
    items = subsample(items, max_per_domain, seed)
    found = [d for d in SOURCE_DOMAINS if any(it.domain == d for it in items)]
    return items, {"source": source, "files": files, "source_domains": found}
