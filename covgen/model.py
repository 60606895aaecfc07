"""Values that flow between covgen's stages: reports, code units, gaps.

All are frozen and slotted, and hold tuples rather than lists, so they are hashable and can be
shared between tasks without copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

__all__ = [
    "Language",
    "BranchCount",
    "ReportMethod",
    "FileCoverage",
    "CoverageReport",
    "CodeUnit",
    "Gap",
    "Verdict",
    "Candidate",
    "TestVerdict",
]

Language = Literal["python", "java", "other"]
UnitKind = Literal["function", "method", "constructor", "property", "staticmethod", "classmethod"]


@dataclass(frozen=True, slots=True)
class BranchCount:
    """How many of the branch outcomes that start on `line` ran."""

    line: int
    covered: int
    total: int

    @property
    def missed(self) -> int:
        return self.total - self.covered


@dataclass(frozen=True, slots=True)
class ReportMethod:
    """A method as the report itself describes it (JaCoCo ``method``, lcov ``FN``, coverage.py region).

    Used when covgen has no source to parse, and to match JaCoCo's JVM descriptors to source.
    """

    name: str
    start_line: int | None
    end_line: int | None = None
    #: JVM descriptor, e.g. ``(Ljava/lang/String;I)V``; Java only.
    descriptor: str | None = None
    #: How often the method was entered, when the report says.
    hits: int | None = None
    #: Lines of the method per the report (coverage.py regions give them exactly).
    covered_lines: tuple[int, ...] = ()
    uncovered_lines: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FileCoverage:
    """What the report says about one source file, after merging every record for it."""

    #: Repo-relative, ``/``-separated when the file was found under the root; else as the report spelt it.
    path: str
    language: Language
    covered_lines: tuple[int, ...]
    uncovered_lines: tuple[int, ...]
    partial_branches: tuple[BranchCount, ...] = ()
    #: Every branch point the report counted, full ones included.
    branches: tuple[BranchCount, ...] = ()
    methods: tuple[ReportMethod, ...] = ()
    #: Whether the file exists under the root (a report may name files the checkout lacks).
    exists: bool = True
    #: Branch arcs (from line, to line) that never ran, when the report says which (coverage.py
    #: JSON and Cobertura); lcov and JaCoCo only count outcomes, so a gain there is in lines.
    missing_arcs: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """One or more reports read and merged into a single view, keyed by repo-relative path."""

    format: str
    files: tuple[FileCoverage, ...]
    warnings: tuple[str, ...] = ()

    def file(self, path: str) -> FileCoverage | None:
        for entry in self.files:
            if entry.path == path:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class CodeUnit:
    """A function, method or constructor found by parsing source."""

    path: str
    language: Language
    #: ``Class.method`` / ``outer.inner`` for Python (coverage.py's region names);
    #: ``Outer.Inner.method`` for Java (``Outer$1`` style for anonymous classes).
    qualname: str
    name: str
    kind: UnitKind
    #: First line, decorators or annotations included.
    start_line: int
    end_line: int
    signature: str
    docstring: str | None = None
    class_name: str | None = None
    #: The enclosing class's constructor signature, which a test needs to build a receiver.
    constructor: str | None = None
    modifiers: tuple[str, ...] = ()
    #: Erased simple parameter types (Java), used to match JaCoCo descriptors.
    parameter_types: tuple[str, ...] = ()
    #: First line a call executes. Python's ``def`` and decorator lines run at import time, so a
    #: test calling the function cannot cover them; coverage.py's regions start here too.
    body_start_line: int = 0
    #: Body spans of units nested inside this one; their lines are theirs, not this unit's.
    nested_spans: tuple[tuple[int, int], ...] = ()
    is_public: bool = True
    package: str | None = None
    imports: tuple[str, ...] = ()

    def owns(self, line: int) -> bool:
        """Say whether `line` belongs to this unit rather than to a unit nested in it."""
        if not max(self.start_line, self.body_start_line) <= line <= self.end_line:
            return False
        return not any(start <= line <= end for start, end in self.nested_spans)


@dataclass(frozen=True, slots=True)
class Gap:
    """A method with lines or branches no test reaches: one target for generation."""

    path: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    signature: str
    uncovered_lines: tuple[int, ...]
    missed_branches: tuple[BranchCount, ...]
    #: Covered share of the method's own measured lines, 0.0 to 1.0.
    coverage_ratio: float
    is_public: bool = True
    #: Where the method's shape came from: ``source`` (parsed) or ``report`` (the report's own data).
    origin: Literal["source", "report"] = "source"
    unit: CodeUnit | None = field(default=None, compare=False)
    #: The missing arcs that start in this method, when the report names them.
    missing_arcs: tuple[tuple[int, int], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.path}::{self.qualname}"


class Verdict(str, Enum):
    """The one verdict every candidate test gets (DESIGN.md, "The acceptance funnel")."""

    ACCEPTED = "ACCEPTED"
    SYNTAX_ERROR = "SYNTAX_ERROR"
    COMPILE_ERROR = "COMPILE_ERROR"
    FAILED = "FAILED"
    FLAKY = "FLAKY"
    NO_GAIN = "NO_GAIN"
    TIMEOUT = "TIMEOUT"
    UNSAFE = "UNSAFE"
    REDUNDANT = "REDUNDANT"
    #: Passes, but changes the outcome of the user's own tests when run before them.
    POLLUTING = "POLLUTING"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One test module an engine proposed for one gap."""

    id: str
    gap_id: str
    engine: str
    #: 1 for a first proposal, 2+ for answers to repair feedback.
    attempt: int
    source: str


@dataclass(frozen=True, slots=True)
class TestVerdict:
    """What the funnel decided about one test of a candidate (or the whole module, test_name "")."""

    candidate_id: str
    gap_id: str
    test_name: str
    verdict: Verdict
    message: str = ""
    gained_lines: tuple[int, ...] = ()
    gained_arcs: tuple[tuple[int, int], ...] = ()

    @property
    def gain(self) -> int:
        return len(self.gained_lines) + len(self.gained_arcs)
