"""What ``covgen gate`` reports on the console, and its ``covgen.gate`` JSON document.

JSON version history — bump on any change a consumer could notice:
  1: totals, diff (files → methods → uncovered lines and missed branches), thresholds, passed, filled.
"""

from __future__ import annotations

from typing import Any, TextIO

from covgen.gate import BranchMiss, GateResult, MethodMiss, Ratio, line_ranges

__all__ = ["SCHEMA", "gate_document", "print_gate", "describe_lines", "describe_branch"]

SCHEMA = "covgen.gate/1"


def _ratio(ratio: Ratio) -> dict[str, Any]:
    return {"covered": ratio.covered, "total": ratio.total, "percent": ratio.percent}


def _branch(branch: BranchMiss) -> dict[str, Any]:
    return {"line": branch.line, "covered": branch.covered, "total": branch.total, "missing_targets": list(branch.missing_targets)}


def _method(method: MethodMiss) -> dict[str, Any]:
    return {"name": method.name, "start_line": method.start_line, "end_line": method.end_line,
            "uncovered_lines": list(method.uncovered_lines), "missed_branches": [_branch(b) for b in method.missed_branches]}


def gate_document(result: GateResult) -> dict[str, Any]:
    diff = result.diff
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "totals": {"lines": _ratio(result.totals_lines), "branches": _ratio(result.totals_branches)},
        "diff": None if diff is None else {
            "ref": diff.ref,
            "lines": _ratio(diff.lines),
            "branches": _ratio(diff.branches),
            "files": [{"path": f.path, "renamed_from": f.renamed_from, "methods": [_method(m) for m in f.methods]} for f in diff.files],
        },
        "thresholds": [{"name": t.name, "required": t.required, "actual": t.actual, "passed": t.passed} for t in result.thresholds],
        "passed": result.passed,
        "warnings": list(result.warnings),
    }
    filled = result.filled
    if filled is not None:
        before = filled.before
        document["filled"] = {
            "gaps_targeted": filled.gaps_targeted,
            "tests_accepted": filled.tests_accepted,
            "files_written": list(filled.files_written),
            "remeasured": filled.remeasured,
            "before": {
                "totals": {"lines": _ratio(before.totals_lines), "branches": _ratio(before.totals_branches)},
                "diff_lines": None if before.diff is None else _ratio(before.diff.lines),
                "passed": before.passed,
            },
        }
    return document


def describe_lines(lines: tuple[int, ...]) -> str:
    """``12-14, 20`` for lines 12, 13, 14 and 20."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in line_ranges(lines))


def describe_branch(branch: BranchMiss) -> str:
    """``line 15: 1 of 2 outcomes ran (never to line 17)``; targets only where the report names them."""
    never = [("exit" if to < 0 else f"line {to}") for to in branch.missing_targets]
    return f"line {branch.line}: {branch.covered} of {branch.total} outcomes ran" + (f" (never to {', '.join(never)})" if never else "")


def summary_lines(result: GateResult) -> list[str]:
    """The gate in a few lines of plain text, shared by the console and Markdown."""
    out = [f"total lines: {_fraction(result.totals_lines)}; branches: {_fraction(result.totals_branches)}"]
    if result.diff is not None:
        diff = result.diff
        out.append(f"diff since {diff.ref}: lines {_fraction(diff.lines)}, branches {_fraction(diff.branches)} "
                   f"in {diff.measured_files} changed file(s) with executable lines")
    return out


def _fraction(ratio: Ratio) -> str:
    return f"{ratio.covered}/{ratio.total} ({ratio.percent}%)" if ratio.total else "0/0 (nothing to measure)"


def print_gate(result: GateResult, stream: TextIO) -> None:
    filled = result.filled
    if filled is not None:
        written = f" in {', '.join(filled.files_written)}" if filled.files_written else ""
        stream.write(f"covgen: filled: {filled.tests_accepted} test(s) kept for {filled.gaps_targeted} changed method(s){written}\n")
        stream.write(f"covgen: before the fill: {summary_lines(filled.before)[-1]}\n")
        stream.write(f"covgen: after the fill ({filled.remeasured}):\n")
    for line in summary_lines(result):
        stream.write(f"covgen: {line}\n")
    if result.diff is not None and result.diff.files:
        stream.write(f"covgen: {result.diff.uncovered_lines} uncovered changed line(s):\n")
        for file in result.diff.files:
            stream.write(f"  {file.path}" + (f" (renamed from {file.renamed_from})" if file.renamed_from else "") + "\n")
            for method in file.methods:
                noun = "line" if len(method.uncovered_lines) == 1 else "lines"
                parts = [f"{noun} {describe_lines(method.uncovered_lines)}"] if method.uncovered_lines else []
                parts += [f"branch {describe_branch(b)}" for b in method.missed_branches]
                stream.write(f"    {method.name}: {'; '.join(parts)}\n")
    for threshold in result.thresholds:
        verdict = "ok" if threshold.passed else "FAILED"
        actual = "nothing to measure" if threshold.actual is None else f"{threshold.actual}%"
        stream.write(f"covgen: {verdict}: {threshold.name} {actual} (required {threshold.required:g}%)\n")
    for warning in result.warnings:
        stream.write(f"covgen: warning: {warning}\n")
    if result.thresholds:
        stream.write("covgen: gate passed\n" if result.passed else "covgen: gate FAILED\n")
