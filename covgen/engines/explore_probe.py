"""covgen's exploration probe: run one method with chosen inputs and record what it does.

Run by the model-free engine, inside the sandbox, with the *project's* interpreter:

    python explore_probe.py REQUEST.json RESULT.json

It uses only the standard library. ``mode: explore`` searches for inputs that reach the target's
uncovered lines and branches (a line tracer scoped to the target file gives the feedback) and
writes each kept case with its observed outcome; ``mode: confirm`` replays given cases and
re-observes them, so the engine can drop any observation that differs between two processes
(time, randomness, ids, hash order).
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import dataclasses
import datetime
import decimal
import enum
import fractions
import importlib
import inspect
import io
import itertools
import json
import keyword
import math
import os
import random
import re
import signal
import sys
import textwrap
import time
import types
import typing
from typing import Any

#: Seconds one call may take before it is abandoned (an input that loops is not a behaviour).
CALL_LIMIT = 1.0
MAX_DEPTH = 2
_LITERAL_TYPES = (type(None), bool, int, float, complex, str, bytes)


class CallTimeout(BaseException):
    pass


# --- values and the code that rebuilds them ---------------------------------------------------

@dataclasses.dataclass
class Drawn:
    """Arguments for one call, and the source that passes the same arguments."""

    args: list[Any]
    kwargs: dict[str, Any]
    codes: list[str]
    imports: list[str]


@dataclasses.dataclass(frozen=True)
class Value:
    value: Any
    code: str
    imports: tuple[str, ...] = ()


def literal_code(value: Any, imports: set[str], module_names: dict[int, str]) -> str | None:
    """Python source that rebuilds `value`, or None when it cannot be written down faithfully."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, str, bytes)):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            imports.add("import math")
            return "math.nan" if math.isnan(value) else ("math.inf" if value > 0 else "-math.inf")
        return repr(value)
    if isinstance(value, enum.Enum):
        owner = type(value)
        imports.add(f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}")
        return f"{owner.__qualname__}.{value.name}"
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, fractions.Fraction)) and not (
        isinstance(value, (datetime.datetime, datetime.time)) and value.tzinfo is not None
    ):
        module = type(value).__module__
        imports.add(f"import {module}")
        text = repr(value)
        return text if text.startswith(module + ".") else f"{module}.{text}"
    if isinstance(value, (list, tuple, set, frozenset)):
        parts = [literal_code(item, imports, module_names) for item in value]
        if any(part is None for part in parts):
            return None
        if isinstance(value, set):
            # Set repr order follows hashes; sorting makes the code stable where items allow.
            try:
                parts = sorted(parts)  # type: ignore[type-var]
            except TypeError:
                return None
            return "{" + ", ".join(parts) + "}" if parts else "set()"  # type: ignore[arg-type]
        if isinstance(value, frozenset):
            return f"frozenset({literal_code(set(value), imports, module_names)})"
        if isinstance(value, tuple) and type(value) is not tuple:
            return _instance_code(value, imports, module_names)
        inner = ", ".join(parts)  # type: ignore[arg-type]
        if isinstance(value, tuple):
            return f"({inner},)" if len(parts) == 1 else f"({inner})"
        return f"[{inner}]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            key_code, item_code = literal_code(key, imports, module_names), literal_code(item, imports, module_names)
            if key_code is None or item_code is None:
                return None
            items.append(f"{key_code}: {item_code}")
        return "{" + ", ".join(items) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _instance_code(value, imports, module_names)
    return None


def _instance_code(value: Any, imports: set[str], module_names: dict[int, str]) -> str | None:
    owner = type(value)
    if "<locals>" in owner.__qualname__:
        return None
    arguments = []
    if dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            if not item.init:
                continue
            code = literal_code(getattr(value, item.name), imports, module_names)
            if code is None:
                return None
            arguments.append(f"{item.name}={code}")
    elif hasattr(value, "_fields"):
        for name in value._fields:
            code = literal_code(getattr(value, name), imports, module_names)
            if code is None:
                return None
            arguments.append(f"{name}={code}")
    else:
        return None
    imports.add(f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}")
    return f"{owner.__qualname__}({', '.join(arguments)})"


# --- where inputs come from ---------------------------------------------------------------------

def mine_constants(source: str) -> dict[str, list[Any]]:
    """Literals the method compares with, slices by, or mentions: they unlock its branches."""
    found: dict[str, list[Any]] = {"str": [], "int": [], "float": [], "bytes": []}
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, str) and len(value) <= 80:
                found["str"].append(value)
                # A literal's neighbours: its case variants and a version with padding.
                found["str"].extend([value.upper(), value.lower(), f" {value} "])
            elif isinstance(value, int):
                found["int"].extend([value - 1, value, value + 1])
            elif isinstance(value, float):
                found["float"].extend([value - 0.5, value, value + 0.5])
            elif isinstance(value, bytes):
                found["bytes"].append(value)
    for kind in found:
        found[kind] = list(dict.fromkeys(found[kind]))
    return found


def regex_examples(module: types.ModuleType, rng: random.Random, per_pattern: int = 4) -> list[str]:
    """Strings the module's compiled regular expressions match: a parser's happy path.

    A random search rarely writes "P1W2D"; the pattern ``^P(?:(?P<weeks>\\d+)W)?(?:(?P<days>\\d+)D)?$``
    says how. Each pattern is walked with random choices (optional parts in or out, a few
    repeats, digits and letters from its classes); only strings the pattern really matches are kept.
    """
    examples: list[str] = []
    for value in list(vars(module).values())[:2000]:
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            try:
                parsed = _sre_parse.parse(value.pattern, value.flags)
            except Exception:  # noqa: BLE001 - a pattern the parser cannot read gives no examples
                continue
            found: list[str] = []
            for _ in range(per_pattern * 4):
                try:
                    text = _generate(parsed, rng, {})
                except (_Unsupported, RecursionError, ValueError, OverflowError):
                    break
                if value.search(text) is not None and text not in found:
                    found.append(text)
                if len(found) >= per_pattern:
                    break
            examples.extend(found)
    return examples


class _Unsupported(Exception):
    pass


try:  # Python 3.11+ keeps the regex parser here; older versions have sre_parse
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse

_CATEGORY_CHARS = {"DIGIT": "0123456789", "NOT_DIGIT": "ax-", "SPACE": " ", "NOT_SPACE": "ax7", "WORD": "aZ7_", "NOT_WORD": "-. "}


def _category(name: str, rng: random.Random) -> str:
    key = name.removeprefix("CATEGORY_").removeprefix("UNI_").removeprefix("LOC_")
    return rng.choice(_CATEGORY_CHARS.get(key, "a"))


def _generate(items: Any, rng: random.Random, groups: dict[int, str]) -> str:
    parts: list[str] = []
    for op, argument in items:
        name = str(op)
        if name == "LITERAL":
            parts.append(chr(argument))
        elif name == "NOT_LITERAL":
            parts.append("a" if chr(argument) != "a" else "b")
        elif name == "ANY":
            parts.append("x")
        elif name == "IN":
            parts.append(_from_class(argument, rng))
        elif name == "BRANCH":
            parts.append(_generate(rng.choice(argument[1]), rng, groups))
        elif name == "SUBPATTERN":
            group, _add, _del, sub = argument
            text = _generate(sub, rng, groups)
            if group:
                groups[group] = text
            parts.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = argument
            count = rng.randint(low, min(high, low + 3))
            parts.extend(_generate(sub, rng, groups) for _ in range(count))
        elif name == "CATEGORY":
            parts.append(_category(str(argument), rng))
        elif name == "GROUPREF":
            parts.append(groups.get(argument, ""))
        elif name == "ATOMIC_GROUP":
            parts.append(_generate(argument, rng, groups))
        elif name not in ("AT", "ASSERT", "ASSERT_NOT"):  # anchors and lookarounds: the final match decides
            raise _Unsupported(name)
    return "".join(parts)


def _from_class(items: Any, rng: random.Random) -> str:
    options: list[str] = []
    for op, argument in items:
        name = str(op)
        if name == "NEGATE":
            excluded = {chr(a) for o, a in items if str(o) == "LITERAL"}
            return next(c for c in "a~Z0 _-" if c not in excluded)
        if name == "LITERAL":
            options.append(chr(argument))
        elif name == "RANGE":
            low, high = argument
            options.append(chr(rng.randint(low, min(high, low + 25))))
        elif name == "CATEGORY":
            options.append(_category(str(argument), rng))
    if not options:
        raise _Unsupported("empty class")
    return rng.choice(options)


_NAME_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("date", "day", "today", "start", "end", "since", "until", "when", "deadline"), "date"),
    (("percent", "pct", "ratio", "rate"), "percent"),
    (("count", "n", "size", "index", "idx", "days", "weeks", "parts", "number", "num", "limit", "max", "min", "width", "depth", "cents", "price", "amount", "factor", "length", "year", "month"), "int"),
    (("is_", "has_", "express", "flag", "enabled", "strict", "force", "verbose"), "bool"),
    (("delimiter", "sep", "separator"), "sep"),
    (("name", "text", "s", "string", "code", "title", "label", "key", "line", "word", "value", "raw", "lead_time", "message"), "str"),
    (("items", "values", "elements", "rows", "names", "shapes", "parts_list"), "list"),
    (("mbit", "speed", "bandwidth", "seconds", "ratio_f", "weight", "mass"), "float"),
)


def hint_for(name: str) -> str | None:
    lowered = name.lower()
    for words, kind in _NAME_HINTS:
        for word in words:
            if lowered == word or (word.endswith("_") and lowered.startswith(word)) or lowered.endswith("_" + word) or lowered.startswith(word + "_"):
                return kind
    return None


class Builder:
    """Make argument values (with the code that rebuilds them) for parameters and types."""

    def __init__(
        self, module: types.ModuleType, constants: dict[str, list[Any]], rng: random.Random,
        module_constants: dict[str, list[Any]] | None = None,
    ) -> None:
        self.module = module
        self.constants = constants
        self.module_constants = module_constants or {"str": [], "int": [], "float": [], "bytes": []}
        self.rng = rng
        self.module_names: dict[int, str] = {}
        #: Values drawn earlier in the current call plan: a receiver stocked with "saw" is most
        #: interesting when the target is then asked about "saw".
        self.recent: list[Value] = []

    # Pools of candidates per kind; the search draws from them.
    def pool(self, kind: str) -> list[Any]:
        mined = self.constants
        if kind == "int":
            return list(dict.fromkeys(mined["int"] + [0, 1, -1, 2, 3, 7, 10, 100, -5]))
        if kind == "percent":
            return list(dict.fromkeys(mined["int"] + [0, 10, 20, 50, 100, 101, -1]))
        if kind == "float":
            return list(dict.fromkeys(mined["float"] + [float(i) for i in mined["int"]] + [0.0, 1.0, -1.5, 2.5, 10.0, 100.0]))
        if kind == "str":
            words = [w for w in mined["str"] + self.module_constants["str"] if 0 < len(w) <= 12][:12]
            numbers = [n for n in mined["int"] + self.module_constants["int"] if 0 <= n <= 100][:4] or [1, 3]
            # Numbers glued to the words the code knows ("3 kg", "P2W") reach parsers' happy paths.
            combos = [f"{n}{w}" for n in numbers[:3] for w in words[:6]] + [f"{n} {w}" for n in numbers[:2] for w in words[:6]]
            return list(dict.fromkeys(mined["str"] + ["", "a", "abc", "Hello World", "1", "2.5", " ", "x,y", '"q"']
                                      + self.module_constants["str"][:30] + combos))
        if kind == "sep":
            return [",", ";", "\t", "|"]
        if kind == "bool":
            return [True, False]
        if kind == "bytes":
            return list(dict.fromkeys(mined["bytes"] + [b"", b"abc"]))
        if kind == "date":
            base = [datetime.date(2024, 1, 1), datetime.date(2024, 6, 7), datetime.date(2024, 6, 8), datetime.date(2024, 6, 9),
                    datetime.date(2024, 6, 10), datetime.date(2024, 12, 31), datetime.date(2024, 2, 29)]
            return base
        return [None, 0, 1, "", "a", [], True]

    def for_annotation(self, annotation: Any, name: str, depth: int) -> list[Value]:
        """Candidate values for a parameter, most specific source first."""
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is inspect.Parameter.empty or annotation is Any:
            hint = hint_for(name)
            return self._from_pool(hint or "any")
        if isinstance(annotation, str):
            return self._from_text(annotation, name, depth)
        if origin is typing.Union or (sys.version_info >= (3, 10) and isinstance(annotation, types.UnionType)):
            values: list[Value] = []
            for member in args:
                values.extend(self.for_annotation(member, name, depth)[:8])
            return values
        if origin is typing.Literal:
            return [self._value(item) for item in args]
        if annotation is type(None):
            return [Value(None, "None")]
        if annotation is bool:
            return self._from_pool("bool")
        if annotation is int:
            hint = hint_for(name)
            return self._from_pool("percent" if hint == "percent" else "int")
        if annotation is float:
            return self._from_pool("float")
        if annotation is str:
            hint = hint_for(name)
            return self._from_pool("sep" if hint == "sep" else "str")
        if annotation is bytes:
            return self._from_pool("bytes")
        if annotation in (datetime.date, datetime.datetime):
            return self._from_pool("date")
        if annotation is datetime.timedelta:
            return [self._value(datetime.timedelta(days=d)) for d in (0, 1, 3, 10)]
        if origin in (list, typing.List, set, frozenset, tuple, collections_abc_sequence()) or annotation in (list, tuple, set):
            element = args[0] if args else Any
            items = [v for v in self.for_annotation(element, name.rstrip("s"), depth + 1)[:6]]
            made = [self._container(origin or annotation, [])]
            if items:
                made.append(self._container(origin or annotation, [items[0]]))
                made.append(self._container(origin or annotation, items[:3]))
                # Drawn items too: the pool's first values alone may all take the same branch
                # (a mined `< 0` puts -1 first, and every list then starts with it).
                made.append(self._container(origin or annotation, [self.rng.choice(items)]))
                made.append(self._container(origin or annotation, self.rng.sample(items, min(3, len(items)))))
            return [m for m in made if m is not None]
        if origin in (dict, typing.Dict) or annotation is dict:
            if len(args) == 2:
                keys = self.for_annotation(args[0], "key", depth + 1)[:4]
                values = self.for_annotation(args[1], name, depth + 1)[:4]
                pairs = [
                    Value({k.value: v.value}, f"{{{k.code}: {v.code}}}", tuple(sorted({*k.imports, *v.imports})))
                    for k in keys[:2] for v in values if _hashable(k.value)
                ]
                return [Value({}, "{}"), *pairs]
            # Falsy values are where "if not value" branches hide.
            return [Value({}, "{}"), *(self._value(d) for d in ({"a": 1}, {"key": "value"}, {"a": 0}, {"key": ""}, {"a": None}))]
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return [self._value(member) for member in annotation]
        if isinstance(annotation, type) and depth < MAX_DEPTH:
            return self.instances(annotation, depth + 1)
        return self._from_pool(hint_for(name) or "any")

    def _from_text(self, text: str, name: str, depth: int) -> list[Value]:
        """Annotations that could not be resolved (a string): use the module's names when possible."""
        cleaned = text.replace(" ", "")
        resolved = getattr(self.module, cleaned, None)
        if resolved is not None:
            return self.for_annotation(resolved, name, depth)
        for token, kind in (("int", "int"), ("float", "float"), ("str", "str"), ("bool", "bool"), ("date", "date")):
            if token in cleaned:
                return self._from_pool(kind)
        return self._from_pool(hint_for(name) or "any")

    def _from_pool(self, kind: str) -> list[Value]:
        values = [self._value(item) for item in self.pool(kind)]
        wanted = {"str": str, "sep": str, "int": int, "percent": int, "float": float}.get(kind)
        if wanted is not None:
            recent = [v for v in self.recent if type(v.value) is wanted]
            if recent and self.rng.random() < 0.5:
                return recent
        return values

    def _value(self, item: Any) -> Value:
        imports: set[str] = set()
        code = literal_code(item, imports, self.module_names)
        return Value(item, code if code is not None else repr(item), tuple(sorted(imports)))

    def _container(self, kind: Any, items: list[Value]) -> Value | None:
        imports = tuple(sorted({i for v in items for i in v.imports}))
        codes = [v.code for v in items]
        if kind in (tuple,):
            return Value(tuple(v.value for v in items), f"({', '.join(codes)}{',' if len(codes) == 1 else ''})", imports)
        if kind in (set, frozenset):
            try:
                return Value(set(v.value for v in items), "{" + ", ".join(codes) + "}" if codes else "set()", imports)
            except TypeError:
                return None
        return Value([v.value for v in items], f"[{', '.join(codes)}]", imports)

    def instances(self, cls: type, depth: int) -> list[Value]:
        """Build instances of `cls`: its constructor, its classmethod factories, module factories."""
        made: list[Value] = []
        owner_import = f"from {cls.__module__} import {cls.__qualname__.split('.')[0]}"
        makers: list[tuple[Any, str]] = [(cls, cls.__qualname__)]
        for attribute, raw in vars(cls).items():
            if isinstance(raw, classmethod) and not attribute.startswith("_"):
                makers.append((getattr(cls, attribute), f"{cls.__qualname__}.{attribute}"))
        for attribute, function in vars(self.module).items():
            if inspect.isfunction(function) and not attribute.startswith("_") and function.__module__ == self.module.__name__:
                hints = _hints(function)
                if hints.get("return") is cls:
                    makers.append((function, attribute))
        for maker, code in makers:
            for _ in range(8):
                # inspect.signature(cls) already leaves out self.
                call = self.call_arguments(maker, depth)
                if call is None:
                    break
                try:
                    with limit(CALL_LIMIT):
                        instance = maker(*call.args, **call.kwargs)
                except BaseException:  # noqa: BLE001 - a constructor refusing some input is expected
                    continue
                if isinstance(instance, cls):
                    extra = (owner_import,) if code.startswith(cls.__qualname__) else (f"from {self.module.__name__} import {code}",)
                    made.append(Value(instance, f"{code}({', '.join(call.codes)})", tuple(sorted(set(call.imports) | set(extra)))))
                    if len(made) >= 6:
                        return made
        return made

    def call_arguments(self, function: Any, depth: int, skip_first: bool = False) -> Drawn | None:
        """One random draw of arguments for `function` (trailing defaults are sometimes kept)."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return None
        hints = _hints(function.__init__ if inspect.isclass(function) else function)
        drawn = Drawn([], {}, [], [])
        parameters = list(signature.parameters.values())
        if skip_first and parameters:
            parameters = parameters[1:]
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.default is not parameter.empty and self.rng.random() < 0.5:
                if parameter.kind == parameter.KEYWORD_ONLY:
                    continue
                break  # leave the rest to their defaults
            candidates = self.for_annotation(hints.get(parameter.name, parameter.annotation), parameter.name, depth)
            if parameter.default is not parameter.empty:
                candidates = candidates + [self._value(parameter.default)] if literal_code(parameter.default, set(), {}) else candidates
            if not candidates:
                return None
            choice = self.rng.choice(candidates)
            self.recent.append(choice)
            if parameter.kind == parameter.KEYWORD_ONLY:
                drawn.kwargs[parameter.name] = choice.value
                drawn.codes.append(f"{parameter.name}={choice.code}")
            else:
                drawn.args.append(choice.value)
                drawn.codes.append(choice.code)
            drawn.imports.extend(choice.imports)
        return drawn


def collections_abc_sequence() -> Any:
    import collections.abc

    return collections.abc.Sequence


def _hints(function: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable forward references: fall back to raw annotations
        return dict(getattr(function, "__annotations__", {}) or {})


# --- running one call under a tracer ---------------------------------------------------------

class Tracer:
    """Record the lines and arcs executed in one file within [start, end]."""

    def __init__(self, filename: str, start: int, end: int) -> None:
        self.filename = filename
        self.start = start
        self.end = end
        self.lines: set[int] = set()
        self.arcs: set[tuple[int, int]] = set()

    def __call__(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event != "call" or code.co_filename != self.filename or not self.start <= frame.f_lineno <= self.end:
            return None
        last = [-code.co_firstlineno]

        def local(frame: types.FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                line = frame.f_lineno
                self.lines.add(line)
                self.arcs.add((last[0], line))
                last[0] = line
            elif event == "return":
                self.arcs.add((last[0], -code.co_firstlineno))
            return local

        return local


class limit:
    """Abort a call that overruns `seconds` (SIGALRM; the probe runs in the main thread)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        def alarm(signum: int, frame: Any) -> None:
            raise CallTimeout()

        self.previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def observe(result: Any, error: BaseException | None, module_names: dict[int, str]) -> dict[str, Any]:
    """How a test can check this outcome: an exact literal, a float, a type, or an exception."""
    if error is not None:
        owner = type(error)
        # pytest matches an exception group's own message, not str(), which adds "(2 sub-exceptions)";
        # its message is a prefix of str(), so the match holds either way.
        message = str(getattr(error, "message", "")) if isinstance(error, _EXCEPTION_GROUPS) else str(error)
        return {"kind": "raise", "type": owner.__qualname__, "module": owner.__module__, "message": message[:200]}
    imports: set[str] = set()
    if isinstance(result, float) and not (math.isnan(result) or math.isinf(result)):
        return {"kind": "approx", "code": repr(result), "imports": []}
    code = literal_code(result, imports, module_names)
    if code is not None:
        return {"kind": "equal" if result is not None and not isinstance(result, bool) else "is", "code": code, "imports": sorted(imports)}
    if type(result) in (list, tuple):  # exactly: a subclass (a NamedTuple) has its own checks
        # Items that cannot be written down (objects): how many came back still says something.
        return {"kind": "length", "type": type(result).__name__, "code": str(len(result)), "imports": []}
    owner = type(result)
    if owner.__module__ == "builtins":
        if getattr(builtins, owner.__qualname__, None) is owner:
            return {"kind": "type", "type": owner.__qualname__, "module": owner.__module__, "imports": []}
        if owner in _TYPES_NAMES:  # function, generator, method, …: named in `types` only
            return {"kind": "type", "type": f"types.{_TYPES_NAMES[owner]}", "module": "types", "imports": ["import types"]}
    if owner.__module__ == "builtins" or "<locals>" in owner.__qualname__:
        # No importable name to check against: the type's name still says what came back.
        return {"kind": "type_name", "type": owner.__name__, "module": owner.__module__, "imports": []}
    return {"kind": "type", "type": owner.__qualname__, "module": owner.__module__,
            "imports": [f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}"]}


#: Types with no name in builtins (the type of a function, a generator, …) → their name in `types`.
#: Python 3.11+; the probe also runs on older interpreters, where nothing is an exception group.
_EXCEPTION_GROUPS: tuple[type, ...] = tuple(t for t in (getattr(builtins, "BaseExceptionGroup", None),) if t is not None)

#: Reversed, so the first of two names wins (FunctionType over its alias LambdaType).
_TYPES_NAMES = {value: name for name, value in reversed(vars(types).items()) if isinstance(value, type) and not name.startswith("_")}


# --- the target ------------------------------------------------------------------------------

@dataclasses.dataclass
class Target:
    module: types.ModuleType
    qualname: str
    owner: type | None
    function: Any
    kind: str  # function | method | staticmethod | classmethod | property | constructor
    filename: str


def resolve(module_name: str, qualname: str) -> Target | None:
    module = importlib.import_module(module_name)
    parts = qualname.split(".")
    owner: Any = module
    for part in parts[:-1]:
        owner = getattr(owner, part, None)
        if not isinstance(owner, type):
            return None  # nested functions cannot be called from outside
    name = parts[-1]
    raw = inspect.getattr_static(owner, name, None) if owner is not module else getattr(module, name, None)
    if raw is None:
        return None
    if owner is module:
        function, kind, cls = raw, "function", None
    else:
        cls = owner
        if isinstance(raw, staticmethod):
            function, kind = raw.__func__, "staticmethod"
        elif isinstance(raw, classmethod):
            function, kind = raw.__func__, "classmethod"
        elif isinstance(raw, property):
            function, kind = raw.fget, "property"
        elif name == "__init__":
            function, kind = raw, "constructor"
        else:
            function, kind = raw, "method"
    function = inspect.unwrap(function)
    try:
        filename = inspect.getsourcefile(function) or ""
    except TypeError:
        return None
    return Target(module, qualname, cls, function, kind, filename)


def plan_call(target: Target, builder: Builder, rng: random.Random) -> dict[str, Any] | None:
    """Draw a receiver (for methods) and arguments; return values and the code to repeat it."""
    setup: list[str] = []
    imports: set[str] = set()
    receiver = None
    builder.recent = []
    owner = target.owner
    short = owner.__qualname__ if owner else ""
    if owner is not None:
        imports.add(f"from {target.module.__name__} import {short.split('.')[0]}")
    if target.kind in ("method", "property"):
        assert owner is not None
        instances = builder.instances(owner, 1)
        if not instances:
            return None
        chosen = rng.choice(instances)
        receiver = chosen.value
        imports.update(chosen.imports)
        variable = _variable_name(owner.__name__)
        setup.append(f"{variable} = {chosen.code}")
        # Sometimes prepare the receiver with other methods first (add before remove).
        mutators = [n for n, f in vars(owner).items() if inspect.isfunction(f) and not n.startswith("_") and n != target.qualname.rsplit(".", 1)[-1]]
        for _ in range(rng.choice((0, 0, 1, 2))):
            if not mutators:
                break
            name = rng.choice(mutators)
            step = builder.call_arguments(getattr(owner, name), 1, skip_first=True)
            if step is None:
                continue
            try:
                with limit(CALL_LIMIT):
                    getattr(receiver, name)(*step.args, **step.kwargs)
            except BaseException:  # noqa: BLE001 - a preparation step that fails is not part of the test
                continue
            setup.append(f"{variable}.{name}({', '.join(step.codes)})")
            imports.update(step.imports)
    if target.kind == "property":
        return {"setup": setup, "imports": imports, "call": lambda: getattr(receiver, target.function.__name__),
                "code": f"{_variable_name(owner.__name__)}.{target.function.__name__}"}  # type: ignore[union-attr]
    drawn = builder.call_arguments(target.function, 1, skip_first=target.kind in ("method", "classmethod", "constructor"))
    if drawn is None:
        return None
    imports.update(drawn.imports)
    name = target.qualname.rsplit(".", 1)[-1]
    if target.kind == "function":
        imports.add(f"from {target.module.__name__} import {name}")
        callable_, code = target.function, name
    elif target.kind in ("staticmethod", "classmethod"):
        callable_, code = getattr(owner, name), f"{short}.{name}"
    elif target.kind == "constructor":
        callable_, code = owner, short
    else:
        callable_, code = getattr(receiver, name), f"{_variable_name(owner.__name__)}.{name}"  # type: ignore[union-attr]
    return {"setup": setup, "imports": imports, "call": lambda: callable_(*drawn.args, **drawn.kwargs),
            "code": f"{code}({', '.join(drawn.codes)})"}


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _variable_name(class_name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    # `excepts = excepts(...)` would shadow the class it builds (and a builtin or keyword is no
    # better): such receivers are called "subject".
    unusable = snake == class_name or keyword.iskeyword(snake) or hasattr(builtins, snake) or not snake.isidentifier()
    return "subject" if unusable else snake


def run_case(plan: dict[str, Any], tracer: Tracer | None, *, drain: bool = False) -> tuple[Any, BaseException | None, str | None]:
    """Call the plan; with `drain`, also consume an iterator it returns (see :func:`_drained_code`).

    Returns the result, the exception raised, and how the code must be wrapped to repeat what
    ran: "list" (consumed to the end), "islice" (its first DRAIN_ITEMS items) or None.
    """
    previous = sys.gettrace()
    result: Any = None
    error: BaseException | None = None
    wrap: str | None = None
    try:
        with limit(CALL_LIMIT):
            if tracer is not None:
                sys.settrace(tracer)
            try:
                result = plan["call"]()
                if drain and _drainable(result):
                    # A generator's body runs only when iterated: consuming it reaches its lines,
                    # and the items make a far better assertion than "returns a generator".
                    wrap = "list"
                    items = list(itertools.islice(result, DRAIN_ITEMS + 1))
                    if len(items) > DRAIN_ITEMS:
                        wrap, items = "islice", items[:DRAIN_ITEMS]
                    result = items
            finally:
                sys.settrace(previous)
    except BaseException as err:  # noqa: BLE001 - every exception is an observation (timeouts are filtered later)
        error = err
    return result, error, wrap


#: How many items of a returned iterator a test checks (an endless one is cut there).
DRAIN_ITEMS = 20


def _drainable(result: Any) -> bool:
    # Files and sockets are iterators too; reading them is not the behaviour under test.
    return isinstance(result, collections.abc.Iterator) and not isinstance(result, io.IOBase)


def _drained_code(code: str, wrap: str | None, imports: set[str]) -> str:
    if wrap == "list":
        return f"list({code})"
    if wrap == "islice":
        imports.add("import itertools")
        return f"list(itertools.islice({code}, {DRAIN_ITEMS}))"
    return code


def explore(request: dict[str, Any]) -> dict[str, Any]:
    target = resolve(request["module"], request["qualname"])
    if target is None:
        return {"cases": [], "note": f"{request['qualname']} cannot be called from a test (nested or not found)"}
    rng = random.Random(request.get("seed", 0))
    try:
        module_source = inspect.getsource(target.module)
    except (OSError, TypeError):
        module_source = ""
    constants = mine_constants(request.get("source", ""))
    # What the module's regular expressions accept comes first among strings: parsers need it.
    constants["str"] = list(dict.fromkeys(regex_examples(target.module, random.Random(rng.random())) + constants["str"]))
    builder = Builder(target.module, constants, rng, mine_constants(module_source))
    wanted_lines = set(request.get("lines", ()))
    wanted_arcs = {tuple(a) for a in request.get("arcs", ())}
    start, end = request["start"], request["end"]
    budget = float(request.get("seconds", 5.0))
    deadline = time.monotonic() + budget
    # A search that found nothing new for half its budget has plateaued; more of the same
    # random draws rarely help, and the model (hybrid) is better at what remains.
    last_progress = time.monotonic()
    seen_lines: set[int] = set()
    seen_arcs: set[tuple[int, int]] = set()
    cases: list[dict[str, Any]] = []
    attempts = 0
    while time.monotonic() < deadline and attempts < int(request.get("max_attempts", 5000)):
        if time.monotonic() - last_progress > budget / 2:
            break
        attempts += 1
        plan = plan_call(target, builder, rng)
        if plan is None:
            if attempts > 50 and not cases:
                break
            continue
        tracer = Tracer(target.filename, start, end)
        result, error, wrap = run_case(plan, tracer, drain=target.kind != "constructor")
        if isinstance(error, (CallTimeout, KeyboardInterrupt, SystemExit)):
            continue
        # Only what the report says is uncovered counts: a test for covered lines is NO_GAIN.
        new_lines = (tracer.lines & wanted_lines) - seen_lines
        new_arcs = (tracer.arcs & wanted_arcs) - seen_arcs
        if not new_lines and not new_arcs:
            continue
        outcome = observe(result, error, builder.module_names)
        plan = {**plan, "imports": set(plan["imports"])}
        plan["code"] = _drained_code(plan["code"], wrap, plan["imports"])
        # Same input again, fresh receiver and all: an outcome that changes is not a behaviour.
        again_plan = _replay_plan(plan, target, builder, rng)
        if again_plan is not None:
            result2, error2, _ = run_case(again_plan, None)
            if observe(result2, error2, builder.module_names) != outcome:
                continue
        seen_lines |= tracer.lines & wanted_lines
        seen_arcs |= tracer.arcs & wanted_arcs
        last_progress = time.monotonic()
        cases.append({
            "setup": plan["setup"], "code": plan["code"], "imports": sorted(plan["imports"]), "outcome": outcome,
            "lines": sorted(tracer.lines), "arcs": sorted(tracer.arcs),
        })
        if wanted_lines <= seen_lines and wanted_arcs <= seen_arcs:
            break
    return {"cases": cases, "attempts": attempts, "covered_lines": sorted(seen_lines & wanted_lines)}


def _replay_plan(plan: dict[str, Any], target: Target, builder: Builder, rng: random.Random) -> dict[str, Any] | None:
    """Rebuild the same call from its code, so the repeat shares no objects with the first run."""
    namespace: dict[str, Any] = {}
    try:
        for line in sorted(plan["imports"]):
            exec(line, namespace)  # noqa: S102 - code this probe generated itself, from known imports
        for line in plan["setup"]:
            exec(line, namespace)  # noqa: S102
    except BaseException:  # noqa: BLE001 - a setup that cannot be replayed cannot be a test either
        return None
    code = plan["code"]
    return {"call": lambda: eval(code, namespace)}  # noqa: S307 - see above


def confirm(request: dict[str, Any]) -> dict[str, Any]:
    """Re-run each case from its code in this (fresh) process and report its outcome again."""
    outcomes = []
    module_names: dict[int, str] = {}
    for case in request["cases"]:
        namespace: dict[str, Any] = {}
        try:
            for line in case["imports"]:
                exec(line, namespace)  # noqa: S102 - generated by this probe
            for line in case["setup"]:
                exec(line, namespace)  # noqa: S102
            result, error, _ = run_case({"call": lambda c=case: eval(c["code"], namespace)}, None)  # noqa: S307
            outcomes.append(observe(result, error, module_names))
        except BaseException as err:  # noqa: BLE001
            outcomes.append({"kind": "setup-failed", "message": str(err)[:200]})
    return {"outcomes": outcomes}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as stream:
        request = json.load(stream)
    sys.path[:0] = request.get("paths", [])
    result = explore(request) if request.get("mode", "explore") == "explore" else confirm(request)
    # Where every loaded module came from: covgen checks, outside, that none is the user's tree.
    result["folders"] = sorted({os.path.dirname(os.path.realpath(path)) for module in list(sys.modules.values())
                                if isinstance(path := getattr(module, "__file__", None), str)})
    with open(sys.argv[2], "w", encoding="utf-8") as stream:
        json.dump(result, stream)


if __name__ == "__main__":
    main()
