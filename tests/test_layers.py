"""Imports point down the layers, and no module imports itself in a circle.

The layers, bottom to top (docs/architecture.md): a package may import only from layers below its own, never
from its own layer's other packages or from above. Every import counts, the ones inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rmlab"

LAYERS = [
    {"rmlab", "utils"},  # the package root (its version) and helpers: io, hashing, config, plots
    {"data", "models"},  # datasets and their validation; model loading, formatting, handles
    {"scoring", "metrics"},  # scorers and the score cache; metric functions
    {"benchmarks", "generation"},  # reward-model benchmarks as plug-ins; text generation and its cache
    {"rm_eval", "policy_eval"},  # evaluating reward models; evaluating policies on downstream tasks
    {"training"},  # RM (Lightning), DPO and PPO (TRL) training
    {"analysis"},  # correlation, tables, comparisons, diagnostics over run outputs
    {"pipelines"},  # stages and experiments made of them
    {"diagnostics"},  # speed benches, the GPU check (which runs stages), the reward-signal diagnostic
    {"cli"},  # the entry points' start-up
]
LEVEL = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "rmlab"


def _imports(path: Path, src: Path = SRC) -> list[tuple[str, int]]:
    """Every ``rmlab`` module imported by ``path`` (relative imports resolved), with its line number."""
    module = ".".join(path.relative_to(src.parent).with_suffix("").parts).removesuffix(".__init__")
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "rmlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x
                base = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] == "rmlab":  # "from pkg import mod" names the module pkg.mod when there is one
                out += [(f"{name}.{a.name}", node.lineno) for a in node.names]
    return out


def _modules(src: Path = SRC) -> dict[str, Path]:
    return {
        ".".join(p.relative_to(src.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in src.rglob("*.py")
    }


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    packages |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert packages <= set(LEVEL), f"add to LAYERS: {sorted(packages - set(LEVEL))}"


def _resolve(name: str, modules: dict) -> str:
    """The module an import names: ``pkg.mod.function`` -> ``pkg.mod``, ``rmlab.__version__`` -> ``rmlab``."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def upward_imports(root: Path = SRC) -> list[str]:
    wrong = []
    modules = _modules(root)
    for module, path in modules.items():
        src = _package(module)
        for name, line in _imports(path, root):
            dst = _package(_resolve(name, modules))
            if dst != src and LEVEL[dst] >= LEVEL[src]:
                wrong.append(
                    f"{path.relative_to(root)}:{line}: {src} (layer {LEVEL[src]}) imports {name} (layer {LEVEL[dst]})"
                )
    return wrong


def import_circles(root: Path = SRC) -> list[list[str]]:
    modules = _modules(root)
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        for name, _ in _imports(path, root):
            target = _resolve(name, modules)
            if target in modules and target != m:
                graph[m].add(target)
    # a package's __init__ importing its own modules is how a package exposes them, not a circle
    for m, targets in graph.items():
        if modules[m].name == "__init__.py":
            targets -= {t for t in targets if t.startswith(m + ".")}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_imports_point_down():
    wrong = upward_imports()
    assert not wrong, "imports that do not point down:\n" + "\n".join(wrong)


def test_no_import_circles_between_modules():
    cycles = import_circles()
    assert not cycles, f"modules importing each other in a circle: {cycles}"


def test_the_checks_see_a_wrong_import_and_a_circle(tmp_path):
    """The checkers on a made-up tree: an upward import inside a function, a same-layer import, and a circle."""
    root = tmp_path / "rmlab"
    for rel, text in {
        "__init__.py": "",
        "metrics/__init__.py": "",
        "scoring/__init__.py": "",
        "pipelines/__init__.py": "",
        "pipelines/stages.py": "",
        "metrics/a.py": "def f():\n    from rmlab.pipelines.stages import run\n",
        "metrics/b.py": "from rmlab.scoring.c import x\n",
        "scoring/c.py": "x = 1\n",
        "pipelines/d.py": "from . import e\n",
        "pipelines/e.py": "from rmlab.pipelines import d\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    wrong = upward_imports(root)
    assert len(wrong) == 2 and wrong[0].startswith(
        "metrics/a.py:2: metrics (layer 2) imports rmlab.pipelines.stages.run"
    )
    assert wrong[1].startswith("metrics/b.py:1: metrics (layer 2) imports rmlab.scoring.c.x (layer 2)")
    assert import_circles(root) == [["rmlab.pipelines.d", "rmlab.pipelines.e"]]


# `train-policy algo=ppo` is `train-ppo`: a dispatch to the other entry point, not a shared helper
DISPATCH = {("rmlab.training.train_policy", "rmlab.training.train_ppo")}


def test_no_trainer_imports_another_trainer():
    """What two trainers share lives in a trainer-neutral module (``training/evaluate.py``, ``ppo_parts``, ...)."""
    modules = _modules()
    trainers = {m for m in modules if m.startswith("rmlab.training.train_")}
    assert len(trainers) >= 4
    wrong = []
    for module in sorted(trainers):
        for name, line in _imports(modules[module]):
            target = _resolve(name, modules)
            if target in trainers and target != module and (module, target) not in DISPATCH:
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == []


def test_analysis_reads_run_outputs_only():
    """``analysis`` turns run outputs into statistics and tables: it neither loads models nor scores."""
    modules = _modules()
    wrong = [
        f"{module}:{line} imports {_resolve(name, modules)}"
        for module, path in sorted(modules.items())
        if _package(module) == "analysis"
        for name, line in _imports(path)
        if _package(_resolve(name, modules)) in ("models", "scoring", "generation", "training")
    ]
    assert wrong == []
