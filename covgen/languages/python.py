"""Python code units from libcst: exact spans, coverage.py-compatible qualnames, signatures."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from covgen.errors import SourceError
from covgen.model import CodeUnit, UnitKind

__all__ = ["find_python_units"]

_DECORATOR_KINDS: dict[str, UnitKind] = {
    "property": "property",
    "cached_property": "property",
    "staticmethod": "staticmethod",
    "classmethod": "classmethod",
}


def find_python_units(source: str, path: str) -> list[CodeUnit]:
    """Return every function and method in `source`, outermost first."""
    try:
        module = cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError) as err:
        raise SourceError(f"{path}: cannot parse Python ({str(err).splitlines()[0] if str(err) else err})") from err
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    collector = _UnitCollector(path, module)
    wrapper.visit(collector)
    return collector.units


class _UnitCollector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, path: str, module: cst.Module) -> None:
        super().__init__()
        self.path = path
        self.module = module
        self.units: list[CodeUnit] = []
        #: (name, node) of the enclosing classes and functions, outermost first.
        self.scope: list[tuple[str, cst.ClassDef | cst.FunctionDef]] = []
        self.imports = tuple(
            module.code_for_node(statement).strip()
            for statement in module.body
            if isinstance(statement, cst.SimpleStatementLine)
            and any(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
        )

    # No function is defined inside a simple statement, a decorator or a parameter list: not
    # walking into them skips most of a module's nodes (expressions) for the same units.
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        return False

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> bool:
        return False

    def visit_Decorator(self, node: cst.Decorator) -> bool:
        return False

    def visit_Parameters(self, node: cst.Parameters) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scope.append((node.name.value, node))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scope.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        name = node.name.value
        qualname = ".".join([*(n for n, _ in self.scope), name])
        enclosing = self.scope[-1][1] if self.scope else None
        in_class = isinstance(enclosing, cst.ClassDef)
        span = self._span(node)
        self.units.append(
            CodeUnit(
                path=self.path,
                language="python",
                qualname=qualname,
                name=name,
                kind=_kind(node, in_class),
                start_line=span[0],
                end_line=span[1],
                body_start_line=self._body_span(node)[0],
                signature=self._signature(node),
                docstring=node.get_docstring(),
                class_name=enclosing.name.value if isinstance(enclosing, cst.ClassDef) else None,
                constructor=self._constructor(enclosing) if isinstance(enclosing, cst.ClassDef) else None,
                nested_spans=tuple(self._body_span(inner) for inner in _nested_definitions(node.body)),
                is_public=not any(_is_private(part) for part in qualname.split(".")),
                imports=self.imports,
            )
        )
        self.scope.append((name, node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scope.pop()

    def _span(self, node: cst.FunctionDef | cst.ClassDef) -> tuple[int, int]:
        position: CodeRange = self.get_metadata(PositionProvider, node)
        start = position.start.line
        if node.decorators:
            start = self.get_metadata(PositionProvider, node.decorators[0]).start.line
        return start, position.end.line

    def _body_span(self, node: cst.FunctionDef | cst.ClassDef) -> tuple[int, int]:
        """Lines from the first statement after the docstring to the end (a nested ``def`` line runs with its parent)."""
        body = node.body
        statements = list(body.body) if isinstance(body, cst.IndentedBlock) else []
        if isinstance(node, cst.FunctionDef) and statements and node.get_docstring() is not None and len(statements) > 1:
            statements = statements[1:]
        first = statements[0] if statements else body
        return self.get_metadata(PositionProvider, first).start.line, self.get_metadata(PositionProvider, node).end.line

    def _signature(self, node: cst.FunctionDef) -> str:
        header = node.with_changes(body=cst.SimpleStatementSuite(body=[cst.Expr(cst.Ellipsis())]), leading_lines=[])
        text = self.module.code_for_node(header).strip()
        return text.removesuffix(": ...").rstrip()

    def _constructor(self, cls: cst.ClassDef) -> str | None:
        for statement in _class_body(cls):
            if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
                return self._signature(statement)
        return None


def _kind(node: cst.FunctionDef, in_class: bool) -> UnitKind:
    if not in_class:
        return "function"
    if node.name.value == "__init__":
        return "constructor"
    for decorator in node.decorators:
        target = decorator.decorator
        name = target.value if isinstance(target, cst.Name) else target.attr.value if isinstance(target, cst.Attribute) else ""
        if name in _DECORATOR_KINDS:
            return _DECORATOR_KINDS[name]
        if isinstance(target, cst.Attribute) and target.attr.value in ("setter", "deleter"):
            return "property"
    return "method"


def _class_body(cls: cst.ClassDef) -> Sequence[cst.BaseStatement | cst.BaseSmallStatement]:
    body = cls.body
    return body.body if isinstance(body, cst.IndentedBlock) else ()


def _nested_definitions(body: cst.BaseSuite) -> list[cst.FunctionDef | cst.ClassDef]:
    """Find functions and classes defined anywhere inside `body`, not below another one."""
    found: list[cst.FunctionDef | cst.ClassDef] = []

    class _Finder(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            found.append(node)
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            found.append(node)
            return False

    body.visit(_Finder())
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
