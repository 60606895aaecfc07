"""Await independent pieces of work at once, and never leave one running when another fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

__all__ = ["side_by_side"]

T = TypeVar("T")


async def side_by_side(work: Sequence[Awaitable[T]]) -> list[T]:
    """Await every piece of `work` at once and return their results in order.

    If one fails (or this is cancelled), the others are stopped and reaped before the error goes
    on: a sandboxed process must not outlive the run that started it, or its workspace.
    """
    tasks = [asyncio.ensure_future(piece) for piece in work]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
