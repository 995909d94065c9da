"""The preference-ablation pipeline end to end on tiny models (two sets, both local benchmarks, the table and its
paired tests against the best), and the paper-scale experiment composed: every Tulu 2.5 split a train_rm config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from rmlab.utils.config import compose_config, rewrite_model_overrides
from tests.conftest import ROOT


def _list(key: str, items: list[str]) -> str:
    return f"{key}=[" + ",".join(f'"{i}"' for i in items) + "]"


def test_pipeline_end_to_end_on_tiny_models(tmp_path, tiny_classifier_dir, data_dir):
    env = {**os.environ, "RMLAB_LOG_DIR": str(tmp_path / "logs"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable, "scripts/run_experiment.py", "experiment=preference_ablation_cpu", "pipeline.stage_logger=none",
        "pipeline.policy_samples=null", "pipeline.n_boot=50",
        "~pipeline.sets.harmless_base", "~pipeline.sets.helpful_online", "~pipeline.sets.helpful_rejection_sampled",
        _list("pipeline.train_rm.overrides", [f"model={tiny_classifier_dir}", "preference.max_pairs=12",
              "preference.heldout_pairs=6", "recipe.max_steps=1", "recipe.pairs_per_update=4",
              "recipe.micro_batch_pairs=4", "recipe.max_pair_tokens=256", "trainer.enable_progress_bar=false",
              "bootstrap.n_boot=20"]),
        "pipeline.rm_eval.benchmarks.rm_bench=['benchmark.max_per_domain=1']",
        "pipeline.rm_eval.benchmarks.reward_bench=['benchmark.max_per_subset=6']",
        _list("pipeline.rm_eval.overrides", ["device=cpu", "bootstrap.n_boot=0", "scoring.progress=false"]),
        f"paths.score_cache_dir={tmp_path / 'scores'}",
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "preference_ablation" / "runs").iterdir()
    out = json.loads((run / "ablation.json").read_text())
    rows = {r["set"]: r for r in out["rows"]}
    assert set(rows) == {"helpful_base", "mixture_helpful_harmless"}
    hb = rows["helpful_base"]
    assert rows["mixture_helpful_harmless"]["components"]["helpful"]["train"] == 6 and hb["drawn_pairs"] == 12
    assert 0 < hb["train_pairs"] <= 12  # trained on: drawn minus those over the 256-token cap, which the table shows
    assert all(set(r["benchmarks"]) == {"rm_bench", "reward_bench"} for r in rows.values())
    assert all(isinstance(r["contaminated_train_pairs"].get("rm_bench"), int) for r in rows.values())
    # one comparison per benchmark (two sets: the best against the other), on the same items
    vs = {c["benchmark"]: c for c in out["versus_best"]}
    assert set(vs) == {"rm_bench", "reward_bench"}
    assert vs["reward_bench"]["n_items"] == 6 and vs["rm_bench"]["n_items"] == 9 * vs["rm_bench"]["n_clusters"]
    assert {vs[b]["best"] for b in vs} | {vs[b]["set"] for b in vs} <= set(rows)
    # each evaluation says which of its items the model's training prompts overlapped (from the model's own record)
    for stage in out["stages"]:
        if stage["stage"].endswith("eval_rm_rm_bench"):
            name = stage["stage"].split("/")[0]
            overlap = json.loads((Path(stage["out_dir"]) / "metrics.json").read_text())["training_overlap"]
            assert overlap["checked"] and overlap["train_pairs"] == rows[name]["contaminated_train_pairs"]["rm_bench"]
            assert all(i.startswith(("chat/", "code/", "safety")) for i in overlap["items"])
    text = (run / "ablation.md").read_text()
    used = f"{hb['train_pairs']}" + ("" if hb["train_pairs"] == 12 else " of 12")
    assert f"| helpful_base | {used} | {hb['heldout_pairs']} |" in text and "Holm" in text


def test_the_paper_scale_ablation_composes():
    cfg = compose_config("run_experiment", ["experiment=preference_ablation_tulu25", f"paths.root_dir={ROOT}"])
    for name, over in cfg.pipeline.sets.items():
        args = rewrite_model_overrides([*over, *cfg.pipeline.train_rm.overrides, f"paths.root_dir={ROOT}"])
        rm = compose_config("train_rm", args)  # as the stage runner composes it
        assert rm.preference.name == "tulu25" and rm.preference.hub_split == name
        assert rm.preference.hub_id == "allenai/tulu-2.5-preference-data" and rm.preference.converter == "messages_pair"
        assert rm.model.pretrained == "allenai/tulu-2-13b" and rm.recipe.lr == 1e-5  # the Tulu 2.5 RM recipe


def test_with_wandb_every_stage_of_a_run_logs_to_one_group(tmp_path):
    from rmlab.pipelines.stages import StageRunner

    cfg = compose_config(
        "run_experiment",
        ["experiment=preference_ablation_cpu", f"paths.root_dir={ROOT}", "pipeline.stage_logger=wandb"],
    )
    out = tmp_path / "runs" / "2026-12-06_23-00-00"
    runner = StageRunner(cfg.pipeline, tmp_path / "stages", ["logger=wandb"], record_to=out)
    assert runner.runtime[-1] == "logger.group=preference_ablation-2026-12-06_23-00-00"
    over = [
        *cfg.pipeline.sets.helpful_base,
        *cfg.pipeline.train_rm.overrides,
        *runner.runtime,
        f"paths.root_dir={ROOT}",
    ]
    rm = compose_config("train_rm", rewrite_model_overrides(over))  # the group overrides the per-run default
    assert rm.logger.type == "wandb" and rm.logger.group == "preference_ablation-2026-12-06_23-00-00"
    # other loggers have no group: the runtime is left as given
    csv = OmegaConf.merge(cfg.pipeline, {"stage_logger": "csv"})
    assert StageRunner(csv, tmp_path, ["logger=csv"], record_to=out).runtime == ["logger=csv"]
