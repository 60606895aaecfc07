"""lcov tracefiles: geninfo 1.x and 2.x, coverage.py's ``lcov`` command, istanbul, c8, grcov."""

from __future__ import annotations

from pathlib import Path

from covgen.adapters._builder import FileAccumulator, ReportBuilder
from covgen.adapters._paths import PathResolver
from covgen.errors import ReportError
from covgen.model import CoverageReport, ReportMethod

__all__ = ["LcovReader"]

#: Records we understand but do not need: test names, summaries that we recompute, versions,
#: MC/DC conditions (not a line or branch fact covgen targets yet).
_IGNORED = frozenset({"TN", "FNF", "FNH", "LF", "LH", "BRF", "BRH", "VER", "MCDC"})
_FIRST_RECORDS = (b"TN:", b"SF:", b"VER:", b"#")


class LcovReader:
    name = "lcov"

    def sniff(self, head: bytes) -> bool:
        return head.lstrip().startswith(_FIRST_RECORDS)

    def read(self, path: Path, resolver: PathResolver) -> CoverageReport:
        builder = ReportBuilder(self.name)
        # Branch outcomes are keyed per file, not per record: the same SF in several records
        # (one per test name) is one file whose outcomes are the union of theirs.
        outcomes: dict[str, dict[tuple[int, str, str], int]] = {}
        record: _Record | None = None
        hits: dict[int, int] | None = None
        branches: dict[tuple[int, str, str], int] | None = None
        number = 0
        try:
            with path.open(encoding="utf-8", errors="surrogateescape", newline=None) as stream:
                for number, raw in enumerate(stream, start=1):
                    # DA and BRDA are nearly every line of a real tracefile: they come first,
                    # inline, and let int() ignore the line ending instead of stripping it.
                    if raw.startswith("DA:"):
                        if hits is None:
                            raise _bad(path, number, "DA before SF")
                        line_text, _, rest = raw[3:].partition(",")
                        count = int(rest.partition(",")[0])
                        line_number = int(line_text)
                        hits[line_number] = hits.get(line_number, 0) + (count if count > 0 else 0)
                        continue
                    if raw.startswith("BRDA:"):
                        if branches is None:
                            raise _bad(path, number, "BRDA before SF")
                        line_text, block, rest = raw[5:].rstrip("\r\n").split(",", 2)
                        branch, taken = rest.rsplit(",", 1)
                        key = (int(line_text), block, branch)
                        branches[key] = branches.get(key, 0) + (0 if taken == "-" else int(taken))
                        continue
                    line = raw.rstrip("\r\n")
                    if line.startswith("SF:"):
                        if record is not None:
                            raise _bad(path, number, "SF inside a record (missing end_of_record)")
                        resolved = resolver.resolve(line[3:])
                        record = _Record(builder.file(resolved))
                        hits = record.file.hits
                        branches = outcomes.setdefault(resolved.path, {})
                    elif line == "end_of_record":
                        if record is None:
                            raise _bad(path, number, "end_of_record without SF")
                        record.finish()
                        record = hits = branches = None
                    elif not line or line.startswith("#"):
                        continue
                    else:
                        tag, sep, value = line.partition(":")
                        if not sep:
                            raise _bad(path, number, f"not an lcov record: {line[:60]!r}")
                        if tag in _IGNORED:
                            continue
                        if record is None:
                            raise _bad(path, number, f"{tag} before SF")
                        if not record.take(tag, value):
                            builder.warn(f"{path}: unknown lcov record {tag!r} ignored")
        except (ValueError, IndexError) as err:
            raise _bad(path, number, f"bad number ({err})") from err
        if record is not None:
            raise ReportError(f"{path}: ends inside a record (no end_of_record): truncated?", slug="malformed")
        for file_path, file_branches in outcomes.items():
            per_line: dict[int, list[int]] = {}
            for (line_number, _block, _branch), taken_count in file_branches.items():
                counts = per_line.setdefault(line_number, [0, 0])
                counts[0] += taken_count > 0
                counts[1] += 1
            for line_number, (covered, total) in per_line.items():
                builder.files[file_path].add_branch(line_number, covered, total)
        return builder.build()


class _Record:
    """Function records of one ``SF`` … ``end_of_record`` block."""

    __slots__ = ("file", "functions", "function_hits", "indexed")

    def __init__(self, file: FileAccumulator) -> None:
        self.file = file
        self.functions: dict[str, tuple[int, int | None]] = {}
        self.function_hits: dict[str, int] = {}
        #: lcov ≥ 2.2: FNL index → (start, end); FNA aliases name it.
        self.indexed: dict[str, tuple[int, int | None]] = {}

    def take(self, tag: str, value: str) -> bool:
        if tag == "FN":
            first, rest = value.split(",", 1)
            maybe_end, comma, name = rest.partition(",")
            if comma and maybe_end.isdigit():
                self.functions[name] = (int(first), int(maybe_end))
            else:
                self.functions[rest] = (int(first), None)
        elif tag == "FNDA":
            count, name = value.split(",", 1)
            self.function_hits[name] = self.function_hits.get(name, 0) + int(count)
        elif tag == "FNL":
            index, first, *end = value.split(",")
            self.indexed[index] = (int(first), int(end[0]) if end else None)
        elif tag == "FNA":
            index, count, name = value.split(",", 2)
            self.functions[name] = self.indexed.get(index, (0, None))
            self.function_hits[name] = self.function_hits.get(name, 0) + int(count)
        else:
            return False
        return True

    def finish(self) -> None:
        for name, (start, end) in self.functions.items():
            self.file.add_method(
                ReportMethod(name=name, start_line=start or None, end_line=end, hits=self.function_hits.get(name))
            )


def _bad(path: Path, number: int, problem: str) -> ReportError:
    return ReportError(f"{path}:{number}: malformed lcov: {problem}", slug="malformed")
