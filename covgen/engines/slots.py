"""Request slots handed out by priority: a semaphore whose waiters are not served in arrival order.

A run queues every gap's first request at once; a repair turn, asked once its gap's first
answers were validated, would wait behind all of them in a first-come queue. The run's tail is
then the chain *last first answer → validation → repair → validation*, with the server nearly
idle while it runs. Serving the conversation that is further along first sends repairs while
the server is still busy with first turns, so the tail holds only the repairs of the last few
first answers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PrioritySlots"]


class PrioritySlots:
    """At most `slots` holders at once; a freed slot goes to the waiter with the highest
    priority, first come first served among equals."""

    def __init__(self, slots: int) -> None:
        self._free = max(1, slots)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def hold(self, priority: int = 0) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        # A free slot means nobody live is waiting: a release hands its slot to a live waiter first.
        if self._free:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._arrivals), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                # The slot was handed over as the waiter was cancelled: pass it on, not lose it.
                self._release()
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1
