"""Which entry point an experiment belongs to: each ``experiments/<name>.yaml`` declares it (``entry: train_rm``,
or a list when the file configures several), and a run with another entry point stops before Hydra composes,
naming the command that runs it."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from rmlab.cli.entries import Entry, by_config


def experiment_files(dirs: list[Path]) -> dict[str, Path]:
    """Every ``<dir>/experiment/<name>.yaml`` in the config directories; an earlier directory wins a name."""
    found: dict[str, Path] = {}
    for d in dirs:
        for path in sorted((d / "experiment").glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def declared_entries(path: Path) -> list[str]:
    """The entry points an experiment file declares with its ``entry`` key (empty when it declares none)."""
    entry = OmegaConf.load(path).get("entry")
    if entry is None:
        return []
    return [str(e) for e in entry] if OmegaConf.is_list(entry) else [str(entry)]


def summary(path: Path) -> str:
    """The first line of an experiment file's header comment."""
    for line in path.read_text().splitlines():
        text = line.lstrip("#").strip()
        if line.startswith("#") and text and not text.startswith("@package"):
            return text
    return ""


def requested(argv: list[str]) -> list[str]:
    """The experiment names of ``experiment=a`` (or a sweep ``experiment=a,b``) in ``argv``; a ``glob(...)`` sweep
    is Hydra's to expand and is not checked."""
    names: list[str] = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "experiment" and value and not value.startswith(("glob(", "null")):
            names += [v.strip() for v in value.split(",") if v.strip()]
    return names


def check_experiments(entry: Entry, argv: list[str], dirs: list[Path]) -> None:
    """Stop, naming the right command, when ``argv`` asks for an experiment that declares another entry point."""
    files = experiment_files(dirs)
    for name in requested(argv):
        if name not in files:
            continue  # Hydra reports an unknown experiment with the list of those it knows
        declared = declared_entries(files[name])
        if declared and entry.config not in declared:
            commands = " or ".join(f"rmlab {by_config(e).command} experiment={name}" for e in declared)
            raise SystemExit(
                f"experiment={name} is an experiment of {', '.join(declared)}, not of {entry.config} "
                f"({files[name]} declares `entry: {declared[0] if len(declared) == 1 else declared}`). "
                f"Run it with: {commands}"
            )


def experiments_for(entry: Entry, dirs: list[Path]) -> dict[str, Path]:
    """The experiments that declare ``entry`` (or declare none: a user's own file)."""
    files = experiment_files(dirs)
    return {n: p for n, p in files.items() if entry.config in declared_entries(p) or not declared_entries(p)}
