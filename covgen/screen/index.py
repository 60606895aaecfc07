"""What the strict screen knows about a candidate module before judging any node: parents,
scopes, imports and every binding of every name.

Names are resolved conservatively and by name: every binding of a name inside the outermost
function that uses it counts (or the module's, for globals), so a value that could come from
anywhere the screen cannot follow is never taken for a safe one. What follows from the bindings
(is a value under tmp_path, the test's own object, a path) is in :mod:`covgen.screen.provenance`.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import types
from dataclasses import dataclass

from covgen.screen import policy

__all__ = ["Binding", "Function", "ModuleIndex", "Refusal", "call_arg", "default_of", "is_dunder", "literal_names",
           "parameters", "stdlib_object", "stdlib_step"]

Scope = ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
Function = ast.FunctionDef | ast.AsyncFunctionDef
_DUNDER = re.compile(r"^__\w+__$")


class Refusal(Exception):
    """Why a candidate must not run, and the line that says so."""

    def __init__(self, node: ast.AST | None, reason: str) -> None:
        super().__init__(reason)
        self.line = getattr(node, "lineno", 0) if node is not None else 0
        self.reason = reason


def is_dunder(name: str) -> bool:
    return bool(_DUNDER.match(name))


@dataclass(frozen=True, slots=True)
class Binding:
    """One place a name gets a value: ``kind`` is value, param, import, def, class or other."""

    kind: str
    value: ast.expr | None = None
    function: Function | ast.Lambda | None = None  # for params
    node: ast.AST | None = None


class ModuleIndex:
    """Parents, scopes, imports and bindings of one parsed candidate module."""

    def __init__(self, tree: ast.Module, project_modules: frozenset[str]) -> None:
        self.tree = tree
        self.project_modules = project_modules
        self.parent: dict[int, ast.AST] = {}
        self.region: dict[int, Scope] = {}
        self.bindings: dict[tuple[int, str], list[Binding]] = {}
        self.imports: dict[str, set[str]] = {}
        self.annotations: set[int] = set()
        self.name_refs: dict[str, list[ast.Name]] = {}
        self.attribute_names: set[str] = set()
        self.attribute_refs: dict[str, list[ast.Attribute]] = {}
        self.attribute_literals: set[str] = set()
        self.parametrized: dict[str, list[ast.expr]] = {}
        self.fixtures: dict[str, list[Function]] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self._local_cache: dict[int, frozenset[str]] = {}
        #: Names bound somewhere by something other than an import: never trusted to be the import.
        self.rebound: set[str] = set()
        self._index(tree, tree)

    # --- indexing ------------------------------------------------------------------------------

    def _index(self, node: ast.AST, region: Scope) -> None:
        for child in ast.iter_child_nodes(node):
            self.parent[id(child)] = node
            inner = region
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and self._in_body(node, child):
                inner = node if isinstance(region, ast.Module) else region
            self.region[id(child)] = inner
            self._index(child, inner)
        self._record(node, region)

    @staticmethod
    def _in_body(function: Function | ast.Lambda, child: ast.AST) -> bool:
        """The body runs in the function's scope; decorators, defaults and annotations in the enclosing one."""
        if isinstance(function, ast.Lambda):
            return child is function.body
        return child in function.body

    def _record(self, node: ast.AST, region: Scope) -> None:
        here = self.region.get(id(node), region)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._bind(here, node.name, Binding("def", node=node))
            inner = node if isinstance(here, ast.Module) else here
            for arg in parameters(node.args):
                self._bind(inner, arg.arg, Binding("param", function=node, node=arg))
            for annotated in [a.annotation for a in parameters(node.args)] + [node.returns]:
                if annotated is not None:
                    self.annotations.update(id(n) for n in ast.walk(annotated))
            if any(self.is_fixture_decorator(d) for d in node.decorator_list):
                self.fixtures.setdefault(self.fixture_name(node), []).append(node)
        elif isinstance(node, ast.Lambda):
            inner = node if isinstance(here, ast.Module) else here
            for arg in parameters(node.args):
                self._bind(inner, arg.arg, Binding("param", function=node, node=arg))
        elif isinstance(node, ast.ClassDef):
            self._bind(here, node.name, Binding("class", node=node))
            self.classes[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind_target(here, target, node.value)
        elif isinstance(node, ast.AnnAssign):
            self.annotations.update(id(n) for n in ast.walk(node.annotation))
            self._bind_target(here, node.target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.Delete)):
            for target in node.targets if isinstance(node, ast.Delete) else [node.target]:
                self._bind_target(here, target, None)
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(here, node.target, node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            self._bind_target(here, node.target, None, kind="iter", source=node.iter)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._bind_target(here, node.optional_vars, None, kind="with", source=node.context_expr)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._bind(here, node.name, Binding("other", node=node))
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            self._bind(here, node.name, Binding("other", node=node))
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self._bind(here, node.rest, Binding("other", node=node))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:  # rebinds elsewhere: the screen cannot follow it
                self._bind(here, name, Binding("other", node=node))
                self._bind(self.tree, name, Binding("other", node=node))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                self.imports.setdefault(bound, set()).add(alias.name if alias.asname else alias.name.split(".")[0])
                self._bind(here, bound, Binding("import", node=node))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name
                self.imports.setdefault(bound, set()).add(f"{node.module or ''}.{alias.name}")
                self._bind(here, bound, Binding("import", node=node))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self.name_refs.setdefault(node.id, []).append(node)
        elif isinstance(node, ast.Attribute):
            self.attribute_names.add(node.attr)
            self.attribute_refs.setdefault(node.attr, []).append(node)
        elif isinstance(node, ast.Call) and self.qualified(node.func) == "pytest.mark.parametrize":
            names, values = call_arg(node, 0, "argnames"), call_arg(node, 1, "argvalues")
            for name in literal_names(names) or []:
                if values is not None:
                    self.parametrized.setdefault(name, []).append(values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr", "setattr", "delattr"):
            literal = call_arg(node, 1, "name")
            if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
                self.attribute_names.add(literal.value)
                self.attribute_literals.add(literal.value)

    def _bind_target(self, region: Scope, target: ast.expr, value: ast.expr | None, kind: str = "value",
                     source: ast.expr | None = None) -> None:
        if isinstance(target, ast.Name):
            if kind == "value" and value is not None:
                self._bind(region, target.id, Binding("value", value=value, node=target))
            else:
                self._bind(region, target.id, Binding(kind, value=source, node=target))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:  # unpacking: an item of the whole right side
                self._bind_target(region, element, None, kind if kind != "value" else "unpack", source or value)
        elif isinstance(target, ast.Starred):
            self._bind_target(region, target.value, None, "other", source or value)

    def _bind(self, region: Scope, name: str, binding: Binding) -> None:
        self.bindings.setdefault((id(region), name), []).append(binding)
        if binding.kind != "import":
            self.rebound.add(name)

    # --- lookups ------------------------------------------------------------------------------

    def scope_of(self, node: ast.AST) -> Scope:
        return self.region.get(id(node), self.tree)

    def bindings_of(self, name: ast.Name) -> list[Binding]:
        """Every binding `name` could have where it is read: all of its outermost function's
        bindings of that name when it is a local there, else those and the module's."""
        scope = self.scope_of(name)
        found = list(self.bindings.get((id(scope), name.id), [])) if scope is not self.tree else []
        if not self.is_local(name):
            found += self.bindings.get((id(self.tree), name.id), [])
        return found

    def is_local(self, name: ast.Name) -> bool:
        """True when `name` is a local of an enclosing function (Python's own rule), so it can never
        fall back to a module global or a builtin, whatever runs."""
        child: ast.AST = name
        node = self.parent.get(id(name))
        while node is not None:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and self._in_body(node, child):
                if name.id in self._locals(node):
                    return True
            child, node = node, self.parent.get(id(node))
        return False

    def is_builtin(self, name: ast.Name) -> bool:
        """The name can only be the builtin: the test binds it nowhere."""
        return name.id not in self.rebound and not self.import_targets(name.id)

    def _locals(self, function: Function | ast.Lambda) -> frozenset[str]:
        """Names local to `function` by Python's rule (bound in it, not declared global or nonlocal)."""
        if id(function) in self._local_cache:
            return self._local_cache[id(function)]
        names = {a.arg for a in parameters(function.args)}
        declared: set[str] = set()
        stack: list[ast.AST] = [function.body] if isinstance(function, ast.Lambda) else list(function.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue
            if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue  # their own scopes (leaving out what they bind only makes the screen stricter)
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update(a.asname or a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                names.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                names.add(node.rest)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                declared.update(node.names)
            stack.extend(ast.iter_child_nodes(node))
        self._local_cache[id(function)] = frozenset(names - declared)
        return self._local_cache[id(function)]

    def import_targets(self, name: str) -> set[str]:
        return self.imports.get(name, set())

    def qualified(self, node: ast.expr) -> str | None:
        """``a.b.c`` with `a` replaced by what it was imported as; None when not rooted at an import
        (or when `a` is also bound some other way, so it may not be the import where it is read)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in self.rebound:
            return None
        targets = self.import_targets(node.id)
        if len(targets) != 1:
            return None
        return ".".join([next(iter(targets)), *reversed(parts)]).lstrip(".")

    def origin(self, target: str) -> str:
        """stdlib, pytest, tool, project or unknown: whose code an imported dotted name is."""
        top = target.split(".")[0]
        if top == "pytest":
            return "pytest"
        if top in policy.STDLIB_NAMES:
            return "stdlib"
        if top in policy.TOOL_MODULES:
            return "tool"
        if top in self.project_modules and top not in policy.ENTRY_NAMES:
            return "project"
        return "unknown"

    def is_fixture_decorator(self, decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return self.qualified(target) == "pytest.fixture"

    def fixture_name(self, function: Function) -> str:
        for decorator in function.decorator_list:
            if isinstance(decorator, ast.Call) and self.is_fixture_decorator(decorator):
                name = call_arg(decorator, 99, "name")
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    return name.value
        return function.name

    def is_pytest_called(self, function: Function | ast.Lambda) -> bool:
        """Tests and fixtures: pytest calls them, injecting fixtures by parameter name."""
        if isinstance(function, ast.Lambda):
            return False
        if any(self.is_fixture_decorator(d) for d in function.decorator_list):
            return True
        owner = self.parent.get(id(function))
        if isinstance(owner, ast.ClassDef):
            return owner.name.startswith("Test") and function.name.startswith("test")
        return isinstance(owner, ast.Module) and function.name.startswith("test")

    def method_kind(self, function: Function | ast.Lambda) -> str | None:
        """plain, class or static for a method of a class the test defines; None otherwise."""
        if isinstance(function, ast.Lambda) or not isinstance(self.parent.get(id(function)), ast.ClassDef):
            return None
        names = {d.id for d in function.decorator_list if isinstance(d, ast.Name)}
        return "static" if "staticmethod" in names else "class" if "classmethod" in names else "plain"

    def class_typed(self, node: ast.expr) -> bool:
        """A name that holds one of the test's own classes (not an instance)."""
        if not isinstance(node, ast.Name):
            return False
        for binding in self.bindings_of(node):
            if binding.kind == "class":
                return True
            if binding.kind == "param" and binding.function is not None and self.method_kind(binding.function) == "class":
                if parameters(binding.function.args)[0] is binding.node:
                    return True
        return False

def parameters(args: ast.arguments) -> list[ast.arg]:
    return [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []), *args.kwonlyargs,
            *([args.kwarg] if args.kwarg else [])]


def default_of(args: ast.arguments, arg: ast.arg) -> ast.expr | None:
    positional = [*args.posonlyargs, *args.args]
    if arg in positional:
        index = positional.index(arg) - (len(positional) - len(args.defaults))
        return args.defaults[index] if index >= 0 else None
    if arg in args.kwonlyargs:
        return args.kw_defaults[args.kwonlyargs.index(arg)]
    return None


def call_arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    """The argument at `position` or passed as `keyword` (None when absent or splatted)."""
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return call.args[position] if position < len(call.args) and not isinstance(call.args[position], ast.Starred) else None


def literal_names(node: ast.expr | None) -> list[str] | None:
    """parametrize's argnames as written ("a, b" or ["a", "b"]); None when not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [part.strip() for part in node.value.split(",") if part.strip()]
    if isinstance(node, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [str(e.value).strip() for e in node.elts if isinstance(e, ast.Constant)]
    return None


@functools.cache
def _import(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def stdlib_step(module: str, attr: str) -> tuple[str | None, str | None]:
    """From allowlisted `module`, what `module.attr` is: (the module it names, or None for a
    non-module value; why it is refused, or None)."""
    full = f"{module}.{attr}"
    if full in policy.STDLIB:
        return full, None
    rule = policy.STDLIB.get(module)
    if rule is None:  # a prefix package (urllib): only its allowlisted submodules
        return None, f"uses {full} (not on covgen's import allowlist; {policy.SEE})"
    refused = f"uses {full} (not among the names covgen allows from {module}; {policy.SEE})"
    if attr.startswith("_") or attr in rule.refused or (rule.names is not None and attr not in rule.names):
        return None, refused
    loaded = _import(module)
    value = getattr(loaded, attr, refused) if loaded is not None else refused
    if value is refused:
        return None, refused
    if isinstance(value, types.ModuleType):
        if value.__name__ in policy.STDLIB:
            return value.__name__, None
        return None, f"uses {full}, which is the module {value.__name__} (not on covgen's import allowlist; {policy.SEE})"
    return None, None


_MISSING = object()


def stdlib_object(path: str) -> object:
    """The allowlisted standard-library object a dotted name denotes (a sentinel when refused or absent)."""
    parts = path.split(".")
    if parts[0] not in policy.STDLIB and parts[0] not in policy.PREFIX_PACKAGES:
        return _MISSING
    module: str | None = parts[0]
    value: object = _import(parts[0])
    for part in parts[1:]:
        if module is None:  # past the last module: a class's or function's own attribute
            if part.startswith("_"):
                return _MISSING
            value = getattr(value, part, _MISSING)
            continue
        found, reason = stdlib_step(module, part)
        if reason:
            return _MISSING
        value = _import(found) if found else getattr(_import(module), part, _MISSING)
        module = found
    return value
