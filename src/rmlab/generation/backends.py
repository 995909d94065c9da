"""Generation for downstream tasks on lm-evaluation-harness's model backends, with a resumable cache.

What comes from lm-evaluation-harness (``lm_eval.models``): batched generation. Its Hugging Face backend
(``HFLM.generate_until``) sorts requests by length, left-pads each batch, stops at stop strings and EOS and cuts
them off; its vLLM backend does the same on GPUs. We hand both the exact prompt strings (the chat template is
applied here, so both backends see the same text) and a plain ``generate_until`` request per sample.

What we add, because lm-eval lacks it:

- a cache of generations keyed by (policy fingerprint, chat formatting, decoding, backend and its numerics,
  seed of sampled decodings) and, per entry, by (prompt,
  sample index). lm-eval's own request cache keys on (prompt, generation kwargs) only, so n samples of one prompt
  at temperature 0.8 would collapse into one; ours keeps them apart. Entries are written atomically after every
  chunk, so a killed run resumes from what it finished and a finished one re-runs for free;
- deterministic sampling: the torch seed is set from (seed, decoding, the chunk's first request) before every
  chunk, so a resumed run samples exactly what an uninterrupted one would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from rmlab.generation.decoding import Decoding
from rmlab.scoring.cache import ScoreCache
from rmlab.utils.hashing import stable_hash, text_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenRequest:
    key: str  # cache key of this sample
    context: str  # the full prompt text (chat template applied)
    sample: int  # sample index within the decoding


def gen_kwargs(decoding: Decoding, backend: str) -> dict:
    kw = {"until": list(decoding.stop), "max_gen_toks": decoding.max_new_tokens, "do_sample": decoding.do_sample}
    if decoding.do_sample:
        kw["temperature"] = decoding.temperature
        kw["top_p"] = decoding.top_p  # 1.0: plain temperature sampling, whatever the model's generation_config says
        if backend == "hf":
            kw["top_k"] = 0
    else:
        kw["temperature"] = 0.0
    return kw


class LMEvalBackend:
    """Wraps an lm-eval model (``HFLM`` or ``VLLM``) behind ``generate(contexts, decoding)``."""

    def __init__(self, lm, kind: str, describe: dict):
        self.lm, self.kind, self.describe = lm, kind, describe

    def generate(self, contexts: Sequence[str], decoding: Decoding) -> list[str]:
        from lm_eval.api.instance import Instance

        kw = gen_kwargs(decoding, self.kind)
        reqs = [
            Instance(request_type="generate_until", doc={}, arguments=(c, dict(kw)), idx=i)
            for i, c in enumerate(contexts)
        ]
        return self.lm.generate_until(reqs, disable_tqdm=True)


def hf_backend(model, tokenizer, *, batch_size: int, device: str, add_bos_token: bool, max_length: int | None):
    from lm_eval.models.huggingface import HFLM

    tokenizer.padding_side = "left"
    lm = HFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        device=device,
        add_bos_token=add_bos_token,
        max_length=max_length,
    )
    return LMEvalBackend(lm, "hf", {"backend": "hf (lm_eval HFLM)", "batch_size": batch_size})


def vllm_backend(
    path: str,
    *,
    revision: str | None,
    dtype: str,
    add_bos_token: bool,
    max_length: int | None,
    gpu_memory_utilization: float = 0.9,
    seed: int = 0,
):
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except ImportError as err:  # vLLM is a GPU-only extra
        raise RuntimeError("generation.backend=vllm needs vLLM (pip install vllm; CUDA GPUs only)") from err
    lm = VLLM(
        pretrained=path,
        revision=revision,
        dtype=dtype,
        add_bos_token=add_bos_token,
        max_length=max_length,
        gpu_memory_utilization=gpu_memory_utilization,
        seed=seed,
        batch_size="auto",
    )
    return LMEvalBackend(lm, "vllm", {"backend": "vllm (lm_eval VLLM)"})


def generator_settings(generation, *, dtype: str, seed: int, decoding: Decoding) -> dict:
    """Every setting besides policy, formatting and decoding that changes what is generated: the backend and its
    numerics (dtype, batch size, which pads sequences differently, context limit) and, for sampled decodings, the
    seed and the chunk size (the torch seed is drawn per chunk)."""
    out = {"backend": str(generation.backend), "dtype": str(dtype), "max_length": generation.get("max_length")}
    if out["backend"] == "hf":
        out["batch_size"] = int(generation.batch_size)
    if decoding.do_sample:
        out |= {"seed": int(seed), "chunk_size": int(generation.chunk_size)}
    return out


def cache_key(policy_fingerprint: str, formatting: str, task: str, decoding: Decoding, generator: dict) -> str:
    """The generation cache's key: policy weights, chat formatting, task, decoding and :func:`generator_settings`."""
    return stable_hash(
        {
            "policy": policy_fingerprint,
            "formatting": formatting,
            "task": task,
            "decoding": decoding.describe(),
            "generator": generator,
        }
    )


def requests_for(contexts: dict[str, str], decoding: Decoding) -> dict[str, list[GenRequest]]:
    """Per example id, one request per sample; the key covers the prompt text and the sample index."""
    return {
        ex_id: [GenRequest(text_hash(ctx, str(j)), ctx, j) for j in range(decoding.n)]
        for ex_id, ctx in contexts.items()
    }


@dataclass
class GenStats:
    generated: int = 0
    from_cache: int = 0
    seconds: float = 0.0


def generate_cached(
    requests: dict[str, list[GenRequest]],
    decoding: Decoding,
    cache: ScoreCache,
    backend_factory: Callable[[], LMEvalBackend],
    *,
    seed: int,
    chunk_size: int,
    on_chunk: Callable[[int], None] | None = None,
    progress: bool = True,
    desc: str = "generating",
) -> tuple[dict[str, list[str]], GenStats]:
    """Generate what the cache lacks, chunk by chunk (each chunk stored atomically); return texts per example."""
    flat = [r for rs in requests.values() for r in rs]
    todo = [r for r in {r.key: r for r in flat}.values() if r.key not in cache]
    stats = GenStats(from_cache=len(flat) - len(todo))
    if todo:
        backend = backend_factory()
        t0 = time.perf_counter()
        with tqdm(total=len(todo), desc=desc, disable=not progress) as bar:
            for c, lo in enumerate(range(0, len(todo), chunk_size)):
                chunk = todo[lo : lo + chunk_size]
                if decoding.do_sample:  # seeded by the chunk's content, so a resumed run draws what the first would
                    torch.manual_seed(int(stable_hash([seed, decoding.name, chunk[0].key]), 16) % (2**31))
                texts = backend.generate([r.context for r in chunk], decoding)
                cache.add({r.key: t for r, t in zip(chunk, texts)})
                stats.generated += len(chunk)
                bar.update(len(chunk))
                if on_chunk is not None:
                    on_chunk(c)
        stats.seconds = time.perf_counter() - t0
    return {ex_id: [cache.get(r.key) for r in rs] for ex_id, rs in requests.items()}, stats
