"""Candidate Java sources: what they declare, where javac wants them, and which javac errors are whose.

Read without a parser: comments, strings and everything inside braces are skipped, which is
all it takes to find a file's package and its top-level types (javac, not covgen, judges the
rest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JavaCandidate", "Staged", "declared_types", "stage_source", "batches", "attribute_errors"]


@dataclass(frozen=True, slots=True)
class JavaCandidate:
    """A candidate test: one Java source file (a package, test classes, helpers)."""

    id: str
    source: str


@dataclass(frozen=True, slots=True)
class Staged:
    """A candidate written where javac wants it."""

    candidate: JavaCandidate
    folder: Path
    file: Path
    #: Top-level types the file declares, fully qualified.
    types: tuple[str, ...]


_LEXEME = re.compile(r'"""[\s\S]*?"""|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*[\s\S]*?\*/|[{}]|[^"\'/{}]+|/')
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
_TYPE = re.compile(r"(?<![\w.@])(?:(public)\s+)?(?:(?:abstract|final|static|strictfp|sealed|non-sealed)\s+)*"
                   r"(?:class|interface|enum|record|@\s*interface)\s+([A-Za-z_$][\w$]*)")


def declared_types(source: str) -> tuple[str, list[tuple[str, bool]]]:
    """The package and the top-level types (name, public?) a Java source declares.

    Comments, strings and everything inside braces are skipped, so nested classes, and
    ``class`` in a comment or after ``Foo.``, are not taken for top-level ones.
    """
    outside: list[str] = []
    depth = 0
    for lexeme in _LEXEME.findall(source):
        if lexeme == "{":
            depth += 1
        elif lexeme == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and not lexeme.startswith(('"', "'", "//", "/*")):
            outside.append(lexeme)
        elif depth == 0:
            outside.append(" ")
    text = "".join(outside)
    package = _PACKAGE.search(text)
    types = [(match.group(2), match.group(1) is not None) for match in _TYPE.finditer(text)]
    return (package.group(1) if package else ""), types


def stage_source(root: Path, index: int, candidate: JavaCandidate) -> Staged:
    """Write a candidate where javac wants it: its own folder, then the package's, then ``Public.java``."""
    package, types = declared_types(candidate.source)
    public = [name for name, is_public in types if is_public]
    file_name = (public or [name for name, _ in types] or ["Candidate"])[0] + ".java"
    safe = re.sub(r"[^\w.-]", "_", candidate.id)[:60]
    folder = root / f"{index:04d}-{safe}"
    file = folder.joinpath(*package.split("."), file_name) if package else folder / file_name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(candidate.source, encoding="utf-8")
    prefix = f"{package}." if package else ""
    return Staged(candidate, folder, file, tuple(dict.fromkeys(prefix + name for name, _ in types)))


def batches(staged: Iterable[Staged]) -> list[list[Staged]]:
    """Group candidates so no two in a group declare the same class (one javac, one JVM per group)."""
    groups: list[tuple[set[str], list[Staged]]] = []
    for item in staged:
        for names, group in groups:
            if names.isdisjoint(item.types):
                names.update(item.types)
                group.append(item)
                break
        else:
            groups.append((set(item.types), [item]))
    return [group for _, group in groups]


_JAVAC_ERROR = re.compile(r"^(?P<path>/.+?\.java):(?P<line>\d+): (?P<kind>error|warning): ", re.MULTILINE)
_JAVAC_END = re.compile(r"^(\d+ (errors?|warnings?)|Note: .*)$")


def attribute_errors(output: str, staged: Sequence[Staged]) -> dict[Staged, list[str]]:
    """javac's error messages, each given to the candidate whose file it names."""
    blamed: dict[Staged, list[str]] = {}
    headers = list(_JAVAC_ERROR.finditer(output))
    for position, header in enumerate(headers):
        if header.group("kind") != "error":
            continue
        end = headers[position + 1].start() if position + 1 < len(headers) else len(output)
        block = [line for line in output[header.start():end].splitlines() if not _JAVAC_END.match(line)]
        path = Path(header.group("path"))
        owner = next((item for item in staged if path.is_relative_to(item.folder)), None)
        if owner is None:
            continue
        block[0] = str(path.relative_to(owner.folder)) + block[0][len(header.group("path")):]
        blamed.setdefault(owner, []).append("\n".join(block).rstrip())
    return blamed
