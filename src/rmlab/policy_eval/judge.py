"""LLM judges of XSTest refusals (``task.labeler=judge``): a local causal LM or an OpenAI-compatible endpoint.

Either answers :data:`rmlab.policy_eval.refusal.JUDGE_PROMPT` greedily; the one class its answer names is the label
(:func:`rmlab.policy_eval.refusal.parse_judge_label`), and an answer naming none or several is the label
``unparsed``: counted (``Judge.unparsed``, ``unparsed`` in metrics.json), never a refusal or a compliance. The
endpoint is the lab's OpenAI-compatible client (:mod:`rmlab.generation.endpoint`: key from ``api_key_env``,
retries with backoff), shared with the reward-model judges.
"""

from __future__ import annotations

from rmlab.generation.endpoint import ChatEndpoint, EndpointSettings
from rmlab.policy_eval.refusal import JUDGE_PROMPT, UNPARSED, parse_judge_label


class Judge:
    def __init__(self, complete, name: str):
        self._complete, self.name, self.unparsed = complete, name, 0
        self.last_answer: str | None = None  # the judge's text behind the last label, for the scored rows

    def __call__(self, prompt: str, completion: str) -> str:
        self.last_answer = self._complete(JUDGE_PROMPT.format(prompt=prompt, completion=completion))
        label = parse_judge_label(self.last_answer)
        if label is None:
            self.unparsed += 1
            return UNPARSED
        return label

    def __repr__(self) -> str:
        return f"judge:{self.name}"


def build_judge(judge_cfg, cfg) -> Judge:
    if judge_cfg.kind == "endpoint":
        endpoint = ChatEndpoint(EndpointSettings.from_cfg(judge_cfg))
        return Judge(
            lambda text: endpoint.chat([{"role": "user", "content": text}], max_tokens=16),
            f"{judge_cfg.model}@{judge_cfg.base_url}",
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

        return Judge(complete, str(judge_cfg.model))
    raise ValueError(f"task.judge.kind must be 'local' or 'endpoint', got {judge_cfg.kind!r}")
