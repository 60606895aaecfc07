"""covgen's exploration probe: search inputs that reach a method's uncovered lines, record what they do.

Run by the model-free engine, inside the sandbox, with the *project's* interpreter:

    python explore_probe.py REQUEST.json RESULT.json

Only the standard library is imported at module level: the project's environment may lack
covgen's dependencies. Hypothesis, when the project has it, is imported lazily to draw values for
annotated types the probe's own registry does not know.

``mode: explore`` searches. Fresh draws come from annotations, defaults, how the code uses a
parameter, parameter names, and constants, regular-expression matches and format strings mined
from the code. Inputs that reached new lines of the target are kept as a corpus and mutated,
crossed over and given longer method sequences on their receivers, so a larger budget keeps
finding more. A private target is reached through the public functions that call it first. Each
input that reaches uncovered lines is minimized (receiver calls and arguments that change neither
its coverage nor its verdict are dropped) and recorded with what a test can check: the returned
value or its public state, the receiver's changed attributes, or an exception that a ``raise``
statement in the project's own code raised. Errors Python itself raises because a call made no
sense (a wrong-type argument, a missing attribute) are never recorded as behaviour.
``mode: confirm`` replays recorded cases and observes them again, so the engine can drop any
observation that differs between two processes (time, randomness, ids, hash order).
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import dataclasses
import datetime
import decimal
import dis
import enum
import fractions
import importlib
import inspect
import io
import itertools
import json
import keyword
import linecache
import math
import os
import random
import re
import signal
import string
import sys
import textwrap
import time
import types
import typing
import warnings
from typing import Any

#: Seconds one case (receiver, preparation and call) may take before it is abandoned.
CALL_LIMIT = 1.0
MAX_DEPTH = 2
#: How many items of a returned iterator a test checks (an endless one is cut there).
DRAIN_ITEMS = 20
#: Where generated code runs from; warnings attributed here came from a call the test makes.
CASE_FILE = "<covgen-case>"


class CallTimeout(BaseException):
    pass


# --- values and the code that rebuilds them ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Value:
    """A value with the source that rebuilds it (a test writes the code; the probe runs it)."""

    value: Any
    code: str
    imports: tuple[str, ...] = ()


def literal_code(value: Any, imports: set[str]) -> str | None:
    """Python source that rebuilds `value`, or None when it cannot be written down faithfully."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, str, bytes)) and type(value) in (int, str, bytes):
        return repr(value)
    if type(value) is float:
        if math.isnan(value) or math.isinf(value):
            imports.add("import math")
            return "math.nan" if math.isnan(value) else ("math.inf" if value > 0 else "-math.inf")
        return repr(value)
    if type(value) is complex:
        return repr(value)
    if isinstance(value, enum.Enum):
        owner = type(value)
        if "<locals>" in owner.__qualname__:
            return None
        imports.add(f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}")
        return f"{owner.__qualname__}.{value.name}"
    if type(value) in (datetime.date, datetime.time, datetime.datetime, datetime.timedelta, decimal.Decimal, fractions.Fraction):
        if isinstance(value, (datetime.datetime, datetime.time)) and value.tzinfo is not None:
            return None
        module = type(value).__module__
        imports.add(f"import {module}")
        text = repr(value)
        return text if text.startswith(module + ".") else f"{module}.{text}"
    if type(value).__module__ in ("uuid", "ipaddress", "pathlib") and not isinstance(value, type):
        # Their repr is their constructor call: UUID('…'), IPv4Address('…'), PosixPath('…').
        module = type(value).__module__
        text = repr(value)
        if not text.startswith(type(value).__name__ + "("):
            return None
        imports.add(f"import {module}")
        return f"{module}.{text}"
    if type(value) in (list, tuple, set, frozenset):
        parts = [literal_code(item, imports) for item in value]
        if any(part is None for part in parts):
            return None
        codes = typing.cast("list[str]", parts)
        if isinstance(value, (set, frozenset)):
            # Set repr order follows hashes; sorted code is stable and rebuilds the same set.
            inner = "{" + ", ".join(sorted(codes)) + "}" if codes else "set()"
            return inner if type(value) is set else f"frozenset({inner})"
        if type(value) is tuple:
            return f"({codes[0]},)" if len(codes) == 1 else f"({', '.join(codes)})"
        return f"[{', '.join(codes)}]"
    if type(value) is dict:
        items = []
        for key, item in value.items():
            key_code, item_code = literal_code(key, imports), literal_code(item, imports)
            if key_code is None or item_code is None:
                return None
            items.append(f"{key_code}: {item_code}")
        return "{" + ", ".join(items) + "}"
    if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or (isinstance(value, tuple) and hasattr(value, "_fields")):
        return _instance_code(value, imports)
    return None


def _instance_code(value: Any, imports: set[str]) -> str | None:
    """A dataclass or NamedTuple rebuilt through its constructor, field by field."""
    owner = type(value)
    if "<locals>" in owner.__qualname__:
        return None
    if dataclasses.is_dataclass(value):
        names = [item.name for item in dataclasses.fields(value) if item.init]
    else:
        names = list(value._fields)
    arguments = []
    for name in names:
        code = literal_code(getattr(value, name), imports)
        if code is None:
            return None
        arguments.append(f"{name}={code}")
    imports.add(f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}")
    return f"{owner.__qualname__}({', '.join(arguments)})"


def value_of(value: Any) -> Value | None:
    imports: set[str] = set()
    code = literal_code(value, imports)
    return None if code is None else Value(value, code, tuple(sorted(imports)))


def evaluate(code: str, imports: tuple[str, ...] = ()) -> Value | None:
    """The value `code` builds (a registry entry, a plug-in's example), or None if it fails."""
    namespace: dict[str, Any] = {}
    try:
        for line in imports:
            exec(line, namespace)  # noqa: S102 - covgen's registry or the project's own plug-in
        return Value(eval(code, namespace), code, tuple(imports))  # noqa: S307
    except Exception:  # noqa: BLE001 - an example that does not build is skipped
        return None


# --- the registry: values for types and for parameter names ------------------------------------

class Registry:
    """Generic values per type and per parameter name; projects add their own.

    A project extends it through an entry point in the ``covgen.explore`` group: a callable that
    receives this registry, e.g. in pyproject.toml
    ``[project.entry-points."covgen.explore"] shop = "shop.testing:covgen_values"`` with::

        def covgen_values(registry):
            registry.add_type(Money, "Money(0, 'EUR')", "Money(-5, 'USD')", imports=("from shop import Money",))
            registry.add_name("sku", "'AB-1234'")          # parameters called sku, *_sku
            registry.add_name("when", datetime.date)       # parameters called when: dates

    Codes are Python expressions: each is both the value and how a test writes it. Where the
    probe cannot build a value itself (TypedDicts, ``Annotated`` constraints, dataclasses whose
    constructor refuses its draws, other typing constructs), Hypothesis's ``from_type`` is asked,
    so a project's own ``register_type_strategy`` registrations count there too.
    """

    def __init__(self) -> None:
        self.types: dict[Any, list[tuple[str, tuple[str, ...]]]] = {}
        #: word → hints: a type (its values), or (code, imports) for one value.
        self.names: dict[str, list[Any]] = {}
        #: first words such as "is" or "has" → hints.
        self.prefixes: dict[str, list[Any]] = {}

    def add_type(self, cls: Any, *codes: str, imports: tuple[str, ...] = ()) -> None:
        self.types.setdefault(cls, []).extend((code, tuple(imports)) for code in codes)

    def add_name(self, word: str, *hints: Any, imports: tuple[str, ...] = (), prefix: bool = False) -> None:
        table = self.prefixes if prefix else self.names
        for hint in hints:
            table.setdefault(word.lower(), []).append((hint, tuple(imports)) if isinstance(hint, str) else hint)

    def hints_for(self, name: str) -> list[Any]:
        """What a parameter's name says about it: its whole name, its last word, its first word, a plural."""
        words = _words(name)
        if not words:
            return []
        for key in dict.fromkeys((name.lower(), words[-1])):
            if key in self.names:
                return list(self.names[key])
        if words[0] in self.prefixes and len(words) > 1:
            return list(self.prefixes[words[0]])
        last = words[-1]
        if len(last) > 3 and last.endswith("s") and last[:-1] in self.names:
            # "names", "dates": a list of what the singular names.
            return [types.GenericAlias(list, (hint,)) for hint in self.names[last[:-1]] if isinstance(hint, type)]
        return []


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip("_"))
    return [word.lower() for word in spaced.split("_") if word]


_DATES = ("import datetime",)


def default_registry() -> Registry:
    """Generic boundaries and everyday shapes; nothing here is chosen for any particular project."""
    registry = Registry()
    add = registry.add_type
    add(type(None), "None")
    add(bool, "True", "False")
    add(int, "0", "1", "-1", "2", "3", "10", "100", "255", "1000", "-100")
    add(float, "0.0", "1.0", "-1.0", "0.5", "2.5", "100.0", "1e-06", "math.inf", "-math.inf", "math.nan", imports=("import math",))
    add(complex, "0j", "(1+2j)")
    add(str, "''", "'a'", "'abc'", "'Hello World'", "' '", "'0'", "'1'", "'-1'", "'2.5'", "'x,y'", "'a b c'", "'\\n'", "'ünïcödé'")
    add(bytes, "b''", "b'abc'", "b'\\x00\\xff'")
    add(datetime.date, "datetime.date(2000, 1, 1)", "datetime.date(2024, 2, 29)", "datetime.date(1999, 12, 31)",
        "datetime.date(1970, 1, 1)", "datetime.date(2023, 7, 15)", imports=_DATES)
    add(datetime.datetime, "datetime.datetime(2000, 1, 1, 0, 0)", "datetime.datetime(2024, 2, 29, 12, 30, 15)",
        "datetime.datetime(1999, 12, 31, 23, 59, 59)", "datetime.datetime(2023, 7, 15, 8, 5, 0, 250000)", imports=_DATES)
    add(datetime.time, "datetime.time(0, 0)", "datetime.time(12, 30)", "datetime.time(23, 59, 59)", imports=_DATES)
    add(datetime.timedelta, "datetime.timedelta(0)", "datetime.timedelta(days=1)", "datetime.timedelta(seconds=90)",
        "datetime.timedelta(days=-1)", "datetime.timedelta(days=400, hours=5)", imports=_DATES)
    add(decimal.Decimal, "decimal.Decimal('0')", "decimal.Decimal('1.5')", "decimal.Decimal('-2')", imports=("import decimal",))
    add(fractions.Fraction, "fractions.Fraction(1, 3)", "fractions.Fraction(-5, 2)", imports=("import fractions",))
    add(collections.abc.Callable, "len", "str", "bool", "abs", "lambda x: x", "lambda x, y: (x, y)", "lambda *args, **kwargs: None")
    name = registry.add_name
    for word in ("is", "has", "can", "should", "allow", "use", "enable", "include", "with", "no"):
        name(word, bool, prefix=True)
    for word in ("strict", "force", "verbose", "quiet", "flag", "reverse", "recursive", "debug", "enabled", "disabled", "inplace", "lazy", "safe"):
        name(word, bool)
    for word in ("n", "i", "j", "k", "count", "size", "index", "idx", "length", "len", "limit", "width", "height", "depth", "num",
                 "number", "total", "offset", "level", "retries", "start", "stop", "step", "year", "month", "day", "hour", "minute",
                 "second", "port", "times", "pos", "position", "precision", "digits", "base", "max", "min", "maxsize", "indent"):
        name(word, int)
    for word in ("ratio", "rate", "factor", "scale", "weight", "fraction", "probability", "threshold", "tolerance", "alpha",
                 "timeout", "x", "y"):
        name(word, float, int)
    for word in ("s", "name", "text", "string", "str", "title", "label", "message", "msg", "prefix", "suffix", "word", "line",
                 "char", "code", "token", "pattern", "format", "fmt", "encoding", "locale", "lang", "language", "url", "uri",
                 "email", "path", "filename", "query", "sql", "template", "key"):
        name(word, str)
    for word in ("sep", "separator", "delimiter", "delim"):
        name(word, "','", "';'", "'|'", "'\\t'", "' '", "'-'")
    for word in ("date", "when", "dt", "datetime", "today"):
        name(word, datetime.date, datetime.datetime)
    for word in ("delta", "duration", "interval", "timedelta"):
        name(word, datetime.timedelta)
    for word in ("items", "values", "seq", "sequence", "iterable", "elements", "lst", "list", "rows", "data", "coll",
                 "collection", "seqs"):
        name(word, list)
    for word in ("mapping", "dict", "d", "options", "config", "params", "headers", "attrs", "kwargs", "table"):
        name(word, dict)
    for word in ("func", "fn", "f", "function", "callback", "pred", "predicate", "key", "binop", "op", "factory"):
        name(word, collections.abc.Callable)
    return registry


def load_plugins(registry: Registry) -> list[str]:
    """Let installed ``covgen.explore`` entry points add values; return what went wrong, for the note."""
    problems: list[str] = []
    try:
        from importlib.metadata import entry_points

        if sys.version_info >= (3, 10):
            found = list(entry_points(group="covgen.explore"))
        else:  # pragma: no cover - older interpreters
            found = list(entry_points().get("covgen.explore", []))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - broken metadata means no plug-ins, not no exploration
        return problems
    for point in found:
        try:
            point.load()(registry)
        except Exception as err:  # noqa: BLE001
            problems.append(f"explore plug-in {point.name!r} failed: {type(err).__name__}: {err}")
    return problems


# --- values drawn by Hypothesis, when the project has it ------------------------------------------

class HypothesisValues:
    """Values ``hypothesis.strategies.from_type`` draws for an annotation the registry does not know.

    Drawn the supported way outside a test: a ``@given`` function with a fixed ``@seed`` that
    collects what it receives (what ``.example()`` does internally, without its interactive-only
    warning), generate phase only, no example database. Only values that can be written as code
    are kept: a test has to rebuild them.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.cache: dict[str, list[Value]] = {}

    def values(self, annotation: Any, count: int = 25) -> list[Value]:
        key = repr(annotation)
        if key not in self.cache:
            self.cache[key] = self._draw(annotation, count)
        return self.cache[key]

    def _draw(self, annotation: Any, count: int) -> list[Value]:
        try:
            from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
            from hypothesis import strategies as st
        except Exception:  # noqa: BLE001 - no Hypothesis in the project's environment: the registry alone
            return []
        drawn: list[Any] = []
        try:
            strategy = st.from_type(annotation)

            @seed(self.seed)
            @settings(database=None, max_examples=count, deadline=None, phases=(Phase.generate,),
                      suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
            @given(strategy)
            def collect(value: Any) -> None:
                drawn.append(value)

            with warnings.catch_warnings(), limit(5.0):
                warnings.simplefilter("ignore")
                collect()
        except (Exception, CallTimeout):  # noqa: BLE001 - a type Hypothesis cannot resolve gives nothing
            pass
        found: dict[str, Value] = {}
        for item in drawn:
            made = value_of(item)
            if made is not None and len(made.code) <= 120:
                found.setdefault(made.code, made)
        return list(found.values())[:12]


# --- where inputs come from: the code itself -----------------------------------------------------

def mine_constants(source: str) -> dict[str, list[Any]]:
    """Literals the code compares with, slices by, or mentions: they unlock its branches."""
    found: dict[str, list[Any]] = {"str": [], "int": [], "float": [], "bytes": []}
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return found
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
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


_STRFTIME = re.compile(r"%[aAbBcdfHIjmMpSUwWxXyYzZ]")
_REGEX_HINT = re.compile(r"\\[dDwWsSbB]|\(\?P<|\[[^\]]+\]|[+*?]\)|\{\d+(,\d*)?\}|^\^|\$$")


def derived_strings(module: types.ModuleType, constants: list[str], rng: random.Random) -> tuple[list[str], list[re.Pattern[str]]]:
    """Strings the code's own parsers accept: its regular expressions' matches, its date formats filled in."""
    examples: list[str] = []
    names = list(vars(module).values())[:2000]
    names += [item for cls in names if isinstance(cls, type) and cls.__module__ == module.__name__ for item in vars(cls).values()]
    patterns = [value for value in names if isinstance(value, re.Pattern) and isinstance(value.pattern, str)]
    for text in constants:
        if _REGEX_HINT.search(text):
            try:
                patterns.append(re.compile(text))
            except (re.error, RecursionError, OverflowError):
                pass
        if _STRFTIME.search(text):
            for moment in (datetime.datetime(2024, 3, 9, 14, 5, 6), datetime.datetime(1999, 12, 31, 23, 59, 59)):
                try:
                    examples.append(moment.strftime(text))
                except (ValueError, TypeError):
                    break
    for pattern in patterns:
        examples.extend(regex_examples(pattern, rng))
    return list(dict.fromkeys(examples)), patterns


def regex_examples(pattern: re.Pattern[str], rng: random.Random, wanted: int = 4) -> list[str]:
    """Strings `pattern` matches, from random walks over its parse tree (optional parts in or out)."""
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - a pattern the parser cannot read gives no examples
        return []
    found: list[str] = []
    for _ in range(wanted * 4):
        try:
            text = _generate(parsed, rng, {})
        except (_Unsupported, RecursionError, ValueError, OverflowError):
            break
        if pattern.search(text) is not None and text not in found:
            found.append(text)
        if len(found) >= wanted:
            break
    return found


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


@dataclasses.dataclass(frozen=True)
class Keys:
    """A usage hint: the parameter is a mapping read with these keys (``options.get("indent")``)."""

    names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Attributes:
    """A usage hint: the body reads these attributes of the parameter (``stack.enable_grouping()``)."""

    names: tuple[str, ...]


_STR_METHODS = {"startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
                "replace", "isdigit", "isalpha", "isalnum", "isspace", "encode", "casefold", "partition", "rpartition",
                "zfill", "capitalize", "title", "expandtabs", "format_map", "removeprefix", "removesuffix"}
_LIST_METHODS = {"append", "extend", "insert", "sort"}
_DICT_METHODS = {"items", "keys", "values", "get", "setdefault", "popitem"}
_DATE_ATTRS = {"year", "month", "day", "weekday", "isoweekday", "toordinal", "isoformat", "isocalendar", "strftime", "timetuple"}
_TIME_ATTRS = {"hour", "minute", "second", "microsecond", "tzinfo", "utcoffset"}
_DELTA_ATTRS = {"total_seconds", "days", "seconds", "microseconds"}


def usage_hints(function: Any, depth: int = 0) -> dict[str, list[Any]]:
    """What the body does with each unannotated parameter: ``isinstance`` checks, methods, comparisons.

    A parameter handed on to another function of the module (``return self.__add__(other)``)
    gets what that function does with it too.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        parameters = set(inspect.signature(function).parameters)
    except (OSError, TypeError, ValueError, SyntaxError):
        return {}
    scope = getattr(function, "__globals__", {})
    found: dict[str, list[Any]] = {}

    def add(name: str, hint: Any) -> None:
        hints = found.setdefault(name, [])
        if hint not in hints:
            hints.append(hint)

    def param(node: ast.AST) -> str | None:
        return node.id if isinstance(node, ast.Name) and node.id in parameters and node.id not in ("self", "cls") else None

    keys: dict[str, list[str]] = {}
    attributes: dict[str, list[str]] = {}

    def key(name: str | None, node: ast.AST) -> None:
        if name and isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in keys.setdefault(name, []):
            keys[name].append(node.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func
            if isinstance(callee, ast.Name) and callee.id == "isinstance" and len(node.args) == 2 and param(node.args[0]):
                for cls in _types_in(node.args[1], scope):
                    add(param(node.args[0]) or "", cls)
            elif isinstance(callee, ast.Name) and callee.id == "range":
                for argument in node.args:
                    if param(argument):
                        add(param(argument) or "", int)
            elif param(callee):
                add(param(callee) or "", collections.abc.Callable)
            if isinstance(callee, ast.Attribute) and callee.attr in ("get", "pop", "setdefault") and node.args:
                key(param(callee.value), node.args[0])
            if depth == 0:
                for name, hints in _handed_on(node, function, parameters).items():
                    for hint in hints:
                        add(name, hint)
        elif isinstance(node, ast.Attribute) and param(node.value):
            name, attribute = param(node.value) or "", node.attr
            if attribute in _STR_METHODS:
                add(name, str)
            elif attribute in _LIST_METHODS:
                add(name, list)
            elif attribute in _DICT_METHODS:
                add(name, dict)
            elif attribute in _TIME_ATTRS:
                add(name, datetime.datetime)
            elif attribute in _DATE_ATTRS:
                add(name, datetime.date)
            elif attribute in _DELTA_ATTRS:
                add(name, datetime.timedelta)
            elif attribute not in _DICT_METHODS and attribute not in attributes.setdefault(name, []):
                attributes[name].append(attribute)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
                key(param(node.comparators[0]), node.left)
            compared = [name for name in (param(o) for o in operands) if name]
            for operand in operands:
                for constant in _constants_in(operand):
                    for name in compared:
                        add(name, type(constant))
        elif isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Mod):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if param(side) and isinstance(other, ast.Constant) and type(other.value) in (int, float, str):
                    add(param(side) or "", type(other.value))
        elif isinstance(node, ast.Subscript) and param(node.value):
            index = node.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, str):
                key(param(node.value), index)
    for name, names in keys.items():
        if names:
            add(name, Keys(tuple(names)))
    for name, names in attributes.items():
        if names and not found.get(name):
            add(name, Attributes(tuple(names)))
    return found


def _handed_on(call: ast.Call, function: Any, parameters: set[str]) -> dict[str, list[Any]]:
    """Usage hints for parameters passed positionally to `self.method(...)` or a module function."""
    callee = call.func
    target, shift = None, 0
    if isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name) and callee.value.id in ("self", "cls"):
        owner = getattr(function, "__globals__", {}).get(function.__qualname__.split(".")[0])
        target, shift = getattr(owner, callee.attr, None), 1
    elif isinstance(callee, ast.Name):
        target = getattr(function, "__globals__", {}).get(callee.id)
    if not inspect.isfunction(target) or target is function:
        return {}
    try:
        names = list(inspect.signature(target).parameters)[shift:]
    except (TypeError, ValueError):
        return {}
    theirs = usage_hints(target, depth=1)
    return {argument.id: theirs.get(names[index], []) for index, argument in enumerate(call.args[: len(names)])
            if isinstance(argument, ast.Name) and argument.id in parameters}


def _types_in(node: ast.AST, scope: dict[str, Any]) -> list[type]:
    """The classes an isinstance() second argument names (a name, a dotted name, a tuple of them)."""
    if isinstance(node, ast.Tuple):
        return [cls for element in node.elts for cls in _types_in(element, scope)]
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return []
    value = scope.get(node.id, getattr(builtins, node.id, None))
    for part in parts:
        value = getattr(value, part, None)
    if isinstance(value, type):
        return [value]
    if isinstance(value, tuple):
        return [item for item in value if isinstance(item, type)]
    return []


def _constants_in(node: ast.AST) -> list[Any]:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str, bytes):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and type(e.value) in (int, float, str, bytes)]
    return []


# --- the project: whose code is whose ----------------------------------------------------------

class Project:
    """Files of the project under test (the sandbox copy), as opposed to the stdlib and packages."""

    def __init__(self, paths: list[str]) -> None:
        self.roots = tuple(os.path.realpath(p) + os.sep for p in paths)
        self._cache: dict[str, bool] = {}

    def owns(self, filename: str) -> bool:
        if filename not in self._cache:
            real = os.path.realpath(filename) if not filename.startswith("<") else filename
            self._cache[filename] = real.startswith(self.roots) and "site-packages" not in real and "dist-packages" not in real
        return self._cache[filename]


# --- what is called ------------------------------------------------------------------------------

#: Special methods written the way code uses them: ``a + b``, not ``a.__add__(b)``.
#: {0} is the receiver, {1}, {2} the arguments.
_OPERATORS = {
    "__add__": "{0} + {1}", "__radd__": "{1} + {0}", "__sub__": "{0} - {1}", "__rsub__": "{1} - {0}",
    "__mul__": "{0} * {1}", "__rmul__": "{1} * {0}", "__truediv__": "{0} / {1}", "__rtruediv__": "{1} / {0}",
    "__floordiv__": "{0} // {1}", "__rfloordiv__": "{1} // {0}", "__mod__": "{0} % {1}", "__rmod__": "{1} % {0}",
    "__pow__": "{0} ** {1}", "__matmul__": "{0} @ {1}", "__and__": "{0} & {1}", "__rand__": "{1} & {0}",
    "__or__": "{0} | {1}", "__ror__": "{1} | {0}", "__xor__": "{0} ^ {1}", "__lshift__": "{0} << {1}", "__rshift__": "{0} >> {1}",
    "__eq__": "{0} == {1}", "__ne__": "{0} != {1}", "__lt__": "{0} < {1}", "__le__": "{0} <= {1}", "__gt__": "{0} > {1}",
    "__ge__": "{0} >= {1}", "__neg__": "-{0}", "__pos__": "+{0}", "__abs__": "abs({0})", "__invert__": "~{0}",
    "__len__": "len({0})", "__bool__": "bool({0})", "__repr__": "repr({0})", "__str__": "str({0})", "__hash__": "hash({0})",
    "__int__": "int({0})", "__float__": "float({0})", "__contains__": "{1} in {0}", "__getitem__": "{0}[{1}]",
    "__iter__": "list({0})", "__reversed__": "list(reversed({0}))", "__format__": "format({0}, {1})", "__round__": "round({0})",
}
#: Special methods that are statements; the test then checks the receiver's state.
_STATEMENTS = {"__setitem__": "{0}[{1}] = {2}", "__delitem__": "del {0}[{1}]", "__iadd__": "{0} += {1}", "__isub__": "{0} -= {1}",
               "__ior__": "{0} |= {1}", "__iand__": "{0} &= {1}"}


@dataclasses.dataclass
class Entry:
    """One way in: a function, method, constructor, property or setter a test can call."""

    kind: str  # function | method | staticmethod | classmethod | constructor | property | setter | deleter
    owner: type | None
    name: str
    function: Any
    module: str
    #: Reached without naming anything private.
    public: bool

    @property
    def template(self) -> str | None:
        if self.kind != "method":
            return None
        return _OPERATORS.get(self.name) or _STATEMENTS.get(self.name)

    def label(self) -> str:
        return f"{self.owner.__qualname__}.{self.name}" if self.owner is not None else self.name


@dataclasses.dataclass
class Target:
    module: types.ModuleType
    qualname: str
    filename: str
    #: Ways in, most public first: public callers of a private target, then the target itself.
    entries: list[Entry]
    #: The gap is a nested function: reached by calling its enclosing one (and what that returns).
    nested: bool = False


def _is_public_name(name: str) -> bool:
    return not name.startswith("_") or name in _OPERATORS or name in _STATEMENTS or name in ("__init__", "__call__")


def _entry_for(module: types.ModuleType, owner: Any, name: str, start: int, end: int) -> Entry | str:
    """The entry for `owner.name` whose code lies in [start, end] (a property's getter or setter)."""
    raw = inspect.getattr_static(owner, name, None) if isinstance(owner, type) else vars(owner).get(name)
    if raw is None:
        return f"{name} is not defined at import time (conditional or generated), so it cannot be called"
    cls = owner if isinstance(owner, type) else None
    public = _is_public_name(name) and (cls is None or not cls.__name__.startswith("_"))
    if isinstance(raw, property):
        for kind, function in (("property", raw.fget), ("setter", raw.fset), ("deleter", raw.fdel)):
            if function is not None and _within(function, start, end):
                return Entry(kind, cls, name, function, module.__name__, public)
        return Entry("property", cls, name, raw.fget, module.__name__, public)
    if cls is None:
        kind, function = "function", raw
    elif isinstance(raw, staticmethod):
        kind, function = "staticmethod", raw.__func__
    elif isinstance(raw, classmethod):
        kind, function = "classmethod", raw.__func__
    elif name == "__init__":
        kind, function = "constructor", raw
    else:
        kind, function = "method", raw
        if name not in _OPERATORS and name not in _STATEMENTS:
            # `__truediv__ = __div__`: the operator reaches the same code under its other name.
            name = next((alias for alias, other in vars(cls).items() if other is raw and (alias in _OPERATORS or alias in _STATEMENTS)), name)
            public = public or name in _OPERATORS or name in _STATEMENTS
    if not callable(function):
        return f"{name} is not a function"
    return Entry(kind, cls, name, function, module.__name__, public)


def _within(function: Any, start: int, end: int) -> bool:
    code = getattr(inspect.unwrap(function), "__code__", None)
    return code is not None and start <= code.co_firstlineno <= end


def resolve(module_name: str, qualname: str, start: int, end: int) -> Target | str:
    """The target and its ways in, or a sentence saying why a test cannot reach it."""
    try:
        module = importlib.import_module(module_name)
    except BaseException as err:  # noqa: BLE001 - an import that fails is the note, not a crash
        return f"importing {module_name} failed: {type(err).__name__}: {str(err)[:120]}"
    parts = qualname.split(".")
    owner: Any = module
    for index, part in enumerate(parts[:-1]):
        attribute = getattr(owner, part, None) if isinstance(owner, type) else vars(owner).get(part)
        if isinstance(attribute, type):
            owner = attribute
            continue
        if callable(attribute):
            # A nested function: only its enclosing function can run it (and return it).
            enclosing = _entry_for(module, owner, part, 0, 10**9)
            if isinstance(enclosing, str):
                return f"nested function, not reachable directly: {enclosing}"
            filename = _source_file(enclosing.function)
            if filename is None:
                return "nested function, not reachable directly: its enclosing function has no source"
            return Target(module, qualname, filename, [enclosing], nested=True)
        return f"{'.'.join(parts[: index + 1])} is not a class or function at import time, so {qualname} cannot be called"
    entry = _entry_for(module, owner, parts[-1], start, end)
    if isinstance(entry, str):
        return entry
    filename = _source_file(entry.function)
    if filename is None:
        return f"{qualname} has no Python source to trace"
    entries = [entry]
    if not entry.public:
        callers = public_callers(module, entry)
        entries = [*callers, entry]
    return Target(module, qualname, filename, entries)


def _source_file(function: Any) -> str | None:
    try:
        return inspect.getsourcefile(inspect.unwrap(function))
    except TypeError:
        return None


def public_callers(module: types.ModuleType, target: Entry) -> list[Entry]:
    """Public functions and methods of the module that call `target` (directly, or through one private helper)."""
    everything: list[Entry] = []
    for name, value in vars(module).items():
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            made = _entry_for(module, module, name, 0, 10**9)
            if isinstance(made, Entry):
                everything.append(made)
        elif isinstance(value, type) and value.__module__ == module.__name__:
            for attribute, raw in vars(value).items():
                if isinstance(raw, (staticmethod, classmethod, property)) or inspect.isfunction(raw):
                    made = _entry_for(module, value, attribute, 0, 10**9)
                    if isinstance(made, Entry) and made.function is not None:
                        everything.append(made)
    names = {id(entry): _referenced_names(entry.function) for entry in everything}
    reaching = {target.name}
    # One private helper in between is common (a public method → _normalize → _fix).
    for entry in everything:
        if not entry.public and target.name in names[id(entry)] and entry.function is not target.function:
            reaching.add(entry.name)
    found = [e for e in everything if e.public and names[id(e)] & reaching and e.function is not target.function]
    # Callers in the target's own class first: their receivers are the ones it needs.
    found.sort(key=lambda e: (e.owner is not target.owner, e.kind == "constructor"))
    return found[:8]


def _referenced_names(function: Any) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


# --- calls and plans ------------------------------------------------------------------------------

@dataclasses.dataclass
class Arg:
    name: str
    value: Value
    keyword: bool
    optional: bool


@dataclasses.dataclass
class Call:
    """One call: what is called (as source), the function behind it, and its arguments."""

    function: Any
    callee: str
    args: list[Arg]
    imports: tuple[str, ...] = ()
    skip_first: bool = False

    def arguments(self) -> str:
        return ", ".join(f"{a.name}={a.value.code}" if a.keyword else a.value.code for a in self.args)

    def source(self) -> str:
        return f"{self.callee}({self.arguments()})"

    def all_imports(self) -> set[str]:
        return {*self.imports, *(i for a in self.args for i in a.value.imports)}

    def copy(self) -> Call:
        return dataclasses.replace(self, args=list(self.args))


@dataclasses.dataclass
class Plan:
    """A test in the making: a receiver, calls that prepare it, the call, and a call of what it returned."""

    entry: Entry
    receiver: Call | None
    steps: list[Call]
    call: Call | None  # None for a property read
    follow: Call | None = None

    def copy(self) -> Plan:
        return Plan(self.entry, self.receiver.copy() if self.receiver else None, [s.copy() for s in self.steps],
                    self.call.copy() if self.call else None, self.follow.copy() if self.follow else None)

    def calls(self) -> list[Call]:
        return [c for c in (self.receiver, *self.steps, self.call, self.follow) if c is not None]


def _variable_name(class_name: str) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower().strip("_")
    # `excepts = excepts(...)` would shadow the class it builds (and a builtin or keyword is no
    # better): such receivers are called "subject".
    unusable = snake == class_name or keyword.iskeyword(snake) or hasattr(builtins, snake) or not snake.isidentifier()
    return "subject" if unusable else snake


def render(plan: Plan, target: Target) -> dict[str, Any]:
    """The plan as a case: imports, setup lines, and the expression (or statement) under test."""
    entry = plan.entry
    imports: set[str] = set()
    setup: list[str] = []
    subject = None
    owner_name = entry.owner.__qualname__ if entry.owner is not None else ""
    if entry.owner is not None:
        imports.add(f"from {entry.module} import {owner_name.split('.')[0]}")
    if plan.receiver is not None and entry.owner is not None:
        # Named after what is built (`version = Version(...)` for a `_BaseVersion` method).
        built = plan.receiver.callee.rsplit(".", 1)[-1]
        subject = _variable_name(built if built[:1].isupper() else entry.owner.__name__)
        setup.append(f"{subject} = {plan.receiver.source()}")
        imports |= plan.receiver.all_imports()
        for step in plan.steps:
            setup.append(f"{subject}.{step.source()}")
            imports |= step.all_imports()
    code: str | None = None
    statement: str | None = None
    readback: str | None = None
    call = plan.call
    if call is not None:
        imports |= call.all_imports()
    arguments = call.arguments() if call is not None else ""
    if entry.kind == "function":
        imports.add(f"from {entry.module} import {entry.name}")
        code = f"{entry.name}({arguments})"
    elif entry.kind in ("staticmethod", "classmethod"):
        code = f"{owner_name}.{entry.name}({arguments})"
    elif entry.kind == "constructor":
        code = f"{owner_name}({arguments})"
    elif entry.kind == "property":
        code = f"{subject}.{entry.name}"
    elif entry.kind == "setter":
        statement = f"{subject}.{entry.name} = {call.args[0].value.code if call and call.args else 'None'}"
        readback = f"{subject}.{entry.name}" if entry.owner is not None and isinstance(vars(entry.owner).get(entry.name), property) and vars(entry.owner)[entry.name].fget else None
    elif entry.kind == "deleter":
        statement = f"del {subject}.{entry.name}"
    elif entry.name == "__call__":
        code = f"{subject}({arguments})"
    else:
        template = entry.template
        values = [a.value.code for a in call.args] if call is not None else []
        fits = template is not None and template.count("{") - 1 == len(values) and all(not a.keyword for a in (call.args if call else []))
        if fits and entry.name in _STATEMENTS:
            statement = template.format(subject, *values)  # type: ignore[union-attr]
        elif fits:
            code = template.format(subject, *values)  # type: ignore[union-attr]
        else:
            code = f"{subject}.{entry.name}({arguments})"
    if plan.follow is not None and code is not None:
        name = _closure_name(plan.follow.callee, setup, imports)
        setup.append(f"{name} = {code}")
        imports |= plan.follow.all_imports()
        code = f"{name}({plan.follow.arguments()})"
    return {"imports": sorted(imports), "setup": setup, "code": code, "statement": statement, "subject": subject,
            "readback": readback, "drain": entry.kind != "constructor", "entry": entry.label(), "public": entry.public}


def _closure_name(name: str, setup: list[str], imports: set[str]) -> str:
    taken = " ".join([*setup, *imports])
    if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(builtins, name) and not re.search(rf"\b{name}\b", taken):
        return name
    return "returned"


# --- building arguments and receivers -------------------------------------------------------------

_ANY = ("None", "0", "1", "''", "'a'", "[]", "True")
_SCALARS = (bool, int, float, str, bytes, complex)
_PUNCTUATION = list(" ,.-:/+_T Z") + ["  ", "--", "..", "\t"]


class Builder:
    """Make argument values (with the code that rebuilds them), receivers, and mutations of both."""

    def __init__(self, module: types.ModuleType, registry: Registry, constants: dict[str, list[Any]],
                 module_constants: dict[str, list[Any]], derived: list[str], rng: random.Random,
                 hypothesis: HypothesisValues, project: Project) -> None:
        self.module = module
        self.registry = registry
        self.constants = constants
        self.module_constants = module_constants
        self.derived = derived
        self.rng = rng
        self.hypothesis = hypothesis
        self.project = project
        #: Values drawn earlier in the current plan: a receiver stocked with "saw" is most
        #: interesting when the target is then asked about "saw".
        self.recent: list[Value] = []
        self._typed: dict[Any, list[Value]] = {}
        self._static: dict[tuple[int, str, int], list[Value]] = {}
        self._usage: dict[int, dict[str, list[Any]]] = {}
        self._receivers: dict[type, list[tuple[Call, Any]]] = {}
        self._building: set[type] = set()
        self._ducks: dict[tuple[str, ...], list[type]] = {}
        #: Keys the code reads from mappings: a mutated mapping may gain one.
        self.mapping_keys: set[str] = set()
        #: The module's regular expressions: a mutation may swap a string for a fresh match.
        self.patterns: list[re.Pattern[str]] = []
        self.pieces: list[str] = list(dict.fromkeys(
            [s for s in constants["str"] + derived + module_constants["str"][:40] if isinstance(s, str) and 0 < len(s) <= 20]))
        #: Characters the code's own words and matches are made of ("-", "T", ":" for a date parser).
        self.alphabet = sorted({c for piece in self.pieces for c in piece if not c.isalnum()} | set("aZ09"))

    # Values per type: the registry's, plus what the code mentions for scalars.
    def registered(self, cls: Any) -> list[Value]:
        if cls not in self._typed:
            made = [evaluate(code, imports) for code, imports in self.registry.types.get(cls, [])]
            self._typed[cls] = [v for v in made if v is not None]
        return self._typed[cls]

    def scalars(self, cls: type) -> list[Value]:
        mined = self.constants
        raw: list[Any]
        if cls is int:
            raw = mined["int"][:30] + [n for n in self.module_constants["int"] if -1000 <= n <= 10000][:10]
        elif cls is float:
            raw = mined["float"][:20] + [float(n) for n in mined["int"][:10]]
        elif cls is str:
            words = [w for w in mined["str"] + self.module_constants["str"] if 0 < len(w) <= 12][:10]
            numbers = [n for n in mined["int"] + self.module_constants["int"] if 0 <= n <= 100][:3] or [1, 3]
            # Numbers glued to the words the code knows ("3 kg", "P2W") reach parsers' happy paths.
            combos = [f"{n}{w}" for n in numbers for w in words[:5]] + [f"{n} {w}" for n in numbers[:2] for w in words[:5]]
            raw = self.derived[:40] + mined["str"][:40] + self.module_constants["str"][:30] + combos
        elif cls is bytes:
            raw = mined["bytes"][:10]
        else:
            raw = []
        values = [v for v in (value_of(item) for item in dict.fromkeys(raw)) if v is not None]
        return list({v.code: v for v in values + self.registered(cls)}.values())

    def candidates(self, function: Any, parameter: inspect.Parameter, hints: dict[str, Any], depth: int) -> list[Value]:
        """Values for one parameter: annotation, else its default's type, how the body uses it, its name."""
        key = (id(function), parameter.name, depth)
        if key not in self._static:
            self._static[key] = self._candidates(function, parameter, hints, depth)
        values = self._static[key]
        kinds = {type(v.value) for v in values if type(v.value) in _SCALARS}
        recent = [v for v in self.recent if type(v.value) in kinds]
        if recent and self.rng.random() < 0.3:
            return recent
        return values

    def _candidates(self, function: Any, parameter: inspect.Parameter, hints: dict[str, Any], depth: int) -> list[Value]:
        annotation = hints.get(parameter.name, parameter.annotation)
        if annotation is not inspect.Parameter.empty and annotation is not Any:
            values = self.for_annotation(annotation, parameter.name, depth)
            if parameter.default is not parameter.empty:
                default = value_of(parameter.default)
                values = values + [default] if default is not None else values
            return values
        values = []
        default = parameter.default
        if default is not parameter.empty and default is not None:
            values += self.for_annotation(type(default), parameter.name, depth)
        if not values:
            if id(function) not in self._usage:
                self._usage[id(function)] = usage_hints(function)
            for hint in self._usage[id(function)].get(parameter.name, []):
                if isinstance(hint, Keys):
                    values += self.keyed(hint.names)
                elif isinstance(hint, Attributes):
                    values += [v for cls in self.duck_classes(hint.names)[:2] for v in self.objects(cls)]
                else:
                    values += self.for_annotation(hint, parameter.name, depth)[:12]
        if not values:
            values = self._from_name(parameter.name, depth)
        owner = _owner_class(function)
        if owner is not None and depth < MAX_DEPTH and (parameter.name == "other" or getattr(function, "__name__", "") in _OPERATORS):
            # `other` of a method is most often another instance of the same class.
            values = (values or self.anything()) + self.objects(owner)
        if default is not parameter.empty:
            made = value_of(default)
            if made is not None:
                values.append(made)
        return values or self.anything()

    def _from_name(self, name: str, depth: int) -> list[Value]:
        values: list[Value] = []
        for hint in self.registry.hints_for(name):
            if isinstance(hint, tuple):
                made = evaluate(*hint)
                if made is not None:
                    values.append(made)
            else:
                values += self.for_annotation(hint, name, depth)
        return values

    def for_annotation(self, annotation: Any, name: str, depth: int) -> list[Value]:
        """Candidate values for an annotation, most specific source first."""
        if depth > MAX_DEPTH + 1:  # a list of lists of lists…: plain values from here on
            return self.anything()
        if self._registered_type(annotation) and annotation not in _SCALARS:
            return self.registered(annotation)
        if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
            return (self._from_name(name, depth) if name else []) or self.anything()
        if isinstance(annotation, str):
            return self._from_text(annotation, name, depth)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Union or (sys.version_info >= (3, 10) and isinstance(annotation, types.UnionType)):
            return [v for member in args for v in self.for_annotation(member, name, depth)[:10]]
        if origin is typing.Literal:
            return [v for v in (value_of(item) for item in args) if v is not None]
        if annotation is type(None):
            return self.registered(type(None))
        if annotation in _SCALARS:
            return self.scalars(annotation)
        if origin is not None and origin is getattr(typing, "Annotated", None):
            return self.hypothesis.values(annotation) or self.for_annotation(args[0], name, depth)
        if isinstance(annotation, typing.TypeVar):
            bound = annotation.__bound__ or (annotation.__constraints__[0] if annotation.__constraints__ else Any)
            return self.for_annotation(bound, name, depth)
        supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self.for_annotation(supertype, name, depth)
        if origin in (collections.abc.Callable,) or annotation is collections.abc.Callable or annotation is typing.Callable:
            return self.registered(collections.abc.Callable)
        container = origin or annotation
        if container in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
            return self._mappings(args, name, depth)
        if container in (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection,
                         collections.abc.MutableSequence, collections.abc.Set, collections.abc.MutableSet, collections.abc.Iterator):
            return self._containers(container, args, name, depth)
        if _is_typed_dict(annotation):
            return self.hypothesis.values(annotation) + self._typed_dicts(annotation, depth)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return [v for v in (value_of(member) for member in annotation) if v is not None]
        if isinstance(annotation, type) and depth < MAX_DEPTH:
            # Hypothesis would build other classes too, but only a dataclass can be written back as code.
            return self.objects(annotation) or (self.hypothesis.values(annotation) if dataclasses.is_dataclass(annotation) else [])
        return self.hypothesis.values(annotation) or self._from_name(name, depth)

    def _from_text(self, text: str, name: str, depth: int) -> list[Value]:
        """Annotations that could not be resolved (a string): use the module's names when possible."""
        cleaned = text.replace(" ", "")
        resolved = getattr(self.module, cleaned, None) or getattr(builtins, cleaned, None)
        if resolved is not None and not isinstance(resolved, str):
            return self.for_annotation(resolved, name, depth)
        for token, kind in (("int", int), ("float", float), ("str", str), ("bool", bool), ("bytes", bytes),
                            ("datetime", datetime.datetime), ("date", datetime.date)):
            if token in cleaned:
                return self.for_annotation(kind, name, depth)
        return self._from_name(name, depth) or self.anything()

    def _typed_dicts(self, annotation: Any, depth: int) -> list[Value]:
        """TypedDicts built key by key from their annotations (what Hypothesis does, when it is absent)."""
        fields = _hints(annotation)
        columns = {key: self.for_annotation(kind, key, depth + 1)[:8] for key, kind in fields.items()}
        if any(not values for values in columns.values()):
            return []
        made = [value_of({key: self.rng.choice(values).value for key, values in columns.items()}) for _ in range(6)]
        return [v for v in made if v is not None]

    def anything(self) -> list[Value]:
        """For a parameter nothing says anything about: a few shapes, and what the code mentions."""
        return [v for v in (evaluate(code) for code in _ANY) if v is not None] + self.scalars(str)[:4] + self.scalars(int)[:4]

    def keyed(self, keys: tuple[str, ...]) -> list[Value]:
        """Mappings with the keys the code reads, holding flags, numbers and the code's own words."""
        self.mapping_keys.update(keys)
        made = [Value({}, "{}")]
        for _ in range(12):
            chosen = self.rng.sample(keys, min(len(keys), self.rng.choice((1, 1, 2, 3))))
            made.append(value_of({k: self.rng.choice(self.mapping_values()) for k in chosen}) or made[0])
        return list({v.code: v for v in made}.values())

    def mapping_values(self) -> list[Any]:
        return [True, False, 0, 1, 2, 4, -1, None, "", *self.pieces[:12]]

    def duck_classes(self, attributes: tuple[str, ...]) -> list[type]:
        """Project classes that have every attribute the body reads (methods, or set in ``__init__``)."""
        if attributes not in self._ducks:
            found: list[type] = []
            for module in list(sys.modules.values()):
                if not self.project.owns(getattr(module, "__file__", None) or "<none>"):
                    continue
                for cls in list(vars(module).values()):
                    if isinstance(cls, type) and cls.__module__ == module.__name__ and cls not in found:
                        assigned = _referenced_names(vars(cls).get("__init__")) if "__init__" in vars(cls) else set()
                        if all(hasattr(cls, a) or a in assigned for a in attributes):
                            found.append(cls)
            self._ducks[attributes] = found
        return self._ducks[attributes]

    def _registered_type(self, annotation: Any) -> bool:
        try:
            return annotation in self.registry.types
        except TypeError:  # an unhashable annotation object
            return False

    def _containers(self, kind: Any, args: tuple[Any, ...], name: str, depth: int) -> list[Value]:
        if kind is tuple and args and args[-1] is not Ellipsis:
            # A fixed-shape tuple: one value per position.
            columns = [self.for_annotation(a, name, depth + 1)[:6] for a in args]
            if any(not c for c in columns):
                return []
            return [v for v in (self._pack(tuple, [self.rng.choice(c) for c in columns]) for _ in range(4)) if v is not None]
        target = {collections.abc.Set: set, collections.abc.MutableSet: set, frozenset: frozenset, set: set, tuple: tuple}.get(kind, list)
        if not args:
            # Items of no stated type: plain numbers, or plain strings, one kind per container
            # (code that sorts or sums its items needs them comparable).
            numbers = [v for v in self.scalars(int) if isinstance(v.value, int) and -10 <= v.value <= 100][:6]
            words = [v for v in self.scalars(str) if 0 < len(v.value) <= 8][:6]
            made = [self._pack(target, [])]
            for items in (numbers, words):
                if items:
                    made += [self._pack(target, items[:3]), self._pack(target, self.rng.sample(items, min(len(items), self.rng.randint(1, 4))))]
            return [m for m in made if m is not None]
        singular = name[:-1] if name.endswith("s") else name
        items = self.for_annotation(args[0], singular, depth + 1)[:8]
        made = [self._pack(target, [])]
        if items:
            made.append(self._pack(target, [items[0]]))
            made.append(self._pack(target, items[:3]))
            # Drawn items too: the first values alone may all take the same branch.
            made.append(self._pack(target, [self.rng.choice(items)]))
            made.append(self._pack(target, self.rng.sample(items, min(3, len(items)))))
        return [m for m in made if m is not None]

    def _mappings(self, args: tuple[Any, ...], name: str, depth: int) -> list[Value]:
        if len(args) == 2:
            keys = self.for_annotation(args[0], "key", depth + 1)[:4]
            values = self.for_annotation(args[1], name, depth + 1)[:4]
        else:
            keys = [v for v in (value_of(k) for k in (self.pieces[:3] or ["a", "key"])) if v is not None]
            values = [v for v in (value_of(item) for item in (1, "value", 0, "", None)) if v is not None]
        made = [Value({}, "{}")]
        for key in keys[:3]:
            for item in values:
                try:
                    hash(key.value)
                except TypeError:
                    continue
                made.append(Value({key.value: item.value}, f"{{{key.code}: {item.code}}}", tuple(sorted({*key.imports, *item.imports}))))
        return made

    def _pack(self, kind: type, items: list[Value]) -> Value | None:
        imports = tuple(sorted({i for v in items for i in v.imports}))
        codes = [v.code for v in items]
        if kind is tuple:
            return Value(tuple(v.value for v in items), f"({', '.join(codes)}{',' if len(codes) == 1 else ''})", imports)
        if kind in (set, frozenset):
            try:
                made = set(v.value for v in items)
            except TypeError:
                return None
            if len(made) != len(items):
                return None
            inner = "{" + ", ".join(codes) + "}" if codes else "set()"
            return Value(made if kind is set else frozenset(made), inner if kind is set else f"frozenset({inner})", imports)
        return Value([v.value for v in items], f"[{', '.join(codes)}]", imports)

    # --- receivers and objects ---------------------------------------------------------------

    def built(self, cls: type, depth: int) -> list[tuple[Call, Any]]:
        """Calls that build an instance of `cls` (constructor, classmethod factories, module factories)."""
        made: list[tuple[Call, Any]] = []
        head = cls.__qualname__.split(".")[0]
        owner_import = (f"from {cls.__module__} import {head}",)
        makers: list[tuple[Any, str, tuple[str, ...]]] = []
        if not inspect.isabstract(cls):
            makers.append((cls, cls.__qualname__, owner_import))
        for attribute, raw in vars(cls).items():
            if isinstance(raw, classmethod) and not attribute.startswith("_"):
                makers.append((getattr(cls, attribute), f"{cls.__qualname__}.{attribute}", owner_import))
        for attribute, function in vars(self.module).items():
            if inspect.isfunction(function) and not attribute.startswith("_") and function.__module__ == self.module.__name__:
                if _hints(function).get("return") is cls:
                    makers.append((function, attribute, (f"from {self.module.__name__} import {attribute}",)))
        # A base class is used through its subclasses (`_Base.__lt__` on a `Version`).
        subclasses: list[type] = []
        found: list[type] = type.__subclasses__(cls)
        for subclass in found:
            if not inspect.isabstract(subclass) and self.project.owns(_source_file(subclass) or "") and "<locals>" not in subclass.__qualname__:
                subclasses.append(subclass)
        for subclass in subclasses[:3]:
            sub_maker = (subclass, subclass.__qualname__, (f"from {subclass.__module__} import {subclass.__qualname__.split('.')[0]}",))
            if cls.__name__.startswith("_") or "__init__" not in vars(cls):
                makers.insert(0, sub_maker)
            else:
                makers.append(sub_maker)
        seen: set[str] = set()
        for maker, callee, imports in makers:
            for _ in range(8):
                call = self.draw_call(maker, callee, imports, depth, skip_first=False)
                if call is None:
                    break
                if call.source() in seen:
                    continue
                instance = self._attempt(maker, call)
                if instance is not None and type(instance) is not dict and isinstance(instance, cls):
                    seen.add(call.source())
                    made.append((call, instance))
                    if len(made) >= 6:
                        return made
        return made

    def _attempt(self, maker: Any, call: Call) -> Any:
        try:
            with warnings.catch_warnings(), limit(CALL_LIMIT):
                warnings.simplefilter("error")  # a receiver that warns would make its test warn
                return maker(*[a.value.value for a in call.args if not a.keyword],
                             **{a.name: a.value.value for a in call.args if a.keyword})
        except BaseException:  # noqa: BLE001 - a constructor refusing some input is expected
            return None

    def receivers(self, cls: type) -> list[Call]:
        if not self._receivers.get(cls) and cls not in self._building:
            # Built once and shared; none yet means another round of draws (a bigger budget
            # gets more tries at a constructor that refuses most inputs).
            self._building.add(cls)
            try:
                self._receivers[cls] = self.built(cls, 1)
            finally:
                self._building.discard(cls)
        return [call for call, _ in self._receivers.get(cls, [])]

    def objects(self, cls: type) -> list[Value]:
        """Instances of `cls` as argument values (the same ones receivers are built from)."""
        self.receivers(cls)
        return [Value(instance, call.source(), tuple(sorted(call.all_imports()))) for call, instance in self._receivers.get(cls, [])]

    def draw_call(self, function: Any, callee: str, imports: tuple[str, ...], depth: int, skip_first: bool) -> Call | None:
        """One random draw of arguments for `function`; optional parameters are often left to their defaults."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return None
        hints = _hints(function.__init__ if inspect.isclass(function) else function)
        parameters = list(signature.parameters.values())
        if skip_first and parameters and parameters[0].kind in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
            parameters = parameters[1:]
        args: list[Arg] = []
        by_keyword = False  # once a positional default is skipped, later arguments are named
        for parameter in parameters:
            if parameter.kind == parameter.VAR_POSITIONAL and not by_keyword:
                # `*seqs`: a few values, each drawn as the parameter's name and annotation say.
                candidates = self.candidates(function, parameter, hints, depth)
                for _ in range(self.rng.choice((0, 1, 2, 2, 3)) if candidates else 0):
                    args.append(Arg(parameter.name, self.rng.choice(candidates), False, True))
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            optional = parameter.default is not parameter.empty
            if optional and parameter.kind != parameter.POSITIONAL_ONLY and self.rng.random() < 0.5:
                by_keyword = True
                continue
            candidates = self.candidates(function, parameter, hints, depth)
            if self.rng.random() < 0.05:
                # Now and then a value of another kind: the code's own type checks are behaviour too.
                candidates = self.anything()
            if not candidates:
                if optional and parameter.kind != parameter.POSITIONAL_ONLY:
                    by_keyword = True
                    continue
                return None
            choice = self.rng.choice(candidates)
            self.recent.append(choice)
            named = parameter.kind == parameter.KEYWORD_ONLY or (by_keyword and parameter.kind != parameter.POSITIONAL_ONLY)
            args.append(Arg(parameter.name, choice, named, optional))
        return Call(function, callee, args, imports, skip_first)

    def redraw(self, call: Call, index: int) -> None:
        """Give one argument a fresh value from its parameter's candidates."""
        try:
            parameter = inspect.signature(call.function).parameters[call.args[index].name]
        except (TypeError, ValueError, KeyError):
            return
        hints = _hints(call.function.__init__ if inspect.isclass(call.function) else call.function)
        candidates = self.candidates(call.function, parameter, hints, 1)
        if candidates:
            call.args[index] = dataclasses.replace(call.args[index], value=self.rng.choice(candidates))

    def simpler(self, call: Call, index: int) -> list[Value]:
        """Values for one argument written shorter than the current one (the plainest first)."""
        try:
            parameter = inspect.signature(call.function).parameters[call.args[index].name]
        except (TypeError, ValueError, KeyError):
            return []
        current = call.args[index].value.code
        hints = _hints(call.function.__init__ if inspect.isclass(call.function) else call.function)
        key = (id(call.function), parameter.name, 1)
        pool = self._static.get(key) or self.candidates(call.function, parameter, hints, 1)
        owner = type(call.args[index].value.value)
        if self.project.owns(_source_file(owner) or ""):
            # An object argument: the plainest ways to build one of its class.
            pool = pool + self.objects(owner)
        shorter = {v.code: v for v in pool if len(v.code) + 2 < len(current)}
        return sorted(shorter.values(), key=lambda v: len(v.code))

    def fill_optional(self, call: Call) -> None:
        """Pass one optional parameter left to its default (by name)."""
        try:
            parameters = [p for p in inspect.signature(call.function).parameters.values()
                          if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        except (TypeError, ValueError):
            return
        given = {a.name for a in call.args}
        missing = [p for p in parameters if p.name not in given]
        if not missing:
            return
        parameter = self.rng.choice(missing)
        hints = _hints(call.function.__init__ if inspect.isclass(call.function) else call.function)
        candidates = self.candidates(call.function, parameter, hints, 1)
        if candidates:
            call.args.append(Arg(parameter.name, self.rng.choice(candidates), True, True))

    # --- mutation ------------------------------------------------------------------------------

    def mutate(self, value: Value) -> Value | None:
        """A neighbour of `value`: numbers nudged, strings edited with the code's own pieces, items added or dropped."""
        try:
            return self._mutate(value)
        except (ArithmeticError, ValueError, TypeError):  # inf // 2, int(nan), a date past year 9999
            return None

    def _mutate(self, value: Value) -> Value | None:
        rng = self.rng
        item = value.value
        made: Any
        if isinstance(item, bool):
            made = not item
        elif type(item) is int:
            made = rng.choice([item + 1, item - 1, -item, item * 2, item // 2, 0, item + rng.choice([10, 100, 1000]),
                               rng.choice(self.constants["int"] or [7])])
        elif type(item) is float:
            made = rng.choice([item + 0.5, item - 0.5, -item, item * 2, item / 2, float(int(item)), 0.0, item + 1e-9])
        elif type(item) is str:
            made = self.mutate_text(item)
        elif type(item) is bytes:
            made = self.mutate_text(item.decode("latin-1")).encode("utf-8")
        elif type(item) in (list, tuple):
            items = list(item)
            choice = rng.random()
            if items and choice < 0.35:
                index = rng.randrange(len(items))
                inner = value_of(items[index])
                changed = self.mutate(inner) if inner is not None else None
                if changed is None:
                    return None
                items[index] = changed.value
            elif items and choice < 0.6:
                del items[rng.randrange(len(items))]
            else:
                items.insert(rng.randint(0, len(items)), rng.choice(items) if items else rng.choice([0, "a", 1]))
            made = type(item)(items)
        elif type(item) is dict:
            entries = dict(item)
            if entries and rng.random() < 0.5:
                key = rng.choice(list(entries))
                inner = value_of(entries[key])
                changed = self.mutate(inner) if inner is not None else None
                if changed is None:
                    del entries[key]
                else:
                    entries[key] = changed.value
            elif entries and rng.random() < 0.5:
                del entries[rng.choice(list(entries))]
            else:
                keys = sorted(self.mapping_keys) or self.pieces or ["key"]
                entries[rng.choice(keys)] = rng.choice(self.mapping_values())
            made = entries
        elif type(item) in (datetime.date, datetime.datetime):
            try:
                made = item + datetime.timedelta(days=rng.choice([1, -1, 7, 28, 31, 59, 365, -365, 366]))
            except OverflowError:
                return None
        elif type(item) is datetime.timedelta:
            made = rng.choice([item + datetime.timedelta(days=1), item - datetime.timedelta(seconds=1), -item, item * 2])
        else:
            return None
        return value_of(made)

    def mutate_text(self, text: str) -> str:
        rng = self.rng
        pieces = self.pieces + _PUNCTUATION
        if self.patterns and rng.random() < 0.1:
            # A fresh string one of the code's regular expressions matches.
            fresh = regex_examples(rng.choice(self.patterns), rng, 1)
            if fresh:
                return fresh[0]
        position = rng.randint(0, len(text))
        operation = rng.randrange(8)
        if operation == 0 or not text:  # insert one of the code's own words or punctuation
            return text[:position] + rng.choice(pieces) + text[position:]
        if operation == 1:  # delete a short slice
            end = min(len(text), position + rng.randint(1, 3))
            return text[:position] + text[end:]
        if operation == 2:  # a character replaced by another of its class, or one the code's words use
            index = rng.randrange(len(text))
            other = rng.choice(self.alphabet) if self.alphabet and rng.random() < 0.5 else _similar(text[index], rng)
            return text[:index] + other + text[index + 1:]
        if operation == 3:  # a slice repeated
            end = min(len(text), position + rng.randint(1, 4))
            return text[:end] + text[position:end] + text[end:]
        if operation == 4:
            return text.swapcase() if rng.random() < 0.5 else text[::-1]
        if operation == 5:  # glued to another piece
            other = rng.choice(pieces)
            return text + other if rng.random() < 0.5 else other + text
        if operation == 6:  # digits inserted
            return text[:position] + str(rng.choice([0, 1, 2, 9, 10, 12, 31, 99, 100, 2024])) + text[position:]
        return text[:position] if rng.random() < 0.5 else text[position:]


def _set_value(call: Call, index: int, value: Value) -> None:
    call.args[index] = dataclasses.replace(call.args[index], value=value)


def shrunk(value: Value) -> list[Value]:
    """The value with one entry fewer (a mapping's key, a list's item, part of a string): smaller inputs, same effect."""
    item = value.value
    made: list[Any] = []
    if type(item) is dict:
        made = [{k: v for k, v in item.items() if k != key} for key in item]
    elif type(item) in (list, tuple):
        made = [type(item)(item[:i] + item[i + 1:]) for i in range(len(item))]
    elif type(item) is str and len(item) > 1:
        half = len(item) // 2
        made = [item[:half], item[half:], item[1:], item[:-1]]
    return [v for v in (value_of(m) for m in made) if v is not None]


def _similar(char: str, rng: random.Random) -> str:
    if char.isdigit():
        return rng.choice(string.digits)
    if char.isupper():
        return rng.choice(string.ascii_uppercase)
    if char.islower():
        return rng.choice(string.ascii_lowercase)
    return rng.choice(string.punctuation + " ")


def _is_typed_dict(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, dict) and hasattr(annotation, "__total__")


def _owner_class(function: Any) -> type | None:
    parts = getattr(function, "__qualname__", "").split(".")
    if len(parts) != 2:
        return None
    owner = getattr(function, "__globals__", {}).get(parts[0])
    return owner if isinstance(owner, type) else None


def _hints(function: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable forward references: fall back to raw annotations
        return dict(getattr(function, "__annotations__", {}) or {})


# --- running one case under a tracer ----------------------------------------------------------------

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


@dataclasses.dataclass
class Run:
    result: Any = None
    error: BaseException | None = None
    wrap: str | None = None
    setup_failed: bool = False
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    #: A setter's property read back after it ran: (found, value).
    readback: tuple[bool, Any] = (False, None)
    warned: list[warnings.WarningMessage] = dataclasses.field(default_factory=list)


_COMPILED: dict[tuple[str, str], types.CodeType] = {}


def _compiled(source: str, mode: str) -> types.CodeType:
    key = (source, mode)
    if key not in _COMPILED:
        if len(_COMPILED) > 20000:
            _COMPILED.clear()
        _COMPILED[key] = compile(source, CASE_FILE, mode)
    return _COMPILED[key]


def execute(case: dict[str, Any], tracer: Tracer | None = None) -> Run:
    """Run a case from its code in a fresh namespace: setup, then the call; trace both."""
    run = Run()
    namespace: dict[str, Any] = {"__name__": "covgen_case"}
    previous = sys.gettrace()
    subject = case.get("subject")
    try:
        with warnings.catch_warnings(record=True) as caught, limit(CALL_LIMIT):
            warnings.simplefilter("always")
            try:
                for line in case["imports"]:
                    exec(_compiled(line, "exec"), namespace)  # noqa: S102 - code this probe generated
                caught.clear()  # an import's own deprecation notice is not the test's business
                if tracer is not None:
                    sys.settrace(tracer)
                for line in case["setup"]:
                    exec(_compiled(line, "exec"), namespace)  # noqa: S102
            except BaseException:  # noqa: BLE001 - a setup that fails (or warns, below) is no test
                sys.settrace(previous)
                run.setup_failed = True
                return run
            if caught:
                sys.settrace(previous)
                run.setup_failed = True
                return run
            if subject:
                run.before = snapshot(namespace.get(subject))
            try:
                if case.get("statement"):
                    exec(_compiled(case["statement"], "exec"), namespace)  # noqa: S102
                else:
                    run.result = eval(_compiled(case["code"], "eval"), namespace)  # noqa: S307
                    if case.get("drain") and _drainable(run.result):
                        # A generator's body runs only when iterated: consuming it reaches its lines,
                        # and the items make a far better assertion than "returns a generator".
                        run.wrap = "list"  # set first: the error may come from the generator's body
                        items = list(itertools.islice(run.result, DRAIN_ITEMS + 1))
                        run.wrap = "list" if len(items) <= DRAIN_ITEMS else "islice"
                        run.result = items[:DRAIN_ITEMS]
            except BaseException as err:  # noqa: BLE001 - every exception is an observation, judged later
                run.error = err
            finally:
                sys.settrace(previous)
            if subject and run.error is None:
                run.after = snapshot(namespace.get(subject))
            if case.get("readback") and run.error is None:
                try:
                    run.readback = (True, eval(_compiled(case["readback"], "eval"), namespace))  # noqa: S307
                except Exception:  # noqa: BLE001 - a property that cannot be read back is not checked
                    pass
            run.warned = list(caught)
    except CallTimeout:
        sys.settrace(previous)
        run.error = CallTimeout()
    return run


def _drainable(result: Any) -> bool:
    # Files and sockets are iterators too; reading them is not the behaviour under test.
    return isinstance(result, collections.abc.Iterator) and not isinstance(result, io.IOBase)


def drained(case: dict[str, Any], wrap: str | None) -> dict[str, Any]:
    """The case with its consumption of a returned iterator written into the code."""
    if wrap is None:
        return {**case, "drain": False}
    if wrap == "list":
        return {**case, "code": f"list({case['code']})", "drain": False}
    return {**case, "code": f"list(itertools.islice({case['code']}, {DRAIN_ITEMS}))", "drain": False,
            "imports": sorted({*case["imports"], "import itertools"})}


def snapshot(obj: Any) -> dict[str, Any] | None:
    """An object's public attributes as checks ``[expression template, operator, code, imports]``.

    An attribute with no literal is None, except a list of objects, which is checked by length.
    Comparing two snapshots shows what a call changed.
    """
    if obj is None or isinstance(obj, (type, types.ModuleType)):
        return None
    names: list[str] = list(getattr(obj, "__dict__", {}) or {})
    for cls in type(obj).__mro__:
        slots = vars(cls).get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    state: dict[str, Any] = {}
    for name in sorted(set(names))[:60]:
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001 - an unset slot
            continue
        imports: set[str] = set()
        code = literal_code(value, imports)
        if code is not None and len(code) <= 300:
            state[name] = ["{}." + name, "is" if code in ("None", "True", "False") else "==", code, sorted(imports)]
        elif type(value) in (list, tuple, dict, set):
            state[name] = ["len({}." + name + ")", "==", str(len(value)), []]
        else:
            state[name] = None
    return state


# --- what a test can check --------------------------------------------------------------------------

def observe(run: Run, case: dict[str, Any], project: Project) -> dict[str, Any] | None:
    """How a test checks this run, or None when it is nothing to pin (Python's own error, a timeout)."""
    if run.error is not None:
        return raised(run.error, project)
    imports: set[str] = set()
    checks: list[list[str]] = []
    changed: list[list[str]] = []
    subject = case.get("subject")
    if subject and run.before is not None and run.after is not None:
        for name, now in run.after.items():
            if now is not None and run.before.get(name) != now:
                imports.update(now[3])
                changed.append([now[0].format(subject), now[1], now[2]])
    if run.result is None and (changed or case.get("statement")):
        checks = changed  # the call is done for its effect: check the effect
    else:
        checks = describe("result", run.result, imports, project) + changed
    if run.readback[0]:
        checks += [c for c in describe(case["readback"], run.readback[1], imports, project) if c not in checks]
    warned: set[str] = set()
    for message in run.warned:
        if not _project_warning(message, project):
            return None  # CPython's own warning (a deprecation): it changes with the version, not the code
        warned.add(f"{message.category.__module__}:{message.category.__qualname__}")
    return {"kind": "return", "checks": checks, "imports": sorted(imports), "warns": sorted(warned)}


def _project_warning(message: warnings.WarningMessage, project: Project) -> bool:
    """Whether the project's own ``warn(...)`` issued it (pointing at its line, or at the test's call)."""
    if message.filename == CASE_FILE:
        return True
    return project.owns(message.filename) and "warn" in linecache.getline(message.filename, message.lineno)


def describe(expr: str, value: Any, imports: set[str], project: Project) -> list[list[str]]:
    """Assertions on a value: exact literals, floats approximately, objects by their repr or public attributes."""
    if type(value) is float and not (math.isnan(value) or math.isinf(value)):
        return [[expr, "approx", repr(value)]]
    code = literal_code(value, imports)
    if code is not None and len(code) <= 2000:
        return [[expr, "is" if value is None or isinstance(value, bool) else "==", code]]
    if type(value) in (list, tuple):
        checks = [[f"len({expr})", "==", str(len(value))]]
        reprs = [_project_repr(item, project) for item in value]
        if value and len(value) <= 8 and all(r is not None for r in reprs):
            checks.append([f"[repr(item) for item in {expr}]", "==", repr(reprs)])
        return checks
    text = _project_repr(value, project)
    if text is not None:
        return [[f"repr({expr})", "==", repr(text)]]
    state = snapshot(value) or {}
    attributes = [now for now in state.values() if now is not None][:8]
    if attributes:
        for check in attributes:
            imports.update(check[3])
        return [[check[0].format(expr), check[1], check[2]] for check in attributes]
    owner = type(value)
    if owner.__module__ == "builtins" and getattr(builtins, owner.__qualname__, None) is owner:
        return [[expr, "isinstance", owner.__qualname__]]
    if owner in _TYPES_NAMES:  # function, generator, method, …: named in `types` only
        imports.add("import types")
        return [[expr, "isinstance", f"types.{_TYPES_NAMES[owner]}"]]
    if owner.__module__ == "builtins" or "<locals>" in owner.__qualname__:
        return [[expr, "typename", owner.__name__]]
    imports.add(f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}")
    return [[expr, "isinstance", owner.__qualname__]]


def _project_repr(value: Any, project: Project) -> str | None:
    """repr(value) when the project's own code defines it and it shows no memory address."""
    method = getattr(type(value), "__repr__", None)
    code = getattr(method, "__code__", None)
    if code is None or not project.owns(code.co_filename):
        return None
    try:
        with limit(CALL_LIMIT):
            text = repr(value)
    except BaseException:  # noqa: BLE001 - a repr that fails or hangs shows nothing
        return None
    return None if re.search(r"0x[0-9a-fA-F]{6,}", text) or len(text) > 300 else text


#: Reversed, so the first of two names wins (FunctionType over its alias LambdaType).
_TYPES_NAMES = {value: name for name, value in reversed(vars(types).items()) if isinstance(value, type) and not name.startswith("_")}
#: Python 3.11+; the probe also runs on older interpreters, where nothing is an exception group.
_EXCEPTION_GROUPS: tuple[type, ...] = tuple(t for t in (getattr(builtins, "BaseExceptionGroup", None),) if t is not None)
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifxXeEgGcau%]|\{[^{}]*\}")


def raised(error: BaseException, project: Project) -> dict[str, Any] | None:
    """The exception as a behaviour, if a ``raise`` statement in the project's code raised it.

    Errors Python raises itself — a wrong-type argument meeting ``+``, a missing attribute, a C
    function refusing its input — say that the call made no sense, not what the code does; an
    ``assert`` is an internal check that ``python -O`` removes. Neither is pinned.
    """
    if isinstance(error, (CallTimeout, KeyboardInterrupt, SystemExit, RecursionError, MemoryError)):
        return None
    frame = error.__traceback__
    if frame is None:
        return None
    while frame.tb_next is not None:
        frame = frame.tb_next
    code = frame.tb_frame.f_code
    if not project.owns(code.co_filename) or not _raise_statement(code, frame.tb_lasti, frame.tb_lineno):
        return None
    owner = type(error)
    message = str(getattr(error, "message", "")) if isinstance(error, _EXCEPTION_GROUPS) else _text(error)
    return {"kind": "raise", "type": owner.__qualname__, "module": owner.__module__, "match": _own_words(message, code)}


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001
        return ""


def _raise_statement(code: types.CodeType, lasti: int, lineno: int) -> bool:
    line = linecache.getline(code.co_filename, lineno).strip()
    if line.startswith("assert"):
        return False
    try:
        operations = {i.offset: i.opname for i in dis.get_instructions(code)}
    except Exception:  # noqa: BLE001
        operations = {}
    for offset in (lasti, lasti * 2):  # 3.10 counted in instructions, the others in bytes
        if offset in operations:
            return operations[offset] == "RAISE_VARARGS"
    return line.startswith("raise ")


def _own_words(message: str, code: types.CodeType) -> str:
    """The longest part of `message` the raising function wrote itself, from its string constants.

    CPython's wording changes between versions; a message the project builds does not. An
    f-string or %-template contributes its literal pieces; values formatted into it are left out.
    """
    if not message:
        return ""
    constants = [c for c in code.co_consts if isinstance(c, str)]
    if message in constants:
        return message[:120]
    pieces = [piece.strip() for c in constants for piece in _PLACEHOLDER.split(c)]
    found = [piece for piece in pieces if len(piece) >= 4 and piece in message]
    return max(found, key=len)[:120] if found else ""


# --- the search ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Kept:
    plan: Plan
    case: dict[str, Any]
    outcome: dict[str, Any]
    lines: set[int]
    arcs: set[tuple[int, int]]
    cover: set[Any]


class Search:
    """Fresh draws, then mutations of what reached new lines: a larger budget keeps finding more."""

    def __init__(self, target: Target, builder: Builder, request: dict[str, Any], project: Project, rng: random.Random) -> None:
        self.target = target
        self.builder = builder
        self.project = project
        self.rng = rng
        self.wanted = {("l", line) for line in request.get("lines", ())} | {("a", tuple(a)) for a in request.get("arcs", ())}
        self.start, self.end = request["start"], request["end"]
        self.seconds = float(request.get("seconds", 5.0))
        self.max_attempts = request.get("max_attempts")
        self.started = time.monotonic()
        self.attempts = 0
        self.region: set[Any] = set()
        self.corpus: list[Plan] = []
        self.kept: list[Kept] = []
        self.seen: set[Any] = set()
        self.progress = 0.0
        self.discarded = 0  # reached target lines, but only through an error Python raised
        self.unstable = 0
        self.no_receiver = False
        self.unrecordable = ""
        self._methods: dict[str, list[tuple[str, Any]]] = {}

    # How much of the budget is gone: calls when an attempt budget is set (deterministic), else time.
    def spent(self) -> float:
        if self.max_attempts:
            return self.attempts / float(self.max_attempts)
        return (time.monotonic() - self.started) / self.seconds

    def run(self) -> None:
        failures = 0
        while self.spent() < 1.0 and not self.wanted <= self.seen:
            # Plateaued for half the budget: the rest would repeat what was tried.
            if self.spent() - self.progress > 0.5:
                break
            try:
                plan = self.next_plan()
            except (ArithmeticError, ValueError, TypeError, RecursionError):  # an odd signature or value: draw again
                plan = None
            if plan is None:
                failures += 1
                self.attempts += 1
                if failures > 50 and not self.corpus:
                    break
                continue
            try:
                self.attempt(plan)
            except (RecursionError, ValueError, TypeError) as err:  # a value that cannot be written down or compared
                self.unrecordable = self.unrecordable or f"{type(err).__name__}: {str(err)[:80]}"

    def entries(self) -> list[Entry]:
        entries = self.target.entries
        public = [e for e in entries if e.public]
        # Through the public API first; the private target directly only for what that leaves.
        if public and len(public) < len(entries) and self.spent() < 0.5:
            return public
        return entries

    def next_plan(self) -> Plan | None:
        roll = self.rng.random()
        if self.corpus and roll < 0.45:
            return self.mutated(self._parent())
        if len(self.corpus) > 1 and roll < 0.55:
            return self.crossed(self._parent(), self._parent())
        return self.fresh(self.rng.choice(self.entries()))

    def _parent(self) -> Plan:
        recent = self.corpus[-30:]
        return self.rng.choice(recent if self.rng.random() < 0.6 else self.corpus)

    def fresh(self, entry: Entry) -> Plan | None:
        builder = self.builder
        builder.recent = []
        receiver = None
        steps: list[Call] = []
        if entry.kind in ("method", "property", "setter", "deleter"):
            assert entry.owner is not None
            receivers = builder.receivers(entry.owner)
            if not receivers:
                self.no_receiver = True
                return None
            receiver = self.rng.choice(receivers).copy()
            for _ in range(self.rng.choice((0, 0, 1, 1, 2, 3))):
                step = self.step(entry)
                if step is not None:
                    steps.append(step)
        call = None
        if entry.kind == "setter":
            call = builder.draw_call(entry.function, entry.name, (), 1, skip_first=True)
            if call is not None and call.args:
                call.args = [dataclasses.replace(call.args[0], keyword=False)]
        elif entry.kind not in ("property", "deleter"):
            skip = entry.kind in ("method", "classmethod", "constructor")
            call = builder.draw_call(entry.function, entry.name, (), 1, skip_first=skip)
            if call is None:
                return None
        return Plan(entry, receiver, steps, call)

    def step(self, entry: Entry) -> Call | None:
        """A public method called on the receiver before the target: add before remove."""
        owner = entry.owner
        assert owner is not None
        if entry.name not in self._methods:
            self._methods[entry.name] = [
                (n, f) for cls in owner.__mro__ if cls is not object and self.project.owns(_source_file(cls) or "")
                for n, f in vars(cls).items() if inspect.isfunction(f) and not n.startswith("_") and n != entry.name]
        methods = self._methods[entry.name]
        if not methods:
            return None
        name, function = self.rng.choice(methods)
        return self.builder.draw_call(function, name, (), 1, skip_first=True)

    def mutated(self, parent: Plan) -> Plan | None:
        plan = parent.copy()
        self.builder.recent = []
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            calls = [c for c in plan.calls() if c.args]
            roll = self.rng.random()
            if calls and roll < 0.6:
                call = self.rng.choice(calls)
                index = self.rng.randrange(len(call.args))
                changed = self.builder.mutate(call.args[index].value)
                if changed is None:
                    self.builder.redraw(call, index)
                else:
                    call.args[index] = dataclasses.replace(call.args[index], value=changed)
            elif calls and roll < 0.75:
                call = self.rng.choice(calls)
                self.builder.redraw(call, self.rng.randrange(len(call.args)))
            elif plan.receiver is not None and roll < 0.9:
                # Longer, shorter or different method sequences on the receiver.
                choice = self.rng.random()
                if plan.steps and choice < 0.3:
                    del plan.steps[self.rng.randrange(len(plan.steps))]
                else:
                    step = self.step(plan.entry)
                    if step is not None:
                        plan.steps.insert(self.rng.randint(0, len(plan.steps)), step)
            elif plan.receiver is not None and roll < 0.95:
                receivers = self.builder.receivers(plan.entry.owner)  # type: ignore[arg-type]
                if receivers:
                    plan.receiver = self.rng.choice(receivers).copy()
            else:
                calls = plan.calls()
                if calls:
                    self.builder.fill_optional(self.rng.choice(calls))
        return plan

    def crossed(self, first: Plan, second: Plan) -> Plan | None:
        """Arguments of two inputs that each reached new lines, mixed parameter by parameter."""
        if first.entry is not second.entry:
            return self.mutated(first)
        child = first.copy()
        for mine, theirs in ((child.call, second.call), (child.receiver, second.receiver)):
            if mine is None or theirs is None or mine.function is not theirs.function:
                continue
            donor = {a.name: a for a in theirs.args}
            mine.args = [donor[a.name] if a.name in donor and self.rng.random() < 0.5 else a for a in mine.args]
        if second.steps and self.rng.random() < 0.3:
            child.steps = [s.copy() for s in second.steps]
        return child

    def covered(self, tracer: Tracer) -> set[Any]:
        return {("l", line) for line in tracer.lines} | {("a", arc) for arc in tracer.arcs}

    def attempt(self, plan: Plan) -> None:
        case = render(plan, self.target)
        tracer = Tracer(self.target.filename, self.start, self.end)
        run = execute(case, tracer)
        self.attempts += 1
        if run.setup_failed or isinstance(run.error, CallTimeout):
            return
        if self.target.nested and plan.follow is None and self._returned_closure(run.result):
            # The enclosing function returned the nested one: call it too.
            follow = self.builder.draw_call(run.result, run.result.__name__, (), 1, skip_first=False)
            if follow is not None:
                plan = plan.copy()
                plan.follow = follow
                case = render(plan, self.target)
                tracer = Tracer(self.target.filename, self.start, self.end)
                run = execute(case, tracer)
                self.attempts += 1
                if run.setup_failed or isinstance(run.error, CallTimeout):
                    return
        reached = self.covered(tracer)
        if reached - self.region:
            # A new path through the target, even over covered lines: worth mutating, and the
            # search is still learning, so the plateau clock restarts.
            self.region |= reached
            self.corpus.append(plan)
            self.progress = self.spent()
        credit = (reached & self.wanted) - self.seen
        if not credit:
            return
        case = drained(case, run.wrap)
        outcome = observe(run, case, self.project)
        if outcome is None:
            self.discarded += 1
            return
        if observe(execute(case), case, self.project) != outcome:
            self.unstable += 1
            return
        kept = self.minimized(Kept(plan, case, outcome, set(tracer.lines), set(tracer.arcs), reached & self.wanted), credit)
        self.kept.append(kept)
        self.seen |= kept.cover
        self.progress = self.spent()

    def _returned_closure(self, result: Any) -> bool:
        code = getattr(result, "__code__", None)
        return code is not None and code.co_filename == self.target.filename and self.start <= code.co_firstlineno <= self.end

    def check(self, plan: Plan, credit: set[Any], outcome_kind: str) -> Kept | None:
        """Run `plan` again: still reaching `credit`, with a stable outcome worth pinning?"""
        case = render(plan, self.target)
        tracer = Tracer(self.target.filename, self.start, self.end)
        run = execute(case, tracer)
        if run.setup_failed:
            return None
        reached = self.covered(tracer)
        if not credit <= reached:
            return None
        case = drained(case, run.wrap)
        outcome = observe(run, case, self.project)
        if outcome is None or outcome["kind"] != outcome_kind or observe(execute(case), case, self.project) != outcome:
            return None
        return Kept(plan, case, outcome, set(tracer.lines), set(tracer.arcs), reached & self.wanted)

    def minimized(self, kept: Kept, credit: set[Any]) -> Kept:
        """Drop what changes neither the new coverage nor the kind of outcome, as Pynguin and EvoSuite do.

        Receiver calls first, then optional arguments, then argument values: a plainer value of
        the same parameter, or a mapping or list with one entry fewer.
        """
        kind = kept.outcome["kind"]

        def improved(edit: Any) -> bool:
            nonlocal kept
            plan = kept.plan.copy()
            edit(plan)
            better = self.check(plan, credit, kind)
            if better is not None:
                kept = better
            return better is not None

        for index in reversed(range(len(kept.plan.steps))):
            improved(lambda plan, i=index: plan.steps.pop(i))
        for slot in ("receiver", "call", "follow"):
            call = getattr(kept.plan, slot)
            if call is None:
                continue
            for index in reversed(range(len(call.args))):
                args = getattr(kept.plan, slot).args
                if index < len(args) and args[index].optional and all(a.keyword for a in args[index + 1:]):
                    improved(lambda plan, s=slot, i=index: getattr(plan, s).args.pop(i))
            for index in range(len(getattr(kept.plan, slot).args)):
                for _ in range(12):  # one entry at a time, while that still does it
                    current = getattr(kept.plan, slot)
                    options = self.builder.simpler(current, index)[:2] + shrunk(current.args[index].value)
                    if not any(improved(lambda plan, s=slot, i=index, v=value: _set_value(getattr(plan, s), i, v)) for value in options):
                        break
        if kept.plan.receiver is not None and kept.plan.entry.owner is not None:
            # The plainest receiver that still does it.
            for receiver in sorted(self.builder.receivers(kept.plan.entry.owner), key=lambda c: len(c.source()))[:3]:
                if len(receiver.source()) >= len(kept.plan.receiver.source()):
                    break
                if improved(lambda plan, r=receiver: setattr(plan, "receiver", r.copy())):
                    break
        return kept

    def selected(self) -> list[Kept]:
        """A small set that keeps all the coverage found: biggest gain first, public ways in preferred."""
        remaining = set().union(*(k.cover for k in self.kept)) if self.kept else set()
        pool = list(self.kept)
        chosen: list[Kept] = []
        while pool and remaining:
            best = max(pool, key=lambda k: (len(k.cover & remaining), k.case["public"], -len(str(k.case))))
            if not best.cover & remaining:
                break
            chosen.append(best)
            remaining -= best.cover
            pool.remove(best)
        return sorted(chosen, key=self.kept.index)

    def note(self, chosen: list[Kept]) -> str:
        target = self.target
        lines = {w[1] for w in self.wanted if w[0] == "l"}
        reached = {c[1] for k in chosen for c in k.cover if c[0] == "l"}
        parts = [f"{len(chosen)} behaviour(s) in {self.attempts} calls, {len(reached & lines)} of {len(lines)} uncovered lines reached"]
        ways = sorted({k.case["entry"] for k in chosen if k.case["entry"] != target.entries[-1].label()})
        if ways:
            parts.append("through " + ", ".join(ways))
        if target.nested:
            parts.append(f"nested function, not reachable directly: explored through {target.entries[0].label()}")
        if self.no_receiver and not chosen:
            owner = target.entries[-1].owner
            parts.append(f"no {owner.__qualname__ if owner else 'receiver'} could be built: its constructor refused every input tried")
        if self.discarded:
            parts.append(f"{self.discarded} input(s) reached lines only through an error or warning Python itself raised (a call the code does not support), not pinned")
        if self.unstable:
            parts.append(f"{self.unstable} outcome(s) changed when repeated, dropped")
        if self.unrecordable:
            parts.append(f"some outcomes could not be recorded ({self.unrecordable})")
        return "; ".join(parts)


def explore(request: dict[str, Any]) -> dict[str, Any]:
    project = Project(request.get("paths", []))
    registry = default_registry()
    problems = load_plugins(registry)
    target = resolve(request["module"], request["qualname"], request["start"], request["end"])
    if isinstance(target, str):
        return {"cases": [], "note": "; ".join([target, *problems])}
    rng = random.Random(request.get("seed", 0))
    try:
        module_source = inspect.getsource(target.module)
    except (OSError, TypeError):
        module_source = ""
    constants = mine_constants(request.get("source", ""))
    derived, patterns = derived_strings(target.module, constants["str"], random.Random(rng.random()))
    builder = Builder(target.module, registry, constants, mine_constants(module_source), derived, rng,
                      HypothesisValues(rng.getrandbits(32)), project)
    builder.patterns = patterns
    search = Search(target, builder, request, project, rng)
    search.run()
    chosen = search.selected()
    cases = [{**k.case, "outcome": k.outcome, "lines": sorted(k.lines), "arcs": sorted(k.arcs)} for k in chosen]
    return {"cases": cases, "attempts": search.attempts, "note": "; ".join([search.note(chosen), *problems]),
            "covered_lines": sorted({c[1] for k in chosen for c in k.cover if c[0] == "l"})}


def confirm(request: dict[str, Any]) -> dict[str, Any]:
    """Re-run each case from its code in this (fresh) process and report its outcome again."""
    project = Project(request.get("paths", []))
    outcomes: list[dict[str, Any] | None] = []
    for case in request["cases"]:
        run = execute(case)
        outcomes.append({"kind": "setup-failed"} if run.setup_failed else observe(run, case, project))
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
