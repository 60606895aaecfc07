"""coverage.py's JSON report; format 3 adds function and class regions (coverage ≥ 7.6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from covgen.adapters._builder import ReportBuilder
from covgen.adapters._paths import PathResolver
from covgen.errors import ReportError
from covgen.model import CoverageReport, ReportMethod

__all__ = ["CoveragePyJsonReader"]


class CoveragePyJsonReader:
    name = "coveragepy"

    def sniff(self, head: bytes) -> bool:
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")

    def read(self, path: Path, resolver: PathResolver) -> CoverageReport:
        try:
            with path.open("rb") as stream:
                document = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ReportError(f"{path}: not valid JSON ({err})", slug="malformed") from err
        if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
            raise ReportError(f"{path}: not a coverage.py JSON report (no 'files' object)", slug="unknown-format")
        builder = ReportBuilder(self.name)
        meta = document.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        if int(meta.get("format", 1)) < 3:
            builder.warn(f"{path}: coverage.py JSON format < 3 has no function regions; upgrade coverage to 7.6+")
        try:
            for raw_path, entry in document["files"].items():
                self._read_file(raw_path, entry, resolver, builder)
        except (KeyError, TypeError, ValueError) as err:
            raise ReportError(f"{path}: malformed coverage.py JSON ({type(err).__name__}: {err})", slug="malformed") from err
        return builder.build()

    def _read_file(self, raw_path: str, entry: dict[str, Any], resolver: PathResolver, builder: ReportBuilder) -> None:
        file = builder.file(resolver.resolve(raw_path))
        for line in entry["executed_lines"]:
            file.add_line(int(line), 1)
        for line in entry["missing_lines"]:
            file.add_line(int(line), 0)
        per_line: dict[int, list[int]] = {}
        for arcs, taken in ((entry.get("executed_branches", ()), 1), (entry.get("missing_branches", ()), 0)):
            for source, _destination in arcs:
                counts = per_line.setdefault(int(source), [0, 0])
                counts[0] += taken
                counts[1] += 1
        file.missing_arcs.update((int(a), int(b)) for a, b in entry.get("missing_branches", ()))
        for line, (taken_count, total) in per_line.items():
            file.add_branch(line, taken_count, total)
        for qualname, region in (entry.get("functions") or {}).items():
            if not qualname:
                continue  # "" collects the lines outside every function
            covered = tuple(sorted(int(n) for n in region["executed_lines"]))
            uncovered = tuple(sorted(int(n) for n in region["missing_lines"]))
            lines = covered + uncovered
            file.add_method(
                ReportMethod(
                    name=qualname,
                    start_line=min(lines, default=None),
                    end_line=max(lines, default=None),
                    covered_lines=covered,
                    uncovered_lines=uncovered,
                )
            )
