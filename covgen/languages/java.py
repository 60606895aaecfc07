"""Java code units: javalang first, tree-sitter-java for what javalang (Java 8) cannot parse.

Both parsers feed one shape, :class:`CodeUnit`, with qualnames ``Outer.Inner.method(int,String)``
(constructors are ``<init>``, anonymous classes ``Outer$1`` as javac names them) so that source
units and JaCoCo's ``(class, name, desc)`` triples meet on the same key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from covgen.errors import SourceError
from covgen.model import CodeUnit, ReportMethod

__all__ = ["find_java_units", "match_report_method", "erase_type"]

_GENERICS = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")


def find_java_units(source: str, path: str) -> list[CodeUnit]:
    """Return every method and constructor in `source`, in source order."""
    try:
        units = _JavalangReader(source, path).units()
    except Exception:  # noqa: BLE001 - javalang raises many unrelated types on post-Java-8 syntax
        units = None
    if units is None:
        units = _TreeSitterReader(source, path).units()
    return units


def erase_type(text: str) -> str:
    """Erase ``java.util.List<Map<K, V>>[]`` to ``List[]``; varargs ``T...`` to ``T[]``."""
    text = _SPACE.sub("", text)
    while True:
        stripped = _GENERICS.sub("", text)
        if stripped == text:
            break
        text = stripped
    dimensions = text.count("[]") + text.count("...")
    base = text.replace("[]", "").replace("...", "").rsplit(".", 1)[-1]
    # Annotations on parameter types (``@NonNull String``) are not part of the type.
    base = base.rsplit("@", 1)[0] if base.startswith("@") else base
    return base + "[]" * dimensions


def match_report_method(units: Sequence[CodeUnit], method: ReportMethod) -> CodeUnit | None:
    """Find the source unit for a JaCoCo method (``Outer.Inner.name`` + descriptor + first line)."""
    from covgen.adapters.jacoco import descriptor_parameter_types

    owner, _, name = method.name.rpartition(".")
    candidates = [u for u in units if u.qualname.startswith(owner + ".") and u.qualname.rsplit("(", 1)[0] == f"{owner}.{name}"]
    if not candidates:
        return None
    if method.start_line is not None:
        containing = [u for u in candidates if u.start_line <= method.start_line <= u.end_line]
        if len(containing) == 1:
            return containing[0]
        candidates = containing or candidates
    if method.descriptor:
        wanted = descriptor_parameter_types(method.descriptor)
        exact = [u for u in candidates if u.parameter_types == wanted]
        if exact:
            return exact[0]
        # javac adds synthetic leading parameters: the outer instance of an inner class's
        # constructor, an enum constant's name and ordinal.
        tails = [u for u in candidates if wanted[len(wanted) - len(u.parameter_types):] == u.parameter_types]
        if len(tails) == 1 or (tails and len({len(u.parameter_types) for u in tails}) == len(tails)):
            return max(tails, key=lambda u: len(u.parameter_types))
    return candidates[0] if len(candidates) == 1 else None


@dataclass(slots=True)
class _Declaration:
    """What both parsers find about one method before it becomes a CodeUnit."""

    owner: tuple[str, ...]
    name: str
    is_constructor: bool
    parameter_types: tuple[str, ...]
    modifiers: tuple[str, ...]
    start_line: int
    end_line: int
    signature: str
    docstring: str | None
    owner_is_interface: bool = False


def _to_units(path: str, declarations: list[_Declaration], package: str | None, imports: tuple[str, ...]) -> list[CodeUnit]:
    constructors: dict[tuple[str, ...], str] = {}
    for declaration in declarations:
        if declaration.is_constructor:
            constructors.setdefault(declaration.owner, declaration.signature)
    spans = [(d.start_line, d.end_line) for d in declarations]
    units = []
    for declaration in declarations:
        span = (declaration.start_line, declaration.end_line)
        nested = tuple(
            other for other in spans if other != span and span[0] <= other[0] and other[1] <= span[1]
        )
        name = "<init>" if declaration.is_constructor else declaration.name
        qualname = f"{'.'.join(declaration.owner)}.{name}({','.join(declaration.parameter_types)})"
        public = "public" in declaration.modifiers or "protected" in declaration.modifiers or declaration.owner_is_interface
        units.append(
            CodeUnit(
                path=path,
                language="java",
                qualname=qualname,
                name=name,
                kind="constructor" if declaration.is_constructor else ("staticmethod" if "static" in declaration.modifiers else "method"),
                start_line=declaration.start_line,
                end_line=declaration.end_line,
                signature=declaration.signature,
                docstring=declaration.docstring,
                class_name=declaration.owner[-1],
                constructor=constructors.get(declaration.owner),
                modifiers=declaration.modifiers,
                parameter_types=declaration.parameter_types,
                nested_spans=nested,
                is_public=public and not any("$" in part for part in declaration.owner),
                package=package,
                imports=imports,
            )
        )
    return units


class _JavalangReader:
    def __init__(self, source: str, path: str) -> None:
        import javalang

        self.javalang = javalang
        self.source = source
        self.path = path
        self.lines = source.splitlines()
        self.tokens = list(javalang.tokenizer.tokenize(source))
        self.positions = [(t.position.line, t.position.column) for t in self.tokens]
        self.tree = javalang.parser.Parser(iter(self.tokens)).parse()
        self.declarations: list[_Declaration] = []
        self.anonymous_counts: dict[tuple[str, ...], int] = {}

    def units(self) -> list[CodeUnit]:
        tree = self.tree
        for declaration in tree.types:
            self._visit_type(declaration, ())
        package = tree.package.name if tree.package is not None else None
        imports = tuple(
            f"import {'static ' if i.static else ''}{i.path}{'.*' if i.wildcard else ''};" for i in tree.imports
        )
        self.declarations.sort(key=lambda d: (d.start_line, -d.end_line))
        return _to_units(self.path, self.declarations, package, imports)

    def _visit_type(self, node: Any, owner: tuple[str, ...]) -> None:
        tree = self.javalang.tree
        chain = (*owner, node.name)
        is_interface = isinstance(node, (tree.InterfaceDeclaration, tree.AnnotationDeclaration))
        body = list(node.body or ())
        if isinstance(node, tree.EnumDeclaration) and node.body is not None:
            body = list(node.body.declarations or ())
            for constant in node.body.constants or ():
                if constant.body:
                    self._visit_anonymous(constant.body, chain)
        for member in body:
            if isinstance(member, (tree.MethodDeclaration, tree.ConstructorDeclaration)):
                self._add_method(member, chain, is_interface)
                self._visit_children(member, chain)
            elif isinstance(member, (tree.ClassDeclaration, tree.InterfaceDeclaration, tree.EnumDeclaration, tree.AnnotationDeclaration)):
                self._visit_type(member, chain)
            else:
                self._visit_children(member, chain)

    def _visit_children(self, node: Any, owner: tuple[str, ...]) -> None:
        """Find anonymous and local classes inside a member, in source order."""
        tree = self.javalang.tree
        for child in _children(node):
            if isinstance(child, tree.ClassCreator) and child.body:
                self._visit_anonymous(child.body, owner)
                for argument in child.arguments or ():
                    self._visit_children(argument, owner)
            elif isinstance(child, (tree.ClassDeclaration, tree.InterfaceDeclaration, tree.EnumDeclaration)):
                self._visit_type(child, owner)
            elif isinstance(child, tree.Node):
                self._visit_children(child, owner)

    def _visit_anonymous(self, body: Sequence[Any], owner: tuple[str, ...]) -> None:
        count = self.anonymous_counts.get(owner, 0) + 1
        self.anonymous_counts[owner] = count
        chain = (*owner[:-1], f"{owner[-1]}${count}")
        tree = self.javalang.tree
        for member in body:
            if isinstance(member, (tree.MethodDeclaration, tree.ConstructorDeclaration)):
                self._add_method(member, chain, False)
                self._visit_children(member, chain)
            else:
                self._visit_children(member, chain)

    def _add_method(self, node: Any, owner: tuple[str, ...], owner_is_interface: bool) -> None:
        starts = [node.position] + [a.position for a in node.annotations or () if a.position is not None]
        start = min((p.line, p.column) for p in starts if p is not None)
        # Modifiers precede the position javalang records; back up to the start of the line's code.
        index = self._token_index(start)
        body_index = self._body_start(index)
        end_line = self._block_end(body_index)
        signature_tokens = self.tokens[self._first_on_line(index) : body_index]
        self.declarations.append(
            _Declaration(
                owner=owner,
                name=node.name,
                is_constructor=isinstance(node, self.javalang.tree.ConstructorDeclaration),
                parameter_types=tuple(self._parameter_type(p) for p in node.parameters),
                modifiers=tuple(sorted(node.modifiers)),
                start_line=self.tokens[self._first_on_line(index)].position.line,
                end_line=end_line,
                signature=_join_tokens(t.value for t in signature_tokens),
                docstring=node.documentation,
                owner_is_interface=owner_is_interface,
            )
        )

    def _parameter_type(self, parameter: Any) -> str:
        kind = parameter.type
        # ``java.util.Map`` parses as a chain of sub_types; the last link is the simple name.
        while getattr(kind, "sub_type", None) is not None:
            kind = kind.sub_type
        name = str(kind.name)
        dimensions = len(parameter.type.dimensions or ()) + (1 if parameter.varargs else 0)
        return name + "[]" * dimensions

    def _token_index(self, position: tuple[int, int]) -> int:
        import bisect

        return bisect.bisect_left(self.positions, position)

    def _first_on_line(self, index: int) -> int:
        line = self.tokens[index].position.line
        while index > 0 and self.tokens[index - 1].position.line == line and self.tokens[index - 1].value not in (";", "{", "}"):
            index -= 1
        return index

    def _body_start(self, index: int) -> int:
        depth = 0
        for position in range(index, len(self.tokens)):
            value = self.tokens[position].value
            if value in ("(", "["):
                depth += 1
            elif value in (")", "]"):
                depth -= 1
            elif depth == 0 and value in ("{", ";"):
                return position
        raise SourceError(f"{self.path}: method body not found")

    def _block_end(self, index: int) -> int:
        if self.tokens[index].value == ";":
            return int(self.tokens[index].position.line)
        depth = 0
        for position in range(index, len(self.tokens)):
            value = self.tokens[position].value
            if value == "{":
                depth += 1
            elif value == "}":
                depth -= 1
                if depth == 0:
                    return int(self.tokens[position].position.line)
        raise SourceError(f"{self.path}: unbalanced braces")


def _children(node: Any) -> Iterable[Any]:
    for child in node.children:
        if isinstance(child, (list, tuple, set)):
            for item in child:
                if isinstance(item, (list, tuple)):
                    yield from item
                else:
                    yield item
        else:
            yield child


def _join_tokens(values: Iterable[str]) -> str:
    text = " ".join(values)
    for before, after in ((" (", "("), ("( ", "("), (" )", ")"), (" ,", ","), (" .", "."), (". ", "."), ("< ", "<"), (" >", ">"), (" <", "<"), ("@ ", "@"), (" [", "["), ("[ ", "[")):
        text = text.replace(before, after)
    return text


class _TreeSitterReader:
    _TYPES = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration", "annotation_type_declaration"})
    _METHODS = frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"})

    def __init__(self, source: str, path: str) -> None:
        import tree_sitter
        import tree_sitter_java

        self.path = path
        self.data = source.encode("utf-8")
        parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_java.language()))
        self.tree = parser.parse(self.data)
        self.declarations: list[_Declaration] = []
        self.anonymous_counts: dict[tuple[str, ...], int] = {}
        self.record_components: dict[tuple[str, ...], tuple[str, ...]] = {}

    def units(self) -> list[CodeUnit]:
        root = self.tree.root_node
        if root.has_error and not any(child.type in self._TYPES for child in root.children):
            raise SourceError(f"{self.path}: cannot parse Java")
        package = None
        imports: list[str] = []
        for child in root.children:
            if child.type == "package_declaration":
                package = self._text(child).removeprefix("package").strip().rstrip(";").strip()
            elif child.type == "import_declaration":
                imports.append(_SPACE.sub(" ", self._text(child)))
        self._walk(root, ())
        self.declarations.sort(key=lambda d: (d.start_line, -d.end_line))
        return _to_units(self.path, self.declarations, package, tuple(imports))

    def _walk(self, node: Any, owner: tuple[str, ...], owner_is_interface: bool = False) -> None:
        for child in node.children:
            kind = child.type
            if kind in self._TYPES:
                name = self._text(child.child_by_field_name("name"))
                chain = (*owner, name)
                if kind == "record_declaration":
                    self.record_components[chain] = self._parameters(child.child_by_field_name("parameters"))
                self._walk(child, chain, kind in ("interface_declaration", "annotation_type_declaration"))
            elif kind in self._METHODS:
                self._add_method(child, owner, owner_is_interface)
                self._walk(child, owner)
            elif kind == "object_creation_expression" and any(c.type == "class_body" for c in child.children):
                for argument in child.children:
                    if argument.type != "class_body":
                        self._walk(argument, owner)
                count = self.anonymous_counts.get(owner, 0) + 1
                self.anonymous_counts[owner] = count
                chain = (*owner[:-1], f"{owner[-1]}${count}")
                body = next(c for c in child.children if c.type == "class_body")
                self._walk(body, chain)
            else:
                self._walk(child, owner, owner_is_interface)

    def _add_method(self, node: Any, owner: tuple[str, ...], owner_is_interface: bool) -> None:
        body = node.child_by_field_name("body")
        header_end = body.start_byte if body is not None else node.end_byte
        modifiers: tuple[str, ...] = ()
        docstring = None
        for child in node.children:
            if child.type == "modifiers":
                modifiers = tuple(sorted(self._text(m) for m in child.children if m.type not in ("marker_annotation", "annotation")))
        previous = node.prev_named_sibling
        if previous is not None and previous.type == "block_comment" and self._text(previous).startswith("/**"):
            docstring = self._text(previous)
        if node.type == "compact_constructor_declaration":
            parameters = self.record_components.get(owner, ())
        else:
            parameters = self._parameters(node.child_by_field_name("parameters"))
        self.declarations.append(
            _Declaration(
                owner=owner,
                name=self._text(node.child_by_field_name("name")),
                is_constructor=node.type != "method_declaration",
                parameter_types=parameters,
                modifiers=modifiers,
                start_line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                signature=_SPACE.sub(" ", self.data[node.start_byte : header_end].decode("utf-8", "replace")).strip().rstrip(";").strip(),
                docstring=docstring,
                owner_is_interface=owner_is_interface,
            )
        )

    def _parameters(self, node: Any) -> tuple[str, ...]:
        if node is None:
            return ()
        types = []
        for child in node.named_children:
            if child.type == "formal_parameter":
                dimensions = sum(1 for c in child.children if c.type == "dimensions") and self._text(
                    next(c for c in child.children if c.type == "dimensions")
                ).count("[")
                types.append(erase_type(self._text(child.child_by_field_name("type"))) + "[]" * int(dimensions or 0))
            elif child.type == "spread_parameter":
                type_node = next(c for c in child.named_children if c.type not in ("modifiers", "variable_declarator"))
                types.append(erase_type(self._text(type_node)) + "[]")
        return tuple(types)

    def _text(self, node: Any) -> str:
        if node is None:
            return ""
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")
