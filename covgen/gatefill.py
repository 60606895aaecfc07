"""``covgen gate --fill``: write the missing tests for the changed lines, then measure again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from covgen.errors import UsageError
from covgen.gate import GateResult
from covgen.model import CoverageReport

if TYPE_CHECKING:
    from covgen.api import RunPlan
    from covgen.config import Settings
    from covgen.pipeline import RunSummary

__all__ = ["plan_fill", "remeasure"]


def plan_fill(root: Path, settings: Settings, reports: Sequence[Path], result: GateResult) -> RunPlan:
    """Plan a run over exactly the methods whose changed lines or branches the gate found uncovered.

    ``plan_run`` scoped to the diff also keeps methods that were touched but whose misses are on
    unchanged lines; the gate does not count those, so generating for them would not move it.
    """
    from covgen import api

    if result.diff is None:
        raise UsageError("--fill needs --diff REF: it fills the changed methods")
    plan = api.plan_run(root, settings, reports=reports, diff_ref=result.diff.ref)
    wanted = {(file.path, method.name) for file in result.diff.files for method in file.methods}
    return replace(plan, gaps=tuple(gap for gap in plan.gaps if (gap.path, gap.qualname) in wanted))


def remeasure(root: Path, settings: Settings, report: CoverageReport, summary: RunSummary, test_cmd: str | None) -> tuple[CoverageReport, str]:
    """Coverage after the fill, and how it was measured.

    With the project's test command it is measured for real, in the sandbox, written tests
    included. Without one, the lines the written tests were proven to cover in covgen's clean run
    are added to the report the user gave; branch counts stay as the report had them.
    """
    if test_cmd:
        from covgen.api import python_of
        from covgen.measure import measure_suite

        measured = measure_suite(root, test_cmd, python_of(settings))
        # The report the user gave decides what is measured (their --source, their omit list):
        # the suite run here also measures test files, which would flatter the totals.
        scope = {file.path for file in report.files}
        kept = replace(measured, files=tuple(file for file in measured.files if file.path in scope))
        return kept, f"re-measured with {test_cmd!r} in the sandbox, over the files the report measured"
    return with_gains(report, summary), "the report plus the lines the written tests covered in covgen's clean run (branches as reported)"


def with_gains(report: CoverageReport, summary: RunSummary) -> CoverageReport:
    """The report with every line a kept test gained moved from uncovered to covered."""
    gained: dict[str, set[int]] = {}
    for gap in summary.gaps:
        if gap.accepted_tests:
            gained.setdefault(gap.gap_id.split("::", 1)[0], set()).update(gap.gained_lines)
    files = []
    for file in report.files:
        lines = gained.get(file.path, set()).intersection(file.uncovered_lines)
        if lines:
            file = replace(file, covered_lines=tuple(sorted({*file.covered_lines, *lines})),
                           uncovered_lines=tuple(n for n in file.uncovered_lines if n not in lines))
        files.append(file)
    return replace(report, files=tuple(files))
