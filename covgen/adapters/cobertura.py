"""Cobertura XML as coverage.py, gcovr, istanbul (nyc/c8) and Cobertura itself write it."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from covgen.adapters._builder import ReportBuilder
from covgen.adapters._paths import PathResolver
from covgen.adapters._xml import drop_finished, iter_elements, root_start_tag
from covgen.errors import ReportError
from covgen.model import CoverageReport, ReportMethod

__all__ = ["CoberturaReader"]

_CONDITIONS = re.compile(r"\((\d+)\s*/\s*(\d+)\)")
_LINE_NUMBERS = etree.XPath("lines/line/@number", smart_strings=False)
_LINE_HITS = etree.XPath("lines/line/@hits", smart_strings=False)
#: Only branch lines carry condition-coverage; each result knows its <line> (getparent).
_CONDITION_COVERAGE = etree.XPath("lines/line/@condition-coverage")
_METHODS = etree.XPath("methods/method")


class CoberturaReader:
    name = "cobertura"

    def sniff(self, head: bytes) -> bool:
        # Clover also uses a <coverage> root, but marks it with a clover attribute.
        start = root_start_tag(head)
        return start.startswith(b"<coverage") and b"clover=" not in start

    def read(self, path: Path, resolver: PathResolver) -> CoverageReport:
        builder = ReportBuilder(self.name)
        sources: list[str] = []
        saw_root = False
        try:
            for element in iter_elements(path, ("source", "class", "coverage")):
                tag = element.tag
                if tag == "class":
                    self._read_class(element, sources, resolver, builder)
                    drop_finished(element)
                elif tag == "source":
                    if element.text and element.text.strip():
                        sources.append(element.text.strip())
                else:
                    saw_root = element.getparent() is None
        except (ValueError, TypeError) as err:
            raise ReportError(f"{path}: malformed Cobertura: {err}", slug="malformed") from err
        if not saw_root:
            raise ReportError(f"{path}: not a Cobertura report (no <coverage> root)", slug="unknown-format")
        return builder.build()

    def _read_class(
        self, element: etree._Element, sources: list[str], resolver: PathResolver, builder: ReportBuilder
    ) -> None:
        filename = element.get("filename")
        if not filename:
            raise ValueError(f"<class name={element.get('name')!r}> has no filename")
        file = builder.file(resolver.resolve(filename, sources))
        # Bulk attribute reads run in C; a Python proxy per <line> would double the parse time.
        numbers = _LINE_NUMBERS(element)
        hit_texts = _LINE_HITS(element)
        if len(numbers) != len(hit_texts):
            raise ValueError(f"<class filename={filename!r}> has a <line> without number or hits")
        try:
            counts = list(map(int, hit_texts))
        except ValueError:
            counts = [int(float(text)) for text in hit_texts]  # some writers emit "1.0"
        if counts and min(counts) < 0:
            counts = [count if count > 0 else 0 for count in counts]
        file.add_lines(list(map(int, numbers)), counts)
        for condition in _CONDITION_COVERAGE(element):
            line = condition.getparent()
            match = _CONDITIONS.search(condition)
            if match and line.get("branch") == "true":
                number = int(line.get("number", ""))
                file.add_branch(number, int(match.group(1)), int(match.group(2)))
                # coverage.py names the destinations it never reached (negative: function exit).
                for destination in (line.get("missing-branches") or "").split(","):
                    if destination.strip().lstrip("-").isdigit():
                        file.missing_arcs.add((number, int(destination)))
        for method in _METHODS(element):
            file.add_method(_method(method))


def _method(element: etree._Element) -> ReportMethod:
    numbers: list[tuple[int, bool]] = []
    for lines in element:
        if lines.tag == "lines":
            for line in lines:
                if line.tag == "line":
                    hits = line.get("hits", "0")
                    numbers.append((int(line.get("number", "")), hits not in ("0", "0.0")))
    name = element.get("name", "?")
    signature = element.get("signature") or None
    return ReportMethod(
        name=name,
        start_line=min((n for n, _ in numbers), default=None),
        end_line=max((n for n, _ in numbers), default=None),
        descriptor=signature,
        covered_lines=tuple(sorted(n for n, hit in numbers if hit)),
        uncovered_lines=tuple(sorted(n for n, hit in numbers if not hit)),
    )

