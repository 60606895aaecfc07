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
        for child in element:
            if child.tag == "lines":
                for line in child:
                    if line.tag != "line":
                        continue
                    number = int(line.get("number", ""))
                    # Hit counts may be written as floats or exceed 2**32; int(float()) would
                    # lose precision on the latter, so try int first.
                    hits_text = line.get("hits", "0")
                    hits = int(hits_text) if hits_text.lstrip("-").isdigit() else int(float(hits_text))
                    file.add_line(number, max(hits, 0))
                    if line.get("branch") == "true":
                        match = _CONDITIONS.search(line.get("condition-coverage", ""))
                        if match:
                            file.add_branch(number, int(match.group(1)), int(match.group(2)))
            elif child.tag == "methods":
                for method in child:
                    if method.tag == "method":
                        file.methods.append(_method(method))


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

