"""Preference data for reward-model and DPO training: one schema, a converter per source, seeded subsampling.

Schema (:class:`PreferenceExample`): ``prompt`` is the conversation before the compared turn, as ``(role,
content)`` turns ending with the user's; ``chosen`` and ``rejected`` are the final assistant turns; ``source``
and ``id`` say where the pair came from. Converters live in :mod:`rmlab.data.converters`, registered by source
name; a malformed row raises :class:`MalformedRow`, which the loader either re-raises naming file and row, or
counts and skips when ``skip_malformed`` is set. ``label_noise`` (a fraction) swaps chosen and rejected in that
share of the training pairs, seeded; held-out pairs are never flipped.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from rmlab.data.converters import CONVERTERS
from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.data.pairs import MalformedRow, PreferenceExample, SkippedRow
from rmlab.utils.hashing import stable_hash

log = logging.getLogger(__name__)


@dataclass
class PreferenceSplits:
    train: list[PreferenceExample]
    heldout: list[PreferenceExample]
    info: dict  # source, files, counts, malformed rows, fingerprints


def stripped(example: PreferenceExample) -> PreferenceExample:
    """Every message's content without surrounding whitespace, as EasyLM formats Tulu 2.5's training pairs
    (``message["content"].strip()`` for each turn, hamishivi/EasyLM ``EasyLM/data.py``,
    ``encode_with_messages_format``). A response that is only whitespace is a malformed row."""
    chosen, rejected = example.chosen.strip(), example.rejected.strip()
    if not chosen or not rejected:
        raise MalformedRow("a response is empty once stripped of whitespace")
    prompt = tuple((role, content.strip()) for role, content in example.prompt)
    return PreferenceExample(example.source, example.id, prompt, chosen, rejected, example.meta)


def convert_rows(
    rows: Iterable[dict],
    *,
    converter,
    id_prefix: str,
    where: str,
    skip_malformed: bool,
    malformed: list,
    strip: bool = False,
    skipped: dict | None = None,
) -> list[PreferenceExample]:
    """Convert every row; ids are ``<id_prefix>#<row>`` (location-independent, so fingerprints are too).
    ``strip``: the contents without surrounding whitespace (:func:`stripped`). Rows a converter skips by rule
    (:class:`SkippedRow`: ties, other splits) are counted in ``skipped`` by reason."""
    out = []
    for index, row in enumerate(rows):
        try:
            converted = converter(row, f"{id_prefix}#{index}")
            out.extend([stripped(e) for e in converted] if strip else converted)
        except SkippedRow as why:
            if skipped is not None:
                skipped[str(why)] = skipped.get(str(why), 0) + 1
        except MalformedRow as err:
            if not skip_malformed:
                raise DataValidationError(
                    f"{where}, row #{index}: {err} (set preference.skip_malformed=true to skip such rows)"
                ) from err
            malformed.append({"file": where, "row": index, "reason": str(err)})
    return out


def split_and_subsample(
    examples: Sequence[PreferenceExample], *, max_pairs: int | None, heldout_pairs: int, seed: int
) -> tuple[list[PreferenceExample], list[PreferenceExample]]:
    """Seeded shuffle; the first ``heldout_pairs`` are held out, the next ``max_pairs`` are for training.

    The held-out set depends only on the seed and the data, not on ``max_pairs``, so size ablations share it.
    """
    order = sorted(examples, key=lambda e: (e.source, e.id))
    random.Random(seed).shuffle(order)
    heldout = order[:heldout_pairs]
    train = order[heldout_pairs:]
    if max_pairs is not None:
        train = train[:max_pairs]
    return train, heldout


def flip_labels(
    examples: Sequence[PreferenceExample], fraction: float, *, seed: int
) -> tuple[list[PreferenceExample], int]:
    """Swap chosen and rejected in a seeded ``fraction`` of the pairs (exactly ``round(fraction * n)`` of them):
    label noise of a known rate, for reward models of graded quality (a best-of-n study's positive control)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {fraction}")
    k = round(fraction * len(examples))
    flipped = set(random.Random(f"{seed}:label-noise").sample(range(len(examples)), k))
    out = [
        PreferenceExample(e.source, e.id, e.prompt, e.rejected, e.chosen, {**e.meta, "label_flipped": True})
        if i in flipped
        else e
        for i, e in enumerate(examples)
    ]
    return out, k


def fingerprint(examples: Sequence[PreferenceExample]) -> str:
    return stable_hash(sorted(e.as_row() for e in examples))


def read_examples(cfg) -> tuple[list[PreferenceExample], dict]:
    """Every pair of ``cfg`` (a ``conf/preference/*.yaml``), from its local directory or else the Hub, with where
    they came from and what was skipped (malformed rows; rows that are no pair by rule, by reason)."""
    converter = CONVERTERS[cfg.converter]
    if cfg.get("converter_options"):  # e.g. HelpSteer2's split field
        converter = functools.partial(converter, **OmegaConf.to_container(cfg.converter_options, resolve=True))
    strip = bool(cfg.get("strip_content", True))
    malformed: list[dict] = []
    skipped: dict[str, int] = {}
    data_dir = cfg.get("data_dir")
    if data_dir and Path(data_dir).is_dir():
        files = sorted(p for pattern in cfg.files for p in Path(data_dir).glob(pattern))
        if not files:
            raise DataValidationError(f"{cfg.name}: no files matching {list(cfg.files)} in {data_dir}")
        examples = []
        for path in files:
            examples += convert_rows(
                read_records(path),
                converter=converter,
                id_prefix=str(path.relative_to(data_dir)),
                where=str(path),
                skip_malformed=cfg.skip_malformed,
                malformed=malformed,
                strip=strip,
                skipped=skipped,
            )
        source = str(Path(data_dir).resolve())
    elif cfg.get("hub_id"):
        import datasets

        ds = datasets.load_dataset(
            cfg.hub_id,
            cfg.get("hub_config"),
            split=cfg.hub_split,
            **({"data_dir": cfg.hub_data_dir} if cfg.get("hub_data_dir") else {}),
        )
        files = []
        examples = convert_rows(
            iter(ds),
            converter=converter,
            id_prefix=cfg.hub_split,
            where=f"{cfg.hub_id}:{cfg.hub_split}",
            skip_malformed=cfg.skip_malformed,
            malformed=malformed,
            strip=strip,
            skipped=skipped,
        )
        source = cfg.hub_id
    else:
        raise DataValidationError(f"{cfg.name}: data_dir {data_dir!r} does not exist and no hub_id is configured")
    if malformed:
        log.warning("%s: skipped %d malformed rows (first: %s)", cfg.name, len(malformed), malformed[0])
    if skipped:
        log.info("%s: rows that are no pair by rule: %s", cfg.name, skipped)
    seen: dict[str, int] = {}
    for e in examples:
        seen[e.id] = seen.get(e.id, 0) + 1
    dup = [k for k, v in seen.items() if v > 1]
    if dup:
        raise DataValidationError(f"{cfg.name}: duplicate pair ids, e.g. {dup[:3]}")
    examples, too_long = within_max_chars(examples, cfg.get("max_chars"))
    if too_long:
        log.info("%s: %d pairs longer than max_chars=%s left out before sampling", cfg.name, too_long, cfg.max_chars)
    return examples, {
        "source": source,
        "files": [str(f) for f in files],
        "converter": cfg.converter,
        "pairs_available": len(examples),
        "malformed_rows": len(malformed),
        "malformed_examples": malformed[:20],
        "skipped_rows": skipped,  # by rule, by reason (ties, other splits)
        "longer_than_max_chars": too_long,
    }


def pair_chars(e: PreferenceExample) -> int:
    """The characters of a pair's longer side: every prompt turn plus the longer of the two responses."""
    return sum(len(content) for _, content in e.prompt) + max(len(e.chosen), len(e.rejected))


def within_max_chars(examples: list, max_chars) -> tuple[list, int]:
    """``preference.max_chars``: pairs longer than that (:func:`pair_chars`) are left out before the held-out split
    and the subsample, so that every set of a comparison trains on the number of pairs it asks for, whatever its
    conversations' lengths (the trainer's token cap would otherwise drop a different share of each set)."""
    if max_chars is None:
        return examples, 0
    kept = [e for e in examples if pair_chars(e) <= int(max_chars)]
    return kept, len(examples) - len(kept)


def finish(cfg, train: list, heldout: list, info: dict, *, seed: int) -> PreferenceSplits:
    """Label noise on the training pairs, and the run's data record (training adds the contamination check:
    :func:`rmlab.training.contamination.decontaminate`)."""
    if not train:
        raise DataValidationError(f"{cfg.name}: no training pairs left after holding out {cfg.heldout_pairs}")
    noise = float(cfg.get("label_noise") or 0.0)
    train, flipped = flip_labels(train, noise, seed=seed) if noise else (train, 0)  # held-out pairs stay clean
    info = {
        "name": cfg.name,
        **info,
        "train_pairs": len(train),
        "heldout_pairs": len(heldout),
        "seed": seed,
        "label_noise": noise,
        "labels_flipped": flipped,
        "train_fingerprint": fingerprint(train),
        "heldout_fingerprint": fingerprint(heldout),
    }
    return PreferenceSplits(train, heldout, info)


def load_preferences(cfg, *, seed: int) -> PreferenceSplits:
    """Load ``cfg`` (a ``conf/preference/*.yaml``; with ``mix``, a mixture: :func:`load_mixture`)."""
    if cfg.get("mix"):
        return load_mixture(cfg, seed=seed)
    examples, info = read_examples(cfg)
    train, heldout = split_and_subsample(
        examples, max_pairs=cfg.get("max_pairs"), heldout_pairs=cfg.heldout_pairs, seed=seed
    )
    return finish(cfg, train, heldout, info, seed=seed)


# Mixtures ----------------------------------------------------------------------------------------------------
# A seeded mixture of preference sets: ``preference.mix = [{name, weight, label?, overrides?}, ...]``.
#
# Each component is a ``conf/preference/<name>.yaml`` (with ``overrides`` merged in), read as it would be alone
# (:func:`rmlab.data.preference.read_examples`). Then:
#
# 1. **Duplicates across components** (the same prompt and the same two responses, in either order) are kept once,
#    in the first component that has them in ``mix`` order, and counted per component.
# 2. **Exact counts.** ``heldout_pairs`` and ``max_pairs`` are split by weight with the largest-remainder rule, so
#    the per-component counts sum to the totals exactly; each component draws its share from a seeded shuffle of its
#    own pairs, held-out first (so held-out pairs never depend on ``max_pairs``, as for a single set). A component
#    with too few pairs for its share is an error naming it and both numbers. ``max_pairs: null`` trains on every
#    remaining pair of every component (the held-out shares still follow the weights).
# 3. Pair ids get the component's label as a prefix; label noise and the contamination check apply to the mixture
#    as to any set; the record lists per component: weight, available, duplicates removed, train, held out.


def apportion(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder; ties to the earlier component)."""
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"mixture weights must be non-negative with a positive sum, got {weights}")
    quotas = [total * w / sum(weights) for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def component_config(cfg, item):
    """The component's preference config, resolved against the run's ``paths``."""
    from rmlab.utils.config import CONF_DIR

    path = Path(CONF_DIR) / "preference" / f"{item.name}.yaml"
    if not path.is_file():
        raise DataValidationError(f"preference.mix: no preference config {item.name!r} ({path})")
    node = OmegaConf.merge(OmegaConf.load(path), item.get("overrides") or {})
    root = cfg._get_root()
    paths = {k: root.paths[k] for k in root.paths if k != "output_dir"} if "paths" in root else {}
    return OmegaConf.create({"paths": paths, "preference": node}).preference


def _key(e: PreferenceExample) -> tuple:
    return (e.prompt, *sorted((e.chosen, e.rejected)))


def load_mixture(cfg, *, seed: int) -> PreferenceSplits:
    items = list(cfg.mix)
    labels = [str(it.get("label") or it.name) for it in items]
    if len(set(labels)) != len(labels):
        raise DataValidationError(f"preference.mix: labels must differ (give `label`s), got {labels}")
    weights = [float(it.get("weight", 1.0)) for it in items]
    seen: set[tuple] = set()
    parts, record = [], {}
    for label, item in zip(labels, items):
        sub = component_config(cfg, item)
        if sub.get("max_chars") is None and cfg.get("max_chars") is not None:  # the mixture's cap for every component
            sub.max_chars = cfg.max_chars
        examples, info = read_examples(sub)
        kept = []
        for e in sorted(examples, key=lambda e: e.id):
            if _key(e) not in seen:
                seen.add(_key(e))
                kept.append(PreferenceExample(e.source, f"{label}:{e.id}", e.prompt, e.chosen, e.rejected, e.meta))
        random.Random(f"{seed}:{label}").shuffle(kept)
        parts.append(kept)
        record[label] = {"config": str(item.name), "source": info["source"], "available": len(examples),
                         "duplicates_removed": len(examples) - len(kept), "malformed_rows": info["malformed_rows"],
                         "skipped_rows": info["skipped_rows"],
                         "longer_than_max_chars": info["longer_than_max_chars"]}  # fmt: skip
    held = apportion(int(cfg.heldout_pairs), weights)
    max_pairs = cfg.get("max_pairs")
    train_n = apportion(int(max_pairs), weights) if max_pairs is not None else [len(p) - h for p, h in zip(parts, held)]
    train, heldout = [], []
    for label, pool, h, n, w in zip(labels, parts, held, train_n, weights):
        if h + n > len(pool):
            raise DataValidationError(
                f"preference.mix: component {label!r} has {len(pool)} pairs after removing duplicates, "
                f"its share (weight {w}) needs {h} held out + {n} for training"
            )
        heldout += pool[:h]
        train += pool[h : h + n]
        record[label].update({"weight": w, "heldout": h, "train": n})
    info = {"source": "mixture", "files": [], "converter": "mix", "components": record,
            "pairs_available": sum(r["available"] for r in record.values()),
            "duplicates_removed": sum(r["duplicates_removed"] for r in record.values()),
            "malformed_rows": sum(r["malformed_rows"] for r in record.values())}  # fmt: skip
    return finish(cfg, train, heldout, info, seed=seed)
