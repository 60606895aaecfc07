"""The ``covgen.gaps`` JSON document (README: "JSON schema").

Version history — bump on any change a consumer could notice:
  1: files (lines, partial branches) and ranked gaps.
"""

from __future__ import annotations

from typing import Any

from covgen.gaps import GapSearch
from covgen.model import BranchCount, CoverageReport

__all__ = ["SCHEMA", "gaps_document"]

SCHEMA = "covgen.gaps/1"


def gaps_document(report: CoverageReport, search: GapSearch) -> dict[str, Any]:
    """Build the JSON object `covgen gaps --json` prints."""
    return {
        "schema": SCHEMA,
        "format": report.format,
        "files": [
            {
                "path": file.path,
                "language": file.language,
                "covered_lines": list(file.covered_lines),
                "uncovered_lines": list(file.uncovered_lines),
                "partial_branches": _branches(file.partial_branches),
            }
            for file in report.files
        ],
        "gaps": [
            {
                "id": gap.id,
                "path": gap.path,
                "qualname": gap.qualname,
                "kind": gap.kind,
                "start_line": gap.start_line,
                "end_line": gap.end_line,
                "signature": gap.signature,
                "uncovered_lines": list(gap.uncovered_lines),
                "missed_branches": _branches(gap.missed_branches),
                "coverage_ratio": round(gap.coverage_ratio, 4),
                "public": gap.is_public,
                "origin": gap.origin,
            }
            for gap in search.gaps
        ],
        "total_gaps": search.total,
        "warnings": [*report.warnings, *search.warnings],
    }


def _branches(branches: tuple[BranchCount, ...]) -> list[dict[str, int]]:
    return [{"line": b.line, "covered": b.covered, "total": b.total} for b in branches]
