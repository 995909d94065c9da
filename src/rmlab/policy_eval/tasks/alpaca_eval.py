"""AlpacaEval 1 and 2 (Li et al. 2023; Dubois et al. 2024): win rate against reference outputs, judged pairwise.

As open-instruct ran it for Tulu 2.5 (allenai/open-instruct@4c0e9e8 ``eval/alpaca_farm/run_eval.py``, the
``alpaca_eval`` / ``alpaca_eval_2`` jobs of ``scripts/submit_eval_jobs.py:423-446``): the 805 instructions alone in
the chat format, greedy decoding up to 8192 new tokens, then ``alpaca_eval.evaluate``. Everything that defines the
score is the ``alpaca_eval`` package's own (PyPI ``alpaca-eval``): the annotator's prompt and parser (its
``evaluators_configs``), the per-instruction order switch (``RandomSwitchTwoColumnsProcessor`` seeded on the
instruction, as its pairwise annotator does), the win rates (``metrics.get_winrate``) and the length-controlled
GLM (``metrics.glm_winrate``). What the lab adds is the judge (a local causal LM or any OpenAI-compatible endpoint,
:class:`rmlab.policy_eval.judging.judges.PreferenceJudge`) in place of alpaca_eval's OpenAI client.

- ``version: 2`` (default): reference outputs of ``gpt4_1106_preview``, annotator ``weighted_alpaca_eval_gpt4_turbo``
  (p(m) vs p(M) of the first answer token), headline the length-controlled win rate (open-instruct's primary
  score for ``oi_alpaca_eval_2``).
- ``version: 1``: reference outputs of ``text_davinci_003``, annotator ``alpaca_eval_gpt4`` (a generated ranking),
  headline the discrete win rate (``oi_alpaca_eval``).

The length-controlled GLM (``length_controlled_v1``) needs a table of per-instruction difficulty that alpaca_eval
downloads from the Hub (``tatsu-lab/alpaca_eval``: ``df_gamed.csv``); where it cannot, the lab fits alpaca_eval's
``length_controlled_minimal`` formula (length term and intercept, no difficulty) with the same fitting code, and the
metrics name the GLM used and why. Both need at least five annotations (five-fold cross-validation).
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from importlib import resources

from rmlab.data.errors import DataValidationError
from rmlab.data.files import read_records
from rmlab.policy_eval.tasks.base import Example, Task

VERSIONS = {  # version -> (reference generator, annotator, headline)
    1: ("text_davinci_003", "alpaca_eval_gpt4", "discrete_win_rate"),
    2: ("gpt4_1106_preview", "weighted_alpaca_eval_gpt4_turbo", "length_controlled_win_rate"),
}
PARSER_MODES = {"ranking_parser": "ranking", "logprob_parser": "logprob"}
LC_GLMS = ("length_controlled_v1", "length_controlled_minimal")
MIN_LC_ANNOTATIONS = 5  # alpaca_eval's GLM: 5-fold group cross-validation


@contextmanager
def quiet():
    """alpaca_eval imports ``pkg_resources`` (a setuptools deprecation warning) and its GLM fit passes arguments
    that scikit-learn 1.8+ deprecates (FutureWarnings): neither changes a number, so neither reaches the log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        yield


def annotator_spec(name: str) -> tuple[str, str]:
    """(prompt template, judge mode) of an alpaca_eval annotator, read from the package's own config."""
    import yaml

    with quiet():
        root = resources.files("alpaca_eval") / "evaluators_configs"
    config = yaml.safe_load((root / name / "configs.yaml").read_text())[name]
    parser = config["fn_completion_parser"]
    if parser not in PARSER_MODES:
        raise ValueError(f"alpaca_eval annotator {name!r}: parser {parser!r} is not one the lab's judge answers")
    return (root / config["prompt_template"]).read_text(), PARSER_MODES[parser]


def length_controlled(annotations, glm: str) -> dict:
    """The length-controlled win rate (in [0, 1]) by alpaca_eval's GLM ``glm``; ``length_controlled_v1`` falls back
    to ``length_controlled_minimal`` when the difficulty table cannot be read (module docstring)."""
    with quiet():
        return _length_controlled(annotations, glm)


def _length_controlled(annotations, glm: str) -> dict:
    from alpaca_eval.metrics import glm_winrate

    n = int(annotations["preference"].notna().sum())
    if n < MIN_LC_ANNOTATIONS:
        return {"value": None, "glm": None,
                "why": f"{n} annotations; the GLM's cross-validation needs at least {MIN_LC_ANNOTATIONS}"}  # fmt: skip
    why = None
    if glm == "length_controlled_v1":
        try:
            out = glm_winrate.get_length_controlled_winrate(
                annotations.copy(), glm_name=glm, save_weights_dir=None, is_warn_extreme_changes=False
            )
            return {"value": out["length_controlled_winrate"] / 100, "glm": glm,
                    "standard_error": out["lc_standard_error"] / 100}  # fmt: skip
        except OSError as err:  # the Hub file is not reachable (offline, or HF_HUB_OFFLINE)
            why = f"length_controlled_v1's difficulty table (tatsu-lab/alpaca_eval df_gamed.csv) unreadable: {err}"[
                :300
            ]
    elif glm != "length_controlled_minimal":
        raise ValueError(f"task.alpaca_eval.lc_glm must be one of {LC_GLMS}, got {glm!r}")
    # length_controlled_minimal: the features of glm_winrate._get_featurized_data without instruction difficulty
    df = annotations.reset_index(drop=True)
    delta = df["output_1"].str.len() - df["output_2"].str.len()
    train = df[["preference"]].astype(float).replace({0.0: 1.5}) - 1
    train["std_delta_len"] = delta / delta.std() if delta.std() > 0 else 0.0
    train["not_gamed_baseline"] = True
    train = train[train["preference"].notna()]
    test = train[["not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0.0
    info = glm_winrate.GLM_INFO["length_controlled_minimal"]
    xy, x_test = glm_winrate.make_dmatrix_for_model(train, test, formula=info["formula"])
    model = glm_winrate.fit_LogisticRegressionCV(xy, "preference", is_ytrue_proba=True, **info["kwargs"])
    predicted = model.predict_proba(x_test)[:, 1]
    out = {"value": float(predicted.mean()), "glm": "length_controlled_minimal",
           "standard_error": float(predicted.std(ddof=1) / math.sqrt(len(predicted)))}  # fmt: skip
    return {**out, "why": why} if why else out


class AlpacaEval(Task):
    group, metric = "chat", "win_rate"

    @property
    def version(self) -> int:
        v = int(self.cfg.get("version", 2))
        if v not in VERSIONS:
            raise ValueError(f"task.alpaca_eval.version must be 1 or 2, got {v}")
        return v

    def _load(self):
        cfg, (reference, _, _) = self.cfg, VERSIONS[self.version]
        local = self.local_dir()
        if local is not None:
            path = local / str(cfg.references[self.version])
            rows = read_records(path)
            where, source, files = str(path), str(local), [str(path)]
        else:
            from datasets import load_dataset

            config = str(cfg.hub_configs[self.version])
            rows = list(load_dataset(cfg.hub_id, config, split=cfg.split))
            where, source, files = f"hub:{cfg.hub_id}/{config}", f"hub:{cfg.hub_id}", []
        records = [_validated(f"{where}, record {i}", r, i) for i, r in enumerate(rows)]
        records = self.subsample(records, cfg.get("max_examples"), int(cfg.subsample_seed))
        examples = [
            Example(id=f"alpaca-{r['index']}", user=r["instruction"],
                    reference={"index": r["index"], "reference": r["output"], "dataset": r["dataset"],
                               "reference_generator": reference})
            for r in records
        ]  # fmt: skip
        return examples, source, files

    @property
    def annotator(self) -> str:
        return VERSIONS[self.version][1]

    def score(self, examples, generations, ctx):
        import pandas as pd

        with quiet():
            from alpaca_eval import processors, utils
            from alpaca_eval.metrics.winrate import get_winrate

        (decoding,) = generations
        if ctx.judge is None:
            raise ValueError("AlpacaEval needs a judge (task.alpaca_eval.judge)")
        reference, annotator, headline = VERSIONS[self.version]
        template, _ = annotator_spec(annotator)
        df = pd.DataFrame(
            [{"instruction": ex.user, "output_1": ex.reference["reference"], "output_2": generations[decoding][ex.id][0],
              "generator_1": reference, "generator_2": "policy", "annotator": annotator,
              "dataset": ex.reference["dataset"]} for ex in examples],
            index=[ex.reference["index"] for ex in examples],  # the instruction's position among the 805, as
        )  # fmt: skip                                           # alpaca_eval indexes annotations (the GLM reads it)

        def unswitch(frame):  # alpaca_eval's pairwise annotator: a switched pair's preference is 3 - x
            if frame.empty or "preference" not in frame.columns:
                return frame
            return frame.assign(preference=3 - frame["preference"])

        switch = processors.RandomSwitchTwoColumnsProcessor(
            two_columns_to_switch=["output_1", "output_2"], fn_replace_if_switch=unswitch,
            random_seed_columns=["instruction"], _switch_column="is_switched_outputs",
            seed=int(self.cfg.get("annotator_seed", 0)),
        )  # fmt: skip
        shown = switch.preprocess(df)
        prompts, _ = utils.make_prompts(shown, template)
        shown["preference"] = [ctx.judge(utils.prompt_to_chatml(p)) for p in prompts]
        switched = shown["is_switched_outputs"].astype(bool)
        annotated = switch.postprocess(shown)
        scored = annotated[annotated["preference"].notna()]
        rates = get_winrate(scored) if len(scored) else {"win_rate": float("nan"), "discrete_win_rate": float("nan")}
        lc = length_controlled(scored, str(self.cfg.get("lc_glm", "length_controlled_v1")))
        # 0 = the reference wins, 1 = the policy does; the mean is alpaca_eval's win rate, bootstrapped for its interval
        raw = self.mean_metric([float(p) - 1 for p in scored["preference"]], ctx)
        values = {"win_rate": rates["win_rate"] / 100, "discrete_win_rate": rates["discrete_win_rate"] / 100,
                  "length_controlled_win_rate": lc["value"]}  # fmt: skip
        head = values[headline]
        rows = [
            {"id": f"alpaca-{i}", "dataset": r["dataset"], "preference": r["preference"],
             "switched": bool(switched[i]), "output": r["output_2"], "reference": r["output_1"]}
            for i, r in zip(annotated.index, annotated.to_dict("records"))
        ]  # fmt: skip
        return rows, {
            "metric": headline, "value": float("nan") if head is None else head,
            "ci": raw["ci"] if headline == "win_rate" else None, "n": len(scored),
            "normalised": float("nan") if head is None else head,
            "unparsed": len(annotated) - len(scored),  # the judge named neither output: left out, and counted
            "reference": reference, "annotator": annotator, "judge": repr(ctx.judge),
            **{k: v for k, v in values.items()}, "win_rate_ci": raw["ci"], "length_controlled": lc,
            "avg_length": float(scored["output_2"].str.len().mean()) if len(scored) else float("nan"),
        }  # fmt: skip


def _validated(where: str, row, index: int) -> dict:
    """A reference row as alpaca_eval ships them: ``instruction``, ``output`` (the reference's answer), ``dataset``."""
    if not isinstance(row, dict):
        raise DataValidationError(f"{where}: expected a JSON object")
    for key in ("instruction", "output"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise DataValidationError(f"{where}: field {key!r} must be a non-empty string")
    return {"index": index, "instruction": row["instruction"], "output": row["output"],
            "dataset": str(row.get("dataset", ""))}  # fmt: skip
