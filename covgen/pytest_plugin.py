"""``pytest --ai-fill-gaps``: after the session, write proven tests for the gaps in what it measured.

Registered through the ``pytest11`` entry point, so installing covgen is enough. Without the
flag (or ``ai_fill_gaps = true`` in the ini file) these hooks only read that switch: nothing heavy
is imported and nothing changes. With it, a `_GapFiller` is registered on the controller (never
on an xdist worker). It takes this session's coverage — pytest-cov's combined data when pytest-cov
measured, the running coverage.py under ``coverage run -m pytest``, else a coverage.py instance it
starts before any conftest or test module is imported — writes it as a coverage.py JSON report in
a temporary directory, and runs ``covgen.api`` on it after the session, as ``covgen run`` does.

Settings: flag > ``COVGEN_*`` > ini option > ``covgen.toml`` or ``[tool.covgen]`` > default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    import argparse

    import coverage

    from covgen.config import Settings

__all__ = ["pytest_addoption", "pytest_load_initial_conftests", "pytest_configure", "resolve_settings", "run_to_end"]

T = TypeVar("T")

#: On/off switches: ``--ai-fill-gaps…`` flags and ``ai_fill_gaps…`` ini keys of the same name.
_SWITCHES = {
    "ai_fill_gaps": "after the session, write proven tests for the gaps in its coverage (covgen)",
    "ai_fill_gaps_strict": "exit status 1 when covgen could not fill every gap it targeted, or could not run",
    "ai_fill_gaps_with_failures": "fill gaps even when tests of the session failed",
}
#: covgen settings the plugin takes as ``--ai-NAME`` flags and ``ai_NAME`` ini keys: (argparse type, metavar, help).
_SETTINGS: dict[str, tuple[type, str, str]] = {
    "engine": (str, "NAME", "candidate generator: auto (default), llm, explore, hybrid, replay, vllm"),
    "model_url": (str, "URL", "vLLM OpenAI-compatible base URL"),
    "model": (str, "NAME", "served model name (default: ask /v1/models)"),
    "max_gaps": (int, "N", "target at most N gaps"),
    "budget_seconds": (float, "S", "stop asking the engine after S seconds; what was proven is kept"),
    "test_dir": (str, "DIR", "where generated tests go (default tests/covgen)"),
}
_FILLER = "covgen-fill-gaps"
_UNMEASURED = ("the tests ran in pytest-xdist workers, which covgen does not measure itself; "
               "add pytest-cov's --cov (it combines the workers' coverage) and covgen uses that")
#: Set in the environment of every run in covgen's sandbox: those pytest runs must never fill gaps
#: themselves (an ``ai_fill_gaps = true`` ini would recurse).
SANDBOX_MARKER = "COVGEN_SANDBOX"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("covgen", "covgen: fill coverage gaps with proven tests")
    for name, text in _SWITCHES.items():
        group.addoption("--" + name.replace("_", "-"), action="store_true", default=None, dest=name, help=text)
        parser.addini(name, text, type="bool", default=False)
    for name, (kind, metavar, text) in _SETTINGS.items():
        group.addoption(f"--ai-{name.replace('_', '-')}", dest=f"ai_{name}", type=kind, metavar=metavar, help=text)
        parser.addini(f"ai_{name}", text, type="string", default="")


def _switch(config: pytest.Config, namespace: argparse.Namespace, name: str) -> bool:
    flag = getattr(namespace, name, None)
    return bool(config.getini(name)) if flag is None else bool(flag)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Generator[None]:
    # A wrapper runs before every conftest.py is imported (and what it imports): coverage started
    # later would count the module-level lines of those modules as never run.
    namespace = early_config.known_args_namespace
    # An xdist worker is only told it is one after this hook; its environment says so already.
    if (_switch(early_config, namespace, "ai_fill_gaps") and not os.environ.get("PYTEST_XDIST_WORKER")
            and not os.environ.get(SANDBOX_MARKER)):
        filler = _GapFiller(early_config)
        filler.measure(namespace)
        early_config.pluginmanager.register(filler, _FILLER)
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    filler = config.pluginmanager.get_plugin(_FILLER)
    if hasattr(config, "workerinput"):
        if isinstance(filler, _GapFiller):  # a worker without PYTEST_XDIST_WORKER: only the controller fills
            filler.stop_measuring()
            config.pluginmanager.unregister(filler)
    elif (filler is None and os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get(SANDBOX_MARKER)
          and _switch(config, config.option, "ai_fill_gaps")):
        # Not a worker, but started from inside one (a test running pytest under xdist): measure
        # from here on; modules its conftest.py files imported are already loaded.
        filler = _GapFiller(config)
        filler.measure(config.option)
        config.pluginmanager.register(filler, _FILLER)


class _GapFiller:
    """Measure the session if nothing else does; after it, fill its gaps and say what happened."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.strict = _switch(config, config.known_args_namespace, "ai_fill_gaps_strict")
        self.with_failures = _switch(config, config.known_args_namespace, "ai_fill_gaps_with_failures")
        #: Where this session's coverage comes from, said in the section; None: nothing measures it.
        self.source: str | None = None
        self.own: coverage.Coverage | None = None
        self.lines: list[str] = []
        #: For --ai-fill-gaps-strict: covgen could not run, or left a gap it targeted without a test.
        self.failed = False

    def measure(self, namespace: argparse.Namespace) -> None:
        """Start coverage.py unless pytest-cov or an outer ``coverage run`` measures this session."""
        if getattr(namespace, "cov_source", None) and not getattr(namespace, "no_cov", False):
            self.source = "pytest-cov"
            return
        import coverage

        if coverage.Coverage.current() is not None:
            self.source = "the running coverage.py (coverage run)"
            return
        if getattr(namespace, "numprocesses", None) or getattr(namespace, "tx", None):
            return  # xdist workers run the tests: a coverage.py here would see none of them
        # No data file: nothing is written into the user's tree; the report is made from memory.
        own = coverage.Coverage(data_file=None, branch=True)
        if not own.get_option("run:source") and not own.get_option("run:include"):
            own.set_option("run:source", [str(self.config.rootpath)])
        # Test modules are not what the session is meant to cover, and covgen never targets them.
        omit = own.get_option("run:omit")
        own.set_option("run:omit", [*(omit if isinstance(omit, list) else []), *_test_globs(self.config, absolute=True)])
        own.start()
        self.own, self.source = own, "covgen's coverage.py (branch) of this session"

    def stop_measuring(self) -> None:
        if self.own is not None and self.own is self._running():
            self.own.stop()

    @staticmethod
    def _running() -> coverage.Coverage | None:
        import coverage

        return coverage.Coverage.current()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # The fill's own work (covgen's code, its event loop) is not the session's coverage.
        self.stop_measuring()
        skip = self._skip_reason(session, exitstatus)
        if skip is not None:
            self.lines.append(f"skipped: {skip}")
            # Only a session covgen could not measure is a fill that failed; the others ran no fill to fail.
            self.failed = skip is _UNMEASURED
        else:
            self.lines += self._fill_or_say_why()
        if self.strict and self.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.lines.append("--ai-fill-gaps-strict: exit status 1")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("=", "covgen")
        for line in self.lines:
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop_measuring()  # a session that ended before sessionfinish (a usage error)

    def _skip_reason(self, session: pytest.Session, exitstatus: int) -> str | None:
        if session.config.option.collectonly:
            return "--collect-only: no test ran"
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            return f"the session ended with {pytest.ExitCode(exitstatus).name}"
        if session.testsfailed and not self.with_failures:
            return (f"{session.testsfailed} test(s) failed; covgen fills the gaps of a passing session "
                    "(--ai-fill-gaps-with-failures fills anyway)")
        return _UNMEASURED if self.source is None else None

    def _fill_or_say_why(self) -> list[str]:
        """Fill the gaps; every failure covgen foresees becomes one line, never a traceback."""
        import warnings

        from covgen.errors import CovgenError

        lines = [f"coverage: {self.source}"]
        try:
            # A project's filterwarnings=error must not turn a warning of covgen's into an error.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                lines += self._fill()
            lines += [f"warning: {w.message}" for w in caught]
        except CovgenError as err:
            self.failed = True
            lines.append(f"error: {err}")
        except Exception as err:  # noqa: BLE001 - a bug must still end in one line, not a traceback
            if os.environ.get("COVGEN_DEBUG"):
                raise
            self.failed = True
            lines.append(f"internal error: {type(err).__name__}: {err} (set COVGEN_DEBUG=1 for the traceback)")
        return lines

    def _fill(self) -> list[str]:
        import tempfile

        from covgen import api
        from covgen.output.runsummary import summary_lines

        config = self.config
        settings = resolve_settings(config)
        with tempfile.TemporaryDirectory(prefix="covgen-pytest-") as directory:
            report = _write_report(self._coverage(), Path(directory), config.invocation_params.dir)
            plan = api.plan_run(config.rootpath, settings, reports=[report])
        lines = [f"warning: {warning}" for warning in plan.warnings]
        if not plan.gaps:
            return [*lines, "no gaps to fill in the measured sources"]
        summary = run_to_end(lambda: api.run(config.rootpath, plan, settings))
        self.failed = any(not gap.accepted_tests for gap in summary.gaps)
        return [*lines, *summary_lines(summary)]

    def _coverage(self) -> coverage.Coverage:
        from covgen.errors import UsageError

        if self.source == "pytest-cov":
            plugin = self.config.pluginmanager.get_plugin("_cov")
            cov: coverage.Coverage | None = getattr(getattr(plugin, "cov_controller", None), "cov", None)
        else:
            cov = self.own or self._running()
        if cov is None:
            raise UsageError("no coverage data from this session")
        return cov


def _test_globs(config: pytest.Config, *, absolute: bool) -> list[str]:
    """Globs for the session's test modules, from pytest's own ``python_files`` (and conftest.py)."""
    names = [*config.getini("python_files"), "conftest.py"]
    # fnmatch's * crosses "/": "*/test_*.py" is a test module in any folder.
    return [f"*/{name}" for name in names] if absolute else [*names, *(f"*/{name}" for name in names)]


def _write_report(cov: coverage.Coverage, directory: Path, invocation_dir: Path) -> Path:
    """Write `cov`'s data as coverage.py JSON with absolute paths; return its path."""
    import json

    from coverage.exceptions import CoverageException

    from covgen.errors import UsageError

    raw = directory / "session.json"
    try:
        # ignore_errors: a file measured during the session may be gone (a test's temporary module).
        cov.json_report(outfile=str(raw), ignore_errors=True)
    except CoverageException as err:
        raise UsageError(f"no coverage report from this session: {err}") from err
    document = json.loads(raw.read_text(encoding="utf-8"))
    # coverage.py names a file under the directory it started in relatively, and pytest's rootdir
    # need not be that directory: anchor the names where pytest was started.
    document["files"] = {str(invocation_dir / name): entry for name, entry in document["files"].items()}
    report = directory / "coverage.json"
    report.write_text(json.dumps(document), encoding="utf-8")
    return report


def resolve_settings(config: pytest.Config, env: Mapping[str, str] | None = None) -> Settings:
    """covgen's settings for this session: flag > ``COVGEN_*`` > ini option > ``covgen.toml``/``[tool.covgen]`` > default."""
    from covgen.config import load_settings

    flags = {name: config.getoption(f"ai_{name}") for name in _SETTINGS}
    where = str(config.inipath) if config.inipath else "ini"
    ini: dict[str, tuple[Any, str]] = {}
    for name in _SETTINGS:
        value = config.getini(f"ai_{name}")
        if value != "":
            ini[name] = (value, f"{where}: ai_{name}")
    settings = load_settings(config.rootpath, flags, env, ini=ini, flag_prefix="--ai-")
    # Test modules are measured under pytest-cov's --cov=. too; covgen writes tests, not tests of tests.
    return settings.model_copy(update={"exclude": (*settings.exclude, *_test_globs(config, absolute=False))})


def run_to_end(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `make` returns to its end from synchronous code, even inside a running loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # A loop runs in this thread (a plugin drives the session from one) and asyncio.run would
    # refuse: covgen's loop gets a thread of its own.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="covgen") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
