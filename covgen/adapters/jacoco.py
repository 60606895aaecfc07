"""JaCoCo XML: per-line counters from ``sourcefile`` and per-method data from ``class``."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from covgen.adapters._builder import ReportBuilder
from covgen.adapters._paths import PathResolver
from covgen.adapters._xml import drop_finished, iter_elements, root_start_tag
from covgen.errors import ReportError
from covgen.model import CoverageReport, ReportMethod

__all__ = ["JacocoReader", "descriptor_parameter_types"]

_LINE_NUMBERS = etree.XPath("line/@nr", smart_strings=False)
_LINE_COVERED = etree.XPath("line/@ci", smart_strings=False)
_LINE_MB = etree.XPath("line/@mb", smart_strings=False)
_LINE_CB = etree.XPath("line/@cb", smart_strings=False)
_NOT_ZERO = "0".__ne__
_NESTED = re.compile(r"\$(?=[A-Za-z_])")
_PRIMITIVES = {
    "Z": "boolean", "B": "byte", "C": "char", "S": "short",
    "I": "int", "J": "long", "F": "float", "D": "double", "V": "void",
}


class JacocoReader:
    name = "jacoco"

    def sniff(self, head: bytes) -> bool:
        return root_start_tag(head).startswith(b"<report")

    def read(self, path: Path, resolver: PathResolver) -> CoverageReport:
        builder = ReportBuilder(self.name)
        # A package lists its classes before its source files; methods wait here for their file.
        pending: dict[str, list[ReportMethod]] = {}
        saw_root = False
        try:
            for element in iter_elements(path, ("class", "sourcefile", "package", "report")):
                tag = element.tag
                if tag == "class":
                    self._read_class(element, pending, builder)
                    drop_finished(element)
                elif tag == "sourcefile":
                    package = _package_name(element)
                    resolved = resolver.resolve_java(package, element.get("name", ""))
                    file = builder.file(resolved)
                    for method in pending.pop(_key(package, element.get("name", "")), ()):
                        file.add_method(method)
                    # JaCoCo counts a line covered when any of its instructions ran.
                    # One C-level XPath per attribute; JaCoCo's DTD makes all five required.
                    numbers, covered = _LINE_NUMBERS(element), _LINE_COVERED(element)
                    missed_branches, covered_branches = _LINE_MB(element), _LINE_CB(element)
                    if not len(numbers) == len(covered) == len(missed_branches) == len(covered_branches):
                        raise ValueError(f"<sourcefile name={element.get('name')!r}> has a <line> without nr, ci, mb or cb")
                    lines = list(map(int, numbers))
                    file.add_lines(lines, list(map(_NOT_ZERO, covered)))
                    for index in [i for i, (mb, cb) in enumerate(zip(missed_branches, covered_branches)) if mb != "0" or cb != "0"]:
                        covered_count = int(covered_branches[index])
                        file.add_branch(lines[index], covered_count, int(missed_branches[index]) + covered_count)
                    drop_finished(element)
                elif tag == "package":
                    drop_finished(element)
                else:
                    saw_root = element.getparent() is None
        except (ValueError, TypeError) as err:
            raise ReportError(f"{path}: malformed JaCoCo XML: {err}", slug="malformed") from err
        if not saw_root:
            raise ReportError(f"{path}: not a JaCoCo report (no <report> root)", slug="unknown-format")
        for key in sorted(pending):
            if pending[key]:
                builder.warn(f"{path}: classes of {key} have no <sourcefile> lines (compiled without debug info?)")
        return builder.build()

    def _read_class(self, element: etree._Element, pending: dict[str, list[ReportMethod]], builder: ReportBuilder) -> None:
        class_name = element.get("name", "")
        source_file = element.get("sourcefilename")
        if not source_file:
            builder.warn(f"class {class_name.replace('/', '.')} has no debug info; its methods cannot be placed in source")
            return
        # Named nested classes read as source does (Outer.Inner); anonymous ones keep javac's Outer$1.
        outer = _NESTED.sub(".", class_name.rsplit("/", 1)[-1])
        methods = pending.setdefault(_key(_package_name(element), source_file), [])
        for method in element:
            if method.tag != "method":
                continue
            line = method.get("line")
            hits = None
            for counter in method:
                if counter.tag == "counter" and counter.get("type") == "METHOD":
                    hits = int(counter.get("covered", "0"))
            methods.append(
                ReportMethod(
                    name=f"{outer}.{method.get('name', '?')}",
                    start_line=int(line) if line else None,
                    descriptor=method.get("desc"),
                    hits=hits,
                )
            )


def descriptor_parameter_types(descriptor: str) -> tuple[str, ...]:
    """Turn ``(Ljava/util/Map;[I)V`` into ``("Map", "int[]")``: erased simple names."""
    inside = descriptor[descriptor.index("(") + 1 : descriptor.index(")")]
    types: list[str] = []
    position = 0
    while position < len(inside):
        dimensions = 0
        while inside[position] == "[":
            dimensions += 1
            position += 1
        if inside[position] == "L":
            end = inside.index(";", position)
            simple = inside[position + 1 : end].rsplit("/", 1)[-1].rsplit("$", 1)[-1]
            position = end + 1
        else:
            simple = _PRIMITIVES[inside[position]]
            position += 1
        types.append(simple + "[]" * dimensions)
    return tuple(types)


def _package_name(element: etree._Element) -> str:
    parent = element.getparent()
    while parent is not None and parent.tag != "package":
        parent = parent.getparent()
    return parent.get("name", "") if parent is not None else ""


def _key(package: str, source_file: str) -> str:
    return f"{package}/{source_file}" if package else source_file
