"""Test runners: run candidate tests in the sandbox and report per-test outcomes and coverage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Stall", "records"]


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects a probe wrote to `path`, one a line; a line cut short by a kill is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                yield entry


class Stall:
    """Tell a hung test process from a slow one by the results file its probe writes a line to per event.

    `limits` maps the last event seen (``start`` of a test, ``collect_start`` of a module's
    import…) to the seconds the process may then stay quiet; after any other event, `default`
    (None: never stalled).
    """

    def __init__(self, results: Path, limits: Mapping[str, float], default: float | None = None) -> None:
        self.results = results
        self.limits = dict(limits)
        self.default = default
        self.offset = 0
        self.last_event = ""
        self.changed_at = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        try:
            with self.results.open("rb") as stream:
                stream.seek(self.offset)
                fresh = stream.read()
        except OSError:
            fresh = b""
        complete = fresh[: fresh.rfind(b"\n") + 1]  # a line still being written is read next time
        if complete:
            self.offset += len(complete)
            self.changed_at = now
            try:
                self.last_event = str(json.loads(complete.splitlines()[-1]).get("event", ""))
            except (ValueError, AttributeError):
                self.last_event = ""
        limit = self.limits.get(self.last_event, self.default)
        return limit is not None and now - self.changed_at > limit
