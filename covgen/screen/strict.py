"""The strict screen: an allowlist checked on every node of a candidate's syntax tree.

A candidate reaches only what is listed in :mod:`covgen.screen.policy`; the rules below say how
each kind of node can reach further (an attribute, a call, a string that names an attribute, a
parameter pytest fills) and refuse what leaves the list. Each refusal names its rule, because
the message goes back to the model in the repair turn.
"""

from __future__ import annotations

import ast
import re
import string

from covgen.screen import policy
from covgen.screen.index import ModuleIndex, Refusal, call_arg, is_dunder, literal_names, stdlib_step
from covgen.screen.provenance import Provenance

__all__ = ["strict_reason"]

SEE = policy.SEE
_DUNDER_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])(__[A-Za-z]\w*?__)(?![A-Za-z0-9])")
_WRITE_MODE = re.compile(r"[wax+]")
_MODE = re.compile(r"^[rwxabt+U]+$")
_FIELD_ATTRIBUTE = re.compile(r"\.([^.\[]+)")


def strict_reason(source: str, project_modules: frozenset[str]) -> str | None:
    """Why `source` may not run under the allowlist, or None."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # the funnel reports syntax errors itself
    try:
        refusals = _Rules(Provenance(tree, project_modules)).check()
    except RecursionError:
        return f"the module is nested too deeply to screen ({SEE})"
    if not refusals:
        return None
    first = min(refusals, key=lambda r: r.line)
    return f"line {first.line}: {first.reason}" if first.line else first.reason


class _Rules:
    def __init__(self, index: Provenance) -> None:
        self.index = index
        #: Methods that change or read the private state of `self`: called unbound on a foreign
        #: object they would do that to it.
        self.methods = {
            item.name for cls in index.classes.values() for item in cls.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _touches_self(item, index)
        }

    def check(self) -> list[Refusal]:
        refusals = []
        for node in ast.walk(self.index.tree):
            try:
                self._visit(node)
            except Refusal as refusal:
                refusals.append(refusal)
        return refusals

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._module(alias.name, node)
                self._bound_name(alias.asname or alias.name.split(".")[0], node)
        elif isinstance(node, ast.ImportFrom):
            self._import_from(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.Attribute):
            self._attribute(node.value, node.attr, node, store=not isinstance(node.ctx, ast.Load))
        elif isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
            if not self.index.storable(node.value):
                raise Refusal(node, f"changes {_show(node)} (only the test's own and the project's objects may be "
                                    f"changed; {SEE})")
        elif isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(node)
        elif isinstance(node, ast.ClassDef):
            self._class(node)
        elif isinstance(node, ast.keyword) and node.arg is not None and is_dunder(node.arg) and node.arg not in policy.DUNDERS:
            raise Refusal(node.value, f"passes the keyword {node.arg}= ({_dunder_rule()})")
        elif isinstance(node, ast.MatchClass):
            for name in node.kwd_attrs:  # `case Cls(attr=...)` reads attr
                self._attribute_name(name, node)

    # --- imports -------------------------------------------------------------------------------

    def _module(self, name: str, node: ast.AST) -> None:
        origin = self.index.origin(name)
        if origin == "stdlib":
            parts = name.split(".")
            if parts[0] not in policy.STDLIB and parts[0] not in policy.PREFIX_PACKAGES:
                raise Refusal(node, f"imports {name} (not on covgen's import allowlist; {SEE})")
            current = parts[0]
            for part in parts[1:]:
                found, reason = stdlib_step(current, part)
                if reason or found is None:
                    raise Refusal(node, f"imports {name} (not on covgen's import allowlist; {SEE})")
                current = found
        elif origin == "pytest":
            if name != "pytest":
                raise Refusal(node, f"imports {name} (only the pytest module itself, for raises, approx, fixture, mark, "
                                    f"param; {SEE})")
        elif origin == "tool":
            raise Refusal(node, f"imports {name} (pytest's, coverage's and covgen's machinery is out of reach; {SEE})")
        elif origin == "project":
            for part in name.split(".")[1:]:
                self._project_name(part, name, node)
        else:
            raise Refusal(node, f"imports {name} (not a module of this project, pytest, or the standard library "
                                f"covgen allows; {SEE})")

    def _import_from(self, node: ast.ImportFrom) -> None:
        if node.level:
            raise Refusal(node, f"uses a relative import (import project modules by their full name; {SEE})")
        module = node.module or ""
        self._module(module, node)
        origin = self.index.origin(module)
        for alias in node.names:
            if alias.name == "*":
                raise Refusal(node, f"uses `from {module} import *` (name what you import; {SEE})")
            self._bound_name(alias.asname or alias.name, node)
            if origin == "stdlib":
                found, reason = stdlib_step(module, alias.name)
                if reason:
                    raise Refusal(node, reason)
            elif origin == "pytest":
                if alias.name not in policy.PYTEST_NAMES | policy.PYTEST_ANNOTATIONS:
                    raise Refusal(node, _pytest_rule(alias.name))
            else:
                self._project_name(alias.name, module, node)

    def _project_name(self, name: str, module: str, node: ast.AST) -> None:
        if name.lstrip("_") in policy.GATEWAYS or name.lstrip("_") in policy.STDLIB_NAMES and name.lstrip("_") not in policy.STDLIB:
            raise Refusal(node, f"reaches {name} through {module} (a module covgen does not allow stays out of reach "
                                f"whoever re-exports it; {SEE})")
        if is_dunder(name) and name not in policy.DUNDER_DEFS:
            raise Refusal(node, f"imports {name} from {module} ({_dunder_rule()})")
        if name.startswith("pytest_"):
            raise Refusal(node, _hook_rule(name))

    def _bound_name(self, name: str, node: ast.AST) -> None:
        if name in policy.BUILTIN_FIXTURES:
            raise Refusal(node, _override_rule(name))
        if name.startswith("pytest_"):
            raise Refusal(node, _hook_rule(name))

    # --- names -------------------------------------------------------------------------------

    def _name(self, node: ast.Name) -> None:
        name, index = node.id, self.index
        if name.startswith("pytest_"):
            raise Refusal(node, _hook_rule(name))
        if is_dunder(name) and not (isinstance(node.ctx, ast.Load) and name in policy.DUNDER_NAMES) \
                and not (name == "__slots__" and self._in_class_body(node)):
            raise Refusal(node, f"uses {name} ({_dunder_rule()})")
        if not isinstance(node.ctx, ast.Load):
            if name in policy.BUILTIN_FIXTURES and index.scope_of(node) is index.tree:
                raise Refusal(node, _override_rule(name))
            return
        parent = index.parent.get(id(node))
        local = index.is_local(node)
        if not local and name in policy.RESTRICTED_BUILTINS:
            raise Refusal(node, f"uses {name}() (code from strings, scopes, stdin and interpreter exits are out of "
                                f"reach; {SEE})")
        if not local and name in policy.CALL_ONLY_BUILTINS and not (isinstance(parent, ast.Call) and parent.func is node):
            raise Refusal(node, f"uses {name} without calling it (the screen checks its arguments only in a direct "
                                f"call; {SEE})")
        if not local and name in policy.SESSION_ENDING and not self._expected(node):
            raise Refusal(node, f"uses {name} (raising it ends pytest's session; a test may only expect it with "
                                f"pytest.raises or catch it; {SEE})")
        for target in index.import_targets(name):
            self._imported_value(node, target, parent)
        fixture = self._fixture(node)
        if fixture is not None and not (isinstance(parent, ast.Attribute) and parent.value is node):
            if not (fixture == "recwarn" and self._counted(node, parent)):
                raise Refusal(node, f"passes the {fixture} fixture around (use {_names(fixture)} on it directly; {SEE})")
        if name in index.classes and self._touchy(index.classes[name]) and self._class_value(node, parent):
            raise Refusal(node, f"passes the class {name} around (a test may call it, subclass it, compare or "
                                f"isinstance-check against it; otherwise its methods could run on any object; {SEE})")

    def _in_class_body(self, node: ast.Name) -> bool:
        statement = self.index.parent.get(id(node))
        return isinstance(statement, ast.Assign) and isinstance(self.index.parent.get(id(statement)), ast.ClassDef)

    def _imported_value(self, node: ast.Name, target: str, parent: ast.AST | None) -> None:
        origin = self.index.origin(target)
        if origin == "pytest":
            short = target.removeprefix("pytest").lstrip(".")
            if short in policy.PYTEST_ANNOTATIONS and id(node) not in self.index.annotations:
                raise Refusal(node, f"uses pytest.{short} outside an annotation (annotate fixtures with it; {SEE})")
        is_module = target == "pytest" or (origin == "stdlib" and _stdlib_module(target))
        if is_module and not (isinstance(parent, ast.Attribute) and parent.value is node):
            raise Refusal(node, f"uses the module {node.id} as a value (a test may only use `{node.id}.name`; {SEE})")

    def _expected(self, node: ast.AST) -> bool:
        """Inside pytest.raises(...)'s expected types, or an except clause's."""
        child, parent = node, self.index.parent.get(id(node))
        while parent is not None and not isinstance(parent, ast.stmt):
            if isinstance(parent, ast.Call) and self.index.qualified(parent.func) == "pytest.raises":
                return child in parent.args[:1] or any(k.value is child for k in parent.keywords if k.arg == "expected_exception")
            if not isinstance(parent, ast.Tuple):
                break
            child, parent = parent, self.index.parent.get(id(parent))
        while parent is not None and isinstance(parent, ast.Tuple):
            child, parent = parent, self.index.parent.get(id(parent))
        return isinstance(parent, ast.ExceptHandler) and parent.type is child

    def _fixture(self, node: ast.Name) -> str | None:
        """The built-in fixture this name holds, when it is a parameter pytest fills."""
        if node.id not in policy.FIXTURE_ATTRIBUTES:
            return None
        for binding in self.index.bindings_of(node):
            if binding.kind == "param" and binding.function is not None and self.index.is_pytest_called(binding.function):
                return node.id
        return None

    def _counted(self, node: ast.Name, parent: ast.AST | None) -> bool:
        """len(recwarn) and recwarn[i]."""
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return True
        return isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "len"

    def _touchy(self, cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
        """The class (or a base the test defines) has a method that touches `self` (see _touches_self)."""
        if any(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in self.methods for item in cls.body):
            return True
        return any(isinstance(base, ast.Name) and base.id in self.index.classes and base.id not in seen
                   and self._touchy(self.index.classes[base.id], seen | {cls.name}) for base in cls.bases)

    def _class_value(self, node: ast.Name, parent: ast.AST | None) -> bool:
        """A class used other than by calling, subclassing, comparing, isinstance or reading its attributes."""
        if id(node) in self.index.annotations or self._expected(node):
            return False
        if isinstance(parent, ast.Call) and parent.func is node or isinstance(parent, (ast.Attribute, ast.Compare)):
            return False
        if isinstance(parent, ast.ClassDef) and node in parent.bases:
            return False
        holder = self.index.parent.get(id(parent)) if isinstance(parent, ast.Tuple) else parent
        if isinstance(holder, ast.Call) and isinstance(holder.func, ast.Name) and holder.func.id in ("isinstance", "issubclass"):
            return not (len(holder.args) == 2 and (holder.args[1] is node or holder.args[1] is parent))
        return True

    # --- attributes ----------------------------------------------------------------------------

    def _attribute_name(self, attr: str, node: ast.AST, receiver: ast.expr | None = None) -> None:
        """Rules on an attribute name whatever it is read from."""
        if is_dunder(attr) and attr not in policy.DUNDERS and not (attr in policy.SUPER_ONLY_DUNDERS and _is_super(receiver)):
            raise Refusal(node, f"uses .{attr} ({_dunder_rule()})")
        if attr.startswith("pytest_"):
            raise Refusal(node, _hook_rule(attr))
        if attr in policy.INTERNAL_ATTRIBUTES:
            raise Refusal(node, f"uses .{attr} (frames, tracebacks, process exits, pytest's plugin machinery and "
                                f"event-loop process and network calls are out of reach; {SEE})")
        if attr.lstrip("_") in policy.GATEWAYS:
            raise Refusal(node, f"reaches .{attr} (the module {attr.lstrip('_')} is not on covgen's allowlist, "
                                f"whatever re-exports it; {SEE})")

    def _attribute(self, value: ast.expr, attr: str, node: ast.AST, *, store: bool) -> None:
        index = self.index
        self._attribute_name(attr, node, value)
        for target in self._dotted_targets(value):
            origin = index.origin(target)
            if origin == "pytest" and target == "pytest" and attr not in policy.PYTEST_NAMES:
                if not (attr in policy.PYTEST_ANNOTATIONS and id(node) in index.annotations):
                    raise Refusal(node, _pytest_rule(attr))
            elif origin == "stdlib":
                module = _stdlib_module(target)
                if module:
                    found, reason = stdlib_step(module, attr)
                    if reason:
                        raise Refusal(node, reason)
        if isinstance(value, ast.Name):
            fixture = self._fixture(value)
            if fixture is not None and attr not in policy.FIXTURE_ATTRIBUTES[fixture]:
                raise Refusal(node, f"uses {fixture}.{attr} (only {_names(fixture)} of the {fixture} fixture; {SEE})")
        if attr in self.methods and (index.class_typed(value) or _is_type_call(value)):
            raise Refusal(node, f"uses the method {attr} on a class (called unbound, it would run on any object; "
                                f"call it on an instance; {SEE})")
        private = attr.startswith("_") and not is_dunder(attr)
        if (private or store) and not index.owned(value):
            if store and not private and self._self_of_class(value):
                return
            what = "changes" if store else "reads"
            raise Refusal(node, f"{what} {_show(value)}.{attr} (only the test's own and the project's objects may be "
                                f"changed or have their private attributes read; use monkeypatch for project "
                                f"objects; {SEE})")

    def _self_of_class(self, value: ast.expr) -> bool:
        """`self` in a method of the test's own class (public attributes only, whatever its bases)."""
        if not isinstance(value, ast.Name):
            return False
        bindings = self.index.bindings_of(value)
        return bool(bindings) and all(
            b.kind == "param" and b.function is not None and not isinstance(b.function, ast.Lambda)
            and self.index.method_kind(b.function) in ("plain", "class")
            and [*b.function.args.posonlyargs, *b.function.args.args][:1] == [b.node]
            for b in bindings
        )

    def _dotted_targets(self, value: ast.expr) -> list[str]:
        parts: list[str] = []
        while isinstance(value, ast.Attribute):
            parts.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name):
            return []
        return [".".join([t, *reversed(parts)]) for t in self.index.import_targets(value.id)]

    # --- calls ---------------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> None:
        index, func = self.index, node.func
        if isinstance(func, ast.Name) and not index.is_local(func):
            if func.id in ("getattr", "hasattr", "setattr", "delattr"):
                self._dynamic_attribute(node, func.id)
            elif func.id == "open":
                self._open(node)
            elif func.id == "type":
                parent = index.parent.get(id(node))
                if len(node.args) != 1 or not (isinstance(parent, ast.Compare) or (
                        isinstance(parent, ast.Attribute) and parent.attr in ("__name__", "__qualname__", "__module__"))):
                    raise Refusal(node, f"uses type() other than to compare a type or read its name (type(x) hands out "
                                        f"the class; type(name, bases, dict) builds one from strings; {SEE})")
        callee = index.qualified(func) or ""
        if callee == "pytest.mark.parametrize":
            names = literal_names(call_arg(node, 0, "argnames"))
            if names is None:
                raise Refusal(node, f"parametrizes with computed argnames (write them as a literal; {SEE})")
            for argname in names:
                if argname in policy.BUILTIN_FIXTURES:
                    raise Refusal(node, _override_rule(argname))
        elif callee == "pytest.fixture":
            name = call_arg(node, 99, "name")
            if name is not None and not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                raise Refusal(node, f"names a fixture with a computed name (write it as a literal; {SEE})")
            if isinstance(name, ast.Constant) and name.value in policy.BUILTIN_FIXTURES:
                raise Refusal(node, _override_rule(str(name.value)))
        elif callee in policy.PATCHERS:
            self._patcher(node, callee)
        elif callee == "functools.wraps" and (len(node.args) != 1 or node.keywords):
            raise Refusal(node, f"passes assigned=/updated= to functools.wraps (they copy attributes named by "
                                f"strings; {SEE})")
        if isinstance(func, ast.Attribute):
            self._method_call(node, func)

    def _dynamic_attribute(self, node: ast.Call, kind: str) -> None:
        name = call_arg(node, 1, "name")
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            raise Refusal(node, f"calls {kind}() with a computed attribute name (write the name as a literal; {SEE})")
        if node.args:
            self._attribute(node.args[0], name.value, node, store=kind in ("setattr", "delattr"))

    def _open(self, node: ast.Call) -> None:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg in (None, "opener") for k in node.keywords):
            raise Refusal(node, f"calls open() with splatted arguments or an opener ({SEE})")
        mode = call_arg(node, 1, "mode")
        if mode is not None and not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
            raise Refusal(node, f"calls open() with a computed mode (write the mode as a literal; {SEE})")
        path = call_arg(node, 0, "file")
        if isinstance(mode, ast.Constant) and _WRITE_MODE.search(str(mode.value)) and not (path is not None and self.index.under_tmp_path(path)):
            raise Refusal(node, _write_rule("open(..., " + repr(mode.value) + ")"))

    def _method_call(self, node: ast.Call, func: ast.Attribute) -> None:
        index, receiver, attr = self.index, func.value, func.attr
        if attr in policy.PATH_LINKS:
            raise Refusal(node, f"creates a link with .{attr}() (a link under tmp_path could point anywhere; {SEE})")
        if attr in policy.PATH_WRITES and not index.under_tmp_path(receiver):
            raise Refusal(node, _write_rule(f".{attr}()"))
        if attr in policy.PATH_MOVES:
            if index.under_tmp_path(receiver):
                destinations = [*node.args, *(k.value for k in node.keywords)]
                if not all(index.under_tmp_path(d) for d in destinations):
                    raise Refusal(node, _write_rule(f".{attr}() to a destination"))
            elif index.is_path(receiver):
                raise Refusal(node, _write_rule(f".{attr}()"))
        if attr == "open" and not index.under_tmp_path(receiver):
            mode = next((k.value for k in node.keywords if k.arg == "mode"), None)
            modes = [mode] if mode is not None else [a for a in node.args[:2] if isinstance(a, ast.Constant)
                                                     and isinstance(a.value, str) and _MODE.match(a.value)]
            if any(isinstance(m, ast.Constant) and _WRITE_MODE.search(str(m.value)) for m in modes):
                raise Refusal(node, _write_rule(".open() for writing"))
            if index.is_path(receiver) and (mode is not None and not isinstance(mode, ast.Constant) or
                                            any(not isinstance(a, ast.Constant) for a in node.args[:1])):
                raise Refusal(node, f"opens a path with a computed mode (write the mode as a literal; {SEE})")
        if attr in ("format", "format_map") and isinstance(receiver, ast.Constant) and isinstance(receiver.value, str):
            for name in _format_attributes(receiver.value):
                self._attribute_name(name, node)
        if isinstance(receiver, ast.Name) and self._fixture(receiver) == "monkeypatch":
            self._monkeypatch(node, attr)
        chain = _chain(func)
        if len(chain) >= 2 and chain[0] == "mocker" and self._fixture(_root(func)) == "mocker" and chain[1] in ("patch", "spy"):
            self._patch_targets(node, ".".join(chain[1:]))

    def _monkeypatch(self, node: ast.Call, attr: str) -> None:
        index = self.index
        first = node.args[0] if node.args else None
        if attr in ("setattr", "delattr"):
            dotted = attr == "setattr" and len(node.args) == 2 or attr == "delattr" and len(node.args) == 1
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and dotted:
                self._dotted_target(first.value, node)
                return
            name = call_arg(node, 1, "name")
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or first is None:
                raise Refusal(node, f"calls monkeypatch.{attr}() with a computed name (write it as a literal; {SEE})")
            self._attribute(first, name.value, node, store=True)
        elif attr in ("setitem", "delitem"):
            if first is None or not index.owned(first):
                raise Refusal(node, f"patches {_show(first)} with monkeypatch.{attr}() (only the test's own and the "
                                    f"project's objects; {SEE})")
        elif attr == "chdir" and not (first is not None and index.under_tmp_path(first)):
            raise Refusal(node, f"changes directory outside tmp_path (monkeypatch.chdir(tmp_path) is allowed; {SEE})")

    def _patcher(self, node: ast.Call, callee: str) -> None:
        parent = self.index.parent.get(id(node))
        decorates = isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node in parent.decorator_list
        if not (decorates or isinstance(parent, ast.withitem) and parent.context_expr is node):
            raise Refusal(node, f"uses {callee.removeprefix('unittest.mock.')}() other than as a decorator or in a "
                                f"with statement (a patcher object can be told to look up any attribute; {SEE})")
        self._patch_targets(node, callee.removeprefix("unittest.mock."))

    def _patch_targets(self, node: ast.Call, kind: str) -> None:
        """patch("project.module.name"), patch.object(owned, "name"), patch.dict, patch.multiple, mocker.spy."""
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise Refusal(node, f"calls {kind}() with splatted arguments ({SEE})")
        callee = "unittest.mock." + ("patch.object" if kind == "spy" else kind)
        target = node.args[0] if node.args else call_arg(node, 99, "target")
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            if callee == "unittest.mock.patch.object":
                raise Refusal(node, f"calls patch.object() with a string target (pass the object; {SEE})")
            self._dotted_target(target.value, node, whole=callee != "unittest.mock.patch")
        elif callee == "unittest.mock.patch":
            raise Refusal(node, f"calls patch() with a computed target (write the dotted path as a literal; {SEE})")
        elif target is None or not self.index.owned(target):
            raise Refusal(node, f"patches {_show(target)} (only the test's own and the project's objects; {SEE})")
        if callee == "unittest.mock.patch.object":
            name = call_arg(node, 1, "attribute")
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                raise Refusal(node, f"calls patch.object() with a computed attribute name (write it as a literal; {SEE})")
            self._attribute_name(name.value, node)
        if callee == "unittest.mock.patch.multiple":
            for item in node.keywords:
                self._attribute_name(item.arg or "", node)

    def _dotted_target(self, dotted: str, node: ast.AST, *, whole: bool = False) -> None:
        """A patch target given as "package.module.name": every object on the way is the project's
        (not a standard-library module it imported); the last part is the attribute replaced on it,
        unless the `whole` path is the object (patch.dict, patch.multiple)."""
        parts = dotted.split(".")
        if self.index.origin(parts[0]) != "project" or len(parts) < 2 - whole:
            raise Refusal(node, f"patches {dotted!r} (string targets must name the project's own objects; {SEE})")
        traversed = parts[1:] if whole else parts[1:-1]
        for part in traversed:
            self._project_name(part, parts[0], node)
            if part.lstrip("_") in policy.STDLIB_NAMES:
                raise Refusal(node, f"patches {dotted!r} (through {part}, a standard-library module: only the "
                                    f"project's own objects may be patched; {SEE})")
        for part in parts[1:]:
            self._attribute_name(part, node)

    # --- definitions and literals ------------------------------------------------------------------

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        index = self.index
        owner = index.parent.get(id(node))
        if node.name.startswith("pytest_"):
            raise Refusal(node, _hook_rule(node.name))
        if is_dunder(node.name) and not (isinstance(owner, ast.ClassDef) and node.name in policy.DUNDER_DEFS):
            raise Refusal(node, f"defines {node.name} ({_dunder_rule()})")
        if isinstance(owner, (ast.Module, ast.ClassDef)) and node.name in policy.BUILTIN_FIXTURES:
            raise Refusal(node, _override_rule(node.name))
        if any(index.is_fixture_decorator(d) for d in node.decorator_list) and index.fixture_name(node) in policy.BUILTIN_FIXTURES:
            raise Refusal(node, _override_rule(index.fixture_name(node)))
        pytest_called = index.is_pytest_called(node)
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            refused = arg.arg in policy.REFUSED_FIXTURES and (pytest_called or arg.arg not in ("cache", "tmpdir"))
            if refused:
                raise Refusal(arg, f"requests the {arg.arg} fixture (pytest's configuration, cache, another pytest and "
                                   f"py.path are out of reach; use tmp_path for files; {SEE})")

    def _class(self, node: ast.ClassDef) -> None:
        if node.name.startswith("pytest_"):
            raise Refusal(node, _hook_rule(node.name))
        if is_dunder(node.name):
            raise Refusal(node, f"defines a class {node.name} ({_dunder_rule()})")
        if any(k.arg == "metaclass" for k in node.keywords):
            raise Refusal(node, f"gives class {node.name} a metaclass (it decides how pytest sees the class; {SEE})")
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.index.qualified(target) is None:
                raise Refusal(node, f"decorates class {node.name} with the test's own function (it would receive the "
                                    f"class; {SEE})")
        if not self.index.plain_bases(node):
            # A standard-library base reads its private class attributes (a redirect's `_stream`
            # names the sys attribute it swaps): a subclass may not set them.
            for item in node.body:
                for name in _class_body_names(item):
                    if name.startswith("_") and not is_dunder(name):
                        raise Refusal(item, f"sets {name} in class {node.name}, which derives from the standard "
                                            f"library or pytest (their private attributes steer what they do; {SEE})")

    def _constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (str, bytes)):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            parent = self.index.parent.get(id(node))
            if isinstance(parent, ast.Expr):
                return  # a docstring or a bare string: nothing reads it
            for match in _DUNDER_IN_TEXT.finditer(text):
                if match.group(1) not in policy.DUNDER_DEFS:
                    raise Refusal(node, f"holds the string {match.group(1)!r} (strings naming interpreter internals "
                                        f"are refused: too many tools turn strings into attribute lookups; {SEE})")


def _stdlib_module(target: str) -> str | None:
    """The allowlisted module a dotted standard-library name denotes, or None (not a module, or refused)."""
    parts = target.split(".")
    if parts[0] not in policy.STDLIB and parts[0] not in policy.PREFIX_PACKAGES:
        return None
    current: str | None = parts[0]
    for part in parts[1:]:
        if current is None:
            return None
        current, reason = stdlib_step(current, part)
        if reason:
            return None
    return current


def _touches_self(method: ast.FunctionDef | ast.AsyncFunctionDef, index: ModuleIndex) -> bool:
    """A plain method (not the constructor, which only instantiation or super() can run) that
    sets or deletes attributes of `self`, reads its private ones, or hands `self` on."""
    if index.method_kind(method) != "plain" or method.name in policy.SUPER_ONLY_DUNDERS:
        return False
    positional = [*method.args.posonlyargs, *method.args.args]
    if not positional:
        return False
    me = positional[0].arg
    for node in ast.walk(method):
        if not (isinstance(node, ast.Name) and node.id == me):
            continue
        parent = index.parent.get(id(node))
        if not isinstance(parent, ast.Attribute) or parent.value is not node:
            return True
        if not isinstance(parent.ctx, ast.Load) or parent.attr.startswith("_"):
            return True
        holder = index.parent.get(id(parent))
        if isinstance(holder, ast.Subscript) and holder.value is parent and not isinstance(holder.ctx, ast.Load):
            return True
    return False


def _class_body_names(item: ast.stmt) -> list[str]:
    """Names a class-body statement binds."""
    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [item.name]
    targets = item.targets if isinstance(item, ast.Assign) else [item.target] if isinstance(item, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _is_super(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _chain(node: ast.expr) -> list[str]:
    """``mocker.patch.object`` → ["mocker", "patch", "object"] (empty when not a plain name chain)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else []


def _root(node: ast.expr) -> ast.Name:
    while isinstance(node, ast.Attribute):
        node = node.value
    assert isinstance(node, ast.Name)
    return node


def _is_type_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"


def _format_attributes(text: str) -> list[str]:
    """Attribute names a str.format template follows: "{0.__globals__}" → ["__globals__"]."""
    names: list[str] = []
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return names
    for _, field, spec, _ in fields:
        if field:
            names += _FIELD_ATTRIBUTE.findall(field)
        if spec:
            names += _format_attributes(spec)
    return names


def _show(node: ast.expr | None) -> str:
    if node is None:
        return "nothing"
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(fixture: str) -> str:
    return ", ".join(f".{name}" for name in sorted(policy.FIXTURE_ATTRIBUTES[fixture]))


def _dunder_rule() -> str:
    return (f"dunder names reach the interpreter's internals; only names, docs, super().__init__ and operator methods "
            f"are allowed; {SEE}")


def _hook_rule(name: str) -> str:
    return f"defines or uses {name} (pytest_* names are hooks and plugin lists pytest obeys; {SEE})"


def _override_rule(name: str) -> str:
    return f"redefines or parametrizes the {name} fixture (pytest's built-in fixtures stay pytest's; {SEE})"


def _pytest_rule(name: str) -> str:
    allowed = ", ".join(sorted(policy.PYTEST_NAMES))
    return f"uses pytest.{name} (a test may use only pytest.{{{allowed}}}; {SEE})"


def _write_rule(what: str) -> str:
    return (f"writes files with {what} outside tmp_path (a test may create files only below the tmp_path fixture, "
            f"named with literal relative parts; {SEE})")
