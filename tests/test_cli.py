"""The ``rmlab`` command: one subcommand per entry point, help that lists only a command's own groups and
experiments, an experiment given to the wrong command stops and names the right one, scripts are aliases, and
a user's own config directory joins the search path."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from rmlab.cli import ENTRIES, main, run_entry
from rmlab.cli.experiments import declared_entries, experiment_files
from rmlab.utils.config import CONF_DIR, rewrite_model_overrides
from tests.conftest import ROOT


def _help(capsys, *argv: str) -> str:
    main(list(argv))
    return capsys.readouterr().out


def test_overview_lists_every_command(capsys):
    out = _help(capsys, "--help")
    assert all(f"  {command} " in out for command in ENTRIES)
    assert _help(capsys) == out  # no arguments: the same overview


@pytest.mark.parametrize("command", sorted(ENTRIES))
def test_each_command_lists_its_own_groups_and_experiments(capsys, command):
    entry = ENTRIES[command]
    out = _help(capsys, command, "--help")
    assert out.startswith(f"rmlab {command}: {entry.summary}")
    groups = out.split("config groups")[1].split("experiments (")[0]
    defaults = (CONF_DIR / f"{entry.config}.yaml").read_text().split("\n\n")[0]
    for group in ("preference", "trainer", "task", "sandbox", "benchmark", "recipe"):  # only the ones it composes
        assert (f"\n  {group} " in groups) == (f"- {group}:" in defaults or f"- override /{group}:" in defaults), group
    listed = [ln.split()[0] for ln in out.split("experiments (")[1].split("\n\n")[0].splitlines()[1:] if ln.strip()]
    files = experiment_files([CONF_DIR])
    assert listed == ["(none)"] or all(entry.config in declared_entries(files[n]) for n in listed)
    expected = sorted(n for n, p in files.items() if entry.config in declared_entries(p))
    assert (listed if listed != ["(none)"] else []) == expected


def test_eval_rm_help_is_short(capsys):
    """Before: Hydra's help listed all 13 groups of conf/ (preference, trainer, task, ...) and every experiment."""
    out = _help(capsys, "eval-rm", "--help")
    assert "quickstart" in out and "rm_hh_helpful_smollm2" not in out and "trainer" not in out
    assert "smollm2_135m_instruct*" in out and "debug" in out


def test_an_experiment_of_another_command_names_the_right_one():
    with pytest.raises(SystemExit) as err:
        run_entry(ENTRIES["eval-rm"], ["experiment=rm_hh_helpful_smollm2"])
    message = str(err.value)
    assert "experiment=rm_hh_helpful_smollm2 is an experiment of train_rm, not of eval_rm" in message
    assert "rmlab train-rm experiment=rm_hh_helpful_smollm2" in message


def test_the_script_alias_fails_the_same_way_before_loading_anything():
    res = subprocess.run(
        [sys.executable, "scripts/train_dpo.py", "experiment=quickstart"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 1 and "Run it with: rmlab eval-rm experiment=quickstart" in res.stderr


def test_an_experiment_for_two_commands_runs_with_either():
    from rmlab.cli.experiments import check_experiments

    for command in ("train-ppo", "reward-signal"):
        check_experiments(ENTRIES[command], ["experiment=ppo_hh_smollm2"], [CONF_DIR])
    with pytest.raises(SystemExit, match="rmlab train-ppo experiment=ppo_hh_smollm2 or rmlab reward-signal"):
        check_experiments(ENTRIES["eval-rm"], ["experiment=ppo_hh_smollm2"], [CONF_DIR])


def test_every_repository_experiment_declares_a_known_entry():
    configs = {e.config for e in ENTRIES.values()}
    for name, path in experiment_files([CONF_DIR]).items():
        declared = declared_entries(path)
        assert declared and set(declared) <= configs, f"{name}: entry {declared}"


def test_unknown_command_suggests_the_closest():
    with pytest.raises(SystemExit, match="Did you mean eval-rm"):
        main(["eval_rmm"])


def test_scripts_are_aliases_of_the_commands():
    scripts = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    assert scripts == {e.script or e.config for e in ENTRIES.values()}
    for e in ENTRIES.values():
        assert (CONF_DIR / f"{e.config}.yaml").is_file()
        text = (ROOT / "scripts" / f"{e.script or e.config}.py").read_text()
        assert f'alias("{e.config}")' in text and f"rmlab {e.command}" in text


def test_the_package_installs_the_command_and_ships_the_configs():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; the project supports 3.10)
    assert '[project.scripts]\nrmlab = "rmlab.cli:main"' in text
    assert "[tool.hatch.build.targets.wheel.force-include]" in text and '"conf" = "rmlab/_conf"' in text


def test_a_users_config_directory_joins_the_search_path(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "model" / "my_rm.yaml").write_text("defaults:\n  - smollm2_135m_rm\n  - _self_\nname: my-own-rm\n")
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\n# my own experiment\nseed: 7\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    assert rewrite_model_overrides([search, "model=my_rm"]) == [search, "model=my_rm"]  # a config, not a spec
    assert "mine" in _help(capsys, "eval-rm", search, "--help")
    GlobalHydra.instance().clear()
    run_entry(ENTRIES["eval-rm"], [search, "model=my_rm", "experiment=mine", "--cfg", "job"])
    out = capsys.readouterr().out
    assert "name: my-own-rm" in out and "seed: 7" in out


def test_hydra_flags_anywhere_the_user_puts_them():
    """Flags anywhere among the overrides (`rmlab x a=1 -m b=1,2`, `... --cfg job`, `--info`): Hydra's parser gets
    the flags first and the overrides together, the job name the command adds among them."""
    from rmlab.cli import _with_job_name

    assert _with_job_name(["-m", "a=1,2"], "train_rm") == ["-m", "a=1,2", "hydra.job.name=train_rm"]
    assert _with_job_name(["a=1", "--cfg", "job", "b=2"], "x") == ["--cfg", "job", "a=1", "b=2", "hydra.job.name=x"]
    assert _with_job_name(["--info"], "x") == ["--info", "hydra.job.name=x"]
    assert _with_job_name(["--info", "defaults", "a=1"], "x") == ["--info", "defaults", "a=1", "hydra.job.name=x"]
    assert _with_job_name(["hydra.job.name=mine", "-m"], "x") == ["-m", "hydra.job.name=mine"]


def test_every_stage_is_a_command_and_every_command_imports():
    from rmlab.cli.entries import ENTRIES
    from rmlab.pipelines.stages import STAGES

    by_config = {e.config: e for e in ENTRIES.values()}
    for name, kind in STAGES.items():  # a pipeline stage can be run on its own, as the same function
        assert name in by_config, f"stage {name} has no rmlab command"
        assert (by_config[name].function, by_config[name].groups) == (kind.function, kind.groups)
    for command, entry in ENTRIES.items():
        assert callable(entry.fn()), command
