"""A judge model answering chat conversations greedily, through a resumable cache: a local model run by the lab's
generation backends, or an OpenAI-compatible endpoint.

Both expose ``describe`` (everything besides the conversation that changes an answer: the key of the cache
directory) and ``answer(conversations, cache, ...)``, which sends only what the cache lacks and stores answers as
they come (a chunk at a time, atomically), so a killed run re-sends nothing it had stored and a finished one
re-runs without loading the model or reaching the endpoint.

- :class:`LocalChat`: the conversation rendered with the model's chat template (``add_generation_prompt``, as
  rewardbench's ``scripts/run_generative.py:316-323`` renders judge prompts for local models), generated greedily
  by lm-eval's HF or vLLM backend (:mod:`rmlab.generation.backends`). A cache entry is keyed by the rendered text.
  A named template without a system turn (``tulu``, ``plain``) gets the system message joined to the user's with a
  blank line, as RewardMATH's default style does (``src/prompts.py:172-175``).
- :class:`EndpointChat`: :class:`rmlab.generation.endpoint.ChatEndpoint`, ``concurrency`` requests at a time, a
  preflight request before the first one. A cache entry is keyed by the messages' JSON.

:func:`ask_judge` turns a judge prompt's conversations into the texts its verdicts are read from, in one of two
readings (``model.judge.verdict``):

- ``generate`` (default): the judge writes its judgement; where the prompt's source makes a second attempt
  (:class:`rmlab.scoring.judge_prompts.FollowUp`) and the first answer calls for it, the conversation goes on once
  and the two answers are read together, joined by a newline as Arena-Hard joins them (``gen_judgment.py:105``).
- ``logprob`` (local judges, pairwise prompts): the judge writes nothing. Its context is the conversation up to the
  assistant turn plus the start of the verdict the prompt asks for (``[[``, ``\\boxed{``), and each complete label
  the prompt offers (``A]]`` / ``B]]``; Arena-Hard's five) is scored by its log-likelihood as the continuation (the
  sum over its tokens, lm-eval's ``loglikelihood``); the most likely label is the verdict. Small judges that never
  finish a parseable judgement can still be read this way: it is lm-eval's multiple-choice reading, applied to the
  verdict tokens as G-Eval reads its scores from their token probabilities (Liu et al. 2023, arXiv 2303.16634).
  The judge skips its explanation, so this is a different protocol from the prompt's source; the reading is in
  the cache key and in every output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from rmlab.generation.backends import GenRequest, GenStats, generate_cached, hf_backend, vllm_backend
from rmlab.generation.decoding import Decoding
from rmlab.generation.endpoint import ChatEndpoint, EndpointSettings
from rmlab.models.chat_format import ChatFormatter
from rmlab.models.handle import open_model
from rmlab.models.loading import load_causal_lm, pick_device, torch_dtype
from rmlab.scoring.cache import ScoreCache
from rmlab.scoring.judge_prompts import JudgePrompt
from rmlab.utils.hashing import text_hash

Conversation = list[dict]  # [{"role": ..., "content": ...}, ...]
ENGINES = ("hf", "vllm")
BACKENDS = ("local", "endpoint")
READINGS = ("generate", "logprob")  # model.judge.verdict


class LocalChat:
    """A causal LM from a model spec (``model.pretrained``), loaded only when something must be generated."""

    def __init__(
        self, model_cfg, *, cache_dir: str, device: str, seed: int, max_new_tokens: int, reading: str = "generate"
    ):
        local = model_cfg.judge.local
        self.engine = str(local.get("engine", "hf"))
        if self.engine not in ENGINES:
            raise ValueError(f"model.judge.local.engine={self.engine!r}: choose one of {ENGINES}")
        self.dtype = str(model_cfg.get("dtype", "float32"))
        torch_dtype(self.dtype)  # a mistyped dtype fails before any work
        self.device, self.seed = pick_device(device), seed
        self.batch_size, self.max_length = int(local.get("batch_size", 8)), local.get("max_length")
        handle = open_model(model_cfg, cache_dir=cache_dir, padding_side="left")
        self.resolved, self.tokenizer = handle.resolved, handle.tokenizer
        # the judge prompt brings its own system message, so the model's recorded one is not used
        self.formatter = ChatFormatter(self.tokenizer, handle.formatting["chat_template"], None)
        self.decoding = Decoding(name="judge", max_new_tokens=int(max_new_tokens))
        self.spec, self.formatting = handle.spec, handle.describe()
        self.name = Path(self.spec.removeprefix("wheel:")).name
        generator = {"engine": self.engine, "dtype": self.dtype, "max_length": self.max_length}
        if self.engine == "hf":  # batch composition changes padding, hence the numerics
            generator["batch_size"] = self.batch_size
        self.reading = reading
        self.describe = {
            "backend": "local",
            "model": handle.fingerprint,
            "formatting": self.formatter.fingerprint,
            "decoding": self.decoding.describe(),
            "generator": generator,
        }
        if reading == "logprob":  # nothing is generated; the key says so (generated verdicts keep their old keys)
            self.describe["decoding"] = None
            self.describe["verdict"] = "logprob"

    def context(self, messages: Conversation) -> str:
        """The prompt text the model continues: the conversation in its chat template, up to the assistant turn."""
        if self.formatter.template != "tokenizer" and messages[0]["role"] == "system":
            system, user, *rest = messages
            messages = [{"role": "user", "content": f"{system['content']}\n\n{user['content']}"}, *rest]
        turns = tuple((m["role"], m["content"]) for m in messages)
        return self.formatter.format(turns, "").prefix

    def _backend(self):
        if self.engine == "vllm":
            return vllm_backend(
                self.resolved.path,
                revision=self.resolved.revision,
                dtype=self.dtype,
                add_bos_token=self.formatter.add_special_tokens,
                max_length=self.max_length,
                seed=self.seed,
            )
        model = load_causal_lm(self.resolved, dtype=self.dtype, device=self.device)
        return hf_backend(
            model,
            self.tokenizer,
            batch_size=self.batch_size,
            device=self.device,
            add_bos_token=self.formatter.add_special_tokens,
            max_length=self.max_length,
        )

    def answer(
        self,
        conversations: Sequence[Conversation],
        cache: ScoreCache,
        *,
        chunk_size: int,
        on_chunk: Callable[[int], None] | None = None,
        progress: bool = True,
    ) -> tuple[list[str], GenStats]:
        contexts = [self.context(m) for m in conversations]
        keys = [text_hash(c) for c in contexts]
        requests = {k: [GenRequest(k, c, 0)] for k, c in zip(keys, contexts)}
        texts, stats = generate_cached(
            requests,
            self.decoding,
            cache,
            self._backend,
            seed=self.seed,
            chunk_size=chunk_size,
            on_chunk=on_chunk,
            progress=progress,
            desc="judging",
        )
        return [texts[k][0] for k in keys], stats

    def loglikelihoods(
        self,
        pairs: Sequence[tuple[str, str]],
        cache: ScoreCache,
        *,
        chunk_size: int,
        on_chunk: Callable[[int], None] | None = None,
        progress: bool = True,
    ) -> tuple[list[float], GenStats]:
        """log p(continuation | context) of each (context, continuation), summed over the continuation's tokens
        (lm-eval's ``loglikelihood``: the pair is tokenised together and split where the context ends); only what
        the cache lacks is computed, a chunk at a time."""
        from lm_eval.api.instance import Instance

        keys = [text_hash(c, x) for c, x in pairs]
        todo = list({k: p for k, p in zip(keys, pairs) if k not in cache}.items())
        stats = GenStats(from_cache=len(keys) - len(todo))
        if todo:
            backend, t0 = self._backend(), time.perf_counter()
            with tqdm(total=len(todo), desc="judging (log-likelihoods)", disable=not progress) as bar:
                for c, lo in enumerate(range(0, len(todo), chunk_size)):
                    chunk = todo[lo : lo + chunk_size]
                    reqs = [
                        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
                        for i, (_, pair) in enumerate(chunk)
                    ]
                    scores = backend.lm.loglikelihood(reqs, disable_tqdm=True)
                    cache.add({k: float(lp) for (k, _), (lp, _greedy) in zip(chunk, scores)})
                    stats.generated += len(chunk)
                    bar.update(len(chunk))
                    if on_chunk is not None:
                        on_chunk(c)
            stats.seconds = time.perf_counter() - t0
        return [cache.get(k) for k in keys], stats


class EndpointChat:
    """An OpenAI-compatible endpoint (``model.judge.endpoint``); the key stays in the environment."""

    def __init__(self, endpoint_cfg, *, max_new_tokens: int, concurrency: int):
        self.settings = EndpointSettings.from_cfg(endpoint_cfg)
        self.max_new_tokens, self.concurrency = int(max_new_tokens), max(1, int(concurrency))
        self.spec = f"{self.settings.model}@{self.settings.base_url}"
        self.name = self.settings.model
        self.formatting = None  # the server applies its own chat template
        self.describe = {
            "backend": "endpoint",
            **self.settings.describe(),
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }

    def answer(
        self,
        conversations: Sequence[Conversation],
        cache: ScoreCache,
        *,
        chunk_size: int,
        on_chunk: Callable[[int], None] | None = None,
        progress: bool = True,
    ) -> tuple[list[str], GenStats]:
        keys = [text_hash(json.dumps(m, sort_keys=True, ensure_ascii=False)) for m in conversations]
        todo = {k: m for k, m in zip(keys, conversations) if k not in cache}
        stats = GenStats(from_cache=len(keys) - len(todo))
        if todo:  # the key is read only now: a fully cached run needs neither the endpoint nor the key
            endpoint = ChatEndpoint(self.settings)
            endpoint.preflight()  # unreachable, refused key or unknown model: stop before any work
            t0 = time.perf_counter()
            items = list(todo.items())
            with (
                ThreadPoolExecutor(max_workers=self.concurrency) as pool,
                tqdm(total=len(items), desc="judging", disable=not progress) as bar,
            ):
                for c, lo in enumerate(range(0, len(items), chunk_size)):
                    stats.generated += self._ask_chunk(endpoint, items[lo : lo + chunk_size], cache, pool, bar)
                    if on_chunk is not None:
                        on_chunk(c)
            stats.seconds = time.perf_counter() - t0
        return [cache.get(k) for k in keys], stats

    def _ask_chunk(
        self, endpoint: ChatEndpoint, chunk: list[tuple[str, Conversation]], cache: ScoreCache, pool, bar
    ) -> int:
        """Ask one chunk; store every answer that came back even if another request failed or the run is stopped
        (then requests not yet sent are cancelled; at most ``concurrency`` in flight are lost)."""
        futures = {pool.submit(endpoint.chat, m, max_tokens=self.max_new_tokens): k for k, m in chunk}
        answers, errors = {}, []
        try:
            for fut in as_completed(futures):
                if fut.exception() is None:
                    answers[futures[fut]] = fut.result()
                    bar.update(1)
                else:
                    errors.append(fut.exception())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        finally:
            if answers:
                cache.add(answers)
        if errors:
            raise errors[0]
        return len(answers)


def build_judge_chat(model_cfg, *, cache_dir: str, device: str, seed: int) -> LocalChat | EndpointChat:
    """The judge a ``conf/model/judge_*.yaml`` config describes (``model_cfg.judge.backend``, ``.verdict``); neither
    loads weights nor sends a request yet. Shared by the reward-model judges and the Arena-Hard stage, so both read
    one config."""
    jc = model_cfg.judge
    reading = str(jc.get("verdict") or "generate")
    if reading not in READINGS:
        raise ValueError(f"judge.verdict={reading!r}: choose one of {READINGS}")
    if jc.backend == "local":
        return LocalChat(
            model_cfg,
            cache_dir=cache_dir,
            device=device,
            seed=seed,
            max_new_tokens=int(jc.max_new_tokens),
            reading=reading,
        )
    if jc.backend == "endpoint":
        if reading != "generate":
            raise ValueError(f"judge.verdict={reading!r} needs a local judge (judge.backend=local): it reads the "
                             "model's own token probabilities")  # fmt: skip
        return EndpointChat(
            jc.endpoint, max_new_tokens=int(jc.max_new_tokens), concurrency=int(jc.endpoint.get("concurrency", 4))
        )
    raise ValueError(f"judge.backend={jc.backend!r}: choose one of {BACKENDS}")


def ask_judge(
    template: JudgePrompt,
    chat: LocalChat | EndpointChat,
    conversations: Sequence[Conversation],
    cache: ScoreCache,
    **ask,
) -> tuple[list[str], list[dict], GenStats]:
    """The text each conversation's verdict is read from (``template.parse``), what else was asked or scored per
    conversation (``attempts``, or the ``logprobs`` of the labels), and the generation counts; see the module doc
    for the two readings. ``ask``: ``chunk_size``, ``on_chunk``, ``progress``."""
    if getattr(chat, "reading", "generate") == "logprob":
        return _read_logprobs(template, chat, conversations, cache, **ask)
    texts, stats = chat.answer(conversations, cache, **ask)
    details = [{"attempts": 1} for _ in texts]
    follow_up = template.follow_up
    again = [i for i, t in enumerate(texts) if follow_up is not None and follow_up.needed(t)]
    if again:  # the source's second attempt: the first answer, then its request for a verdict
        more = [
            [
                *conversations[i],
                {"role": "assistant", "content": texts[i]},
                {"role": "user", "content": follow_up.prompt},
            ]
            for i in again
        ]
        seconds, stats2 = chat.answer(more, cache, **ask)
        for i, t in zip(again, seconds):
            texts[i], details[i] = f"{texts[i]}\n{t}", {"attempts": 2}
        stats = GenStats(stats.generated + stats2.generated, stats.from_cache + stats2.from_cache,
                         stats.seconds + stats2.seconds)  # fmt: skip
    return texts, details, stats


def _read_logprobs(template: JudgePrompt, chat, conversations: Sequence[Conversation], cache: ScoreCache, **ask):
    """The ``logprob`` reading: the most likely complete label after the verdict's start; a dead heat is no
    verdict (the text is the bare start, which no parser reads)."""
    if template.mode != "pairwise" or not template.verdict_choices:
        raise ValueError(f"judge.verdict=logprob reads pairwise verdicts only; prompt {template.id!r} offers no labels")
    prefix, choices = template.verdict_prefix, template.verdict_choices
    contexts = [chat.context(m) + prefix for m in conversations]
    scores, stats = chat.loglikelihoods([(c, x) for c in contexts for x in choices], cache, **ask)
    texts, details = [], []
    for i in range(len(contexts)):
        lp = dict(zip(choices, scores[i * len(choices) : (i + 1) * len(choices)]))
        best = max(lp.values())
        top = [x for x, v in lp.items() if v == best]
        texts.append(prefix + top[0] if len(top) == 1 else prefix)
        details.append({"logprobs": lp})
    return texts, details, stats
