"""How well a refusal labeler agrees with the XSTest authors' labels of their five models' completions.

``../shared/data/xstest/automated_evaluation_labels/`` holds, per model (gpt4, llama2new, llama2orig,
mistralguard, mistralinstruct), the 450 completions with the human ``final_label`` and either the authors'
string-match label (``*_streval.csv``, column ``strmatch_label``) or GPT-4's (``*_gpteval.csv``, ``gpt4_label``).
The string-match files carry every completion; the GPT-4 files are matched to them by prompt id.

Agreement is reported two ways: ``exact`` on the three classes, and ``binary`` on refusal (full or partial) vs
compliance, the distinction the string match can make.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.judging.refusal import LABELS, is_refusal


def _read(path: Path, label_col: str, strict: bool = True) -> dict[str, dict]:
    """Rows by id. ``strict=False`` (GPT-4's labels): a value that is not a label (GPT-4 sometimes answered with
    text) drops the row, which the report counts, instead of failing."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for i, r in enumerate(rows):
        for col in ("id", "prompt", "completion", "final_label", label_col):
            if col not in r:
                raise DataValidationError(f"{path}: row {i}: field {col!r} missing")
        if r[label_col] not in LABELS:
            if not strict:
                continue
            raise DataValidationError(f"{path}: row {i}: field {label_col!r} is {r[label_col]!r}")
        out[r["id"]] = r
    return out


def _agree(a: list[str], b: list[str]) -> dict:
    n = len(a)
    return {
        "n": n,
        "exact": sum(x == y for x, y in zip(a, b)) / n,
        "binary": sum(is_refusal(x) is not None and is_refusal(x) == is_refusal(y) for x, y in zip(a, b)) / n,
        "unparsed": sum(is_refusal(x) is None for x in a),  # an unreadable label agrees with nothing
    }


def labeler_agreement(
    xstest_dir: str | Path, label: Callable[[str, str], str], max_per_model: int | None = None
) -> dict[str, dict]:
    """Per model: the labeler's agreement with the authors' string match, the human labels and GPT-4's labels."""
    folder = Path(xstest_dir) / "automated_evaluation_labels"
    models = sorted(
        p.name.removeprefix("xstest_v2_completions_").removesuffix("_streval.csv") for p in folder.glob("*_streval.csv")
    )
    if not models:
        raise FileNotFoundError(f"{folder}: no *_streval.csv files")
    report = {}
    for model in models:
        streval = _read(folder / f"xstest_v2_completions_{model}_streval.csv", "strmatch_label")
        gpt_path = folder / f"xstest_v2_completions_{model}_gpteval.csv"
        gpteval = _read(gpt_path, "gpt4_label", strict=False) if gpt_path.is_file() else {}
        ids = list(streval)[:max_per_model]
        ours = [label(streval[i]["prompt"], streval[i]["completion"]) for i in ids]
        entry = {
            "n": len(ids),
            "vs_authors_strmatch": _agree(ours, [streval[i]["strmatch_label"] for i in ids]),
            "vs_human": _agree(ours, [streval[i]["final_label"] for i in ids]),
        }
        both = [k for k, i in enumerate(ids) if i in gpteval]
        if both:
            entry["vs_gpt4"] = _agree([ours[k] for k in both], [gpteval[ids[k]]["gpt4_label"] for k in both])
            entry["gpt4_unlabelled"] = len(ids) - len(both)
            entry["gpt4_vs_human"] = _agree(
                [gpteval[ids[k]]["gpt4_label"] for k in both], [gpteval[ids[k]]["final_label"] for k in both]
            )
        report[model] = entry
    return report


def agreement_table(report: dict[str, dict], labeler: str) -> str:
    header = (
        f"| model | n | {labeler} = authors' string match | vs human (exact / binary) | "
        "vs GPT-4 (exact / binary) | GPT-4 vs human (binary) |"
    )
    lines = [header, "|---|---|---|---|---|---|"]
    for model, e in report.items():
        g = e.get("vs_gpt4")
        gh = e.get("gpt4_vs_human")
        lines.append(
            f"| {model} | {e['n']} | {e['vs_authors_strmatch']['exact']:.4f} | "
            f"{e['vs_human']['exact']:.3f} / {e['vs_human']['binary']:.3f} | "
            + (f"{g['exact']:.3f} / {g['binary']:.3f} | {gh['binary']:.3f} |" if g else "- | - |")
        )
    return "\n".join(lines) + "\n"


def report_agreement(cfg) -> dict:
    """The body of ``scripts/xstest_agreement.py``: writes ``agreement.{json,md}`` to the run directory."""
    from rmlab.policy_eval.judging.refusal import strmatch_label
    from rmlab.utils.io import write_json, write_text

    if cfg.labeler == "strmatch":
        label, name = (lambda prompt, completion: strmatch_label(completion)), "strmatch"
    elif cfg.labeler == "judge":
        from rmlab.policy_eval.judging.judges import build_judge

        label = build_judge(cfg.judge, cfg)
        name = repr(label)
    else:
        raise ValueError(f"labeler must be 'strmatch' or 'judge', got {cfg.labeler!r}")
    report = labeler_agreement(cfg.xstest_dir, label, max_per_model=cfg.max_per_model)
    table = agreement_table(report, name)
    out = Path(cfg.paths.output_dir)
    write_json(out / "agreement.json", {"labeler": name, "models": report})
    write_text(out / "agreement.md", table)
    print(table)
    return report
