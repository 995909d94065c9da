"""Best-of-n metrics against brute force on small hand-made inputs."""

import itertools
import math

import numpy as np
import pytest

from rmlab.metrics.best_of_n import bon_curve, bon_expected, bon_first_n, bon_kl, pairwise_accuracy
from tests.helpers.tolerances import worst_case

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)


def _brute_force(proxy, gold, n) -> float:
    """Every n-subset, equally likely; within a subset, a tie for the highest proxy broken uniformly."""
    values = []
    for subset in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[i] for i in subset)
        winners = [gold[i] for i in subset if proxy[i] == top]
        values.append(sum(winners) / len(winners))
    return sum(values) / len(values)


def _enumeration_tol(big_n: int, n: int, gold) -> float:
    """Brute force: a C(N, n)-term sum of tie means (<= N roundings each) and a division; the estimator: N group
    means, weights, products and their sum (<= 4N roundings). Both sides together: at most C(N, n) + 5N + 2
    roundings of values no larger than max |gold| (Higham Lemma 3.1)."""
    return worst_case(math.comb(big_n, n) + 5 * big_n + 2, max(abs(g) for g in gold))


CASES = [
    ([0.1, 0.9, 0.5, 0.3], [0, 1, 0, 1]),
    ([3.0, 1.0, 2.0, 2.0, 0.5, 2.0], [1, 0, 1, 0, 1, 1]),  # a three-way tie
    ([1.0, 1.0, 1.0, 1.0, 1.0], [1, 0, 0, 1, 0]),  # the proxy says nothing: every n gives the mean
    ([-2.0, 5.0, 0.0, 5.0, 1.5, -1.0, 0.2], [0.3, 0.1, 0.9, 0.7, 0.0, 1.0, 0.5]),  # real-valued gold
]


@pytest.mark.parametrize(("proxy", "gold"), CASES)
def test_unbiased_estimator_equals_enumeration_of_every_subset(proxy, gold):
    for n in range(1, len(proxy) + 1):
        assert bon_expected(proxy, gold, n) == pytest.approx(
            _brute_force(proxy, gold, n), abs=_enumeration_tol(len(proxy), n, gold)
        )


def test_random_inputs_against_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(20):
        big_n = int(rng.integers(2, 9))
        proxy = rng.integers(0, 4, size=big_n).astype(float).tolist()  # many ties
        gold = rng.integers(0, 2, size=big_n).astype(float).tolist()
        n = int(rng.integers(1, big_n + 1))
        assert bon_expected(proxy, gold, n) == pytest.approx(
            _brute_force(proxy, gold, n), abs=_enumeration_tol(big_n, n, gold)
        )


def test_edges():
    proxy, gold = [0.2, 0.8, 0.5], [0.0, 1.0, 0.0]
    # n = 1: the sampling policy; estimator 3 weighted terms (<= 4 roundings each) vs a 3-term mean (3): 15 in all
    assert bon_expected(proxy, gold, 1) == pytest.approx(np.mean(gold), abs=worst_case(15, 1.0))
    assert bon_expected(proxy, gold, 3) == 1.0  # n = N: the proxy's top sample
    with pytest.raises(ValueError, match="n must be in 1..3"):
        bon_expected(proxy, gold, 4)
    with pytest.raises(ValueError, match="finite"):
        bon_expected([0.0, float("nan")], [1, 0], 1)
    curve = bon_curve(np.array([proxy, proxy]), np.array([gold, [1.0, 0.0, 0.0]]), [1, 3])
    assert curve.shape == (2, 2) and curve[1, 1] == 0.0


def test_first_n_reading_is_rewardmaths():
    """RewardMATH's eval.py takes the first n samples in sampling order and their top-scored one."""
    proxy, gold = [0.1, 0.9, 0.5, 0.95], [0, 1, 0, 0]
    assert [bon_first_n(proxy, gold, n) for n in (1, 2, 3, 4)] == [0.0, 1.0, 1.0, 0.0]
    assert bon_first_n([0.3, 0.3, 0.1], [1, 0, 1], 2) == 0.5  # a tie for the top: the tied samples' mean


def test_kl_of_best_of_n():
    assert bon_kl(1) == 0.0
    assert bon_kl(16) == math.log(16) - 15 / 16  # the same float64 operations as bon_kl: exact
    # the literal is ln 4 to 17 significant digits (round-trips float64); libm's log is within 1 ulp (2 roundings)
    # and the subtraction rounds once: 3 roundings of magnitude ln 4
    assert bon_kl(4) == pytest.approx(1.3862943611198906 - 0.75, abs=worst_case(3, math.log(4)))
    with pytest.raises(ValueError):
        bon_kl(0)


def test_pairwise_accuracy_counts_ties_half():
    acc, pairs = pairwise_accuracy([0.9, 0.1, 0.5, 0.5], [1, 0, 1, 0])
    # gold-better pairs: (0,1) right, (0,3) right, (2,1) right, (2,3) tie
    assert pairs == 4 and acc == 3.5 / 4  # 3 + 0.5 * 1 is exact, then the same one division: exact
    assert pairwise_accuracy([0.1, 0.2], [1, 1]) == (None, 0)


# ---- the stage, end to end on tiny random models --------------------------------------------------------------

STAGE = [
    "task=arithmetic",
    "task.arithmetic.max_examples=6",
    "n_samples=4",
    "sampling.max_new_tokens=6",
    "generation.batch_size=4",
    "generation.chunk_size=8",
    "generation.progress=false",
    "scoring.progress=false",
    "bootstrap.n_boot=50",
]


def _stage_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir, extra=()):
    from omegaconf import open_dict

    from tests.conftest import compose_eval_cfg

    cfg = compose_eval_cfg(
        tmp_path,
        [
            "policy=auto",
            f"policy.pretrained={tiny_lm_dir}",
            f"+reward_models.classifier={tiny_classifier_dir}",
            f"+reward_models.implicit={{pretrained: '{tiny_ref_dir}', kind: implicit, reference: null}}",
            *STAGE,
            *extra,
        ],
        "best_of_n",
        base=("device=cpu", "logger=none"),
    )
    with open_dict(cfg):
        cfg.paths.generation_cache_dir = str(tmp_path / "generations")
    return cfg


def test_stage_end_to_end_against_its_own_samples(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir):
    """Every number in bon.json follows from samples.jsonl by the estimator; the files are all there."""
    import json

    from rmlab.policy_eval.best_of_n import best_of_n

    cfg = _stage_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir)
    result = best_of_n(cfg)
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["samples"]) == 4 and len(r["gold"]) == 4 for r in rows)
    assert result["ns"] == [1, 2, 4]
    for name in ("classifier", "implicit"):
        proxy = np.array([r["proxy"][name] for r in rows])
        gold = np.array([r["gold"] for r in rows])
        # gold is 0/1; per prompt <= 4N + 1 roundings (estimator), then a mean over the prompts: both sides together
        # at most 2 (4N + prompts + 1) roundings of magnitude 1 (Higham Lemma 3.1)
        tol = worst_case(2 * (4 * gold.shape[1] + len(rows) + 1), 1.0)
        for n in (1, 2, 4):
            want = np.mean([bon_expected(p, g, n) for p, g in zip(proxy, gold)])
            # the same per-prompt values; a column view and a list may be summed in another order: bounded by tol
            assert result["reward_models"][name]["per_n"][str(n)]["gold"]["value"] == pytest.approx(want, abs=tol)
            assert result["reward_models"][name]["per_n"][str(n)]["kl"] == bon_kl(n)  # the same function: exact
            first = np.mean([bon_first_n(p, g, n) for p, g in zip(proxy, gold)])
            # the same operations on the same (JSON round-tripped, hence identical) floats: exact
            assert result["reward_models"][name]["per_n"][str(n)]["gold_first_n"] == first
        assert result["reward_models"][name]["per_n"]["1"]["gold"]["value"] == pytest.approx(gold.mean(), abs=tol)
    # the oracle's top group has weight 1 and its mean is the max (up to the tie mean's roundings): the same tol
    assert result["oracle"]["per_n"]["4"]["gold"]["value"] == pytest.approx(np.mean(np.max(gold, axis=1)), abs=tol)
    for f in ("bon.json", "bon.md", "bon.csv", "curves.png", "curves/classifier.png", "curves/implicit.png"):
        assert (run / f).stat().st_size > 0


class _Killed(RuntimeError):
    pass


def test_resume_after_a_kill_gives_identical_outputs(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir):
    """Sampling is seeded by each chunk's content: a run killed after its first chunk and resumed samples, scores
    and reports exactly what an uninterrupted run does."""
    from rmlab.policy_eval.best_of_n import best_of_n

    ref = _stage_cfg(tmp_path / "ref", tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir)
    best_of_n(ref)
    cfg = _stage_cfg(tmp_path / "killed", tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir)

    def kill(_chunk):
        raise _Killed

    with pytest.raises(_Killed):
        best_of_n(cfg, on_chunk=kill)
    assert not (tmp_path / "killed" / "run" / "bon.json").exists()
    chunks = []
    best_of_n(cfg, on_chunk=chunks.append)
    assert len(chunks) == 2  # 24 samples in chunks of 8: the first one is not generated again
    for f in ("samples.jsonl", "bon.md", "bon.csv"):
        assert (tmp_path / "ref" / "run" / f).read_text() == (tmp_path / "killed" / "run" / f).read_text()
    again = []
    best_of_n(cfg, on_chunk=again.append, on_batch=again.append)
    assert again == []  # a finished run recomputes nothing


def test_arithmetic_gold_reads_the_stated_result():
    from rmlab.policy_eval.tasks.arithmetic import stated_result

    assert stated_result("7 + 8 = 15", (7, 8)) == 15
    assert stated_result("The answer is 14, which is 7 + 7.", (7, 7)) == 14
    assert stated_result("The sum of 7 and 8 is 1,005", (7, 8)) == 1005
    assert stated_result("I cannot say", (7, 8)) is None


def test_arithmetic_task_splits_and_scores(tmp_path):
    """Disjoint train and test problems; eval_policy's score reads the stated result of the first sample."""
    from rmlab.policy_eval.tasks import TASKS
    from rmlab.policy_eval.tasks.base import ScoreContext
    from tests.conftest import compose_eval_cfg

    cfg = compose_eval_cfg(tmp_path, ["task=arithmetic"], "eval_policy", ("device=cpu", "logger=none"))
    task_cfg = cfg.task.arithmetic
    test, _ = TASKS["arithmetic"](task_cfg, tmp_path).load()
    task_cfg.split = "train"
    train, _ = TASKS["arithmetic"](task_cfg, tmp_path).load()
    assert len(test) + len(train) == 20 * 9 + 8 * 8 and not {e.id for e in test} & {e.id for e in train}
    task = TASKS["arithmetic"](task_cfg, tmp_path)
    ex = train[:2]
    a, b = ex[0].reference["operands"]
    right = f"{a} and {b} make {ex[0].reference['target']}."
    rows, metrics = task.score(ex, {"greedy": {ex[0].id: [right], ex[1].id: ["no idea"]}}, ScoreContext(n_boot=0))
    assert [r["correct"] for r in rows] == [True, False] and metrics["value"] == 0.5


def test_temperature_zero_is_one_greedy_decode(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir):
    """``sampling.temperature=0`` decodes greedily, once per prompt: another seed gives the same text (a sample
    from a random tiny model would change with the seed); more than one sample at temperature 0 is refused."""
    import json

    from rmlab.policy_eval.best_of_n import best_of_n, sampling_decoding

    greedy = ["n_samples=1", "sampling.temperature=0", "ns=[1]"]
    cfg = _stage_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir, greedy)
    d = sampling_decoding(cfg, type("T", (), {"decodings": [type("D", (), {"max_new_tokens": 6, "stop": ()})]})())
    assert d.do_sample is False and d.n == 1 and d.name == "bon-t0"
    best_of_n(cfg)
    first = (tmp_path / "run" / "samples.jsonl").read_text()
    cfg.paths.generation_cache_dir = str(tmp_path / "other_cache")  # decode again, not from the cache
    cfg.seed = 1
    best_of_n(cfg)
    assert (tmp_path / "run" / "samples.jsonl").read_text() == first
    assert all(len(json.loads(line)["samples"]) == 1 for line in first.splitlines())
    bad = _stage_cfg(tmp_path, tiny_lm_dir, tiny_classifier_dir, tiny_ref_dir, ["sampling.temperature=0"])
    with pytest.raises(ValueError, match="greedy decoding \\(temperature 0\\) gives one sample per prompt"):
        best_of_n(bad)
