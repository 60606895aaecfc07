"""What follows from a candidate's bindings: which values are safe to write to, change or call.

* **under tmp_path** — the expression is a path below the ``tmp_path`` fixture (or a
  ``tmp_path_factory.mktemp`` directory), built only with literal, relative parts;
* **owned** — the expression is the test's own object (a literal, an instance of a class the
  test defines or the project exports, a mock): attributes may be set on it and its private
  attributes read, which is never allowed on objects of the standard library or pytest, whose
  internals are gadgets (a patcher told to look up ``__globals__``, a redirect told to swap
  ``sys.modules``);
* **storable** — items may be set in it: owned, or a container the test built;
* **a path** — the expression is some ``pathlib`` path (for methods like ``rename`` whose names
  other types share).

A parameter's value is what every call site passes; a test's or fixture's parameter is what
pytest injects (a fixture, a parametrized value, a default). Each property must hold for every
source a value could come from.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from covgen.screen import policy
from covgen.screen.index import (
    Binding, Function, ModuleIndex, call_arg, default_of, parameters, stdlib_object,
)

__all__ = ["Provenance", "safe_part", "safe_text"]

#: Builtins whose result is made of their arguments (or is fresh): owned when those are.
_PASSTHROUGH = frozenset({
    "dict", "list", "set", "tuple", "frozenset", "str", "int", "float", "complex", "bytes", "bytearray", "bool",
    "object", "sorted", "reversed", "iter", "next", "min", "max", "sum", "map", "filter", "zip", "enumerate", "repr",
    "len", "abs", "round", "divmod", "isinstance", "issubclass", "callable", "hash", "id", "format", "range", "slice",
    "print", "any", "all", "ord", "chr", "hex", "oct", "bin", "ascii",
})


@dataclass
class _Memo:
    done: dict[int, bool] = field(default_factory=dict)
    busy: set[int] = field(default_factory=set)
    #: Results cached during the current outermost evaluation, and whether a cycle was assumed.
    provisional: list[int] = field(default_factory=list)
    assumed: bool = False


class Provenance(ModuleIndex):
    """A module index that also answers the screen's questions about values."""

    def __init__(self, tree: ast.Module, project_modules: frozenset[str]) -> None:
        super().__init__(tree, project_modules)
        self._memos: dict[str, _Memo] = {}

    def under_tmp_path(self, node: ast.expr) -> bool:
        return self._holds("tmp", node, self._tmp_step)

    def owned(self, node: ast.expr) -> bool:
        return self._holds("owned", node, self._owned_step)

    def is_path(self, node: ast.expr) -> bool:
        return self._holds("path", node, self._path_step, cyclic=False)

    def _holds(self, prop: str, node: ast.expr, step: Callable[[ast.expr], bool], cyclic: bool = True) -> bool:
        memo = self._memos.setdefault(prop, _Memo())
        key = id(node)
        if key in memo.done:
            return memo.done[key]
        if key in memo.busy:
            # A value that only flows around a cycle comes from the cycle's entries, which are
            # checked on their own: coinductively true for "every source is safe".
            memo.assumed = True
            return cyclic
        outermost = not memo.busy
        memo.busy.add(key)
        try:
            result = step(node)
        finally:
            memo.busy.discard(key)
        memo.done[key] = result
        memo.provisional.append(key)
        if outermost:
            if memo.assumed and not result:
                # Inner results assumed this one held; it does not, so they prove nothing.
                for stale in memo.provisional:
                    memo.done.pop(stale, None)
                memo.done[key] = result
            memo.provisional.clear()
            memo.assumed = False
        return result

    def _name_sources(self, node: ast.Name) -> Iterator[tuple[str, ast.expr | None, Binding]]:
        for binding in self.bindings_of(node):
            yield binding.kind, binding.value, binding

    def _tmp_step(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            sources = list(self._name_sources(node))
            return bool(sources) and all(self._tmp_source(node.id, kind, value, b) for kind, value, b in sources)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self.under_tmp_path(node.left) and safe_part(node.right)
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if isinstance(func, ast.Name) and func.id == "str" and len(node.args) == 1 and self.is_builtin(func):
                return self.under_tmp_path(node.args[0])
            if self.qualified(func) in policy.PATH_CLASSES and node.args:  # Path(tmp_path, "a", "b")
                return self.under_tmp_path(node.args[0]) and all(map(safe_part, node.args[1:]))
            if isinstance(func, ast.Attribute):
                if func.attr == "joinpath":
                    return self.under_tmp_path(func.value) and bool(node.args) and all(map(safe_part, node.args))
                if func.attr == "with_suffix" and len(node.args) == 1:
                    return self.under_tmp_path(func.value) and isinstance(node.args[0], ast.Constant)
                if func.attr == "mktemp" and isinstance(func.value, ast.Name) and len(node.args) == 1:
                    return self.is_factory(func.value) and safe_part(node.args[0])
        if isinstance(node, ast.JoinedStr) and node.values:  # f"{tmp_path}/out.txt"
            first, rest = node.values[0], node.values[1:]
            if not (isinstance(first, ast.FormattedValue) and first.conversion == -1 and first.format_spec is None
                    and self.under_tmp_path(first.value)):
                return False
            parts = [v.value for v in rest if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            text = "".join(parts)
            return len(parts) == len(rest) and (not text or (text.startswith("/") and safe_text(text[1:])))
        return False

    def is_factory(self, node: ast.expr) -> bool:
        """pytest's tmp_path_factory fixture itself."""
        return self._holds("factory", node, self._factory_step)

    def _factory_step(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Name):
            return False
        sources = list(self._name_sources(node))
        return bool(sources) and all(
            kind == "param" and self._param_safe(b, "tmp_path_factory", self.is_factory) for kind, _, b in sources
        )

    def _tmp_source(self, name: str, kind: str, value: ast.expr | None, binding: Binding) -> bool:
        if kind == "value" and value is not None:
            return self.under_tmp_path(value)
        if kind == "param":
            return self._param_safe(binding, "tmp_path", self.under_tmp_path)
        return False

    def _param_safe(self, binding: Binding, root: str, safe: Callable[[ast.expr], bool]) -> bool:
        """Every value the parameter can get is safe; pytest's own `root` fixture counts as safe."""
        function, arg = binding.function, binding.node
        if function is None or not isinstance(arg, ast.arg):
            return False
        values = self._argument_values(function, arg)
        if values is None:
            return False
        if self.is_pytest_called(function):
            default = default_of(function.args, arg)
            if default is not None:  # pytest injects no fixture into a parameter with a default
                values.append(default)
            elif arg.arg != root or arg.arg in self.parametrized or arg.arg in self.fixtures:
                return False
        return all(safe(value) for value in values)

    def _argument_values(self, function: Function | ast.Lambda, arg: ast.arg) -> list[ast.expr] | None:
        """What the test's own code passes for `arg`; None when the function escapes the screen's view."""
        if isinstance(function, ast.Lambda):
            return None
        allowed = {"pytest.fixture", "pytest.mark", *policy.PATCHERS}
        for decorator in function.decorator_list:
            target = self.qualified(decorator.func if isinstance(decorator, ast.Call) else decorator) or ""
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                return None  # a decorator may call it with anything
        if self.method_kind(function) is not None:
            return self._method_argument_values(function, arg)
        # A function of the module is reachable only by its name: the module object itself is not
        # (importing it by name, sys.modules and globals() are all refused).
        positional = [*function.args.posonlyargs, *function.args.args]
        values: list[ast.expr] = []
        for ref in self.name_refs.get(function.name, []):
            if not any(b.kind == "def" and b.node is function for b in self.bindings_of(ref)):
                continue  # the same name, bound to something else there (a fixture's parameter)
            call = self.parent.get(id(ref))
            if not (isinstance(call, ast.Call) and call.func is ref):
                return None
            if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                return None
            passed = next((k.value for k in call.keywords if k.arg == arg.arg), None)
            if passed is None and arg in positional and positional.index(arg) < len(call.args):
                passed = call.args[positional.index(arg)]
            if passed is None:
                passed = default_of(function.args, arg)
            if passed is None:
                return None
            values.append(passed)
        return values

    def _method_argument_values(self, function: Function, arg: ast.arg) -> list[ast.expr] | None:
        """A method's argument: what every `self.method(...)` passes; None if it is reached any other way."""
        if self.method_kind(function) != "plain":
            return None
        positional = [*function.args.posonlyargs, *function.args.args][1:]
        if function.name in self.attribute_literals:
            return None  # getattr(obj, "method")
        values: list[ast.expr] = []
        for node in self.attribute_refs.get(function.name, []):
            call = self.parent.get(id(node))
            receiver = node.value
            if not (isinstance(call, ast.Call) and call.func is node and isinstance(receiver, ast.Name)
                    and self._is_self(receiver)):
                return None
            if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                return None
            passed = next((k.value for k in call.keywords if k.arg == arg.arg), None)
            if passed is None and arg in positional and positional.index(arg) < len(call.args):
                passed = call.args[positional.index(arg)]
            passed = passed if passed is not None else default_of(function.args, arg)
            if passed is None:
                return None
            values.append(passed)
        return values

    def _is_self(self, name: ast.Name) -> bool:
        """The first parameter of a plain method of the test's own class."""
        bindings = self.bindings_of(name)
        return bool(bindings) and all(
            b.kind == "param" and b.function is not None and not isinstance(b.function, ast.Lambda)
            and self.method_kind(b.function) == "plain" and [*b.function.args.posonlyargs, *b.function.args.args][:1] == [b.node]
            for b in bindings)

    def _owned_step(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            if self.import_targets(node.id) and node.id not in self.rebound:
                return self._project_import(node.id)
            sources = list(self._name_sources(node))
            return bool(sources) and all(self._owned_source(kind, value, b) for kind, value, b in sources)
        if isinstance(node, ast.Attribute):
            # A module the project imported (`mymodule.json`) is the standard library's, not the project's.
            if self._static_path(node.value) and node.attr.lstrip("_") in policy.STDLIB_NAMES:
                return False
            return self.owned(node.value)
        if isinstance(node, ast.Subscript):
            return self.owned(node.value)
        if isinstance(node, ast.Call):
            callee = self.qualified(node.func)
            if callee in policy.MOCKS or self._from_mocker(node.func):
                return True
            if callee is not None and self.origin(callee) == "stdlib":
                # Fresh data built from the test's own values; never shared state or an object
                # whose private fields steer lookups (a redirect, a patcher).
                value = stdlib_object(callee)
                fresh = callee in policy.DATA_CLASSES or (
                    callable(value) and not isinstance(value, type) and callee not in policy.SHARED_STATE)
                return fresh and all(self.owned(a.value if isinstance(a, ast.Starred) else a) for a in node.args) \
                    and all(self.owned(k.value) for k in node.keywords)
            if isinstance(node.func, ast.Name) and node.func.id == "getattr" and self.is_builtin(node.func) and node.args:
                name = call_arg(node, 1, "name")  # getattr(x, "name") is x.name
                return isinstance(name, ast.Constant) and isinstance(name.value, str) and self.owned(
                    ast.copy_location(ast.Attribute(value=node.args[0], attr=name.value, ctx=ast.Load()), node))
            if isinstance(node.func, ast.Name) and node.func.id in _PASSTHROUGH and self.is_builtin(node.func):
                return all(self.owned(a.value if isinstance(a, ast.Starred) else a) for a in node.args) \
                    and all(self.owned(k.value) for k in node.keywords)
            if isinstance(node.func, ast.Lambda):
                return self.owned(node.func.body)
            return self.owned(node.func) and self._returns_owned(node.func)
        if isinstance(node, ast.Constant | ast.JoinedStr):
            return True
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self.owned(e.value if isinstance(e, ast.Starred) else e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.owned(v) for v in [*node.keys, *node.values] if v is not None)
        if isinstance(node, ast.BinOp):
            return self.owned(node.left) and self.owned(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.owned(node.operand)
        if isinstance(node, ast.BoolOp):
            return all(map(self.owned, node.values))
        if isinstance(node, ast.IfExp):
            return self.owned(node.body) and self.owned(node.orelse)
        if isinstance(node, (ast.NamedExpr, ast.Await)):
            return self.owned(node.value)
        return isinstance(node, ast.Compare)

    def _static_path(self, node: ast.expr) -> bool:
        """`name.attr.attr` from an import, with no call or item in between (a module's attribute, say)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and bool(self.import_targets(node.id))

    def storable(self, node: ast.expr) -> bool:
        """Items may be set in it: the test's own or the project's object, or a container the test built."""
        return self._holds("storable", node, self._storable_step)

    def _storable_step(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.Dict, ast.List, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
            return True  # built here: setting its items changes nothing else
        if isinstance(node, ast.Call):
            func = node.func.value if isinstance(node.func, ast.Attribute) else node.func  # dict(...), dict.fromkeys(...)
            if isinstance(func, ast.Name) and func.id in ("dict", "list", "set", "bytearray") and self.is_builtin(func):
                return True  # a new container (a copy of its argument)
            if self.qualified(node.func) in policy.DATA_CLASSES:
                return True
        if isinstance(node, ast.BinOp) and isinstance(node.left, (ast.List, ast.Tuple)):
            return True  # [0] * n
        if isinstance(node, ast.Name):
            sources = list(self._name_sources(node))
            return bool(sources) and all(
                self.storable(value) if kind == "value" and value is not None else self._owned_source(kind, value, b)
                for kind, value, b in sources)
        if isinstance(node, ast.Subscript):  # an item of a container the test built from its own items
            return self._items_storable(node.value) or self.owned(node)
        return self.owned(node)

    def _items_storable(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self.storable(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.storable(v) for v in node.values)
        if isinstance(node, (ast.ListComp, ast.SetComp)):
            return self.storable(node.elt)
        if isinstance(node, ast.DictComp):
            return self.storable(node.value)
        if isinstance(node, ast.Name):
            sources = list(self._name_sources(node))
            return bool(sources) and all(kind == "value" and value is not None and self._items_storable(value)
                                         for kind, value, _ in sources)
        return False

    def _from_mocker(self, func: ast.expr) -> bool:
        """pytest-mock's mocker.patch(...) and friends: they hand back mocks."""
        if not isinstance(func, ast.Attribute):
            return False
        while isinstance(func, ast.Attribute):
            func = func.value
        return isinstance(func, ast.Name) and func.id == "mocker" and any(
            b.kind == "param" and b.function is not None and self.is_pytest_called(b.function) for b in self.bindings_of(func)
        )

    def _returns_owned(self, func: ast.expr, seen: frozenset[int] = frozenset()) -> bool:
        """A call's result: instances of the project's or the test's classes; the test's functions' returns."""
        if isinstance(func, ast.Attribute):
            methods = [m for c in self.classes.values() for m in c.body
                       if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == func.attr]
            return all(self.owned(v) for m in methods for v in _returned(m))
        if not isinstance(func, ast.Name) or (self.import_targets(func.id) and func.id not in self.rebound):
            return True  # a project callable (owned() already refused anything else)
        for binding in self.bindings_of(func):
            if binding.kind == "def" and isinstance(binding.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not all(self.owned(v) for v in _returned(binding.node)):
                    return False
            elif binding.kind in ("value", "iter", "unpack") and binding.value is not None:
                # `kind = Stock; kind()` or `for kind in (A, B): kind()`: whatever it may call returns owned values.
                for node in ast.walk(binding.value):
                    if isinstance(node, ast.Lambda) and not self.owned(node.body):
                        return False
                    if isinstance(node, ast.Name) and id(node) not in seen and not self._returns_owned(node, seen | {id(func)}):
                        return False
            elif binding.kind not in ("class", "import"):
                return False
        return True

    def _items_owned(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self._items_owned(e.value) if isinstance(e, ast.Starred) else
                       self._items_owned(e) if isinstance(e, (ast.List, ast.Tuple)) else self.owned(e) for e in node.elts)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and self.is_builtin(node.func):
            return True
        return self.owned(node)

    def _project_import(self, name: str) -> bool:
        return all(self._project_owned(t) for t in self.import_targets(name))

    def _project_owned(self, target: str) -> bool:
        """The project's own object: not a standard-library module it re-exports (`from mypkg import json`)."""
        return self.origin(target) == "project" and target.rsplit(".", 1)[-1].lstrip("_") not in policy.STDLIB_NAMES

    def _owned_source(self, kind: str, value: ast.expr | None, binding: Binding) -> bool:
        if kind == "value" and value is not None:
            return self.owned(value)
        if kind == "import" and isinstance(binding.node, (ast.Import, ast.ImportFrom)):
            return all(self._project_owned(_imported(binding.node, alias)) for alias in binding.node.names)
        if kind == "def":
            return True
        if kind in ("iter", "unpack") and value is not None:  # an item of what is looped over or unpacked
            return self._items_owned(value)
        if kind == "class" and isinstance(binding.node, ast.ClassDef):
            return self.plain_bases(binding.node)
        if kind == "with" and value is not None:
            # `with patch(...) as fake` binds the mock; otherwise what the context manager's call is.
            target = self.qualified(value.func) if isinstance(value, ast.Call) else None
            return target in policy.PATCHERS or self.owned(value)
        if kind != "param" or binding.function is None or not isinstance(binding.node, ast.arg):
            return False
        function, arg = binding.function, binding.node
        if isinstance(function, ast.Lambda):
            return False
        method = self.method_kind(function)
        if method in ("plain", "class") and parameters(function.args)[0] is arg:
            # self or cls: the test's own class (the screen refuses unbound method calls). Private
            # state of a standard-library base (a redirect's `_stream`) is a gadget, so a class
            # with such a base owns only its public attributes (the screen's rule on stores).
            owner = self.parent.get(id(function))
            return isinstance(owner, ast.ClassDef) and self.plain_bases(owner)
        patched = any((self.qualified(d.func if isinstance(d, ast.Call) else d) or "") in policy.PATCHERS
                      for d in function.decorator_list)
        if not self.is_pytest_called(function) and patched:
            return False
        direct = self._argument_values(function, arg)
        if direct is None:
            return False
        injected: list[ast.expr] = []
        if self.is_pytest_called(function):
            if arg.arg in policy.BUILTIN_FIXTURES:
                return False
            injected += self.parametrized.get(arg.arg, [])
            for fixture in self.fixtures.get(arg.arg, []):
                returned = _returned(fixture)
                if any(isinstance(n, ast.Name) and n.id == "request" for value in returned for n in ast.walk(value)):
                    return False  # request.param: whatever parametrized it indirectly
                injected += returned
            default = default_of(function.args, arg)
            if default is not None:
                injected.append(default)
        # Anything else pytest injects is the project's own fixture or @patch's mock.
        return all(self.owned(value) for value in [*injected, *direct])

    def plain_bases(self, cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
        """The class derives only from builtins, the project's classes and such classes of the test."""
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in self.classes:
                if base.id in seen or not self.plain_bases(self.classes[base.id], seen | {cls.name}):
                    return False
                continue
            if isinstance(base, ast.Name) and self.is_builtin(base):
                continue
            targets = self._base_targets(base) if not (isinstance(base, ast.Name) and base.id in self.rebound) else []
            if not targets or any(self.origin(t) != "project" for t in targets):
                return False
        return True

    def _base_targets(self, base: ast.expr) -> list[str]:
        parts: list[str] = []
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return []
        return [".".join([t, *reversed(parts)]) for t in self.import_targets(base.id)]

    def _path_step(self, node: ast.expr) -> bool:
        if self.under_tmp_path(node):
            return True
        if isinstance(node, ast.Name):
            return any(kind == "value" and value is not None and self.is_path(value) for kind, value, _ in self._name_sources(node))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self.is_path(node.left)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return self.is_path(node.value)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            return self.is_path(node.value.value)
        if isinstance(node, ast.Call):
            callee = self.qualified(node.func)
            if callee in policy.PATH_CLASSES or (callee or "").rpartition(".")[0] in policy.PATH_CLASSES:
                return True
            if isinstance(node.func, ast.Attribute) and node.func.attr in policy.PATH_RETURNING:
                return self.is_path(node.func.value)
        return False


def _imported(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    return f"{node.module or ''}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name


def _returned(function: Function) -> list[ast.expr]:
    """What a function returns or yields (None for a bare return), not looking into nested functions."""
    found: list[ast.expr] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Return, ast.Yield)) and node.value is not None:
            found.append(node.value)
        if isinstance(node, ast.YieldFrom):
            found.append(ast.Call(func=ast.Name(id="type", ctx=ast.Load()), args=[], keywords=[]))  # unknown: not owned
        stack.extend(ast.iter_child_nodes(node))
    return found


def safe_text(text: str) -> bool:
    """A relative path that stays below where it starts: no root, no drive, no `..`, no NUL."""
    if not text or "\0" in text or text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", text):
        return False
    return ".." not in re.split(r"[/\\]", text)


def safe_part(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and safe_text(node.value)
