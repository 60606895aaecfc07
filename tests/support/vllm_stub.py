"""A real HTTP server on 127.0.0.1 that speaks vLLM's OpenAI-compatible protocol from a script.

No model runs here and nothing it returns measures any model's quality. It exists so covgen's
model path is exercised over real sockets: ``/health``, ``/v1/models``, ``/tokenize`` and
``/v1/chat/completions`` with ``n`` choices and ``usage`` (including cached prompt tokens, from a
simulated prefix cache of 16-token blocks). Answers come from a script keyed by the method named
in the prompt's "Code under test" heading, one list of answers per attempt.

Switches make it misbehave the way other servers do: no ``/health`` or ``/tokenize`` (LiteLLM,
llama.cpp, hosted endpoints), ``/v1/models`` refusing, 429 with ``Retry-After``, an answer that
is not UTF-8, a completion that never comes. Every request body is kept as the bytes received.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FOCAL = re.compile(r"## Code under test: (\S+) \(")
_BLOCK = 16
_CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // _CHARS_PER_TOKEN)


@dataclass
class StubState:
    model: str = "stub/coder-instruct"
    max_model_len: int = 32768
    #: qualname → answers per attempt (attempt 1 = first prompt, 2 = first repair, …).
    script: dict[str, list[list[str]]] = field(default_factory=dict)
    default_answer: str = "I cannot help with that."
    healthy: bool = True
    #: False: no /health route at all (404), like any OpenAI-compatible server but vLLM.
    health_route: bool = True
    tokenize: bool = True
    #: /v1/models answers this status (401: a server that wants an API key).
    models_status: int = 200
    #: Fail this many chat requests with HTTP 503 before answering (retry tests).
    fail_next: int = 0
    #: Answer this many chat requests with HTTP 429 and this Retry-After header first.
    throttle_next: int = 0
    retry_after: str = "1"
    #: Answer chat requests with these raw bytes (HTTP 200) instead of a completion.
    raw_answer: bytes | None = None
    #: Accept chat requests and never answer them (until the server shuts down).
    hang: bool = False
    #: Die after answering this many chat requests: every later one (and /health) has its
    #: connection dropped without an answer, like a replica that crashed mid-run.
    die_after: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: (path, body bytes, monotonic time) of every POST, as received.
    raw_requests: list[tuple[str, bytes, float]] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)
    tokenize_requests: int = 0
    blocks_seen: set[int] = field(default_factory=set)
    #: Optional hook deciding how long a completion takes (the bench's continuous-batching model).
    delay: Callable[[int, int, int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> list[str]:
        messages = body["messages"]
        first_user = next(m["content"] for m in messages if m["role"] == "user")
        match = _FOCAL.search(first_user)
        attempt = sum(1 for m in messages if m["role"] == "user")
        answers = self.script.get(match.group(1), []) if match else []
        chosen = answers[min(attempt, len(answers)) - 1] if answers else [self.default_answer]
        n = int(body.get("n", 1))
        return [chosen[i % len(chosen)] for i in range(n)]

    def cached_prefix_tokens(self, prompt: str) -> int:
        """Tokens of `prompt` served from the cache: its leading full blocks some earlier prompt had.

        Like vLLM, a block is identified by a hash chained over every block before it, so a
        block is a hit only when the whole prefix up to it matches.
        """
        chars = _BLOCK * _CHARS_PER_TOKEN
        cached, chained, hit = 0, 0, True
        for start in range(0, len(prompt) - chars + 1, chars):
            chained = hash((chained, prompt[start:start + chars]))
            if hit and chained in self.blocks_seen:
                cached += _BLOCK
            else:
                hit = False
                self.blocks_seen.add(chained)
        return cached


def _render(messages: list[dict[str, str]]) -> str:
    return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(document).encode(), headers)

    def _send_bytes(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.state.die_after is not None and len(self.state.requests) >= self.state.die_after:
            self.close_connection = True
        elif self.path == "/health" and self.state.health_route:
            self._send(200 if self.state.healthy else 503, {})
        elif self.path == "/v1/models" and self.state.models_status != 200:
            self._send(self.state.models_status, {"error": {"message": "Invalid API key", "code": self.state.models_status}})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.state.model, "object": "model", "max_model_len": self.state.max_model_len}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.loads(raw or b"{}")
        state = self.state
        with state.lock:
            state.raw_requests.append((self.path, raw, time.monotonic()))
        if self.path == "/tokenize":
            with state.lock:
                state.tokenize_requests += 1
            if not state.tokenize:
                self._send(404, {"error": "not found"})
                return
            text = _render(body["messages"]) if "messages" in body else body.get("prompt", "")
            self._send(200, {"count": estimate_tokens(text), "max_model_len": state.max_model_len, "tokens": []})
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"})
            return
        with state.lock:
            state.requests.append(body)
            dead = state.die_after is not None and len(state.requests) > state.die_after
            failing = state.fail_next > 0
            throttled = not failing and state.throttle_next > 0
            state.fail_next -= failing
            state.throttle_next -= throttled
        if dead:
            self.close_connection = True
            return
        if failing:
            self._send(503, {"error": "overloaded"})
            return
        if throttled:
            self._send(429, {"error": "rate limited"}, {"Retry-After": state.retry_after})
            return
        if state.hang:
            state.closing.wait()
            return
        if state.raw_answer is not None:
            self._send_bytes(200, state.raw_answer)
            return
        if body.get("model") != state.model:
            self._send(404, {"error": f"model {body.get('model')!r} not found"})
            return
        prompt = _render(body["messages"])
        prompt_tokens = estimate_tokens(prompt)
        if prompt_tokens > state.max_model_len:
            self._send(400, {"error": "prompt too long"})
            return
        with state.lock:
            cached = state.cached_prefix_tokens(prompt)
        texts = state.answer(body)
        # Like the server: an answer longer than the completion limit stops there, "length".
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        reasons = ["stop"] * len(texts)
        if limit:
            for i, text in enumerate(texts):
                if estimate_tokens(text) > limit:
                    texts[i], reasons[i] = text[: limit * _CHARS_PER_TOKEN], "length"
        completion_tokens = sum(estimate_tokens(t) for t in texts)
        if state.delay is not None:
            state.delay(prompt_tokens - cached, completion_tokens, len(texts))
        self._send(200, {
            "id": f"chatcmpl-{len(state.requests)}", "object": "chat.completion", "created": int(time.time()), "model": state.model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": reasons[i]} for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens, "prompt_tokens_details": {"cached_tokens": cached}},
        })


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 refuses a burst of concurrent connections, which a
    # client then has to retry; vLLM's server (uvicorn) listens with a backlog of 2048.
    request_queue_size = 2048
    daemon_threads = True


class StubServer:
    """Start with ``with StubServer(state) as server:``; ``server.url`` is the /v1 base URL."""

    def __init__(self, state: StubState) -> None:
        handler = type("Handler", (_Handler,), {"state": state})
        self.state = state
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.closing.set()  # lets hanging handlers go
        self.httpd.shutdown()
        self.httpd.server_close()
