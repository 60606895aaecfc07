"""Several OpenAI-compatible servers as one chat backend (``--model-url`` given more than once).

Each request goes to the live server with the fewest requests in flight — replicas of one model
on different GPUs finish at different speeds, and a blind rotation would pile requests onto the
slow one. A request that fails at the server (connection refused or dropped, 5xx or 429 after
the member's own short retry, no answer in time) is sent again to another server, and the one
that failed is left out for ``down_seconds`` before it is tried again. A request fails only
when every server failed it; a refusal of the prompt itself (HTTP 4xx) is not retried elsewhere,
since every replica would refuse it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from covgen.engines import ChatResult, Message
from covgen.engines.llm import OpenAICompatBackend, _stderr_line
from covgen.errors import BackendError

__all__ = ["BackendPool"]

#: After the first server is up, how long start() waits for the others before going on without them.
START_GRACE = 5.0


class BackendPool:
    """Spread chat requests over `backends` (least in flight first) and fail over between them."""

    def __init__(
        self, backends: Sequence[OpenAICompatBackend], *, down_seconds: float = 30.0, notify: Callable[[str], None] = _stderr_line,
    ) -> None:
        if not backends:
            raise ValueError("a pool needs at least one backend")
        self.backends = list(backends)
        self.model = self.backends[0].model
        self.down_seconds = down_seconds
        self.base_url = ", ".join(backend.base_url for backend in self.backends)
        self.live_via = ""
        self._notify = notify
        self._in_flight = [0] * len(self.backends)
        #: Requests sent to each server, failed ones included (the JSON summary does not show these; tests and benches read them).
        self.sent = [0] * len(self.backends)
        self._down_until = [0.0] * len(self.backends)

    @property
    def max_model_len(self) -> int | None:
        # A prompt must fit on whichever replica takes it.
        lengths = [b.max_model_len for b in self.backends if b.max_model_len is not None]
        return min(lengths) if lengths else None

    async def start(self, wait_seconds: float = 60.0) -> None:
        """Wait for the first server to be up, give the others a moment, go on with those that answered."""
        tasks = [asyncio.ensure_future(backend.start(wait_seconds)) for backend in self.backends]
        try:
            pending = set(tasks)
            while pending and not any(t.done() and not t.cancelled() and t.exception() is None for t in tasks):
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                await asyncio.wait(pending, timeout=START_GRACE)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        problems: list[tuple[int, str]] = []
        for index, task in enumerate(tasks):
            error: BaseException | None = (
                BackendError(f"model server at {self.backends[index].base_url} was not up in time") if task.cancelled() else task.exception()
            )
            if error is not None and not isinstance(error, BackendError):
                raise error
            if error is not None:
                problems.append((index, str(error)))
        up = [i for i in range(len(self.backends)) if i not in dict(problems)]
        if not up:
            raise BackendError(f"none of the {len(self.backends)} model servers answered: " + "; ".join(p for _, p in problems))
        first = self.backends[up[0]]
        self.model, self.live_via = first.model, first.live_via
        for index in up[1:]:
            if self.backends[index].model != self.model:
                raise BackendError(
                    f"model servers serve different models: {first.base_url} {self.model!r}, "
                    f"{self.backends[index].base_url} {self.backends[index].model!r}; pass --model NAME"
                )
        for index, problem in problems:
            # Not up yet (a replica still loading weights): tried again once its pause is over.
            self.backends[index].model = self.model
            self._mark_down(index, problem)

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult:
        tried: set[int] = set()
        failures: list[BackendError] = []
        while (index := self._choose(tried)) is not None:
            tried.add(index)
            self._in_flight[index] += 1
            self.sent[index] += 1
            try:
                return await self.backends[index].chat(messages, n=n, sampling=sampling)
            except BackendError as err:
                if not (err.fatal or err.slug == "timeout"):
                    raise  # the prompt's fault: every replica would refuse it
                failures.append(err)
                self._mark_down(index, str(err))
            finally:
                self._in_flight[index] -= 1
        raise BackendError(
            f"all {len(self.backends)} model servers failed a request: " + "; ".join(dict.fromkeys(str(f) for f in failures)),
            slug=failures[-1].slug if failures else None, fatal=all(f.fatal for f in failures),
        )

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        index = self._choose(set())
        return None if index is None else await self.backends[index].count_tokens(messages)

    async def aclose(self) -> None:
        for backend in self.backends:
            with contextlib.suppress(Exception):
                await backend.aclose()

    def _choose(self, tried: set[int]) -> int | None:
        """The untried server that is up with the fewest requests in flight; else the untried one back soonest."""
        now = time.monotonic()
        untried = [i for i in range(len(self.backends)) if i not in tried]
        up = [i for i in untried if self._down_until[i] <= now]
        if up:
            return min(up, key=lambda i: (self._in_flight[i], self.sent[i], i))
        # Every other server is resting: a last try on each before this request fails.
        return min(untried, key=lambda i: (self._down_until[i], i)) if untried else None

    def _mark_down(self, index: int, problem: str) -> None:
        now = time.monotonic()
        if self._down_until[index] <= now and len(self.backends) > 1:
            self._notify(f"{problem}; sending requests to the other model server(s), trying this one again in {self.down_seconds:g} s")
        self._down_until[index] = max(self._down_until[index], now + self.down_seconds)
