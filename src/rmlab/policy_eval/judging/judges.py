"""LLM judges of XSTest refusals (``task.labeler=judge``): a local causal LM or an OpenAI-compatible endpoint.

Either answers a judge prompt greedily: open-instruct's two-class ``xstest_refusal_detect`` (the default, as Tulu 2.5
was labelled: :data:`rmlab.policy_eval.judging.refusal.REFUSAL_DETECT_PROMPT`) or the lab's ``three_class`` prompt
(:data:`~rmlab.policy_eval.judging.refusal.JUDGE_PROMPT`); the one class its answer names is the label, and an answer naming
none or several is the label
``unparsed``: counted (``Judge.unparsed``, ``unparsed`` in metrics.json), never a refusal or a compliance. The
endpoint is the lab's OpenAI-compatible client (:mod:`rmlab.generation.endpoint`: key from ``api_key_env``,
retries with backoff), shared with the reward-model judges.
"""

from __future__ import annotations

from rmlab.generation.endpoint import ChatEndpoint, EndpointSettings
from rmlab.policy_eval.judging.refusal import (
    JUDGE_PROMPT,
    REFUSAL_DETECT_PROMPT,
    UNPARSED,
    parse_binary_label,
    parse_judge_label,
)

# task.xstest.judge.prompt -> (template, parser): open-instruct's two-class prompt (its default, Tulu 2.5's labels)
# or the lab's three-class prompt (the XSTest paper's classes, partial refusals apart)
JUDGE_PROMPTS = {
    "xstest_refusal_detect": (REFUSAL_DETECT_PROMPT, parse_binary_label),
    "three_class": (JUDGE_PROMPT, parse_judge_label),
}


class Judge:
    def __init__(self, complete, name: str, prompt: str = "xstest_refusal_detect"):
        if prompt not in JUDGE_PROMPTS:
            raise ValueError(f"task.xstest.judge.prompt={prompt!r}: unknown; valid values: {', '.join(JUDGE_PROMPTS)}")
        self._complete, self.name, self.unparsed, self.prompt = complete, name, 0, prompt
        self._template, self._parse = JUDGE_PROMPTS[prompt]
        self.last_answer: str | None = None  # the judge's text behind the last label, for the scored rows

    def __call__(self, prompt: str, completion: str) -> str:
        self.last_answer = self._complete(self._template.format(prompt=prompt, completion=completion))
        label = self._parse(self.last_answer)
        if label is None:
            self.unparsed += 1
            return UNPARSED
        return label

    def __repr__(self) -> str:
        return f"judge:{self.name}" + ("" if self.prompt == "xstest_refusal_detect" else f" ({self.prompt})")


def _local_lm(judge_cfg, cfg):
    """A local judge: its tokenizer (left-padded), the causal LM, and the device it runs on."""
    from rmlab.models.loading import load_causal_lm, load_tokenizer, pick_device, resolve_model

    resolved = resolve_model(str(judge_cfg.model), cache_dir=cfg.paths.model_cache_dir)
    device = pick_device(cfg.device)
    model = load_causal_lm(resolved, dtype=judge_cfg.get("dtype", "float32"), device=device)
    return load_tokenizer(resolved, padding_side="left"), model, device


def build_judge(judge_cfg, cfg) -> Judge:
    if judge_cfg.kind == "endpoint":
        endpoint = ChatEndpoint(EndpointSettings.from_cfg(judge_cfg))
        return Judge(
            lambda text: endpoint.chat([{"role": "user", "content": text}], max_tokens=16),
            f"{judge_cfg.model}@{judge_cfg.base_url}",
            judge_cfg.get("prompt", "xstest_refusal_detect"),
        )
    if judge_cfg.kind == "local":
        import torch

        tok, model, device = _local_lm(judge_cfg, cfg)

        @torch.inference_mode()
        def complete(text: str) -> str:
            ids = tok.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(device)
            out = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        return Judge(complete, str(judge_cfg.model), judge_cfg.get("prompt", "xstest_refusal_detect"))
    raise ValueError(f"task.judge.kind must be 'local' or 'endpoint', got {judge_cfg.kind!r}")


class PreferenceJudge:
    """A pairwise judge for AlpacaEval: ChatML messages in (:func:`alpaca_eval.utils.prompt_to_chatml` of the
    annotator's prompt), AlpacaEval's preference out (1 = the first output is better, 2 = the second, NaN =
    unparsed). ``mode="logprob"`` is AlpacaEval 2's ``weighted_alpaca_eval_gpt4_turbo``: ``2 - p(m) / (p(m) + p(M))``
    from the first answer token (a local model's full next-token distribution; an endpoint's ``top_logprobs``
    through alpaca_eval's own ``logprob_parser``). ``mode="ranking"`` is AlpacaEval 1's ``alpaca_eval_gpt4``: a
    generated ranking read by alpaca_eval's ``ranking_parser``."""

    MODES = ("logprob", "ranking")

    def __init__(self, name: str, mode: str, *, first_token_probs=None, complete=None, top_logprobs=None):
        if mode not in self.MODES:
            raise ValueError(f"AlpacaEval judge mode must be one of {self.MODES}, got {mode!r}")
        self.name, self.mode = name, mode
        self._probs, self._complete, self._top = first_token_probs, complete, top_logprobs
        self.unparsed = 0

    def __call__(self, messages: list[dict]) -> float:
        import math

        from rmlab.policy_eval.tasks.alpaca_eval import quiet

        with quiet():
            from alpaca_eval import completion_parsers

        if self.mode == "ranking":
            value = completion_parsers.ranking_parser(self._complete(messages, 100))[0]
        elif self._probs is not None:
            p_m, p_big = self._probs(messages, ("m", "M"))
            value = 2 - p_m / (p_m + p_big) if p_m + p_big > 0 else float("nan")
        else:
            completion = {"logprobs": {"content": [{"top_logprobs": self._top(messages)}]}}
            value = completion_parsers.logprob_parser(
                completion, numerator_token="m", denominator_tokens=["m", "M"], is_binarize=False
            )[0]
        value = float(value)
        if math.isnan(value):
            self.unparsed += 1
        return value

    def __repr__(self) -> str:
        return f"judge:{self.name} ({self.mode})"


def build_preference_judge(judge_cfg, cfg, mode: str) -> PreferenceJudge:
    """AlpacaEval's annotator on the configured judge: a local causal LM or an OpenAI-compatible endpoint."""
    if judge_cfg.kind == "endpoint":
        endpoint = ChatEndpoint(EndpointSettings.from_cfg(judge_cfg))
        return PreferenceJudge(
            f"{judge_cfg.model}@{judge_cfg.base_url}", mode,
            complete=lambda messages, n: endpoint.chat(messages, max_tokens=n),
            top_logprobs=lambda messages: endpoint.top_logprobs(messages),
        )  # fmt: skip
    if judge_cfg.kind == "local":
        import torch

        tok, model, device = _local_lm(judge_cfg, cfg)

        def encode(messages):
            return tok.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(device)

        @torch.inference_mode()
        def first_token_probs(messages, tokens):
            logits = model(**encode(messages)).logits[0, -1].float()
            probs = torch.softmax(logits, dim=-1)
            ids = []
            for t in tokens:
                (i, *rest) = tok.encode(t, add_special_tokens=False)
                if rest:
                    raise ValueError(f"judge {judge_cfg.model}: {t!r} is not one token, so p({t!r}) is not defined")
                ids.append(i)
            return tuple(float(probs[i]) for i in ids)

        @torch.inference_mode()
        def complete(messages, n):
            ids = encode(messages)
            out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        return PreferenceJudge(str(judge_cfg.model), mode, first_token_probs=first_token_probs, complete=complete)
    raise ValueError(f"task.alpaca_eval.judge.kind must be 'local' or 'endpoint', got {judge_cfg.kind!r}")
