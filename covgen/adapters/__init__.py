"""Coverage report readers: each turns one report format into a :class:`CoverageReport`.

The format is told by the content, never by the file name: CI artifacts are renamed freely.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from covgen.adapters._paths import PathResolver
from covgen.adapters.cobertura import CoberturaReader
from covgen.adapters.coveragepy import CoveragePyJsonReader
from covgen.adapters.jacoco import JacocoReader
from covgen.adapters.lcov import LcovReader
from covgen.errors import ReportError, UsageError
from covgen.model import BranchCount, CoverageReport, FileCoverage, ReportMethod

__all__ = ["ReportReader", "READERS", "sniff", "read_report", "read_reports", "merge_reports"]

_SNIFF_BYTES = 64 * 1024


class ReportReader(Protocol):
    """What every report format provides."""

    name: str

    def sniff(self, head: bytes) -> bool:
        """Say whether a file starting with `head` is in this format."""

    def read(self, path: Path, resolver: PathResolver) -> CoverageReport:
        """Read the whole report, streaming where the format allows."""


READERS: dict[str, ReportReader] = {
    reader.name: reader
    for reader in (JacocoReader(), CoberturaReader(), CoveragePyJsonReader(), LcovReader())
}


def sniff(path: Path) -> ReportReader:
    """Pick the reader for `path` from its first bytes."""
    head = _head(path)
    if not head.strip():
        raise ReportError(f"{path}: empty file; not a coverage report (pass --format to read it as an empty one)", slug="empty")
    for reader in READERS.values():
        if reader.sniff(head):
            return reader
    if b"clover=" in head[:4096]:
        raise ReportError(f"{path}: Clover XML is not supported; export Cobertura, JaCoCo or lcov", slug="unknown-format")
    raise ReportError(
        f"{path}: unknown report format (expected lcov, Cobertura XML, JaCoCo XML or coverage.py JSON)",
        slug="unknown-format",
    )


def read_report(
    path: Path | str,
    fmt: str | None = None,
    root: Path | str | None = None,
    source_roots: Sequence[str] = ("src/main/java", "src"),
) -> CoverageReport:
    """Read one report, paths made relative to `root` (default: the current directory)."""
    return read_reports([path], fmt=fmt, root=root, source_roots=source_roots)


def read_reports(
    paths: Sequence[Path | str],
    fmt: str | None = None,
    root: Path | str | None = None,
    source_roots: Sequence[str] = ("src/main/java", "src"),
) -> CoverageReport:
    """Read and merge several reports (a Python lcov and a JaCoCo XML, or one per CI shard)."""
    resolver = PathResolver(Path(root) if root is not None else Path.cwd(), source_roots)
    if fmt is not None and fmt not in READERS:
        raise UsageError(f"unknown --format {fmt!r}; choose from {', '.join(sorted(READERS))}")
    reports = []
    # Readers build millions of small objects and no reference cycles; the cyclic collector
    # would only rescan them over and over (about a third of the time on a 165 MB report).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for raw in paths:
            reports.append(_read_one(Path(raw), fmt, resolver))
    finally:
        if collecting:
            gc.enable()
    report = reports[0] if len(reports) == 1 else merge_reports(reports)
    notes = resolver.mapping_notes()
    return replace(report, warnings=(*report.warnings, *notes)) if notes else report


def _read_one(path: Path, fmt: str | None, resolver: PathResolver) -> CoverageReport:
    if not path.is_file():
        raise ReportError(f"{path}: no such report file" if not path.exists() else f"{path}: not a file", slug="no-report")
    try:
        if fmt is not None and path.stat().st_size == 0:
            return CoverageReport(format=fmt, files=())
        reader = READERS[fmt] if fmt is not None else sniff(path)
        return reader.read(path, resolver)
    except OSError as err:
        raise ReportError(f"{path}: cannot read ({err.strerror or err})", slug="io") from err


def merge_reports(reports: Sequence[CoverageReport]) -> CoverageReport:
    """Union several reports: a line covered in any of them is covered."""
    by_path: dict[str, list[FileCoverage]] = {}
    for report in reports:
        for entry in report.files:
            by_path.setdefault(entry.path, []).append(entry)
    files = tuple(_merge_files(entries) for _, entries in sorted(by_path.items()))
    warnings = tuple(dict.fromkeys(w for report in reports for w in report.warnings))
    formats = "+".join(dict.fromkeys(report.format for report in reports))
    return CoverageReport(format=formats, files=files, warnings=warnings)


def _merge_files(entries: list[FileCoverage]) -> FileCoverage:
    if len(entries) == 1:
        return entries[0]
    covered = set().union(*(e.covered_lines for e in entries))
    measured = covered.union(*(e.uncovered_lines for e in entries))
    branches: dict[int, tuple[int, int]] = {}
    for entry in entries:
        for branch in entry.branches:
            seen = branches.get(branch.line, (0, 0))
            branches[branch.line] = (max(seen[0], branch.covered), max(seen[1], branch.total))
    merged = tuple(BranchCount(line, c, t) for line, (c, t) in sorted(branches.items()))
    methods: dict[tuple[str, int | None], ReportMethod] = {}
    for entry in entries:
        for method in entry.methods:
            methods.setdefault((method.name, method.start_line), method)
    first = entries[0]
    return FileCoverage(
        path=first.path,
        language=first.language,
        covered_lines=tuple(sorted(covered)),
        uncovered_lines=tuple(sorted(measured - covered)),
        partial_branches=tuple(b for b in merged if b.covered < b.total),
        branches=merged,
        methods=tuple(methods.values()),
        exists=any(e.exists for e in entries),
        missing_arcs=tuple(sorted(set().union(*(e.missing_arcs for e in entries)) - _taken_arcs(entries))),
    )


def _taken_arcs(entries: list[FileCoverage]) -> set[tuple[int, int]]:
    """Arcs missing in one report but whose line is fully covered in another ran after all."""
    full = {b.line for e in entries for b in e.branches if b.covered == b.total}
    return {arc for e in entries for arc in e.missing_arcs if arc[0] in full}


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(_SNIFF_BYTES)
    except OSError as err:
        raise ReportError(f"{path}: cannot read ({err.strerror or err})", slug="io") from err
