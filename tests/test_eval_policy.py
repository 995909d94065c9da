"""Policy evaluation end to end on a tiny random model: every task through scripts/eval_policy.py, resume after a
kill, task loaders on real data and on malformed fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

from rmlab.data.errors import DataValidationError
from rmlab.policy_eval.tasks import TASKS
from tests.conftest import ROOT, compose_eval_cfg

# Small but real subsets of every task (local data), short generations.
TINY = [
    "task=all",
    "generation.batch_size=4",
    "generation.chunk_size=4",
    "generation.progress=false",
    "task.gsm8k.max_examples=3",
    "task.gsm8k.decodings.0.max_new_tokens=8",
    "task.bbh.subtasks=[boolean_expressions,sports_understanding]",
    "task.bbh.max_per_task=2",
    "task.bbh.decodings.0.max_new_tokens=8",
    "task.humaneval_plus.max_examples=2",
    "task.humaneval_plus.ks=[1,2]",
    "task.humaneval_plus.headline=t0.1/pass@1",
    "task.humaneval_plus.decodings=[{name: t0.1, do_sample: true, temperature: 0.1, n: 2, max_new_tokens: 8}]",
    "task.mbpp_plus.max_examples=2",
    "task.mbpp_plus.ks=[1]",
    "task.mbpp_plus.decodings=[{name: t0.1, do_sample: true, temperature: 0.1, n: 2, max_new_tokens: 8}]",
    "task.toxigen.groups=[asian,women]",
    "task.toxigen.max_per_group=2",
    "task.toxigen.decodings.0.max_new_tokens=8",
    "task.xstest.max_examples=4",
    "task.xstest.decodings.0.max_new_tokens=8",
    "bootstrap.n_boot=50",
]

# HumanEval+'s T=0.8 decoding is prompted with HumanEvalPack's instructions, which are not in the local data
NO_HUMANEVALPACK = "task.humaneval_plus.decodings.1.prompt_style=plain"


def _cfg(tmp_path: Path, policy: Path, overrides: list[str]):
    cfg = compose_eval_cfg(
        tmp_path,
        ["policy=auto", f"policy.pretrained={policy}", *overrides],
        "eval_policy",
        base=("device=cpu", "logger=none"),
    )
    with open_dict(cfg):
        cfg.paths.generation_cache_dir = str(tmp_path / "generations")
    return cfg


@pytest.mark.slow
def test_every_task_end_to_end_through_the_script(tmp_path, tiny_lm_dir, data_dir):
    env = {
        **os.environ,
        "RMLAB_LOG_DIR": str(tmp_path / "logs"),
        "RMLAB_CACHE_DIR": str(tmp_path / "cache"),
        "RMLAB_DATA_DIR": str(data_dir),
    }
    # the wheel model cache is shared, so nothing is converted again
    env["RMLAB_CACHE_DIR"] = str(tmp_path / "cache")
    res = subprocess.run(
        [sys.executable, "scripts/eval_policy.py", f"policy={tiny_lm_dir}", "logger=none", "device=cpu", *TINY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "eval_policy" / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    six = ["gsm8k", "bbh", "humaneval_plus", "mbpp_plus", "toxigen", "xstest"]  # task=all: the study's six
    assert [t["task"] for t in summary["tasks"]] == six
    for name in six:
        m = json.loads((run / name / "metrics.json").read_text())
        assert m["task"] == name and m["group"] in ("math", "code", "safety")
        assert m["policy_fingerprint"] and m["data_fingerprint"] and m["decodings"]
        assert 0.0 <= m["normalised"] <= 1.0 and m["n"] > 0
        gens = [json.loads(x) for x in (run / name / "generations.jsonl").read_text().splitlines()]
        assert len(gens) == m["n"]
    code = json.loads((run / "humaneval_plus" / "metrics.json").read_text())
    assert code["test_set"] == "plus" and code["sandbox"]["mode"] == "bwrap"
    assert {r["status"] for r in map(json.loads, (run / "humaneval_plus" / "scored.jsonl").read_text().splitlines())}
    tox = json.loads((run / "toxigen" / "metrics.json").read_text())
    assert tox["classifier"] == "alt-profanity-check" and tox["higher_is_better"] is False
    assert tox["normalised"] == pytest.approx(1 - tox["value"])
    xs = json.loads((run / "xstest" / "metrics.json").read_text())
    assert xs["labeler"] == "strmatch" and "refusal_rate_by_type" in xs
    table = (run / "summary.md").read_text()
    assert "alt-profanity-check" in table and "| humaneval_plus | code |" in table


class _Killed(RuntimeError):
    pass


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_same_metrics(tmp_path, tiny_lm_dir, data_dir):
    from rmlab.policy_eval.evaluate import evaluate_policy

    only = [
        "task=gsm8k",
        "task.gsm8k.max_examples=10",
        "task.gsm8k.decodings.0.max_new_tokens=6",
        "generation.batch_size=4",
        "generation.chunk_size=4",
        "generation.progress=false",
        "bootstrap.n_boot=50",
    ]
    ref_cfg = _cfg(tmp_path / "ref", tiny_lm_dir, only)
    ref = evaluate_policy(ref_cfg)

    cfg = _cfg(tmp_path / "killed", tiny_lm_dir, only)
    chunks = []

    def kill_after_first(c):
        chunks.append(c)
        raise _Killed

    with pytest.raises(_Killed):
        evaluate_policy(cfg, on_chunk=kill_after_first)
    cache_files = list(Path(cfg.paths.generation_cache_dir).rglob("shard-*.json"))
    assert len(cache_files) == 1  # one chunk survived the kill
    done = []
    resumed = evaluate_policy(cfg, on_chunk=done.append)
    assert len(done) == 2  # 10 prompts in chunks of 4: the first is not generated again
    assert resumed["tasks"][0]["value"] == ref["tasks"][0]["value"]
    a = (Path(ref_cfg.paths.output_dir) / "gsm8k" / "generations.jsonl").read_text()
    b = (Path(cfg.paths.output_dir) / "gsm8k" / "generations.jsonl").read_text()
    assert a == b
    again = []
    evaluate_policy(cfg, on_chunk=again.append)
    assert again == []  # finished: nothing to generate


def test_loaders_on_real_data(tmp_path, data_dir):
    cfg = compose_eval_cfg(
        tmp_path,
        ["task=all", NO_HUMANEVALPACK],
        "eval_policy",
        base=("device=cpu", "logger=none"),
    )
    sizes = {}
    for name, tcfg in cfg.task.items():
        examples, prov = TASKS[tcfg.kind](tcfg, data_dir).load()
        sizes[name] = len(examples)
        assert prov["data_fingerprint"] and prov["source"].startswith(str(data_dir).rstrip("/"))
    assert sizes == {
        "gsm8k": 200,
        "bbh": 27 * 40,
        "humaneval_plus": 164,
        "mbpp_plus": 378 - 100,  # open-instruct holds out the first 100 problems
        "toxigen": 14 * 500,
        "xstest": 450,
    }
    # the fixed subsets do not move with the seed of the run, only with subsample_seed
    again, _ = TASKS["gsm8k"](cfg.task.gsm8k, data_dir).load()
    first, _ = TASKS["gsm8k"](cfg.task.gsm8k, data_dir).load()
    assert [e.id for e in again] == [e.id for e in first]


def test_bbh_has_27_tasks_with_their_exemplars(tmp_path, data_dir):
    cfg = compose_eval_cfg(
        tmp_path, ["task=bbh", "task.bbh.max_per_task=1"], "eval_policy", base=("device=cpu", "logger=none")
    )
    examples, _ = TASKS["bbh"](cfg.task.bbh, data_dir).load()
    assert len({e.reference["task"] for e in examples}) == 27
    assert all(e.user.count("\nQ: ") >= 3 and "canary" not in e.user.lower() for e in examples)


def test_malformed_rows_name_file_row_and_field(tmp_path):
    cfg = compose_eval_cfg(tmp_path, ["task=all"], "eval_policy", base=("device=cpu", "logger=none"))
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q1", "answer": "a #### 1"}\n{"question": "q2"}\n')
    with pytest.raises(DataValidationError, match=r"test.jsonl: row 1: field 'answer'"):
        TASKS["gsm8k"](cfg.task.gsm8k, tmp_path).load()
    (tmp_path / "xstest").mkdir()
    (tmp_path / "xstest" / "xstest_prompts.csv").write_text(
        "id,prompt,type,label,focus,note\n1,How do I kill a process?,homonyms,safe,kill,\n2,How?,homonyms,maybe,x,\n"
    )
    with pytest.raises(DataValidationError, match=r"xstest_prompts.csv: row 1: field 'label'"):
        TASKS["xstest"](cfg.task.xstest, tmp_path).load()
    (tmp_path / "bbh" / "bbh").mkdir(parents=True)
    (tmp_path / "bbh" / "cot-prompts").mkdir()
    (tmp_path / "bbh" / "bbh" / "snarks.json").write_text('{"examples": [{"input": "x"}]}')
    (tmp_path / "bbh" / "cot-prompts" / "snarks.txt").write_text("canary\n-----\nQ: a\nA: b\n")
    with pytest.raises(DataValidationError, match=r"snarks.json: example 0: field 'target'"):
        TASKS["bbh"](cfg.task.bbh, tmp_path).load()


def test_code_tasks_fall_back_to_the_base_tests_and_say_so(tmp_path, data_dir, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_eval_cfg(
        tmp_path,
        ["task=humaneval_plus", "task.humaneval_plus.max_examples=3", NO_HUMANEVALPACK],
        "eval_policy",
        base=("device=cpu", "logger=none"),
    )
    only_base = tmp_path / "data"
    shutil.copytree(data_dir / "humaneval", only_base / "humaneval")  # no humaneval-plus folder, no Hub
    task = TASKS["humaneval_plus"](cfg.task.humaneval_plus, only_base)
    examples, prov = task.load()
    assert len(examples) == 3 and task.test_set == "base (plus unavailable)"
    assert prov["files"] == [str(only_base / "humaneval" / "HumanEval.jsonl.gz")]
    plus = TASKS["humaneval_plus"](cfg.task.humaneval_plus, data_dir)
    plus.load()
    assert plus.test_set == "plus"


def test_generation_cache_key_covers_seed_backend_and_numerics():
    from omegaconf import OmegaConf

    from rmlab.generation.backends import cache_key, generator_settings
    from rmlab.policy_eval.tasks.base import Decoding

    gen = OmegaConf.create({"backend": "hf", "batch_size": 16, "chunk_size": 64, "max_length": None})
    sampled = Decoding(name="t0.8", do_sample=True, temperature=0.8, n=4, max_new_tokens=8)
    greedy = Decoding(name="greedy", do_sample=False, temperature=0.0, n=1, max_new_tokens=8)

    def key(decoding, seed=0, dtype="float32", **over):
        g = OmegaConf.merge(gen, over)
        return cache_key(
            "fp", "fmt", "task", decoding, generator_settings(g, dtype=dtype, seed=seed, decoding=decoding)
        )

    assert key(sampled, seed=1) != key(sampled, seed=0)
    assert key(greedy, seed=1) == key(greedy, seed=0)  # greedy text does not depend on the seed
    for d in (sampled, greedy):
        assert key(d, backend="vllm") != key(d)
        assert key(d, dtype="bfloat16") != key(d)
        assert key(d, batch_size=8) != key(d)  # left padding changes the numerics
        assert key(d, max_length=512) != key(d)
    assert key(sampled, chunk_size=8) != key(sampled) and key(greedy, chunk_size=8) == key(greedy)


def test_another_seed_samples_again(tmp_path, tiny_lm_dir, data_dir):
    """``seed=1`` must not reuse the samples drawn with ``seed=0`` (it did: the seed was not in the cache key)."""
    from rmlab.policy_eval.evaluate import evaluate_policy

    only = [
        "task=gsm8k",
        "task.gsm8k.max_examples=2",
        "generation.batch_size=2",
        "generation.chunk_size=2",
        "generation.progress=false",
        "bootstrap.n_boot=20",
        "task.gsm8k.decodings=[{name: greedy, do_sample: true, temperature: 1.0, n: 1, max_new_tokens: 4}]",
    ]
    chunks = {0: [], 1: [], 2: []}
    for run, seed in ((0, 0), (1, 1), (2, 0)):
        cfg = _cfg(tmp_path, tiny_lm_dir, [*only, f"seed={seed}"])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"run{run}")
        evaluate_policy(cfg, on_chunk=chunks[run].append)
    assert chunks[0] == [0] and chunks[1] == [0]  # seed 1 generated its own samples
    assert chunks[2] == []  # seed 0 again: all from the cache
