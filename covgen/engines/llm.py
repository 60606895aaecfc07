"""The production path: a vLLM server's OpenAI-compatible API, over one pooled HTTP client.

Requests run concurrently up to ``--concurrency``, each asking for ``n`` candidates (vLLM
prefills the prompt once and decodes the samples together). Transient failures — connection
errors, 429 and 5xx — are retried with exponential backoff; anything else is an answer. Prompts
are sized exactly with ``/tokenize`` when the server has it and the size could matter.
Structured output, when asked for,
goes through ``response_format`` (vLLM ≥ 0.12 ignores the removed ``guided_*`` fields silently,
so they are never sent) and the answer is checked against the schema.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import stamina

from covgen.engines import ChatBackend, ChatResult, Message, Proposal, Target
from covgen.errors import BackendError
from covgen.extract import extract_python, extract_structured
from covgen.prompts.pytest_family import TESTS_SCHEMA, messages_for, repair_messages

__all__ = ["OpenAICompatBackend", "LlmEngine", "AuditLog", "DEFAULT_MODEL_URL"]

DEFAULT_MODEL_URL = "http://localhost:8000/v1"
#: Used when the server has no /tokenize: a deliberately pessimistic characters-per-token.
_CHARS_PER_TOKEN = 3.0
#: Chat-template tokens a message can add around its content (role markers, separators); generous.
_TEMPLATE_TOKENS_PER_MESSAGE = 32
#: …and once per prompt (a default system text some templates insert, the generation prompt).
_TEMPLATE_TOKENS = 256


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {response.text[:200]}")
        self.response = response


def _retryable(error: Exception) -> bool:
    return isinstance(error, (httpx.TransportError, _RetryableStatus))


class OpenAICompatBackend:
    """Chat completions, model discovery, readiness and tokenization against one vLLM server."""

    def __init__(
        self,
        base_url: str = DEFAULT_MODEL_URL,
        *,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 32,
        request_timeout: float = 600.0,
        attempts: int = 5,
        retry_wait: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # /health and /tokenize live at the server root, outside /v1.
        self.server_url = self.base_url.removesuffix("/v1")
        self.model = model or ""
        self.attempts = attempts
        self.retry_wait = retry_wait
        self._semaphore = asyncio.Semaphore(concurrency)
        self._max_model_len: int | None = None
        self._tokenize = True
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(request_timeout, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def start(self, wait_seconds: float = 60.0) -> None:
        """Wait for ``/health``, learn the model name and context length, or raise BackendError."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.2
        last_error = "no answer"
        while True:
            try:
                response = await self._client.get(f"{self.server_url}/health", timeout=5.0)
                if response.status_code == 200:
                    break
                last_error = f"/health answered HTTP {response.status_code}"
            except httpx.HTTPError as err:
                last_error = type(err).__name__
            if time.monotonic() + delay > deadline:
                raise BackendError(
                    f"model server at {self.base_url} is unreachable ({last_error} after {wait_seconds:g} s); "
                    "start one with `vllm serve <model>` and pass --model-url, or use --engine explore"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        models = await self._get_json(f"{self.base_url}/models")
        served = [entry.get("id") for entry in models.get("data", []) if isinstance(entry, dict)]
        if not self.model:
            if not served:
                raise BackendError(f"model server at {self.base_url} serves no model (/v1/models is empty)")
            self.model = str(served[0])
        elif served and self.model not in served:
            raise BackendError(f"model server at {self.base_url} does not serve {self.model!r}; it serves {', '.join(map(str, served))}")
        await self.count_tokens([{"role": "user", "content": "ping"}])

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult:
        body = {"model": self.model, "messages": list(messages), "n": n, **sampling}
        document = await self._post_json(f"{self.base_url}/chat/completions", body)
        try:
            texts = tuple(str(choice["message"]["content"] or "") for choice in document["choices"])
        except (KeyError, TypeError) as err:
            raise BackendError(f"model server at {self.base_url} sent a malformed completion ({err})") from err
        usage = document.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return ChatResult(
            texts=texts,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            truncated=sum(1 for choice in document["choices"] if choice.get("finish_reason") == "length"),
        )

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        if not self._tokenize:
            return None
        try:
            response = await self._client.post(
                f"{self.server_url}/tokenize", json={"model": self.model, "messages": list(messages)}, timeout=30.0
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            self._tokenize = False  # an older server or a proxy without it: estimate from now on
            return None
        document = response.json()
        if document.get("max_model_len"):
            self._max_model_len = int(document["max_model_len"])
        return int(document.get("count", 0))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get_json(self, url: str) -> dict[str, Any]:
        return await self._request("GET", url, None)

    async def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", url, body)

    async def _request(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        async with self._semaphore:
            try:
                async for attempt in stamina.retry_context(
                    on=_retryable, attempts=self.attempts, wait_initial=self.retry_wait, wait_max=30.0, timeout=None
                ):
                    with attempt:
                        response = await self._client.request(method, url, json=body)
                        # 429 and 5xx are transient; any other status is an answer (a 400 is the prompt's fault).
                        if response.status_code == 429 or response.status_code >= 500:
                            raise _RetryableStatus(response)
            except (httpx.TransportError, _RetryableStatus) as err:
                raise BackendError(f"model server at {self.base_url} failed after {self.attempts} attempts: {err}") from err
        if response.status_code != 200:
            raise BackendError(
                f"model server at {self.base_url} refused the request: HTTP {response.status_code}: {response.text[:300]}",
                fatal=False,
            )
        try:
            document = response.json()
        except json.JSONDecodeError as err:
            raise BackendError(f"model server at {self.base_url} answered with something that is not JSON") from err
        if not isinstance(document, dict):
            raise BackendError(f"model server at {self.base_url} answered with unexpected JSON")
        return document


class AuditLog:
    """Append-only JSONL of every request and answer (already redacted; never the API key)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, **entry: Any) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({"time": round(time.time(), 3), **entry}, sort_keys=True) + "\n")


class LlmEngine:
    """Prompts a chat backend for pytest modules and extracts them from the answers."""

    name = "llm"

    def __init__(
        self,
        backend: ChatBackend,
        *,
        candidates: int = 4,
        temperature: float = 0.7,
        seed: int | None = 0,
        max_completion_tokens: int = 2048,
        structured: bool = False,
        audit: AuditLog | None = None,
        label: str = "vLLM server",
    ) -> None:
        self.backend = backend
        self.candidates = candidates
        self.temperature = temperature
        self.seed = seed
        self.max_completion_tokens = max_completion_tokens
        self.structured = structured
        self.audit = audit or AuditLog(None)
        self.label = label

    def describe(self) -> str:
        return f"{self.label}, model {self.backend.model}, {self.candidates} candidates per request"

    async def propose(self, target: Target) -> Proposal:
        if target.context is None:
            raise BackendError(f"{target.gap.id}: no prompt context")
        context = target.context
        messages = messages_for(context, structured=self.structured)
        budget = self._prompt_budget()
        while budget is not None and not _surely_fits(messages, budget):
            tokens = await self._tokens(messages)
            smaller = context.without_lowest()
            if tokens <= budget or smaller is None:
                break
            context = smaller
            messages = messages_for(context, structured=self.structured)
        return await self._ask(target, messages, attempt=1)

    async def repair(self, target: Target, previous: Proposal, answer_index: int, feedback: str) -> Proposal:
        messages = repair_messages(list(previous.messages), previous.answers[answer_index], feedback, structured=self.structured)
        return await self._ask(target, messages, attempt=2)

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def _ask(self, target: Target, messages: list[Message], attempt: int) -> Proposal:
        sampling: dict[str, Any] = {"temperature": self.temperature, "max_completion_tokens": self.max_completion_tokens}
        if self.seed is not None:
            sampling["seed"] = self.seed
        if self.structured:
            sampling["response_format"] = {"type": "json_schema", "json_schema": {"name": "pytest_module", "schema": TESTS_SCHEMA}}
        started = time.monotonic()
        result = await self.backend.chat(messages, n=self.candidates, sampling=sampling)
        seconds = time.monotonic() - started
        sources, notes = [], []
        if result.truncated:
            notes.append(f"answers were cut off at --max-tokens ({self.max_completion_tokens}); a larger limit may save them")
        for text in result.texts:
            if self.structured:
                code = extract_structured(text)
                if code is None:
                    notes.append("the server ignored the JSON schema; answer read as plain text")
                    code = extract_python(text)
                sources.append(code)
            else:
                sources.append(extract_python(text))
        self.audit.record(
            gap=target.gap.id, attempt=attempt, model=self.backend.model, messages=messages, sampling=sampling,
            answers=list(result.texts), prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens,
        )
        return Proposal(
            sources=tuple(sources), answers=result.texts, messages=tuple(messages),
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens, seconds=seconds, notes=tuple(dict.fromkeys(notes)),
        )

    def _prompt_budget(self) -> int | None:
        limit = self.backend.max_model_len
        return None if limit is None else limit - self.max_completion_tokens - 16

    async def _tokens(self, messages: list[Message]) -> int:
        exact = await self.backend.count_tokens(messages)
        if exact is not None:
            return exact
        return int(sum(len(m["content"]) for m in messages) / _CHARS_PER_TOKEN) + 8 * len(messages)


def _surely_fits(messages: Sequence[Message], budget: int) -> bool:
    """True when no tokenizer could make `messages` exceed `budget` (so /tokenize is not asked).

    Byte-level BPE and SentencePiece with byte fallback never spend more than one token per UTF-8
    byte, so bytes plus the chat template's markers bound the count from above. Prompts far from
    the context limit — nearly all of them — skip a round trip before their request.
    """
    upper = sum(len(m["content"].encode("utf-8")) + _TEMPLATE_TOKENS_PER_MESSAGE for m in messages) + _TEMPLATE_TOKENS
    return upper <= budget
