"""Progress for long runs: a rich bar on a terminal, one plain line per gap in a CI log."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ProgressReporter"]


class ProgressReporter:
    """Call with (done, total, message) as gaps finish; use as a context manager."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Looked up per call, not bound at import: pytest's capture (or the pytest plugin's
        # session) swaps sys.stderr, and a stream bound at import would be a closed one later.
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._total = 0

    def __enter__(self) -> ProgressReporter:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            progress = Progress(
                TextColumn("covgen"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                console=Console(file=self.stream), transient=True,
            )
            progress.start()
            self._progress = progress
        return self

    def __call__(self, done: int, total: int, message: str) -> None:
        if self._progress is None:
            self.stream.write(f"covgen: [{done}/{total}] {message}\n")
            self.stream.flush()
            return
        if self._task is None or total != self._total:
            self._task = self._progress.add_task("", total=total)
            self._total = total
        self._progress.update(self._task, completed=done, description=message[-60:])

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
