"""The production path: an OpenAI-compatible server (vLLM, or any other), over one pooled HTTP client.

Requests run concurrently up to ``--concurrency``, each asking for ``n`` candidates (vLLM
prefills the prompt once and decodes the samples together). Transient failures — connection
errors, 429 and 5xx — are retried with exponential backoff, or after the server's
``Retry-After`` (capped); covgen says so in its own words. A request unanswered after
``--request-timeout`` seconds fails; while one waits, a line says so. Every request body is
built in one place, which redacts every string in it: nothing reaches the server unredacted.

Liveness is vLLM's ``/health`` where the server has it and ``/v1/models`` where it does not
(LiteLLM, llama.cpp, hosted endpoints). Prompts are sized exactly with ``/tokenize`` when the
server has it and the size could matter, and bounded by their UTF-8 bytes when it does not.
Structured output, when asked for, goes through ``response_format`` (vLLM ≥ 0.12 ignores the
removed ``guided_*`` fields silently, so they are never sent) and the answer is checked against
the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from covgen.engines import ChatBackend, ChatResult, Message, Proposal, Target
from covgen.engines.slots import PrioritySlots
from covgen.errors import BackendError
from covgen.extract import extract_structured
from covgen.redact import redact_json

__all__ = ["OpenAICompatBackend", "LlmEngine", "AuditLog", "DEFAULT_MODEL_URL", "DEFAULT_REQUEST_TIMEOUT"]

DEFAULT_MODEL_URL = "http://localhost:8000/v1"
#: A non-streamed answer of 2048 tokens from a busy server takes minutes, not ten.
DEFAULT_REQUEST_TIMEOUT = 300.0
#: Chat-template tokens a message can add around its content (role markers, separators); generous.
_TEMPLATE_TOKENS_PER_MESSAGE = 32
#: …and once per prompt (a default system text some templates insert, the generation prompt).
_TEMPLATE_TOKENS = 256
#: Liveness and tokenize round trips are small; they never wait as long as a completion.
_PROBE_TIMEOUT = 5.0
_TOKENIZE_TIMEOUT = 30.0


def _stderr_line(message: str) -> None:
    sys.stderr.write(f"covgen: {message}\n")
    sys.stderr.flush()


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    """A server's answer, short and on one line, for an error message."""
    text = " ".join(response.content[: limit * 4].decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked to wait (``Retry-After``: seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _NoAnswer(Exception):
    """A request went unanswered for the whole request timeout."""


class OpenAICompatBackend:
    """Chat completions, model discovery, liveness and tokenization against one OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str = DEFAULT_MODEL_URL,
        *,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 32,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        attempts: int = 5,
        retry_wait: float = 0.5,
        retry_after_cap: float = 60.0,
        notify: Callable[[str], None] = _stderr_line,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # vLLM's /health and /tokenize live at the server root, outside /v1.
        self.server_url = self.base_url.removesuffix("/v1")
        self.model = model or ""
        self.request_timeout = request_timeout
        self.attempts = attempts
        self.retry_wait = retry_wait
        self.retry_after_cap = retry_after_cap
        #: The endpoint that showed the server alive: "/health" or ".../models".
        self.live_via = ""
        #: The models ``/v1/models`` listed at start (what ``covgen doctor`` shows).
        self.served: tuple[str, ...] = ()
        self._notify = notify
        self._slots = PrioritySlots(concurrency)
        self._max_model_len: int | None = None
        #: What /health answered once it showed the server has none ("" while it may have one).
        self._no_health = ""
        self._tokenize = True
        #: Completions received; one unanswered before the first means nothing works.
        self._answered = 0
        self._waiting_since: dict[int, float] = {}
        self._last_notice = 0.0
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
        """Wait until the server is alive, learn the model name and context length, or raise BackendError."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.2
        while True:
            models, problem = await self._alive(min(_PROBE_TIMEOUT, max(0.5, deadline - time.monotonic())))
            if not problem:
                break
            if time.monotonic() + delay > deadline:
                raise BackendError(
                    f"model server at {self.base_url} is unreachable ({problem}; still after {wait_seconds:g} s); "
                    "start one with `vllm serve <model>` (or any OpenAI-compatible server) and pass --model-url, "
                    "or use --engine explore"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        if models is None:
            models = await self._request("GET", f"{self.base_url}/models", None)
        entries = [entry for entry in models.get("data") or [] if isinstance(entry, dict)]
        served = [str(entry.get("id")) for entry in entries]
        self.served = tuple(served)
        if not self.model:
            if not served:
                raise BackendError(f"model server at {self.base_url} serves no model (/v1/models is empty)")
            self.model = served[0]
        elif served and self.model not in served:
            raise BackendError(f"model server at {self.base_url} does not serve {self.model!r}; it serves {', '.join(served)}",
                               slug="model-not-served")
        length = next((entry.get("max_model_len") for entry in entries if str(entry.get("id")) == self.model), None)
        if isinstance(length, int) and length > 0:
            self._max_model_len = length  # vLLM says so here; /tokenize, if present, says it again
        await self.count_tokens([{"role": "user", "content": "ping"}])

    async def _alive(self, timeout: float) -> tuple[dict[str, Any] | None, str]:
        """Ask ``/health`` (vLLM), else ``/v1/models``: (the models document if read, "" or what went wrong)."""
        if not self._no_health:
            try:
                response = await self._client.get(f"{self.server_url}/health", timeout=timeout)
            except httpx.HTTPError as err:
                return None, f"/health: {_describe(err)}"
            if response.status_code == 200:
                self.live_via = "/health"
                return None, ""
            if response.status_code not in (404, 405):
                return None, f"/health answered HTTP {response.status_code}: {_snippet(response)}"
            self._no_health = f"/health answered HTTP {response.status_code}"  # not vLLM: LiteLLM, llama.cpp, hosted
        models_url = f"{self.base_url}/models"
        path = httpx.URL(models_url).path
        try:
            response = await self._client.get(models_url, timeout=timeout)
        except httpx.HTTPError as err:
            return None, f"{self._no_health}; {path}: {_describe(err)}"
        if response.status_code in (401, 403):
            raise BackendError(
                f"model server at {self.base_url} refused covgen: {path} answered HTTP {response.status_code}: {_snippet(response)} "
                "(covgen sends COVGEN_API_KEY as its bearer token)", slug="model-auth",
            )
        if response.status_code == 200:
            try:
                document = json.loads(response.content)
            except ValueError:
                document = None
            if isinstance(document, dict):
                self.live_via = path
                return document, ""
            return None, f"{self._no_health}; {path} answered something that is not JSON: {_snippet(response)}"
        return None, f"{self._no_health}; {path} answered HTTP {response.status_code}: {_snippet(response)}"

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult:
        body = {"model": self.model, "messages": list(messages), "n": n, **sampling}
        # A first turn goes before repair turns still waiting: see covgen.engines.slots.
        turns = sum(1 for message in messages if message.get("role") == "user")
        document = await self._request("POST", f"{self.base_url}/chat/completions", body, priority=-turns)
        self._answered += 1
        try:
            choices = document["choices"]
            texts = tuple(str(choice["message"]["content"] or "") for choice in choices)
            usage = document.get("usage") or {}
            details = usage.get("prompt_tokens_details") or {}
            return ChatResult(
                texts=texts,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int(details.get("cached_tokens") or 0),
                truncated=sum(1 for choice in choices if choice.get("finish_reason") == "length"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise BackendError(
                f"model server at {self.base_url} sent a malformed completion ({type(err).__name__}: {err})", slug="bad-answer", fatal=False,
            ) from err

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        if not self._tokenize:
            return None
        try:
            response = await self._send("POST", f"{self.server_url}/tokenize", {"model": self.model, "messages": list(messages)},
                                        timeout=min(_TOKENIZE_TIMEOUT, self.request_timeout))
            document = json.loads(response.content) if response.status_code == 200 else None
            if not isinstance(document, dict):
                raise ValueError(f"HTTP {response.status_code}")
            if document.get("max_model_len"):
                self._max_model_len = int(document["max_model_len"])
            return int(document.get("count", 0))
        except (httpx.HTTPError, _NoAnswer, ValueError, TypeError):
            # No /tokenize (any server but vLLM), or a broken one: prompts are bounded by bytes from now on.
            self._tokenize = False
            return None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, url: str, body: dict[str, Any] | None, priority: int = 0) -> dict[str, Any]:
        """Send with retries; the JSON object the server answered, or BackendError."""
        async with self._slots.hold(priority):
            for attempt in range(1, self.attempts + 1):
                wait: float | None = None
                try:
                    response = await self._send(method, url, body, timeout=self.request_timeout)
                except _NoAnswer:
                    # Waiting that long again would not help; a server that has answered nothing
                    # at all is not serving, and the run ends rather than wait out every gap.
                    nothing = self._answered == 0
                    raise BackendError(
                        f"model server at {self.base_url} did not answer within {self.request_timeout:g} s (--request-timeout)"
                        + ("; it has answered nothing so far" if nothing else ""), slug="timeout", fatal=nothing,
                    ) from None
                except httpx.TransportError as err:
                    problem = _describe(err)
                else:
                    # 429 and 5xx are transient; any other status is an answer (a 400 is the prompt's fault).
                    if response.status_code != 429 and response.status_code < 500:
                        break
                    problem = f"HTTP {response.status_code}"
                    wait = _retry_after(response)
                if attempt == self.attempts:
                    raise BackendError(f"model server at {self.base_url} failed after {self.attempts} attempts: {problem}")
                delay = wait if wait is not None else self.retry_wait * 2 ** (attempt - 1) * random.uniform(1.0, 1.25)
                delay = min(delay, self.retry_after_cap)
                self._say(f"model server at {self.base_url} answered {problem}; retrying in {delay:.1f} s "
                          f"(attempt {attempt + 1} of {self.attempts})", every=1.0)
                await asyncio.sleep(delay)
        if response.status_code != 200:
            raise BackendError(
                f"model server at {self.base_url} refused the request: HTTP {response.status_code}: {_snippet(response, 300)}",
                fatal=False,
            )
        try:
            document = json.loads(response.content)
        except ValueError as err:  # not UTF-8 (UnicodeDecodeError) or not JSON
            raise BackendError(
                f"model server at {self.base_url} answered with something that is not UTF-8 JSON ({type(err).__name__}): "
                f"{_snippet(response, 80)}", slug="bad-answer", fatal=False,
            ) from err
        if not isinstance(document, dict):
            raise BackendError(f"model server at {self.base_url} answered with unexpected JSON: {_snippet(response, 80)}",
                               slug="bad-answer", fatal=False)
        return document

    async def _send(self, method: str, url: str, body: dict[str, Any] | None, *, timeout: float) -> httpx.Response:
        """One HTTP exchange, bounded by `timeout` in total; says so while it waits long.

        The body is built here and only here: every string in it is redacted first.
        """
        content = None if body is None else json.dumps(redact_json(body)).encode("ascii")
        headers = {"Content-Type": "application/json"} if content is not None else None
        call = asyncio.ensure_future(self._client.request(method, url, content=content, headers=headers, timeout=timeout))
        started = time.monotonic()
        key = id(call)
        self._waiting_since[key] = started
        notice_every = min(30.0, timeout / 2)
        try:
            while True:
                remaining = started + timeout - time.monotonic()
                if remaining <= 0:
                    raise _NoAnswer
                done, _ = await asyncio.wait({call}, timeout=min(remaining, notice_every))
                if done:
                    try:
                        return call.result()
                    except httpx.TimeoutException as err:
                        if isinstance(err, httpx.ConnectTimeout):
                            raise
                        raise _NoAnswer from err
                oldest = min(self._waiting_since.values())
                self._say(
                    f"waiting for the model server at {self.base_url}: {len(self._waiting_since)} request(s) unanswered, "
                    f"the oldest for {time.monotonic() - oldest:.0f} s (each gives up after {timeout:g} s; --request-timeout)",
                    every=notice_every,
                )
        finally:
            del self._waiting_since[key]
            call.cancel()
            # Reap it here: an abandoned request must not end as an unretrieved exception.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call

    def _say(self, message: str, *, every: float) -> None:
        # Concurrent requests wait and retry together; one line per interval says it for all.
        now = time.monotonic()
        if now - self._last_notice >= every:
            self._last_notice = now
            self._notify(message)


def _describe(error: httpx.HTTPError) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AuditLog:
    """Append-only JSONL of every request and answer, redacted as it is written (never the API key)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, **entry: Any) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({"time": round(time.time(), 3), **redact_json(entry)}, sort_keys=True) + "\n")


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
        messages = target.pack.messages_for(context, structured=self.structured)
        budget = self._prompt_budget()
        while budget is not None and not _surely_fits(messages, budget):
            # Without /tokenize the byte bound is the count: trimmed until it surely fits.
            tokens = await self.backend.count_tokens(messages)
            smaller = context.without_lowest()
            if (tokens is not None and tokens <= budget) or smaller is None:
                break
            context = smaller
            messages = target.pack.messages_for(context, structured=self.structured)
        return await self._ask(target, messages, attempt=1)

    async def repair(self, target: Target, previous: Proposal, answer_index: int, feedback: str) -> Proposal:
        messages = target.pack.repair_messages(list(previous.messages), previous.answers[answer_index], feedback, structured=self.structured)
        return await self._ask(target, messages, attempt=2)

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def _ask(self, target: Target, messages: list[Message], attempt: int) -> Proposal:
        sampling: dict[str, Any] = {"temperature": self.temperature, "max_completion_tokens": self.max_completion_tokens}
        if self.seed is not None:
            sampling["seed"] = self.seed
        if self.structured:
            name, schema = target.pack.answer_schema()
            sampling["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
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
                    code = target.pack.extract(text)
                sources.append(code)
            else:
                sources.append(target.pack.extract(text))
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


def _surely_fits(messages: Sequence[Message], budget: int) -> bool:
    """True when no tokenizer could make `messages` exceed `budget` (so /tokenize is not asked).

    Byte-level BPE and SentencePiece with byte fallback never spend more than one token per UTF-8
    byte, so bytes plus the chat template's markers bound the count from above. Prompts far from
    the context limit — nearly all of them — skip a round trip before their request.
    """
    upper = sum(len(m["content"].encode("utf-8")) + _TEMPLATE_TOKENS_PER_MESSAGE for m in messages) + _TEMPLATE_TOKENS
    return upper <= budget
