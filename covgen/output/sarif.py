"""SARIF 2.1.0: findings code-scanning tools (GitHub code scanning, GitLab, IDEs) show natively."""

from __future__ import annotations

import json
from typing import Any

from covgen.gate import GateResult, line_ranges
from covgen.output.gatereport import describe_branch
from covgen.pipeline import RunSummary

__all__ = ["RULES", "gate_sarif", "run_sarif"]

_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

#: rule id → (short description, full description)
RULES: dict[str, tuple[str, str]] = {
    "covgen/uncovered-changed-lines": ("Changed lines no test runs",
                                       "Lines changed since the merge base that the coverage report measured and no test ran."),
    "covgen/missed-changed-branch": ("Changed branch with outcomes no test takes",
                                     "A branch point on a changed line where some outcomes never ran."),
    "covgen/unsafe-candidate": ("Generated test changed project files or broke the allowlist",
                                "A candidate test covgen refused as UNSAFE: its code may be hostile (a prompt injection or a hostile model)."),
    "covgen/polluting-candidate": ("Generated test changes the outcome of the project's tests",
                                   "A candidate test covgen refused as POLLUTING: run before the project's own tests, it changed their outcome."),
}


def gate_sarif(result: GateResult) -> str:
    results = []
    for file in result.diff.files if result.diff is not None else ():
        for method in file.methods:
            for start, end in line_ranges(method.uncovered_lines):
                span = f"line {start}" if start == end else f"lines {start}-{end}"
                results.append(_result("covgen/uncovered-changed-lines", "warning", f"{method.name}: {span} changed and no test runs them",
                                       file.path, start, end))
            for branch in method.missed_branches:
                results.append(_result("covgen/missed-changed-branch", "warning", f"{method.name}: branch on {describe_branch(branch)}",
                                       file.path, branch.line, branch.line))
    return _log(results)


def run_sarif(summary: RunSummary) -> str:
    results = []
    for gap in summary.gaps:
        path, _, qualname = gap.gap_id.partition("::")
        for rejected in gap.rejected:
            if rejected.verdict in ("UNSAFE", "POLLUTING"):
                rule = f"covgen/{rejected.verdict.lower()}-candidate"
                text = f"candidate {rejected.test or rejected.candidate_id} for {qualname}: {rejected.verdict}: {rejected.message}"
                results.append(_result(rule, "error" if rejected.verdict == "UNSAFE" else "warning", text, path, None, None))
    return _log(results)


def _result(rule: str, level: str, text: str, path: str, start: int | None, end: int | None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"}}
    if start is not None:
        location["region"] = {"startLine": start, "endLine": end if end is not None else start}
    return {"ruleId": rule, "ruleIndex": list(RULES).index(rule), "level": level, "message": {"text": text},
            "locations": [{"physicalLocation": location}]}


def _log(results: list[dict[str, Any]]) -> str:
    import covgen

    rules = [{"id": rule, "shortDescription": {"text": short}, "fullDescription": {"text": full}} for rule, (short, full) in RULES.items()]
    log = {
        "$schema": _SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "covgen", "version": str(covgen.__version__), "rules": rules}}, "results": results}],
    }
    return json.dumps(log, indent=2) + "\n"
