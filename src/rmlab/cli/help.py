"""``rmlab --help`` and ``rmlab <command> --help``: only what a command uses, its own config groups and the
experiments that declare it, instead of Hydra's list of every group in ``conf/``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from rmlab.cli.entries import ENTRIES, Entry
from rmlab.cli.experiments import experiments_for, summary

WIDTH = 100


def overview() -> str:
    """``rmlab --help``: every command with its one line."""
    width = max(len(c) for c in ENTRIES)
    lines = [
        "rmlab: a lab for reward-model research (RM-Bench, RewardBench, RewardMATH; RM, DPO and PPO training).",
        "",
        "usage: rmlab <command> [group=option ...] [key=value ...]",
        "       rmlab <command> --help     the command's config groups and experiments",
        "",
        "commands:",
        *(f"  {c:<{width}}  {e.summary}" for c, e in ENTRIES.items()),
        "",
        "Every command is a Hydra app: -m runs a sweep, --cfg job prints the composed config, debug=fast checks the",
        "plumbing in seconds to minutes. scripts/<name>.py in a checkout are aliases of these commands.",
    ]
    return "\n".join(lines)


def _choices(entry: Entry, argv: list[str]) -> dict[str, str | None]:
    """The config-group choices of the command's root config, as Hydra composes it (Hydra's own groups left out,
    except the launcher)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rmlab.utils.config import CONF_DIR

    searchpath = [a for a in argv if a.partition("=")[0].lstrip("+~") == "hydra.searchpath"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=entry.config, overrides=searchpath, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    GlobalHydra.instance().clear()
    keep = {k: v for k, v in choices.items() if not k.startswith(("hydra", "debug/")) and k != "local"}
    keep["hydra/launcher"] = choices.get("hydra/launcher")
    return keep


def _defaults_order(entry: Entry) -> dict[str, int]:
    """Each group's position in the root config's defaults list (the order the help lists them in)."""
    from omegaconf import OmegaConf

    from rmlab.utils.config import CONF_DIR

    keys = [k for item in OmegaConf.load(CONF_DIR / f"{entry.config}.yaml").defaults if not isinstance(item, str)
            for k in item]  # fmt: skip
    return {k.split()[-1]: i for i, k in enumerate(keys)}


def _options(group: str, dirs: list[Path]) -> list[str]:
    return sorted({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


def _examples(entry: Entry) -> list[str]:
    """The command lines in the root config's header comment, written as ``rmlab`` commands."""
    from rmlab.utils.config import CONF_DIR

    out = []
    for line in (CONF_DIR / f"{entry.config}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        m = re.search(r"python scripts/(\w+)\.py(.*)", line)
        if m and m.group(1) in (entry.config, entry.script):
            out.append(f"rmlab {entry.command}{m.group(2)}".rstrip())
    return out or [f"rmlab {entry.command} {entry.usage}"]


def entry_help(entry: Entry, argv: list[str], dirs: list[Path]) -> str:
    """``rmlab <command> --help``."""
    from omegaconf import OmegaConf

    from rmlab.utils.config import CONF_DIR

    lines = [
        f"rmlab {entry.command}: {entry.summary}",
        "",
        f"usage: rmlab {entry.command} [group=option ...] [key=value ...]",
        f"       rmlab {entry.command} -m key=a,b ...    a sweep: one run per value",
        f"       rmlab {entry.command} --cfg job         print the composed config and stop",
        "",
        "examples:",
        *(f"  {e}" for e in _examples(entry)),
        "",
        "config groups (* = default):",
    ]
    choices = _choices(entry, argv)
    order = _defaults_order(entry)
    rows = []
    for key, choice in sorted(choices.items(), key=lambda kv: order.get(kv[0], len(order))):
        group, _, at = key.partition("@")
        options = _options(group, dirs)
        if not options and group != "experiment":
            continue
        if group == "experiment":
            continue  # listed below
        shown = ", ".join(f"{o}*" if o == choice else o for o in options)
        if group == "debug":
            shown += "  (fast: a few examples, a few steps, tiny generation lengths)"
        if group == "model":
            shown += "  (or a Hub id, a local directory, wheel:<name>)"
        if group == "hydra/launcher":
            shown = "basic*, " + shown + "  (slurm: pip install rmlab[cluster])"
        rows.append((at or group, shown))
    width = max(len(k) for k, _ in rows) if rows else 0
    for key, shown in rows:
        wrapped = textwrap.wrap(shown, WIDTH - width - 4) or [""]
        lines.append(f"  {key:<{width}}  {wrapped[0]}")
        lines += [f"  {'':<{width}}  {w}" for w in wrapped[1:]]
    experiments = experiments_for(entry, dirs)
    lines += ["", f"experiments (experiment=<name>; experiments/*.yaml declaring entry: {entry.config}):"]
    if experiments:
        width = max(len(n) for n in experiments)
        for name, path in experiments.items():
            text = textwrap.shorten(summary(path), WIDTH - width - 4, placeholder=" ...")
            lines.append(f"  {name:<{width}}  {text}")
    else:
        lines.append("  (none)")
    keys = [k for k in OmegaConf.load(CONF_DIR / f"{entry.config}.yaml") if k != "defaults"]
    lines += [
        "",
        "top-level keys (override any key, key.sub=value):",
        *textwrap.wrap(" ".join(keys), WIDTH, initial_indent="  ", subsequent_indent="  "),
        "",
        "Your own configs: hydra.searchpath=[file:///path/to/conf] (its <group>/<name>.yaml files join the groups).",
        f"Hydra's own flags: rmlab {entry.command} --hydra-help",
    ]
    return "\n".join(lines)
