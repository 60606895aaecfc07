"""Test runners: run candidate tests in the sandbox and report per-test outcomes and coverage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from covgen.confirm import CleanRun
    from covgen.runners.pytest_runner import PytestRun
    from covgen.sandbox import Workspace

__all__ = ["TestRunner", "Stall", "records"]


class TestRunner(Protocol):
    """What the funnel and the confirmation need of a language's runner (pytest's, the JVM's)."""

    workspace: Workspace
    #: Test libraries on the classpath the tests run with (prompts name only these); () for Python.
    test_libraries: tuple[str, ...]

    async def check_interpreter(self) -> None:
        """Fail early, with the fix, when the project's tools cannot run validation."""

    async def run(self, tests: Sequence[str], *, coverage_of: Sequence[str] = (), per_test: bool = True,
                  background: bool = False) -> PytestRun:
        """Run test files (workspace-relative) or single tests (``file::test``) in the workspace's sandbox;
        `background` runs it at a lower CPU priority (:data:`covgen.sandbox.BACKGROUND`)."""

    async def clean_run(self, contents: dict[str, str], tests: Sequence[str], measured: Sequence[str],
                        coverage_of: Sequence[str]) -> CleanRun:
        """Run `tests` with `contents` (root-relative path → text) added to a fresh copy, outside
        covgen's instrumentation; give each of `measured` its own coverage of `coverage_of`."""


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
