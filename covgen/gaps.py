"""Join a coverage report with the code units of its files into a ranked list of gaps."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import SourceError
from covgen.languages import find_units, supports
from covgen.model import CodeUnit, CoverageReport, FileCoverage, Gap, ReportMethod
from covgen.sources import read_source

__all__ = ["GapSearch", "find_gaps", "rank_key", "selected"]

#: JaCoCo methods a test never targets directly: compiler-made or class initialisers.
_SYNTHETIC_PREFIXES = ("lambda$", "access$", "$deserializeLambda$", "$values")


@dataclass(frozen=True, slots=True)
class GapSearch:
    """The gaps found, and what covgen had to say while finding them."""

    gaps: tuple[Gap, ...]
    warnings: tuple[str, ...]
    #: Gaps before ``max_gaps`` cut the list, so a summary can say how many were left.
    total: int


def find_gaps(
    report: CoverageReport,
    root: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    min_lines: int = 1,
    max_gaps: int | None = None,
    changed: Mapping[str, set[int]] | None = None,
) -> GapSearch:
    """Return the methods with uncovered lines or missed branches, most worth testing first.

    Ranking: public API before private helpers (a test through the public surface is the one a
    reviewer wants), then the most uncovered lines and missed branches, then path and line.
    """
    warnings: list[str] = []
    gaps: list[Gap] = []
    for file in report.files:
        if not selected(file.path, include, exclude):
            continue
        if changed is not None and file.path not in changed:
            continue
        for gap in _file_gaps(file, root, warnings):
            if _size(gap) < min_lines:
                continue
            if changed is not None and not any(gap.start_line <= line <= gap.end_line for line in changed[file.path]):
                continue
            gaps.append(gap)
    gaps.sort(key=rank_key)
    total = len(gaps)
    if max_gaps is not None:
        gaps = gaps[:max_gaps]
    return GapSearch(gaps=tuple(gaps), warnings=tuple(warnings), total=total)


def rank_key(gap: Gap) -> tuple[int, int, str, int]:
    return (0 if gap.is_public else 1, -(len(gap.uncovered_lines) + sum(b.missed for b in gap.missed_branches)), gap.path, gap.start_line)


def _size(gap: Gap) -> int:
    """Uncovered lines, where a method missing only branches counts as one line."""
    return len(gap.uncovered_lines) or (1 if gap.missed_branches else 0)


def selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Say whether `path` passes the include and exclude globs (``*`` crosses ``/``)."""
    if include and not any(fnmatch.fnmatchcase(path, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in exclude)


def _file_gaps(file: FileCoverage, root: Path, warnings: list[str]) -> list[Gap]:
    if not file.uncovered_lines and not file.partial_branches:
        return []
    units = _source_units(file, root, warnings)
    if units is None:
        return _report_gaps(file)
    return [gap for unit in units if (gap := _unit_gap(file, unit)) is not None]


def _source_units(file: FileCoverage, root: Path, warnings: list[str]) -> list[CodeUnit] | None:
    """Parse the file's source, or return None (with a warning) to fall back to report data."""
    if not supports(file.language):
        if file.methods:
            warnings.append(f"{file.path}: no parser for this language; using the report's own method data")
        return None
    if not file.exists:
        warnings.append(f"{file.path}: source not found; using the report's own method data")
        return None
    try:
        return find_units(file.language, read_source(root, file.path), file.path)
    except SourceError as err:
        warnings.append(f"{err}; using the report's own method data")
        return None


def _unit_gap(file: FileCoverage, unit: CodeUnit) -> Gap | None:
    covered = [line for line in file.covered_lines if unit.owns(line)]
    uncovered = tuple(line for line in file.uncovered_lines if unit.owns(line))
    missed = tuple(b for b in file.partial_branches if unit.owns(b.line))
    if not uncovered and not missed:
        return None
    measured = len(covered) + len(uncovered)
    return Gap(
        path=file.path,
        qualname=unit.qualname,
        kind=unit.kind,
        start_line=unit.start_line,
        end_line=unit.end_line,
        signature=unit.signature,
        uncovered_lines=uncovered,
        missed_branches=missed,
        coverage_ratio=len(covered) / measured if measured else 0.0,
        is_public=unit.is_public,
        origin="source",
        unit=unit,
        missing_arcs=tuple(arc for arc in file.missing_arcs if unit.owns(arc[0])),
    )


def _report_gaps(file: FileCoverage) -> list[Gap]:
    """Gaps from the report's own method data, for files covgen cannot parse or find."""
    methods = sorted(
        (m for m in file.methods if m.start_line is not None and not _synthetic(m)),
        key=lambda m: m.start_line or 0,
    )
    last_line = max((*file.covered_lines, *file.uncovered_lines), default=0)
    gaps = []
    for index, method in enumerate(methods):
        start = method.start_line or 0
        end = method.end_line
        if end is None:
            # JaCoCo and old lcov give a start only: a method ends before the next one begins.
            following = [m.start_line or 0 for m in methods[index + 1 :] if (m.start_line or 0) > start]
            end = (min(following) - 1) if following else last_line
        gap = _span_gap(file, method, start, max(start, end))
        if gap is not None:
            gaps.append(gap)
    return gaps


def _span_gap(file: FileCoverage, method: ReportMethod, start: int, end: int) -> Gap | None:
    if method.covered_lines or method.uncovered_lines:
        covered_count = len(method.covered_lines)
        uncovered = method.uncovered_lines
    else:
        covered_count = sum(1 for line in file.covered_lines if start <= line <= end)
        uncovered = tuple(line for line in file.uncovered_lines if start <= line <= end)
    missed = tuple(b for b in file.partial_branches if start <= b.line <= end)
    if not uncovered and not missed:
        return None
    qualname = method.name
    if method.descriptor and method.descriptor.startswith("("):
        from covgen.adapters.jacoco import descriptor_parameter_types

        qualname = f"{method.name}({','.join(descriptor_parameter_types(method.descriptor))})"
    measured = covered_count + len(uncovered)
    last = qualname.rsplit("(", 1)[0].rsplit(".", 1)[-1]
    return Gap(
        path=file.path,
        qualname=qualname,
        kind="constructor" if last == "<init>" else "method" if "." in method.name else "function",
        start_line=start,
        end_line=end,
        signature=qualname,
        uncovered_lines=uncovered,
        missed_branches=missed,
        coverage_ratio=covered_count / measured if measured else 0.0,
        is_public=not any(part.startswith("_") for part in method.name.split(".")),
        origin="report",
    )


def _synthetic(method: ReportMethod) -> bool:
    name = method.name.rsplit(".", 1)[-1]
    return name.startswith(_SYNTHETIC_PREFIXES) or name == "<clinit>"
