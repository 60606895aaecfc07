"""The pre-merge gate: total and diff coverage against thresholds, every uncovered changed line named.

Diff coverage counts the executable lines (those the report measured) among the lines changed
since the merge base, as diff-cover does: a changed comment or blank line is not a line to cover,
a renamed file's unmoved lines are not changes, a deleted file has nothing left to cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.diffscope import DiffChanges
from covgen.errors import SourceError, UsageError
from covgen.gaps import selected
from covgen.languages import find_units, supports
from covgen.model import CodeUnit, CoverageReport, FileCoverage

__all__ = [
    "Ratio",
    "BranchMiss",
    "MethodMiss",
    "FileMiss",
    "DiffCoverage",
    "Threshold",
    "Thresholds",
    "GateResult",
    "Filled",
    "evaluate_gate",
    "line_ranges",
    "MODULE_LEVEL",
]

#: The group for changed lines outside every method (module code, class bodies, field initialisers).
MODULE_LEVEL = "(module level)"


@dataclass(frozen=True, slots=True)
class Ratio:
    """Covered out of total; a percentage only where there is something to count."""

    covered: int
    total: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.covered / self.total, 2) if self.total else None


@dataclass(frozen=True, slots=True)
class BranchMiss:
    """A branch point on a changed line where some outcomes never ran."""

    line: int
    covered: int
    total: int
    #: Lines the branch never jumped to, where the report names them (coverage.py JSON,
    #: Cobertura from coverage.py); negative for "exit from the function". Empty for lcov, JaCoCo.
    missing_targets: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MethodMiss:
    """The uncovered changed lines and missed changed branches of one method."""

    name: str
    start_line: int | None
    end_line: int | None
    uncovered_lines: tuple[int, ...]
    missed_branches: tuple[BranchMiss, ...]

    @property
    def weight(self) -> int:
        """How much this method leaves untested: uncovered lines plus missed branch outcomes."""
        return len(self.uncovered_lines) + sum(b.total - b.covered for b in self.missed_branches)


@dataclass(frozen=True, slots=True)
class FileMiss:
    """One changed file with something left to cover, grouped by method."""

    path: str
    methods: tuple[MethodMiss, ...]
    renamed_from: str | None = None


@dataclass(frozen=True, slots=True)
class DiffCoverage:
    """Coverage of the executable lines and branch outcomes changed since the merge base with `ref`."""

    ref: str
    lines: Ratio
    branches: Ratio
    files: tuple[FileMiss, ...]
    #: Changed files the report measured at least one changed line of.
    measured_files: int

    @property
    def uncovered_lines(self) -> int:
        return sum(len(m.uncovered_lines) for f in self.files for m in f.methods)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the user asked the gate to hold; None means not asked."""

    fail_under: float | None = None
    diff_fail_under: float | None = None
    every_changed_line: bool = False


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold checked: its name, what it needs, what the report has."""

    name: str
    required: float
    actual: float | None
    passed: bool


@dataclass(frozen=True, slots=True)
class Filled:
    """What ``--fill`` did before the gate measured again."""

    gaps_targeted: int
    tests_accepted: int
    files_written: tuple[str, ...]
    #: How coverage was measured after writing the tests, in words.
    remeasured: str
    #: The gate as it stood before the fill.
    before: GateResult


@dataclass(frozen=True, slots=True)
class GateResult:
    """Everything the gate measured and decided; outputs render this and nothing else."""

    totals_lines: Ratio
    totals_branches: Ratio
    diff: DiffCoverage | None
    thresholds: tuple[Threshold, ...]
    warnings: tuple[str, ...] = ()
    filled: Filled | None = None

    @property
    def passed(self) -> bool:
        return all(threshold.passed for threshold in self.thresholds)


def evaluate_gate(
    report: CoverageReport,
    root: Path,
    thresholds: Thresholds,
    *,
    changes: DiffChanges | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> GateResult:
    """Measure the report (and, given `changes`, its changed lines) and check the thresholds."""
    files = [f for f in report.files if selected(f.path, include, exclude)]
    totals_lines = Ratio(sum(len(f.covered_lines) for f in files), sum(len(f.covered_lines) + len(f.uncovered_lines) for f in files))
    totals_branches = Ratio(sum(b.covered for f in files for b in f.branches), sum(b.total for f in files for b in f.branches))
    warnings: list[str] = []
    diff = _diff_coverage(files, root, changes, warnings) if changes is not None else None
    checks = []
    if thresholds.fail_under is not None:
        checks.append(_at_least("total lines", thresholds.fail_under, totals_lines))
    if thresholds.diff_fail_under is not None or thresholds.every_changed_line:
        if diff is None:
            raise UsageError("--diff-fail-under and --every-changed-line need --diff REF")
        if thresholds.diff_fail_under is not None:
            checks.append(_at_least("diff lines", thresholds.diff_fail_under, diff.lines))
        if thresholds.every_changed_line:
            uncovered = diff.lines.total - diff.lines.covered
            checks.append(Threshold("every changed line", 100.0, diff.lines.percent, uncovered == 0))
    return GateResult(totals_lines, totals_branches, diff, tuple(checks), tuple(warnings))


def _at_least(name: str, required: float, ratio: Ratio) -> Threshold:
    # Nothing to measure (a diff of comments only) cannot fall short, as in diff-cover. The
    # percentage shown (two decimals) is the one compared, as coverage.py's fail_under does, so
    # "55.56% (required 55.56%)" never fails.
    actual = ratio.percent
    return Threshold(name, required, actual, actual is None or actual >= required)


def _diff_coverage(files: Sequence[FileCoverage], root: Path, changes: DiffChanges, warnings: list[str]) -> DiffCoverage:
    covered = total = branch_covered = branch_total = measured_files = 0
    misses: list[FileMiss] = []
    in_report = {f.path for f in files}
    for file in files:
        changed = changes.lines.get(file.path)
        if not changed:
            continue
        executable = changed.intersection((*file.covered_lines, *file.uncovered_lines))
        if not executable and not any(b.line in changed for b in file.branches):
            continue
        measured_files += 1
        uncovered = sorted(changed.intersection(file.uncovered_lines))
        covered += len(executable) - len(uncovered)
        total += len(executable)
        branches = [b for b in file.branches if b.line in changed]
        branch_covered += sum(b.covered for b in branches)
        branch_total += sum(b.total for b in branches)
        missed = [
            BranchMiss(b.line, b.covered, b.total, tuple(to for frm, to in file.missing_arcs if frm == b.line))
            for b in branches if b.covered < b.total
        ]
        if uncovered or missed:
            methods = _by_method(file, root, uncovered, missed, warnings)
            misses.append(FileMiss(file.path, methods, changes.renamed.get(file.path)))
    unmeasured = sorted(p for p in changes.lines if p not in in_report and _is_source(root, p))
    if unmeasured:
        shown = ", ".join(unmeasured[:5]) + (f" and {len(unmeasured) - 5} more" if len(unmeasured) > 5 else "")
        warnings.append(f"{len(unmeasured)} changed source file(s) are not in the report, so their lines are not counted: {shown}")
    return DiffCoverage(changes.ref, Ratio(covered, total), Ratio(branch_covered, branch_total), tuple(misses), measured_files)


def _is_source(root: Path, path: str) -> bool:
    """A changed file a report should have measured: source, not a test (reports leave tests out)."""
    tests = any(part.startswith("test") for part in path.split("/"))
    return path.endswith((".py", ".java")) and not tests and (root / path).is_file()


def _by_method(file: FileCoverage, root: Path, uncovered: Sequence[int], missed: Sequence[BranchMiss], warnings: list[str]) -> tuple[MethodMiss, ...]:
    """Group the file's misses under the method that owns each line, module level for the rest."""
    units = _units(file, root, warnings)
    groups: dict[str, tuple[CodeUnit | None, list[int], list[BranchMiss]]] = {}
    for line, branch in [*((n, None) for n in uncovered), *((b.line, b) for b in missed)]:
        unit = _owner(units, line)
        key = unit.qualname if unit is not None else MODULE_LEVEL
        entry = groups.setdefault(key, (unit, [], []))
        if branch is None:
            entry[1].append(line)
        else:
            entry[2].append(branch)
    methods = [
        MethodMiss(name, unit.start_line if unit else None, unit.end_line if unit else None, tuple(sorted(lines)), tuple(branches))
        for name, (unit, lines, branches) in groups.items()
    ]
    return tuple(sorted(methods, key=lambda m: (m.start_line or 0, m.name)))


def _units(file: FileCoverage, root: Path, warnings: list[str]) -> list[CodeUnit]:
    if not supports(file.language) or not file.exists:
        return []
    from covgen.sources import read_source

    try:
        return find_units(file.language, read_source(root, file.path), file.path)
    except SourceError as err:
        warnings.append(f"{err}; its changed lines are listed without their methods")
        return []


def _owner(units: Iterable[CodeUnit], line: int) -> CodeUnit | None:
    # `owns` leaves a nested function's lines to it, so at most one unit owns a line; a method's
    # signature line (a Java declaration JaCoCo counts) belongs to the innermost unit spanning it.
    owners = [unit for unit in units if unit.owns(line)]
    if owners:
        return owners[0]
    spanning = [unit for unit in units if unit.start_line <= line <= unit.end_line]
    return min(spanning, key=lambda u: u.end_line - u.start_line, default=None)


def line_ranges(lines: Iterable[int]) -> list[tuple[int, int]]:
    """Fold sorted line numbers into runs of consecutive lines: 3, 4, 5, 9 → (3, 5), (9, 9)."""
    runs: list[tuple[int, int]] = []
    for line in sorted(set(lines)):
        if runs and runs[-1][1] == line - 1:
            runs[-1] = (runs[-1][0], line)
        else:
            runs.append((line, line))
    return runs
