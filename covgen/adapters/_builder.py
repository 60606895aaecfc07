"""Accumulate line, branch and method facts per file while a reader streams its report."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from itertools import compress

from covgen.adapters._paths import Resolved, language_of
from covgen.model import BranchCount, CoverageReport, FileCoverage, Language, ReportMethod

__all__ = ["ReportBuilder", "FileAccumulator"]


@dataclass(slots=True)
class FileAccumulator:
    exists: bool
    hits: dict[int, int] = field(default_factory=dict)
    #: line → (covered outcomes, total outcomes)
    branches: dict[int, tuple[int, int]] = field(default_factory=dict)
    missing_arcs: set[tuple[int, int]] = field(default_factory=set)
    #: Keyed so that a class or record repeated across sessions is one method, hits summed.
    methods: dict[tuple[str, int | None, str | None], ReportMethod] = field(default_factory=dict)

    def add_line(self, line: int, hits: int) -> None:
        self.hits[line] = self.hits.get(line, 0) + hits

    def add_lines(self, lines: list[int], hits: list[int]) -> None:
        """Add many lines at once; `hits` must not be negative."""
        if not self.hits and len(set(lines)) == len(lines):
            # The common case — a file's only record — stays in C: no Python loop per line.
            self.hits.update(zip(lines, hits))
            return
        known = self.hits
        for line, count in zip(lines, hits):
            known[line] = known.get(line, 0) + count

    def add_method(self, method: ReportMethod) -> None:
        key = (method.name, method.start_line, method.descriptor)
        seen = self.methods.get(key)
        if seen is None:
            self.methods[key] = method
        elif method.hits is not None:
            self.methods[key] = replace(seen, hits=(seen.hits or 0) + method.hits)

    def add_branch(self, line: int, covered: int, total: int) -> None:
        # The same branch point reported twice (a file in two classes, two records) is one
        # point: the union of what ran, not a sum of outcomes.
        previous = self.branches.get(line)
        if previous is None:
            self.branches[line] = (covered, total)
        else:
            self.branches[line] = (max(previous[0], covered), max(previous[1], total))

    def freeze(self, path: str) -> FileCoverage:
        branches = tuple(BranchCount(line, c, t) for line, (c, t) in sorted(self.branches.items()))
        language: Language = language_of(path)  # type: ignore[assignment]
        return FileCoverage(
            path=path,
            language=language,
            # compress() keeps the split in C; hit counts are never negative here.
            covered_lines=tuple(sorted(compress(self.hits.keys(), self.hits.values()))),
            uncovered_lines=tuple(sorted(compress(self.hits.keys(), map(operator.not_, self.hits.values())))),
            partial_branches=tuple(b for b in branches if b.covered < b.total),
            branches=branches,
            methods=tuple(sorted(self.methods.values(), key=lambda m: (m.start_line or 0, m.name))),
            exists=self.exists,
            missing_arcs=tuple(sorted(self.missing_arcs)),
        )


class ReportBuilder:
    """Collect per-file facts keyed by resolved path, merging repeated records."""

    def __init__(self, format_name: str) -> None:
        self.format_name = format_name
        self.files: dict[str, FileAccumulator] = {}
        self.warnings: list[str] = []

    def file(self, resolved: Resolved) -> FileAccumulator:
        entry = self.files.get(resolved.path)
        if entry is None:
            entry = self.files[resolved.path] = FileAccumulator(exists=resolved.exists)
        return entry

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def build(self) -> CoverageReport:
        missing = sorted(path for path, entry in self.files.items() if not entry.exists)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            self.warn(f"the report names {len(missing)} file(s) not found under the root: {shown}")
        files = []
        for path in sorted(self.files):
            # Freed as we go, so the peak holds one file's dict next to the finished tuples.
            files.append(self.files.pop(path).freeze(path))
        return CoverageReport(format=self.format_name, files=tuple(files), warnings=tuple(self.warnings))
