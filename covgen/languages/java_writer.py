"""Place accepted JUnit 5 tests: one covgen-owned test class per focal class, never anyone else's file.

The file is ``<test dir>/<package path>/<Focal>CovgenTest.java`` (``src/test/java`` unless
``--test-dir`` names another folder), in the focal class's package so package-private members
stay reachable. The accepted tests of many candidates become members of that one class, read
with tree-sitter-java (byte positions of every declaration and reference):

* imports are merged and deduplicated, ordinary ones first, then static ones;
* members (tests, helpers, fields, lifecycle methods, ``@Nested`` classes) are kept in the order
  they came; a helper or field another candidate already brought, byte for byte, is kept once;
  a test the file already holds under another name is not written again (``already_written``);
* names that clash are renamed inside their own candidate before it joins the file (``check``
  → ``check_2``): the declaration and the references that are its own — unqualified or
  ``this.``/``Class.``-qualified calls and method references, unshadowed field uses,
  ``@MethodSource("name")`` — never a call on another object or a local of the same name;
* a candidate's other top-level types become static nested classes, so two candidates' helper
  classes cannot collide in the package;
* only the accepted tests of a candidate are kept; class annotations are merged.

Ownership follows :mod:`covgen.writer`: a file is covgen's only when its first line carries the
marker, an existing covgen file is extended, and a foreign file is never touched.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covgen import defaults
from covgen.errors import CovgenError, SourceError
from covgen.languages.java_tree import TYPE_DECLARATIONS, parse, text_of, walk
from covgen.sources import read_source
from covgen.writer import JAVA_MARKER, AcceptedTest, Rendered, TestKey, owned_by_covgen

__all__ = ["java_test_path", "render_java", "method_of_test", "DEFAULT_TEST_DIR"]

#: Where JUnit tests go when ``--test-dir`` is not given (Maven's and Gradle's layout).
DEFAULT_TEST_DIR = "src/test/java"
_SUFFIX = "CovgenTest"
_EXPLANATION = "// Each test below passed repeatedly in a sandbox and reached lines no other test reached:"
_TARGET = "//   "
_TEST_ANNOTATIONS = frozenset({"Test", "ParameterizedTest", "RepeatedTest", "TestFactory", "TestTemplate"})
#: Annotations whose strings name a method or field of the test class.
_NAMING_ANNOTATIONS = frozenset({"MethodSource", "FieldSource", "EnabledIf", "DisabledIf"})
_RUNNER_NAME = re.compile(r"^([\w$]+)\.([\w$]+)\(")


def java_test_path(gap_path: str, test_dir: str = "", package: str | None = None) -> str:
    """``src/main/java/com/acme/Money.java`` → ``src/test/java/com/acme/MoneyCovgenTest.java``.

    The focal class is the file's public class, which javac names after the file. `package`
    (the file's package line) wins over the folders when given: the path is then right even
    for a source root covgen does not know. `test_dir` empty or covgen's Python default means
    ``src/test/java``.
    """
    if package is None:
        package = _package_from_path(gap_path)
    base = DEFAULT_TEST_DIR if test_dir in ("", defaults.TEST_DIR) else test_dir.rstrip("/")
    focal = gap_path.rsplit("/", 1)[-1].removesuffix(".java")
    folder = "/".join(part for part in (base, package.replace(".", "/")) if part)
    return f"{folder}/{focal}{_SUFFIX}.java"


def method_of_test(test_name: str) -> tuple[str | None, str]:
    """(declaring class, method) of a funnel test name.

    The form covgen uses is ``"<Class>#<method>"``, with ``Class`` the simple (binary) name of
    the class declaring the method in the candidate: ``MoneyTest#addsCents``, or
    ``MoneyTest$WhenEmpty#isZero`` inside a ``@Nested`` class. The Java runner's
    ``JavaTestOutcome.name`` (``MoneyTest.addsCents()``, with a display name after it for a
    parameterized case), a fully qualified class before the ``#`` and a bare method name (the
    candidate's top-level test class) are read too.
    """
    if "#" in test_name:
        owner, _, method = test_name.partition("#")
        return owner.rsplit(".", 1)[-1] or None, method.split("(", 1)[0]
    match = _RUNNER_NAME.match(test_name)
    if match:
        return match.group(1), match.group(2)
    return None, test_name.split("(", 1)[0]


def render_java(accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str = "", provenance: str = "") -> Rendered:
    """Build the text of every JUnit test file to write, merged with the covgen files already there.

    ``Rendered.node_ids`` maps each accepted ``(candidate id, test name)`` to
    ``"<fully.qualified.TestClass>#<method>"`` (``…MoneyCovgenTest$WhenEmpty#isZero`` for a
    ``@Nested`` class): what ``--select-method`` takes. A test in a file that is not covgen's is
    left out, and the write step refuses the file.
    """
    by_file: dict[str, list[AcceptedTest]] = {}
    packages: dict[str, str] = {}
    for test in accepted:
        package = packages.setdefault(test.gap.path, _package_of(root, test.gap.path))
        by_file.setdefault(java_test_path(test.gap.path, test_dir, package), []).append(test)
    contents: dict[str, str] = {}
    node_ids: dict[TestKey, str] = {}
    already: dict[TestKey, str] = {}
    for relative, tests in sorted(by_file.items()):
        focal_path = tests[0].gap.path
        package = packages[focal_path]
        merged = _Merged(relative, package)
        target = root / relative
        if target.exists():
            if not owned_by_covgen(target):
                continue  # never touch a file covgen did not write; write_files says so
            merged.absorb_earlier(target.read_text(encoding="utf-8"))
        by_candidate: dict[str, list[AcceptedTest]] = {}
        for test in tests:
            by_candidate.setdefault(test.candidate.id, []).append(test)
        new: list[tuple[AcceptedTest, str]] = []
        for group in by_candidate.values():
            landed = merged.add(group[0].candidate.source, [t.verdict.test_name for t in group])
            for test in group:
                key = (test.candidate.id, test.verdict.test_name)
                if test.verdict.test_name not in landed:
                    continue  # the candidate does not declare it: the confirming run reports it as not run
                node_ids[key] = landed[test.verdict.test_name]
                if node_ids[key] in merged.earlier:
                    already[key] = relative
                else:
                    new.append((test, node_ids[key]))
        if new:
            contents[relative] = merged.text(focal_path, _gains(new), provenance)
    return Rendered(contents, node_ids, already)


def _package_from_path(path: str) -> str:
    if "/java/" in f"/{path}":
        folder = f"/{path}".rsplit("/java/", 1)[1]
        return folder.rpartition("/")[0].replace("/", ".")
    return ""


def _package_of(root: Path, gap_path: str) -> str:
    """The focal file's package line; its folders when it cannot be read."""
    try:
        source = read_source(root, gap_path)
    except SourceError:
        return _package_from_path(gap_path)
    match = re.search(r"^\s*package\s+([\w.]+)\s*;", _without_comments(source), re.M)
    return match.group(1) if match else ""


def _without_comments(source: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)


def _gains(tests: Sequence[tuple[AcceptedTest, str]]) -> list[str]:
    """One header line per gap: what the tests written now gained."""
    by_gap: dict[str, list[tuple[AcceptedTest, str]]] = {}
    for test, node_id in tests:
        by_gap.setdefault(test.gap.qualname, []).append((test, node_id))
    lines = []
    for qualname, gap_tests in by_gap.items():
        gained = sorted({line for t, _ in gap_tests for line in t.verdict.gained_lines})
        written = len({node_id for _, node_id in gap_tests})
        count = f" by {written} tests" if written > 1 else ""
        shown = ", ".join(map(str, gained[:8])) + (" …" if len(gained) > 8 else "")
        lines.append(f"{_TARGET}{qualname}: +{len(gained)} lines{count} ({f'lines {shown}' if gained else 'branches only'})")
    return lines


# -- parsing ----------------------------------------------------------------------------------


def _annotations(data: bytes, node: Any) -> list[str]:
    modifiers = next((c for c in node.children if c.type == "modifiers"), None)
    if modifiers is None:
        return []
    return [text_of(data, a.child_by_field_name("name")).rsplit(".", 1)[-1]
            for a in modifiers.children if a.type in ("annotation", "marker_annotation")]


def _is_test(data: bytes, node: Any) -> bool:
    return node.type == "method_declaration" and bool(_TEST_ANNOTATIONS.intersection(_annotations(data, node)))


@dataclass(slots=True)
class _Member:
    """One member of a test class: its text (dedented, comments before it included) and what it declares."""

    kind: str  # method, test, field, type, other
    names: tuple[str, ...]
    text: str


def _name_of(data: bytes, node: Any) -> tuple[str, ...]:
    if node.type == "field_declaration":
        return tuple(text_of(data, d.child_by_field_name("name")) for d in node.children if d.type == "variable_declarator")
    name = node.child_by_field_name("name")
    return (text_of(data, name),) if name is not None else ()


def _kind(data: bytes, node: Any) -> str:
    if _is_test(data, node):
        return "test"
    if node.type == "method_declaration":
        return "method"
    if node.type == "field_declaration":
        return "field"
    if node.type in TYPE_DECLARATIONS:
        return "type"
    return "other"


def _members(data: bytes, body: Any) -> list[_Member]:
    """The members of a class body, each with the comments right before it."""
    found = []
    first: Any | None = None
    for child in body.children:
        if child.type in ("{", "}", ";"):
            continue
        if child.type in ("line_comment", "block_comment"):
            first = child if first is None else first
            continue
        start = first if first is not None else child
        text = data[start.start_byte : child.end_byte].decode("utf-8")
        found.append(_Member(_kind(data, child), _name_of(data, child), _strip_indent(text, start.start_point[1])))
        first = None
    return found


def _strip_indent(text: str, column: int) -> str:
    """A member's text without its class's indentation (its first line starts at `column`)."""
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        spaces = len(line) - len(line.lstrip(" \t"))
        out.append(line[min(spaces, column):])
    return "\n".join(out).strip()


@dataclass(slots=True)
class _Unit:
    """A candidate (or earlier file) read apart: imports, the test class's annotations and members."""

    imports: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    class_name: str = ""
    members: list[_Member] = field(default_factory=list)
    #: Names of the candidate's other top-level types (they become static nested classes).
    hoisted: list[str] = field(default_factory=list)
    #: Header comment lines of an earlier file.
    header: list[str] = field(default_factory=list)


def _read_unit(source: str) -> _Unit:
    data, root = parse(source)
    unit = _Unit()
    types = [child for child in root.children if child.type in TYPE_DECLARATIONS]
    for child in root.children:
        if child.type == "import_declaration":
            unit.imports.append(re.sub(r"\s+", " ", text_of(data, child)).replace(" ;", ";"))
    if not types:
        raise CovgenError("the candidate declares no class", slug="no-class")
    main = max(types, key=lambda t: (any(_is_test(data, n) for n in walk(t)), "public" in _modifier_words(data, t)))
    unit.class_name = text_of(data, main.child_by_field_name("name"))
    modifiers = next((c for c in main.children if c.type == "modifiers"), None)
    if modifiers is not None:
        unit.annotations = [text_of(data, a) for a in modifiers.children if a.type in ("annotation", "marker_annotation")]
    body = main.child_by_field_name("body")
    unit.members = _members(data, body) if body is not None else []
    for other in types:
        if other is main:
            continue
        name = text_of(data, other.child_by_field_name("name"))
        unit.hoisted.append(name)
        text = text_of(data, other)
        if other.type == "class_declaration" and "static" not in _modifier_words(data, other):
            text = _add_static(data, other)
        unit.members.append(_Member("type", (name,), _strip_indent(text, 0)))
    return unit


def _modifier_words(data: bytes, node: Any) -> set[str]:
    modifiers = next((c for c in node.children if c.type == "modifiers"), None)
    return set(text_of(data, modifiers).split()) if modifiers is not None else set()


def _add_static(data: bytes, node: Any) -> str:
    keyword = next(c for c in node.children if c.type == "class")
    return (data[node.start_byte : keyword.start_byte] + b"static " + data[keyword.start_byte : node.end_byte]).decode("utf-8")


# -- renaming ---------------------------------------------------------------------------------


def _rename(text: str, renames: dict[str, str], kinds: dict[str, str], owners: frozenset[str] = frozenset()) -> str:
    """Rename, in one member's text, the declarations in `renames` and the references that are their own.

    `kinds` says what each name declares: ``method`` (calls, method references and
    ``@MethodSource`` strings), ``field`` (unshadowed simple uses, ``this.x``) or ``type``.
    `owners` are the names of the test class itself: ``Owner.helper()`` is the class's own helper.
    """
    if not renames:
        return text
    wrapped = f"class __Covgen__ {{\n{text}\n}}\n"
    data, root = parse(wrapped)
    edits: list[tuple[int, int, str]] = []
    for node in walk(root):
        if node.type == "string_fragment" and _in_naming_annotation(data, node):
            value = text_of(data, node)
            if kinds.get(value) == "method" and value in renames:
                edits.append((node.start_byte, node.end_byte, renames[value]))
            continue
        if node.type not in ("identifier", "type_identifier"):
            continue
        name = text_of(data, node)
        fresh = renames.get(name)
        if fresh is None or not _refers_to_own(data, node, name, kinds[name], owners):
            continue
        edits.append((node.start_byte, node.end_byte, fresh))
    out = data
    for start, end, value in sorted(set(edits), reverse=True):
        out = out[:start] + value.encode("utf-8") + out[end:]
    renamed = out.decode("utf-8")
    return renamed[len("class __Covgen__ {\n") : -len("\n}\n")]


def _in_naming_annotation(data: bytes, node: Any) -> bool:
    parent = node.parent
    while parent is not None and parent.type not in ("annotation", "method_declaration", "class_body"):
        parent = parent.parent
    if parent is None or parent.type != "annotation":
        return False
    return text_of(data, parent.child_by_field_name("name")).rsplit(".", 1)[-1] in _NAMING_ANNOTATIONS


def _own_receiver(data: bytes, receiver: Any | None, owners: frozenset[str]) -> bool:
    """No receiver, ``this``, or the test class's own name: the test's own member."""
    return receiver is None or receiver.type == "this" or (receiver.type == "identifier" and text_of(data, receiver) in owners)


def _refers_to_own(data: bytes, node: Any, name: str, kind: str, owners: frozenset[str]) -> bool:
    parent = node.parent
    if kind == "type":
        return True  # types are capitalised: no local or call shares their name in practice
    if kind == "method":
        if parent.type == "method_declaration" and parent.child_by_field_name("name") == node:
            return True
        if parent.type == "method_invocation" and parent.child_by_field_name("name") == node:
            return _own_receiver(data, parent.child_by_field_name("object"), owners)
        if parent.type == "method_reference" and node == parent.children[-1]:
            return _own_receiver(data, parent.children[0], owners)
        return False
    # a field: not a call, not another object's field, not a local or parameter of the same name
    if parent.type == "method_invocation" and parent.child_by_field_name("name") == node:
        return False
    if parent.type == "method_declaration" and parent.child_by_field_name("name") == node:
        return False
    if parent.type == "field_access" and parent.child_by_field_name("field") == node:
        return _own_receiver(data, parent.child_by_field_name("object"), owners)
    if parent.type == "method_reference":
        return bool(node == parent.children[0])
    if parent.type in ("variable_declarator", "formal_parameter", "catch_formal_parameter", "resource",
                       "enhanced_for_statement") and parent.child_by_field_name("name") == node:
        # a declaration: the field's own is renamed, a local or parameter of the same name is not
        return parent.type == "variable_declarator" and parent.parent is not None and parent.parent.type == "field_declaration"
    if parent.type == "inferred_parameters" or (parent.type == "lambda_expression" and parent.child_by_field_name("parameters") == node):
        return False
    return not _shadowed(data, node, name)


def _shadowed(data: bytes, node: Any, name: str) -> bool:
    """Whether a parameter or local `name` is in scope at `node` (which then means that, not the field)."""
    scope = node.parent
    while scope is not None and scope.type != "class_body":
        if name in _declared_in(data, scope):
            return True
        scope = scope.parent
    return False


def _declared_in(data: bytes, scope: Any) -> set[str]:
    """The parameters and locals `scope` itself declares (not those of scopes nested in it)."""
    kind = scope.type
    found: list[Any] = []
    if kind in ("method_declaration", "constructor_declaration", "lambda_expression"):
        parameters = scope.child_by_field_name("parameters")
        if parameters is not None and parameters.type == "identifier":
            found.append(parameters)  # x -> ...
        elif parameters is not None:
            for parameter in parameters.named_children:
                if parameter.type == "identifier":
                    found.append(parameter)  # (a, b) -> ...
                elif parameter.type in ("formal_parameter", "spread_parameter"):
                    declarator = next((c for c in parameter.named_children if c.type == "variable_declarator"), None)
                    found.append(parameter.child_by_field_name("name") or (declarator and declarator.child_by_field_name("name")))
    elif kind in ("block", "switch_block_statement_group", "for_statement"):
        for statement in scope.named_children:
            if statement.type == "local_variable_declaration":
                found += [d.child_by_field_name("name") for d in statement.named_children if d.type == "variable_declarator"]
    elif kind == "enhanced_for_statement":
        found.append(scope.child_by_field_name("name"))
    elif kind == "catch_clause":
        parameter = next((c for c in scope.named_children if c.type == "catch_formal_parameter"), None)
        found.append(parameter.child_by_field_name("name") if parameter is not None else None)
    elif kind == "try_with_resources_statement":
        specification = scope.child_by_field_name("resources")
        found += [r.child_by_field_name("name") for r in (specification.named_children if specification is not None else ())]
    return {text_of(data, n) for n in found if n is not None}


# -- merging ----------------------------------------------------------------------------------


def _test_key(member: _Member) -> str:
    """A test's text with its own name left out: the same test under another name is no new test."""
    return re.sub(rf"\b{re.escape(member.names[0])}\b(?=\s*\()", "_", member.text, count=1)


class _Merged:
    """One covgen test class being assembled: header, imports, class annotations and members."""

    def __init__(self, relative: str, package: str) -> None:
        self.relative = relative
        self.package = package
        class_name = relative.rsplit("/", 1)[-1].removesuffix(".java")
        self.class_name = class_name
        self.header: list[str] = []
        self.imports: list[str] = []
        self.annotations: list[str] = []
        self.members: list[_Member] = []
        #: Name → kind, for every name the class declares.
        self.kinds: dict[str, str] = {}
        #: Test key → node id of the test that has that code.
        self.tests: dict[str, str] = {}
        #: Node ids of the tests the file held before this run.
        self.earlier: set[str] = set()

    def absorb_earlier(self, text: str) -> None:
        lines = text.splitlines()
        for line in lines[1:]:
            if not line.startswith("//"):
                break
            if line.rstrip() != _EXPLANATION:
                self.header.append(line.rstrip())
        try:
            unit = _read_unit(text)
        except CovgenError as err:
            raise CovgenError(f"{self.relative}: covgen wrote this file but it no longer holds a class ({err}); "
                              "fix or delete it", slug="bad-test-file") from err
        self._take(unit, {}, earlier=True)

    def add(self, source: str, test_names: Sequence[str]) -> dict[str, str]:
        """Merge a candidate's imports, helpers and the named tests; return each landed test's node id."""
        try:
            unit = _read_unit(source)
        except CovgenError:
            return {}
        wanted = {method_of_test(name): name for name in test_names}
        unit.members = [m for m in (self._kept(unit, m, wanted) for m in unit.members) if m is not None]
        renames = self._renames(unit)
        return self._take(unit, renames, wanted=wanted)

    def text(self, focal_path: str, gains: Sequence[str], provenance: str) -> str:
        targets = [line for line in self.header if line.startswith(_TARGET)]
        others = [line for line in self.header if not line.startswith(_TARGET) and not line.startswith(JAVA_MARKER)]
        header = [
            f"{JAVA_MARKER} for {focal_path}. Keep this line: covgen only adds to files that start with it.",
            _EXPLANATION,
            *dict.fromkeys([*targets, *gains]),
            *dict.fromkeys([*others, *([f"// {provenance}"] if provenance else [])]),
        ]
        plain = sorted({i for i in self.imports if not i.startswith("import static ")})
        static = sorted({i for i in self.imports if i.startswith("import static ")})
        imports = "\n".join(plain) + ("\n\n" if plain and static else "") + "\n".join(static)
        body = "\n\n".join(textwrap.indent(m.text, "    ") for m in self.members)
        parts = ["\n".join(header), f"package {self.package};" if self.package else "", imports,
                 "\n".join([*self.annotations, f"class {self.class_name} {{"]) + "\n" + body + "\n}"]
        return "\n\n".join(part for part in parts if part) + "\n"

    def _kept(self, unit: _Unit, member: _Member, wanted: dict[tuple[str | None, str], str]) -> _Member | None:
        """The member with only its accepted tests (a @Nested class keeps its accepted ones); None when none is left."""
        if member.kind == "test":
            return member if self._wanted(unit.class_name, member.names[0], wanted) else None
        if member.kind == "type" and member.names[0] not in unit.hoisted:
            data, root = parse(member.text)
            nested = next(c for c in root.children if c.type in TYPE_DECLARATIONS)
            if not any(_is_test(data, n) for n in walk(nested)):
                return member
            owner = f"{unit.class_name}${member.names[0]}"
            drop = [n for n in walk(nested) if _is_test(data, n) and n.parent is not None and n.parent.parent == nested
                    and not self._wanted(owner, text_of(data, n.child_by_field_name("name")), wanted)]
            kept_tests = [n for n in walk(nested) if _is_test(data, n) and n not in drop]
            if not kept_tests:
                return None
            out = data
            for node in sorted(drop, key=lambda n: n.start_byte, reverse=True):
                start = data.rfind(b"\n", 0, node.start_byte) + 1
                out = out[:start] + out[node.end_byte:].lstrip(b" ")
            return _Member("type", member.names, re.sub(r"\n\s*\n(\s*\n)+", "\n\n", out.decode("utf-8")))
        return member

    @staticmethod
    def _wanted(owner: str, method: str, wanted: dict[tuple[str | None, str], str]) -> bool:
        return (owner, method) in wanted or ("$" not in owner and (None, method) in wanted)

    def _renames(self, unit: _Unit) -> dict[str, str]:
        """Which of the candidate's names clash with the class's, and their new names.

        Renaming one helper changes the text of members that call it, which may then differ
        from the class's copy in turn: repeat until nothing more clashes. Each round first
        looks for copies an earlier merge renamed (a candidate accepted again), and invents
        fresh names only when none is left to find.

        A candidate whose set-up (``@BeforeEach`` …, a constructor, an initializer) is not the
        class's own keeps its mutable fields apart even when they read the same: both set-ups
        run before every test, and one must not overwrite the state the other's tests rely on.
        """
        own = {name for m in unit.members for name in m.names}
        taken = set(self.kinds) | own | {self.class_name}
        renames: dict[str, str] = {unit.class_name: self.class_name} if unit.class_name != self.class_name else {}
        kinds = {name: m.kind if m.kind != "test" else "method" for m in unit.members for name in m.names}
        kinds[unit.class_name] = "type"
        owners = frozenset({unit.class_name, self.class_name})
        while True:
            groups: dict[str, list[_Member]] = {}
            for member in unit.members:
                for name in member.names:
                    groups.setdefault(name, []).append(_Member(member.kind, member.names, _rename(member.text, renames, kinds, owners)))
            isolated = any(_sets_up(m) and all(x.text != m.text for x in self.members) for ms in groups.values() for m in ms) or any(
                m.kind == "other" and all(x.text != _rename(m.text, renames, kinds, owners) for x in self.members) for m in unit.members)
            clashes = [
                name for name, members in groups.items()
                if name not in renames and name in self.kinds
                and (not self._same(name, [m.text for m in members]) or (isolated and any(_mutable_field(m) for m in members)))
            ]
            if not clashes:
                return renames
            reused = {name: alternative for name in clashes
                      if (alternative := self._earlier_copy(unit, name, renames, kinds, owners)) is not None}
            if reused:
                renames.update(reused)
                continue
            for name in clashes:
                renames[name] = _fresh_name(name, taken)
                taken.add(renames[name])

    def _earlier_copy(self, unit: _Unit, name: str, renames: dict[str, str], kinds: dict[str, str], owners: frozenset[str]) -> str | None:
        """The name (``check_2``) under which an earlier merge already holds this candidate's `name`, if one does.

        A candidate accepted again on a later run clashes the way it did the first time: its
        helper is then the file's renamed copy, not a third one.
        """
        number = 2
        while (alternative := f"{name}_{number}") in self.kinds:
            trial = {**renames, name: alternative}
            if self._same(alternative, [_rename(m.text, trial, kinds, owners) for m in unit.members if name in m.names]):
                return alternative
            number += 1
        return None

    def _same(self, name: str, texts: list[str]) -> bool:
        """Whether the class already holds exactly these members named `name` (a shared helper, or a test it has)."""
        mine = [m for m in self.members if name in m.names]
        if len(texts) == 1 and mine and all(m.kind == "test" for m in mine):
            key = _test_key(_Member("test", (name,), texts[0]))
            return key in self.tests
        return sorted(m.text for m in mine) == sorted(texts)

    def _take(self, unit: _Unit, renames: dict[str, str], *, earlier: bool = False,
              wanted: dict[tuple[str | None, str], str] | None = None) -> dict[str, str]:
        for line in unit.imports:
            if line not in self.imports:
                self.imports.append(line)
        for annotation in unit.annotations:
            name = annotation.split("(", 1)[0]
            repeatable = name in ("@ExtendWith", "@Tag")
            if annotation not in self.annotations and (repeatable or not any(a.split("(", 1)[0] == name for a in self.annotations)):
                self.annotations.append(annotation)
        kinds = {name: m.kind if m.kind != "test" else "method" for m in unit.members for name in m.names}
        kinds[unit.class_name] = "type"
        owners = frozenset({unit.class_name, self.class_name})
        landed: dict[str, str] = {}
        qualified = f"{self.package}.{self.class_name}" if self.package else self.class_name
        for member in unit.members:
            text = _rename(member.text, renames, kinds, owners)
            names = tuple(renames.get(n, n) for n in member.names)
            renamed = _Member(member.kind, names, text)
            if member.kind == "test":
                key = _test_key(renamed)
                node_id = self.tests.get(key, f"{qualified}#{names[0]}")
                if key not in self.tests:
                    self._append(renamed)
                    self.tests[key] = node_id
                    if earlier:
                        self.earlier.add(node_id)
                if wanted is not None:
                    for (owner, method), test_name in wanted.items():
                        if method == member.names[0] and owner in (None, unit.class_name):
                            landed[test_name] = node_id
                continue
            if any(m.text == text for m in self.members):
                pass  # the same helper, field or class twice: keep one
            else:
                self._append(renamed)
            if member.kind == "type" and names:
                self._nested_tests(renamed, f"{qualified}${names[0]}", earlier)
                if wanted is not None:
                    for (owner, method), test_name in wanted.items():
                        if owner == f"{unit.class_name}${member.names[0]}":
                            landed[test_name] = f"{qualified}${names[0]}#{method}"
        return landed

    def _nested_tests(self, member: _Member, owner: str, earlier: bool) -> None:
        data, root = parse(member.text)
        for node in walk(root):
            if _is_test(data, node):
                node_id = f"{owner}#{text_of(data, node.child_by_field_name('name'))}"
                if earlier:
                    self.earlier.add(node_id)

    def _append(self, member: _Member) -> None:
        self.members.append(member)
        for name in member.names:
            self.kinds.setdefault(name, member.kind)


_SET_UP = re.compile(r"@(?:\w+\.)*(?:BeforeEach|AfterEach|BeforeAll|AfterAll)\b")


def _sets_up(member: _Member) -> bool:
    return member.kind == "method" and _SET_UP.search(member.text) is not None


def _mutable_field(member: _Member) -> bool:
    return member.kind == "field" and re.search(r"\bfinal\b", member.text.split("=", 1)[0]) is None


def _fresh_name(name: str, taken: set[str]) -> str:
    number = 2
    while f"{name}_{number}" in taken:
        number += 1
    return f"{name}_{number}"
