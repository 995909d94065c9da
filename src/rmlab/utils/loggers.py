"""Experiment loggers chosen by the config's ``logger`` group: W&B, CSV, or none.

W&B runs offline unless an API key is configured (``WANDB_API_KEY`` or a netrc login), so a run never waits on
the network; ``wandb sync <dir>`` uploads an offline run later.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class RunLogger:
    """No-op base: ``logger: none``."""

    def log_metrics(self, metrics: dict[str, float]) -> None: ...

    def log_images(self, images: dict[str, Path]) -> None: ...

    def log_table(self, name: str, columns: list[str], rows: list[list]) -> None: ...

    def finish(self) -> None: ...


class CSVLogger(RunLogger):
    """Appends ``name,value`` rows to ``<output_dir>/metrics.csv``."""

    def __init__(self, output_dir: str | Path, filename: str = "metrics.csv"):
        self.path = Path(output_dir) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["name", "value"])
            for k, v in metrics.items():
                w.writerow([k, v])


def _wandb_has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbLogger(RunLogger):
    def __init__(
        self,
        *,
        project: str,
        output_dir: str | Path,
        config: dict,
        mode: str = "auto",
        entity: str | None = None,
        group: str | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
        job_type: str | None = None,
    ):
        import wandb

        if mode == "auto":
            mode = "online" if _wandb_has_key() else "offline"
        log.info("W&B mode: %s", mode)
        self._wandb = wandb
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            name=name,
            tags=tags,
            job_type=job_type,
            config=config,
            dir=str(output_dir),
            mode=mode,
            reinit="finish_previous",
        )

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.run.log(metrics)
        self.run.summary.update(metrics)

    def log_images(self, images: dict[str, Path]) -> None:
        self.run.log({k: self._wandb.Image(str(p)) for k, p in images.items()})

    def log_table(self, name: str, columns: list[str], rows: list[list]) -> None:
        self.run.log({name: self._wandb.Table(columns=columns, data=rows)})

    def finish(self) -> None:
        self.run.finish()


def build_logger(cfg, *, output_dir: str | Path, config: dict, name: str | None = None) -> RunLogger:
    """Instantiate the logger named by ``cfg.logger.type``."""
    kind = cfg.logger.get("type", "none") if cfg.get("logger") else "none"
    if kind == "wandb":
        lc = cfg.logger
        return WandbLogger(
            project=lc.project,
            entity=lc.get("entity"),
            mode=lc.get("mode", "auto"),
            group=lc.get("group"),
            tags=list(lc.get("tags") or []),
            job_type=lc.get("job_type"),
            name=name,
            output_dir=output_dir,
            config=config,
        )
    if kind == "csv":
        return CSVLogger(output_dir)
    if kind == "none":
        return RunLogger()
    raise ValueError(f"unknown logger type {kind!r}; use wandb, csv or none")


def hf_report_to(cfg, *, output_dir: str | Path, config: dict, start: bool = True) -> tuple[list[str] | str, RunLogger]:
    """``report_to`` for Hugging Face / TRL trainers, and this run's logger. With W&B, the run is started here
    (resolved Hydra config, group, name), and the HF integration logs its curves into it; otherwise the trainers
    report nothing and their curves go to the run directory (``log_history.jsonl``).

    ``start=False`` (every rank but 0 of a multi-process run): the same ``report_to`` (the HF integration logs
    from the main process only) and a logger that does nothing, so that one run is started, not one per rank."""
    kind = cfg.logger.get("type", "none") if cfg.get("logger") else "none"
    if not start:
        return (["wandb"] if kind == "wandb" else "none"), RunLogger()
    logger = build_logger(cfg, output_dir=output_dir, config=config, name=cfg.get("run_name"))
    return (["wandb"] if isinstance(logger, WandbLogger) else "none"), logger
