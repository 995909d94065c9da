"""LLM judges of XSTest refusals (``task.labeler=judge``): a local causal LM or an OpenAI-compatible endpoint.

Either answers a judge prompt greedily: open-instruct's two-class ``xstest_refusal_detect`` (the default, as Tulu 2.5
was labelled: :data:`rmlab.policy_eval.refusal.REFUSAL_DETECT_PROMPT`) or the lab's ``three_class`` prompt
(:data:`~rmlab.policy_eval.refusal.JUDGE_PROMPT`); the one class its answer names is the label, and an answer naming
none or several is the label
``unparsed``: counted (``Judge.unparsed``, ``unparsed`` in metrics.json), never a refusal or a compliance. The
endpoint is the lab's OpenAI-compatible client (:mod:`rmlab.generation.endpoint`: key from ``api_key_env``,
retries with backoff), shared with the reward-model judges.
"""

from __future__ import annotations

from rmlab.generation.endpoint import ChatEndpoint, EndpointSettings
from rmlab.policy_eval.refusal import (
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

        from rmlab.models.loading import load_causal_lm, load_tokenizer, pick_device, resolve_model

        resolved = resolve_model(str(judge_cfg.model), cache_dir=cfg.paths.model_cache_dir)
        tok = load_tokenizer(resolved, padding_side="left")
        device = pick_device(cfg.device)
        model = load_causal_lm(resolved, dtype=judge_cfg.get("dtype", "float32"), device=device)

        @torch.inference_mode()
        def complete(text: str) -> str:
            ids = tok.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(device)
            out = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        return Judge(complete, str(judge_cfg.model), judge_cfg.get("prompt", "xstest_refusal_detect"))
    raise ValueError(f"task.judge.kind must be 'local' or 'endpoint', got {judge_cfg.kind!r}")
