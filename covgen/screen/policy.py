"""What a candidate test may reach: the allowlist the strict screen enforces, with the reasons.

Everything here is an allowlist except where a name says "refused": a module, a pytest name, a
fixture attribute or a dunder that is not listed cannot be reached at all, so an alias (``run =
os.system``) has nothing to alias. The README section "What a generated test may do" documents
the same tables; keep them in step.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

__all__ = [
    "SEE", "ModulePolicy", "STDLIB", "PREFIX_PACKAGES", "TOOL_MODULES", "PYTEST_NAMES", "PYTEST_ANNOTATIONS",
    "FIXTURE_ATTRIBUTES", "REFUSED_FIXTURES", "BUILTIN_FIXTURES", "DUNDERS", "DUNDER_DEFS", "SUPER_ONLY_DUNDERS",
    "DUNDER_NAMES", "DATA_CLASSES", "SHARED_STATE", "INTERNAL_ATTRIBUTES",
    "GATEWAYS", "RESTRICTED_BUILTINS", "CALL_ONLY_BUILTINS", "SESSION_ENDING", "MOCKS", "PATCHERS", "PATH_CLASSES",
    "PATH_WRITES", "PATH_LINKS", "PATH_MOVES", "PATH_RETURNING", "STDLIB_NAMES", "ENTRY_NAMES",
]

#: Every refusal ends with this, so the model (in a repair turn) and the user know where the rules are.
SEE = "see README 'What a generated test may do'"


@dataclass(frozen=True, slots=True)
class ModulePolicy:
    """Which public names of a module a test may use: all of them (``names`` None) minus ``refused``."""

    names: frozenset[str] | None = None
    refused: frozenset[str] = frozenset()


def _only(*names: str) -> ModulePolicy:
    return ModulePolicy(names=frozenset(names))


def _all_but(*names: str) -> ModulePolicy:
    return ModulePolicy(refused=frozenset(names))


_ALL = ModulePolicy()

#: Pure standard-library modules: computation on values the test already holds. None of them
#: starts processes, opens sockets, loads native code, imports by name or evaluates strings once
#: the refused names are taken out. Modules they import themselves (``dataclasses.sys``,
#: ``enum.bltns``) are not reachable through them: a module attribute is only followed into
#: another module of this table.
STDLIB: dict[str, ModulePolicy] = {
    "__future__": _ALL,
    # numbers
    "math": _ALL, "cmath": _ALL, "decimal": _ALL, "fractions": _ALL, "numbers": _ALL, "statistics": _ALL,
    # random: seeded draws are deterministic; unseeded ones fail the reruns (FLAKY), nothing worse
    "random": _ALL,
    # dates: the clock reads nondeterministically but reaches nothing; zoneinfo reads tz files only
    "datetime": _ALL, "zoneinfo": _ALL, "calendar": _all_but("main"),  # main() parses sys.argv
    # text
    "re": _ALL, "textwrap": _ALL, "difflib": _ALL, "unicodedata": _ALL, "html": _ALL, "fnmatch": _ALL, "shlex": _ALL,
    "string": _all_but("Formatter"),  # Formatter.get_field follows attribute names from strings
    "csv": _ALL, "pprint": _ALL, "reprlib": _ALL, "keyword": _ALL, "json": _ALL, "json.decoder": _ALL,
    "json.encoder": _ALL, "urllib.parse": _ALL, "ipaddress": _ALL,
    # bytes
    "base64": _ALL, "binascii": _ALL, "hashlib": _ALL, "hmac": _ALL, "secrets": _ALL, "struct": _ALL, "zlib": _ALL,
    "array": _ALL,
    # containers and functional tools
    "collections": _ALL, "collections.abc": _ALL, "itertools": _ALL, "heapq": _ALL, "bisect": _ALL, "graphlib": _ALL,
    "copy": _ALL, "weakref": _ALL, "abc": _ALL,
    "functools": _all_but("update_wrapper"),  # copies attributes named by strings (wraps: see the screen)
    "operator": _all_but("attrgetter", "methodcaller"),  # attribute names from strings
    # types
    "enum": _all_but("global_enum"),  # writes enum members into another module's globals
    "dataclasses": _all_but("make_dataclass"),  # class attributes from a runtime namespace
    "typing": _all_but("get_type_hints", "ForwardRef"),  # both evaluate strings as code
    "types": _all_but("CodeType", "new_class"),  # raw bytecode; class bodies from a callback
    "contextlib": _all_but("chdir"),  # moves the whole process; monkeypatch.chdir(tmp_path) instead
    "warnings": _ALL,
    # In-memory streams only: io.open, FileIO and friends write anywhere.
    "io": _only("StringIO", "BytesIO", "TextIOWrapper", "UnsupportedOperation", "SEEK_SET", "SEEK_CUR", "SEEK_END"),
    # Paths for tmp_path; writes are confined by the screen's tmp_path rule.
    "pathlib": _only("Path", "PurePath", "PurePosixPath", "PureWindowsPath"),
    # uuid1()/getnode() may run ifconfig on some platforms.
    "uuid": _only("UUID", "uuid3", "uuid4", "uuid5", "NAMESPACE_DNS", "NAMESPACE_URL", "NAMESPACE_OID", "NAMESPACE_X500",
                  "SafeUUID"),
    # Levels and records for caplog; no FileHandler, no logging.config (dictConfig imports by name).
    "logging": _only("getLogger", "getLevelName", "makeLogRecord", "Logger", "LogRecord", "Handler", "NullHandler",
                     "StreamHandler", "Formatter", "Filter", "LoggerAdapter", "DEBUG", "INFO", "WARNING", "WARN",
                     "ERROR", "CRITICAL", "FATAL", "NOTSET"),
    # Running coroutines; no loop objects (subprocess_exec, create_connection), no threads.
    "asyncio": _only("run", "gather", "wait_for", "wait", "sleep", "create_task", "ensure_future", "shield",
                     "as_completed", "timeout", "TaskGroup", "Future", "Task", "Queue", "LifoQueue", "PriorityQueue",
                     "QueueEmpty", "QueueFull", "Event", "Lock", "Semaphore", "BoundedSemaphore", "Condition",
                     "TimeoutError", "CancelledError", "InvalidStateError", "iscoroutine", "iscoroutinefunction",
                     "current_task"),
    # Mocks; patch targets are checked like monkeypatch's, and patchers only decorate or open a with.
    "unittest.mock": _only("Mock", "MagicMock", "AsyncMock", "NonCallableMock", "NonCallableMagicMock", "PropertyMock",
                           "patch", "call", "ANY", "DEFAULT", "sentinel", "mock_open", "create_autospec", "seal"),
}
#: Packages a test names only on the way to an allowlisted submodule (``import urllib.parse``).
PREFIX_PACKAGES = frozenset({"urllib", "unittest"})
#: Standard-library names beat project names: a project file called ``os.py`` does not make
#: ``import os`` a project import.
STDLIB_NAMES = frozenset(sys.stdlib_module_names) | {"__future__"}
#: The machinery a candidate must never reach, whatever the project calls its own modules.
TOOL_MODULES = frozenset({"pytest", "_pytest", "pluggy", "py", "coverage", "covgen", "covgen_probe"})
#: Project files that run when imported rather than define code to test.
ENTRY_NAMES = frozenset({"setup", "conftest"})

#: pytest's public helpers that only assert, mark or parametrize. Not: exit, main, importorskip
#: (imports by name), hookimpl, register_assert_rewrite, set_trace, Config, Session, freeze_includes.
PYTEST_NAMES = frozenset({
    "raises", "approx", "fixture", "mark", "param", "warns", "deprecated_call", "fail", "skip", "xfail", "RaisesGroup",
    "RaisesExc",
})
#: Types for annotating fixtures; calling them (``pytest.MonkeyPatch.context()``) would give a
#: patcher the screen cannot follow, so they may appear in annotations only.
PYTEST_ANNOTATIONS = frozenset({
    "MonkeyPatch", "CaptureFixture", "LogCaptureFixture", "TempPathFactory", "FixtureRequest", "WarningsRecorder",
    "ExceptionInfo",
})

#: Built-in fixtures a test may request, and the attributes it may use on each. Private
#: attributes lead to pytest's config (``caplog._item.config``), so only these are reachable.
FIXTURE_ATTRIBUTES: dict[str, frozenset[str]] = {
    # setattr/delattr/setitem/delitem on project objects and setenv/delenv: what tests patch.
    # Not syspath_prepend (imports from elsewhere), not context() (an unchecked patcher);
    # chdir only into tmp_path.
    "monkeypatch": frozenset({"setattr", "delattr", "setitem", "delitem", "setenv", "delenv", "chdir", "undo"}),
    "request": frozenset({"param"}),  # request.config / .node / .getfixturevalue lead to pytest's internals
    "capsys": frozenset({"readouterr", "disabled"}),
    "capsysbinary": frozenset({"readouterr", "disabled"}),
    "capfd": frozenset({"readouterr", "disabled"}),
    "capfdbinary": frozenset({"readouterr", "disabled"}),
    "caplog": frozenset({"records", "record_tuples", "messages", "text", "set_level", "at_level", "clear", "handler",
                         "get_records"}),
    "recwarn": frozenset({"list", "pop", "clear"}),
    "tmp_path_factory": frozenset({"mktemp"}),
    # pytest-mock: its patchers get unittest.mock.patch's target rules.
    "mocker": frozenset({"patch", "spy", "stub", "Mock", "MagicMock", "AsyncMock", "NonCallableMock", "PropertyMock",
                         "call", "ANY", "DEFAULT", "sentinel", "mock_open", "stopall", "resetall"}),
}
#: Fixtures that hand out pytest's configuration, cache or another pytest, or legacy py.path.
REFUSED_FIXTURES = frozenset({
    "pytestconfig", "pytester", "testdir", "cache", "doctest_namespace", "record_property", "record_xml_attribute",
    "record_testsuite_property", "tmpdir", "tmpdir_factory",
})
#: Names a test module may not define or parametrize: it would replace pytest's own fixture
#: (a ``tmp_path`` that points at covgen's results file) for every test in the module.
BUILTIN_FIXTURES = frozenset({"tmp_path", "tmp_path_factory"}) | frozenset(FIXTURE_ATTRIBUTES) | REFUSED_FIXTURES

#: Dunders a test's own class may define (and a string may name): constructors, names, docs and
#: the protocol methods syntax calls anyway.
DUNDER_DEFS = frozenset({
    "__name__", "__qualname__", "__doc__", "__module__", "__version__", "__all__", "__file__", "__main__",
    "__init__", "__post_init__", "__repr__", "__str__", "__format__", "__bytes__", "__hash__", "__bool__", "__len__",
    "__iter__", "__next__", "__reversed__", "__contains__", "__getitem__", "__setitem__", "__delitem__", "__missing__",
    "__call__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__aiter__", "__anext__", "__await__",
    "__getattr__", "__fspath__", "__index__", "__int__", "__float__", "__complex__", "__round__", "__trunc__",
    "__floor__", "__ceil__", "__neg__", "__pos__", "__abs__", "__invert__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    *(f"__{prefix}{op}__" for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow",
                                     "lshift", "rshift", "and", "or", "xor") for prefix in ("", "r", "i")),
})
#: Dunders a test may read or call on any object: what syntax reaches anyway, but as a value
#: (``a.__eq__(b)`` returns the NotImplemented that ``a == b`` hides). Not the ones that change
#: their object (``__setitem__``, ``__iadd__``, ``__missing__``: the store rule would not see
#: them), not ``__getattr__`` (a lookup by string), and not ``__init__``, which re-runs a
#: constructor on a shared object (a logging handler re-opened on another file) — that one only
#: as ``super().__init__(...)``. Everything else (``__class__``, ``__dict__``, ``__globals__``,
#: ``__subclasses__``, ``__builtins__``, ``__code__``, ``__self__``, ``__reduce__`` …) leads into
#: the interpreter.
DUNDERS = DUNDER_DEFS - {"__setitem__", "__delitem__", "__missing__", "__getattr__", "__init__", "__post_init__"} - {
    f"__i{op}__" for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift",
                            "and", "or", "xor")}
SUPER_ONLY_DUNDERS = frozenset({"__init__", "__post_init__"})
#: Dunder names a test may read as plain names (``if __name__ == "__main__"``, data files next to it).
DUNDER_NAMES = frozenset({"__name__", "__file__", "__doc__"})

#: Attribute names that lead to frames, code, tracebacks, pytest's plugin machinery or an event
#: loop's process and network entry points, whatever object they hang off.
INTERNAL_ATTRIBUTES = frozenset({
    "f_globals", "f_builtins", "f_locals", "f_back", "f_code", "f_trace", "gi_frame", "gi_code", "cr_frame", "cr_code",
    "ag_frame", "ag_code", "tb_frame", "tb_next", "tb", "traceback", "_getframe", "_current_frames", "_exit",
    "settrace", "setprofile", "pluginmanager", "ihook", "hook", "terminal_reporter", "capture_manager",
    "get_loop", "_loop", "get_event_loop", "get_running_loop", "new_event_loop", "run_in_executor",
    "set_default_executor", "subprocess_exec", "subprocess_shell", "create_subprocess_exec",
    "create_subprocess_shell", "create_connection", "create_server", "create_unix_connection", "create_unix_server",
    "create_datagram_endpoint", "open_connection", "start_server", "add_signal_handler", "to_thread",
})
#: Module names that, reached as an attribute of a project module (``mymodule.os.system``) or
#: imported from one, hand out what the allowlist keeps out. Compared without leading
#: underscores, so ``_os`` counts.
GATEWAYS = frozenset({
    "os", "sys", "subprocess", "shutil", "socket", "ctypes", "importlib", "builtins", "bltns", "pickle", "marshal",
    "multiprocessing", "threading", "thread", "gc", "inspect", "signal", "tempfile", "posix", "nt", "pty", "fcntl",
    "runpy", "pdb", "shelve", "io", "sqlite3", "codecs", "pytest", "pluggy", "covgen_probe",
})

#: Builtins that evaluate, introspect scopes, read stdin or end the interpreter.
RESTRICTED_BUILTINS = frozenset({
    "eval", "exec", "compile", "globals", "locals", "vars", "breakpoint", "input", "exit", "quit", "help",
    "copyright", "credits", "license",
})
#: Builtins allowed only when called directly, where the screen sees their arguments.
CALL_ONLY_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr", "open"})
#: Raising these ends pytest's session (or hides failure from it); a test may only expect or catch them.
SESSION_ENDING = frozenset({"SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException", "BaseExceptionGroup"})

#: Standard-library classes whose instances are plain data: the test owns what it builds from them
#: (it may set items and attributes), provided what it builds them from is its own.
DATA_CLASSES = frozenset({
    *(f"collections.{n}" for n in ("Counter", "OrderedDict", "defaultdict", "deque", "UserDict", "UserList",
                                   "UserString")),
    *(f"datetime.{n}" for n in ("date", "datetime", "time", "timedelta", "timezone")),
    "decimal.Decimal", "fractions.Fraction", "io.StringIO", "io.BytesIO", "array.array", "uuid.UUID", "string.Template",
    "json.JSONEncoder", "json.JSONDecoder",
})
#: Standard-library functions that hand out shared state rather than a fresh value.
SHARED_STATE = frozenset({"logging.getLogger", "decimal.getcontext", "asyncio.current_task"})
MOCKS = frozenset({f"unittest.mock.{name}" for name in ("Mock", "MagicMock", "AsyncMock", "NonCallableMock",
                                                          "NonCallableMagicMock", "PropertyMock")}) | {"types.SimpleNamespace"}
PATCHERS = frozenset({"unittest.mock.patch", "unittest.mock.patch.object", "unittest.mock.patch.dict",
                      "unittest.mock.patch.multiple"})
PATH_CLASSES = frozenset(f"pathlib.{name}" for name in ("Path", "PurePath", "PurePosixPath", "PureWindowsPath"))
#: Path methods that create, change or delete what they name: only on a path under tmp_path.
PATH_WRITES = frozenset({"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir", "chmod", "lchmod", "rmtree",
                         "copy_into", "move_into", "copytree"})
#: Links point anywhere, so a write through tmp_path/link would too: never.
PATH_LINKS = frozenset({"symlink_to", "hardlink_to", "link_to"})
#: Path methods with a destination (names shared with str.replace and friends, so they are
#: checked only on receivers known to be paths).
PATH_MOVES = frozenset({"rename", "replace", "copy", "move"})
#: Path methods that return another path.
PATH_RETURNING = frozenset({"joinpath", "with_name", "with_stem", "with_suffix", "resolve", "absolute", "expanduser",
                            "relative_to", "home", "cwd", "readlink"})
