"""Stages: the table of what each one is, and running one or reusing it.

A stage is an entry point's config (``conf/<entry>.yaml`` plus overrides) and the library function its script
calls. :data:`STAGES` holds, once, each kind's function, the file it writes last (its ``done`` file), the config
groups that take a model spec, and where a trained model lands in its directory.

A stage directory is named by the stage's identity (:mod:`rmlab.pipelines.identity`: resolved config and input
fingerprints), so a changed default, data file or upstream stage gets a new directory and never reuses a stale
result. The code that computed a finished stage is checked on reuse: with ``code_change="rerun"`` (the default)
a stage computed by other code is computed again (its old directory is kept beside the new one, renamed), with
``code_change="reuse"`` it is reused. ``stage.json`` records the identity, the code version and every decision
(ran, reused, rerun) with its reason.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, open_dict

from rmlab.pipelines.identity import code_version, identity_hash, stage_identity
from rmlab.utils.io import write_json

log = logging.getLogger(__name__)

CODE_CHANGE = ("rerun", "reuse")


@dataclass(frozen=True)
class StageKind:
    entry: str  # conf/<entry>.yaml and scripts/<entry>.py
    function: str  # "module:function" the script calls with the composed config
    done: str  # the file the stage writes last
    groups: tuple[str, ...]  # config groups that take a model spec (model=<dir>, policy=<dir>)
    output_model: str | None  # the model directory it writes, relative to its stage directory

    def fn(self) -> Callable[[DictConfig], object]:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)


STAGES: dict[str, StageKind] = {
    k.entry: k
    for k in (
        StageKind("train_rm", "rmlab.training.train_rm:train_reward_model", "train_metrics.json", ("model",), "model"),
        StageKind("train_dpo", "rmlab.training.train_dpo:train_dpo", "train_metrics.json", ("model",), "model"),
        StageKind("train_ppo", "rmlab.training.train_ppo:train_ppo", "train_metrics.json", ("policy",), "policy"),
        StageKind(
            "train_policy", "rmlab.training.train_policy:train_policy", "train_metrics.json", ("policy",), "policy"
        ),
        StageKind("eval_rm", "rmlab.rm_eval.evaluate:evaluate_rm", "metrics.json", ("model",), None),
        StageKind("eval_policy", "rmlab.policy_eval.evaluate:evaluate_policy", "summary.json", ("policy",), None),
        StageKind("best_of_n", "rmlab.policy_eval.best_of_n:best_of_n", "bon.json", ("policy",), None),
        StageKind(
            "arena_hard",
            "rmlab.policy_eval.judging.arena_hard:evaluate_arena_hard",
            "arena_hard.json",
            ("policy",),
            None,
        ),
    )
}


def stage_kind(entry: str) -> StageKind:
    if entry not in STAGES:
        raise KeyError(f"no stage {entry!r}; stages: {', '.join(STAGES)}")
    return STAGES[entry]


def plan_stage(
    parent: str | Path, name: str, entry: str, overrides: Sequence[str], *, stages_root: str | Path
) -> tuple[Path, dict]:
    """The directory ``<parent>/<name>-<identity hash>`` of a stage, and its identity. ``stages_root`` is the top of
    the pipeline's stage tree: paths under it are other stages' outputs, named in the identity relative to it."""
    identity = stage_identity(entry, list(overrides), groups=stage_kind(entry).groups, stages_root=stages_root)
    return Path(parent) / f"{name}-{identity_hash(identity)}", identity


def with_stage_overrides(pipeline: DictConfig, entry: str, overrides: Sequence[str]) -> list[str]:
    """``overrides`` plus ``pipeline.stage_overrides.<entry>`` (``debug=fast`` sets them): appended last, so they win
    over the experiment's own, and part of the stage's identity like any other override."""
    extra = (pipeline.get("stage_overrides") or {}).get(entry) or []
    return [*overrides, *extra]


class PipelineProgress:
    """One log line per finished stage: ``stage k of n: <name> <decision> in <s> (<elapsed> elapsed)``; ``n`` is
    left out where a pipeline does not know its stage count ahead."""

    def __init__(self, total: int | None = None) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def __call__(self, name: str, out_dir: Path, seconds: float) -> None:
        self.done += 1
        decision = (stage_record(out_dir).get("decisions") or [{}])[-1].get("decision", "?")
        of = f" of {self.total}" if self.total else ""
        elapsed = time.perf_counter() - self.start
        log.info(
            "stage %d%s: %s %s in %.0f s (%d min %02d s elapsed)",
            self.done, of, name, "reused" if decision == "reuse" else decision, seconds, elapsed // 60, elapsed % 60,
        )  # fmt: skip


def stage_record(out_dir: Path) -> dict:
    """What ``run_stage`` recorded for a stage: entry, overrides, identity, code, decisions (empty if none)."""
    path = Path(out_dir) / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _decide(out_dir: Path, done: str, code: dict, code_change: str) -> tuple[str, str]:
    """``(decision, reason)``: ``reuse``, ``resume`` (unfinished, same code), ``run`` (new) or ``rerun``."""
    if code_change not in CODE_CHANGE:
        raise ValueError(f"code_change={code_change!r}; valid values: {', '.join(CODE_CHANGE)}")
    if not out_dir.exists():
        return "run", "new stage"
    before = stage_record(out_dir).get("code")
    finished = (out_dir / done).is_file()
    if before == code:
        return (
            ("reuse", "identical config, inputs and code")
            if finished
            else ("resume", "unfinished; same config, inputs and code")
        )
    what = "code changed" if before else "no record of the code that computed it"
    detail = f"{what} ({_code_diff(before, code)})"
    if code_change == "reuse" and before is not None:
        return ("reuse" if finished else "resume"), f"{detail}; reused: code_change=reuse"
    return "rerun", f"{detail}; rerun: code_change={code_change}"


def _code_diff(before: dict | None, now: dict) -> str:
    if not before:
        return "now " + now["source"]
    diffs = [f"source {before.get('source')} -> {now['source']}"] if before.get("source") != now["source"] else []
    diffs += [f"rmlab {before.get('rmlab')} -> {now['rmlab']}"] if before.get("rmlab") != now["rmlab"] else []
    libs_before = before.get("libraries", {})
    diffs += [f"{k} {libs_before.get(k)} -> {v}" for k, v in now["libraries"].items() if libs_before.get(k) != v]
    return ", ".join(diffs) or "same"


def _set_aside(out_dir: Path) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = out_dir.with_name(f"{out_dir.name}.superseded-{stamp}")
    out_dir.rename(target)
    return target


def _note(out_dir: Path, record: dict, decision: str, reason: str, **extra) -> dict:
    decisions = [
        *record.get("decisions", []),
        {
            "time_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "decision": decision,
            "reason": reason,
            **extra,
        },
    ]
    record = {**record, "decisions": decisions}
    write_json(out_dir / "stage.json", record)
    return record


def launch_command(launch: Sequence[str]) -> list[str]:
    """``launch`` with every ``conf/...`` file it names (``--config_file conf/accelerate/fsdp.yaml``, also as
    ``--opt=conf/...``) made absolute in the configs this rmlab runs with (a checkout's ``conf/``, a wheel's
    ``rmlab/_conf``), so that a stage launches the same from any working directory and from an installed wheel."""
    from rmlab.utils.config import CONF_DIR

    def resolve(arg: str) -> str:
        flag, eq, value = arg.rpartition("=") if arg.startswith("-") and "=" in arg else ("", "", arg)
        parts = Path(value).parts
        if parts[:1] == ("conf",) and len(parts) > 1 and CONF_DIR.joinpath(*parts[1:]).is_file():
            value = str(CONF_DIR.joinpath(*parts[1:]))
        return f"{flag}{eq}{value}"

    return [resolve(str(a)) for a in launch]


def run_stage(
    entry: str,
    overrides: Sequence[str],
    out_dir: Path,
    *,
    identity: dict | None = None,
    runtime: Sequence[str] = (),
    launch: Sequence[str] = (),
    code_change: str = "rerun",
) -> dict:
    """Reuse the stage in ``out_dir`` when its config, inputs and code are those asked for, else compute it:
    compose ``conf/<entry>.yaml`` with ``overrides`` (plus ``runtime`` overrides that do not change the result:
    logger, progress bars, ``resume=auto``), call the stage's function with its outputs in ``out_dir``, and return
    the ``done`` file's content.

    With ``launch`` (e.g. ``["accelerate", "launch", "--config_file", "conf/accelerate/deepspeed_zero3.yaml"]``) the
    stage runs as ``<launch> -m rmlab.cli <entry> <overrides>`` (the ``rmlab`` command) in a child process instead
    (several GPUs). Either way ``stage.json`` records the overrides, identity, code version, wall time and the decision with its reason."""
    from rmlab.utils.config import ROOT, compose_config, rewrite_model_overrides

    kind = stage_kind(entry)
    out_dir = Path(out_dir)
    if identity is None:
        identity = stage_identity(entry, list(overrides), groups=kind.groups, stages_root=out_dir.parent)
    code = code_version()
    decision, reason = _decide(out_dir, kind.done, code, code_change)
    marker = out_dir / kind.done
    if decision == "reuse":
        log.info("stage %s: reusing %s (%s)", entry, out_dir, reason)
        _note(out_dir, stage_record(out_dir), decision, reason)
        return json.loads(marker.read_text())
    extra = {}
    if decision == "rerun":
        extra["previous"] = str(_set_aside(out_dir))
        log.warning("stage %s: %s; the old results are kept in %s", entry, reason, extra["previous"])
    log.info("stage %s -> %s (%s: %s)", entry, out_dir, decision, " ".join(overrides))
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "entry": entry,
        "overrides": list(overrides),
        "launch": list(launch),
        "identity": identity,
        "code": code,
        "decisions": stage_record(out_dir).get("decisions", []),  # a resumed stage keeps its history
    }
    record = _note(out_dir, record, decision, reason, **extra)
    start = time.perf_counter()
    if launch:
        cmd = [*launch_command(launch), "-m", "rmlab.cli", entry, *overrides, *runtime, f"hydra.run.dir={out_dir}"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    else:
        cfg = compose_config(entry, rewrite_model_overrides([*overrides, *runtime], kind.groups))
        with open_dict(cfg):
            cfg.paths.output_dir = str(out_dir)
        kind.fn()(cfg)
    if not marker.is_file():
        raise RuntimeError(f"stage {entry} finished without writing {marker}")
    write_json(out_dir / "stage.json", {**record, "wall_seconds": time.perf_counter() - start})
    return json.loads(marker.read_text())


class StageRunner:
    """A pipeline's way to run one stage: its ``stage_overrides`` appended, its identity planned under ``root``,
    run or reused (:func:`run_stage`), one progress line; with ``record_to`` every decision is also appended to
    ``<record_to>/stages.json`` as the pipeline goes (a long study shows its progress), and with
    ``stage_logger=wandb`` every stage logs to one W&B group, ``<pipeline>-<run directory name>``."""

    def __init__(self, pipeline: DictConfig, root: Path, runtime: Sequence[str], *, record_to: Path | None = None,
                 total: int | None = None) -> None:  # fmt: skip
        self.pipeline, self.root, self.runtime, self.record_to = pipeline, root, list(runtime), record_to
        if str(pipeline.get("stage_logger")) == "wandb" and record_to is not None:
            # one W&B group for every stage of this experiment run (a sweep over sets, reward models, optimizers)
            self.runtime.append(f"logger.group={pipeline.name}-{Path(record_to).name}")
        self.code_change = str(pipeline.get("code_change", "rerun"))
        self.progress, self.decisions = PipelineProgress(total), []

    def __call__(self, entry: str, over: Sequence[str], parent: Path, name: str, extra_runtime: Sequence[str] = ()):
        over = with_stage_overrides(self.pipeline, entry, over)
        out_dir, identity = plan_stage(parent, name, entry, over, stages_root=self.root)
        start = time.perf_counter()
        result = run_stage(entry, over, out_dir, identity=identity, runtime=[*self.runtime, *extra_runtime],
                           code_change=self.code_change)  # fmt: skip
        self.progress(f"{parent.name}/{name}", out_dir, time.perf_counter() - start)
        if self.record_to is not None:
            decision = stage_record(out_dir)["decisions"][-1]
            self.decisions.append({"stage": f"{parent.name}/{name}", "out_dir": str(out_dir), **decision})
            from rmlab.utils.io import write_json

            write_json(Path(self.record_to) / "stages.json", self.decisions)
        return out_dir, result
