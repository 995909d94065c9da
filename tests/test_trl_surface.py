"""Every TRL name the lab imports, imported here: a TRL upgrade that moves or removes one fails at this one place
(TRL moved PPO to ``trl.experimental.ppo`` in 1.10 and removed it in 1.13; pyproject.toml pins ``trl<1.13``)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rmlab"


def trl_imports() -> list[tuple[str, str, str]]:
    """``(module, name, where)`` of every ``from trl... import name`` in the library (imports inside functions too)."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trl":
                out += [(node.module, a.name, f"{path.relative_to(SRC)}:{node.lineno}") for a in node.names]
            elif isinstance(node, ast.Import):
                out += [(a.name, "", f"{path.relative_to(SRC)}:{node.lineno}") for a in node.names if a.name == "trl"]
    return out


def test_the_lab_uses_trl_for_what_the_docs_say():
    names = {name for _, name, _ in trl_imports()}
    # DPO and the reward-model trainer baseline (stable API), PPO (experimental in 1.10-1.12), GRPO and RLOO
    assert {"DPOConfig", "DPOTrainer", "PPOConfig", "PPOTrainer", "GRPOConfig", "GRPOTrainer", "RLOOConfig",
            "RLOOTrainer"} <= names  # fmt: skip


@pytest.mark.parametrize("module, name, where", trl_imports(), ids=lambda x: x if isinstance(x, str) else None)
def test_every_trl_name_the_lab_imports_exists(module, name, where):
    mod = importlib.import_module(module)
    assert not name or hasattr(mod, name), f"{where}: {module}.{name} is gone in this TRL"
