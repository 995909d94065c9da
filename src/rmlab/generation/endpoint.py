"""A client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM's and TGI's servers, llama.cpp's).

Plain ``urllib`` (the ``openai`` package is not a dependency): one POST to ``<base_url>/chat/completions`` per
request, greedy (``temperature: 0``, as rewardbench and RewardMATH query their API judges).

- **Key.** The API key is read from the environment variable the config names (``api_key_env``), held by the
  client only, and sent only in the ``Authorization`` header. It is never part of :meth:`EndpointSettings.describe`
  (what cache keys and ``metrics.json`` record), of an error message or of a log line.
- **Retries.** Rate limits (HTTP 429) and transient failures (HTTP 408/500/502/503/504, timeouts, dropped
  connections) are retried up to ``max_retries`` times with exponential backoff (``backoff_s * 2**attempt``,
  at most ``max_backoff_s``; a server's ``Retry-After`` is honoured within that cap). Anything else (a wrong URL,
  a refused key, an unknown model) fails at once, naming the URL, the status and the server's message.
- **Preflight.** :meth:`ChatEndpoint.preflight` sends one one-token request, so a run that cannot reach the
  endpoint, or whose key or model is refused, stops before any work; a refused connection is not retried there.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class EndpointError(RuntimeError):
    """The endpoint could not be reached, refused the request, or answered with something that is not a reply."""


@dataclass(frozen=True)
class EndpointSettings:
    """Where and how to ask; see ``conf/model/judge_endpoint.yaml`` for each key's meaning."""

    base_url: str
    model: str
    api_key_env: str | None = None
    max_retries: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 120.0

    @classmethod
    def from_cfg(cls, cfg) -> EndpointSettings:
        get = cfg.get
        return cls(
            base_url=str(cfg.base_url),
            model=str(cfg.model),
            api_key_env=get("api_key_env") or None,
            max_retries=int(get("max_retries", 6)),
            backoff_s=float(get("backoff_s", 1.0)),
            max_backoff_s=float(get("max_backoff_s", 60.0)),
            timeout_s=float(get("timeout_s", 120.0)),
        )

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"

    def describe(self) -> dict:
        """What identifies the answering model: the endpoint and the model name (never the key)."""
        return {"base_url": self.base_url.rstrip("/"), "model": self.model}


class ChatEndpoint:
    """Greedy chat completions from one endpoint and model, with retries (see the module docstring)."""

    def __init__(self, settings: EndpointSettings, *, sleep: Callable[[float], None] = time.sleep):
        self.settings, self._sleep = settings, sleep
        self._key = None
        if settings.api_key_env:
            self._key = os.environ.get(settings.api_key_env)
            if not self._key:
                raise EndpointError(
                    f"endpoint {settings.url}: the environment variable {settings.api_key_env} (judge endpoint "
                    "api_key_env) is not set; export the API key there, or set api_key_env=null for an endpoint "
                    "without authentication"
                )

    def chat(self, messages: list[dict], *, max_tokens: int) -> str:
        """The assistant's reply to ``messages`` (an empty string if the endpoint returned no text)."""
        body = {"model": self.settings.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens}
        reply = self._post(body, retry_unreachable=True)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise EndpointError(f"{self.settings.url}: no choices[0].message.content in {str(reply)[:300]}") from err
        return content or ""

    def top_logprobs(self, messages: list[dict], *, top: int = 5) -> list[dict]:
        """The first generated token's ``top_logprobs`` (a list of ``{"token", "logprob"}``), as AlpacaEval 2's
        annotator reads its judge (one token, ``logprobs: true``)."""
        body = {"model": self.settings.model, "messages": messages, "temperature": 0, "max_tokens": 1,
                "logprobs": True, "top_logprobs": top}  # fmt: skip
        reply = self._post(body, retry_unreachable=True)
        try:
            return list(reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"])
        except (KeyError, IndexError, TypeError) as err:
            raise EndpointError(
                f"{self.settings.url}: no choices[0].logprobs.content[0].top_logprobs in {str(reply)[:300]} "
                "(the endpoint must return log-probabilities for AlpacaEval 2's annotator)"
            ) from err

    def preflight(self) -> None:
        """One one-token request; raises :class:`EndpointError` with the reason if it does not succeed."""
        body = {
            "model": self.settings.model,
            "messages": [{"role": "user", "content": "Reply with OK."}],
            "temperature": 0,
            "max_tokens": 1,
        }
        self._post(body, retry_unreachable=False)
        log.info("endpoint %s answers for model %s", self.settings.url, self.settings.model)

    def _request(self, body: dict) -> urllib.request.Request:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return urllib.request.Request(self.settings.url, data=json.dumps(body).encode(), headers=headers)

    def _redact(self, text: str) -> str:
        """A server's error text without our key, should it echo the request's headers."""
        return text.replace(self._key, "<redacted>") if self._key else text

    def _post(self, body: dict, *, retry_unreachable: bool) -> dict:
        s = self.settings
        for attempt in itertools.count():
            wait = min(s.max_backoff_s, s.backoff_s * 2**attempt)
            try:
                with urllib.request.urlopen(self._request(body), timeout=s.timeout_s) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw)
                except json.JSONDecodeError as err:
                    raise EndpointError(f"{s.url}: the reply is not JSON: {raw[:300]!r}") from err
            except urllib.error.HTTPError as err:
                detail = self._redact(err.read()[:300].decode("utf-8", "replace"))
                if err.code not in RETRY_STATUS or attempt == s.max_retries:
                    raise EndpointError(
                        f"{s.url} (model {s.model}): HTTP {err.code} {err.reason}: {detail}"
                        + (f" (after {attempt} retries)" if attempt else "")
                    ) from None
                after = _retry_after(err)
                wait = wait if after is None else min(s.max_backoff_s, after)
                reason = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                cause = getattr(err, "reason", err)
                refused = isinstance(cause, (ConnectionRefusedError, socket.gaierror))
                if (refused and not retry_unreachable) or attempt == s.max_retries:
                    raise EndpointError(
                        f"cannot reach {s.url} (model {s.model}): {cause}"
                        + (f" (after {attempt} retries)" if attempt else "")
                    ) from None
                reason = str(cause)
            log.warning("%s: %s; retry %d/%d in %.1f s", s.url, reason, attempt + 1, s.max_retries, wait)
            self._sleep(wait)


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: use our own backoff
        return None
