"""Context for a JUnit 5 prompt: what a model needs to know about the Java code around one gap.

The same contract as :mod:`covgen.prompts.context`: pieces ordered from most shared (the test
libraries, the same for every gap of the project; then the file's package and imports, the
existing test and the class outline, the same for every gap of the class) to least (the
collaborators of this method), rendered byte-for-byte the same each time so vLLM's prefix cache
serves later gaps; each piece has a priority for the budget trimmer; the focal method never
goes. All text passes through :func:`covgen.redact.redact`.

Outlines are read with tree-sitter-java, which reads every Java version: fields, constructors
and the non-private methods' signatures, never a body. Collaborators are the types the focal
method names that are declared in its own file or in a sibling file of its folder (the same
package); siblings are read through :func:`covgen.sources.read_source`, so nothing outside the
project root is ever read into a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from covgen.errors import SourceError, UsageError
from covgen.model import CodeUnit, Gap
from covgen.languages.java_tree import TYPE_DECLARATIONS, parse, text_of, walk
from covgen.prompts.context import ContextPiece, PromptContext, focal_lines, redacted_context
from covgen.sources import read_source

__all__ = ["LIBRARIES", "build_java_context"]

#: The test libraries covgen knows, in the order the prompt lists them, with what to use of each.
LIBRARIES: dict[str, str] = {
    "junit-jupiter": "JUnit Jupiter (org.junit.jupiter.api): @Test, @BeforeEach, @Nested, @DisplayName, @TempDir, "
                     "Assertions.assertEquals/assertThrows/assertAll",
    "junit-jupiter-params": "JUnit Jupiter Params (org.junit.jupiter.params): @ParameterizedTest with @ValueSource, "
                            "@CsvSource, @EnumSource, @MethodSource",
    "assertj": "AssertJ (org.assertj.core.api.Assertions.assertThat, assertThatThrownBy)",
    "hamcrest": "Hamcrest (org.hamcrest.MatcherAssert.assertThat, org.hamcrest.Matchers)",
    "mockito": "Mockito (org.mockito.Mockito.mock/when/verify): for collaborators only, never the class under test",
}
_SAMPLE_LINES = 60
#: Collaborators shown at most, and outline lines per collaborator: the focal method matters more.
_MAX_COLLABORATORS = 6
_MAX_OUTLINE_LINES = 40
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9_]*\b")


def build_java_context(gap: Gap, source: str, units: Sequence[CodeUnit], *, libraries: Sequence[str],
                       existing_test: str | None = None, root: Path | None = None) -> PromptContext:
    """Build the prompt context for one Java gap; `root` (the project) lets collaborators come from sibling files.

    `libraries` names the test libraries on the test classpath (``junit-jupiter`` is always
    there); the prompt says the model may use only these.
    """
    unknown = sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        raise UsageError(f"unknown test libraries {', '.join(unknown)}; covgen knows {', '.join(LIBRARIES)}")
    unit = gap.unit
    lines = source.splitlines()
    data, tree = parse(source)
    # The parsed units know the package (javalang or tree-sitter); the tree is the fallback.
    package = next((u.package for u in ([unit] if unit is not None else []) + list(units) if u.package), None) or _package(data, tree)
    top = gap.qualname.split(".", 1)[0]
    module = f"{package}.{top}" if package else top
    chosen = [name for name in LIBRARIES if name == "junit-jupiter" or name in libraries]
    pieces = [
        ContextPiece("Test libraries on the classpath (use only these)", "\n".join(f"- {LIBRARIES[name]}" for name in chosen), 8),
        ContextPiece("Class under test",
                     f"`{module}` (file {gap.path}). Put the test class in package `{package or '(default)'}`: "
                     "package-private members are then reachable.", 9),
    ]
    header = _header(data, tree)
    if header:
        pieces.append(ContextPiece("Its package and imports", header, 5))
    if existing_test:
        sample = "\n".join(existing_test.splitlines()[:_SAMPLE_LINES])
        pieces.append(ContextPiece("An existing test of this class (follow its style)", sample, 1))
    owner = _owner_node(data, tree, gap)
    if owner is not None:
        pieces.append(ContextPiece(f"{_kind(owner)} {text_of(data, owner.child_by_field_name('name'))} (outline)", _outline(data, owner), 4))
    collaborators = _collaborators(gap, data, tree, owner, root)
    if collaborators:
        pieces.append(ContextPiece("Types it uses from this package (outlines)", collaborators, 3))
    return redacted_context(gap, module, pieces, focal_lines(gap, lines, comment="//"), _goal(gap, module, package))


def _goal(gap: Gap, module: str, package: str) -> str:
    targets = []
    if gap.uncovered_lines:
        targets.append(f"lines {', '.join(map(str, gap.uncovered_lines))}")
    if gap.missed_branches:
        targets.append(f"the untaken branches on lines {', '.join(str(b.line) for b in gap.missed_branches)}")
    where = f"in package `{package}`" if package else "in the default package"
    return (f"Write JUnit 5 tests that make `{gap.qualname}` run {' and '.join(targets) or 'its code'}. "
            f"Declare one test class {where} that tests `{module}`.")


# -- tree-sitter ------------------------------------------------------------------------------


def _package(data: bytes, tree: Any) -> str:
    for child in tree.children:
        if child.type == "package_declaration":
            return text_of(data, child).removeprefix("package").strip().rstrip(";").strip()
    return ""


def _header(data: bytes, tree: Any) -> str:
    return "\n".join(re.sub(r"\s+", " ", text_of(data, c)) for c in tree.children if c.type in ("package_declaration", "import_declaration"))


def _kind(node: Any) -> str:
    return {"interface_declaration": "Interface", "enum_declaration": "Enum", "record_declaration": "Record",
            "annotation_type_declaration": "Annotation"}.get(node.type, "Class")


def _owner_node(data: bytes, tree: Any, gap: Gap) -> Any | None:
    """The type declaring the focal method: the innermost type around its first line."""
    line = gap.start_line - 1
    found = None
    for node in walk(tree):
        if node.type in TYPE_DECLARATIONS and node.start_point[0] <= line <= node.end_point[0]:
            found = node  # walk order is outer before inner: the last hit is the innermost
    return found


def _modifiers(data: bytes, node: Any) -> str:
    modifiers = next((c for c in node.children if c.type == "modifiers"), None)
    return text_of(data, modifiers) if modifiers is not None else ""


def _private(data: bytes, node: Any) -> bool:
    return "private" in _modifiers(data, node).split()


def _signature(data: bytes, node: Any) -> str:
    """A declaration up to its body, annotations and all, on one line."""
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    return re.sub(r"\s+", " ", data[node.start_byte : end].decode("utf-8", "replace")).strip().rstrip(";").strip()


def _outline(data: bytes, node: Any, indent: str = "") -> str:
    """Fields, constructors and non-private methods of a type, without bodies; nested types by their header."""
    out = [f"{indent}{_signature(data, node)} {{"]
    body = node.child_by_field_name("body")
    for member in body.children if body is not None else ():
        kind = member.type
        if kind == "enum_body_declarations":
            out.extend(_outline_members(data, member, indent + "    "))
            continue
        if kind == "enum_constant":
            out.append(f"{indent}    {_signature(data, member)},")
            continue
        out.extend(_outline_members(data, member, indent + "    ", single=True))
    out.append(f"{indent}}}")
    if len(out) > _MAX_OUTLINE_LINES:
        out = [*out[: _MAX_OUTLINE_LINES - 2], f"{indent}    // … {len(out) - _MAX_OUTLINE_LINES + 1} more", out[-1]]
    return "\n".join(out)


def _outline_members(data: bytes, node: Any, indent: str, *, single: bool = False) -> list[str]:
    members = [node] if single else list(node.children)
    out = []
    for member in members:
        kind = member.type
        if kind == "field_declaration":
            text = re.sub(r"\s+", " ", text_of(data, member))
            if "=" in text and len(text) > 100:
                text = text.split("=", 1)[0].rstrip() + " = …;"
            out.append(indent + text)
        elif kind in ("constructor_declaration", "method_declaration", "compact_constructor_declaration"):
            if not _private(data, member):
                out.append(f"{indent}{_signature(data, member)};")
        elif kind in TYPE_DECLARATIONS and not _private(data, member):
            out.append(f"{indent}{_signature(data, member)} {{ … }}")
    return out


def _collaborators(gap: Gap, data: bytes, tree: Any, owner: Any | None, root: Path | None) -> str:
    """Outlines of the types the focal method names, declared in its file or in its folder."""
    focal = b"\n".join(data.splitlines()[gap.start_line - 1 : gap.end_line]).decode("utf-8", "replace")
    names = list(dict.fromkeys(_CAPITALISED.findall(focal)))
    owner_name = text_of(data, owner.child_by_field_name("name")) if owner is not None else ""
    local = {text_of(data, n.child_by_field_name("name")): n for n in walk(tree) if n.type in TYPE_DECLARATIONS}
    folder, _, _ = gap.path.rpartition("/")
    outlines: list[str] = []
    for name in names:
        if len(outlines) >= _MAX_COLLABORATORS or name == owner_name:
            continue
        if name in local:
            outlines.append(f"// {_qualified(data, local[name])}, in this file\n{_outline(data, local[name])}")
        elif root is not None:
            outline = _sibling(root, f"{folder}/{name}.java" if folder else f"{name}.java", name)
            if outline:
                outlines.append(outline)
    return "\n\n".join(outlines)


def _qualified(data: bytes, node: Any) -> str:
    """``Outer.Inner`` for a nested type: the name a test spells it by."""
    names = []
    while node is not None:
        if node.type in TYPE_DECLARATIONS:
            names.append(text_of(data, node.child_by_field_name("name")))
        node = node.parent
    return ".".join(reversed(names))


def _sibling(root: Path, path: str, name: str) -> str:
    try:
        source = read_source(root, path)
    except SourceError:
        return ""  # not the project's, not there, or not text: leave it out
    data, tree = parse(source)
    node = next((n for n in tree.children if n.type in TYPE_DECLARATIONS and text_of(data, n.child_by_field_name("name")) == name), None)
    return f"// {path}\n{_outline(data, node)}" if node is not None else ""
