"""pytest plugin covgen loads into sandboxed runs (``-p covgen_probe``).

It is copied into the sandbox and imported by the *project's* interpreter, which may not have
covgen installed: it uses only the standard library, pytest and (optionally) coverage.

* one JSON line per test to ``$COVGEN_PROBE_OUT``: a ``start`` line before it runs (so a test that
  hangs the process can be named), then its outcome, message and the project files it changed;
* per-test coverage contexts (the node id) when running under ``coverage run``;
* a per-test time limit through SIGALRM, so one hanging test costs its limit, not the run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

_OUT = os.environ.get("COVGEN_PROBE_OUT")
_TIMEOUT = float(os.environ.get("COVGEN_PROBE_TIMEOUT", "0") or 0)
_WATCH = os.environ.get("COVGEN_PROBE_WATCH")
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".covgen_state"}
#: The user's own tree: nothing imported in the sandbox may come from there.
_FORBIDDEN = os.environ.get("COVGEN_PROBE_FORBID")
_MESSAGE_CAP = 4000


class CovgenTimeout(BaseException):
    """Raised inside a test that overran its limit; BaseException so `except Exception` cannot eat it."""


def _emit(record: dict[str, object]) -> None:
    if _OUT:
        with open(_OUT, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


def _snapshot() -> dict[str, tuple[int, int]]:
    files: dict[str, tuple[int, int]] = {}
    if not _WATCH:
        return files
    for directory, subdirs, names in os.walk(_WATCH):
        # Hidden folders (.git, covgen's candidates) are not the project's code or data.
        subdirs[:] = [d for d in subdirs if d not in _IGNORED_PARTS and not d.startswith(".")]
        for name in names:
            if name.startswith(".coverage"):
                continue
            path = os.path.join(directory, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            files[os.path.relpath(path, _WATCH)] = (info.st_size, info.st_mtime_ns)
    return files


def _alarm(signum: int, frame: object) -> None:
    raise CovgenTimeout(f"covgen: test exceeded its {_TIMEOUT:g} s limit")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    _emit({"event": "start", "nodeid": item.nodeid})
    try:
        import coverage

        cov = coverage.Coverage.current()
    except ImportError:
        cov = None
    if cov is not None:
        cov.switch_context(item.nodeid)
    before = _snapshot()
    if _TIMEOUT:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, _TIMEOUT)
    started = time.monotonic()
    try:
        return (yield)
    finally:
        if _TIMEOUT:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if cov is not None:
            cov.switch_context("")
        after = _snapshot()
        changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
        _emit({"event": "done", "nodeid": item.nodeid, "seconds": time.monotonic() - started, "changed": changed})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        message = ""
        if report.outcome != "passed":
            message = str(report.longrepr)[-_MESSAGE_CAP:]
        _emit({"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome, "message": message})


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop before any test runs if the project was imported from the user's tree, not the copy.

    An editable install, a .pth file or a conftest that edits sys.path can point imports back at
    the real checkout, where a candidate could then change the user's files.
    """
    if not _FORBIDDEN:
        return
    forbidden = os.path.realpath(_FORBIDDEN) + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.realpath(path).startswith(forbidden):
            _emit({"event": "escape", "nodeid": name, "message": os.path.realpath(path)})
            pytest.exit(f"covgen: {name} was imported from the user's tree ({path}), not the sandbox copy", returncode=4)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit({"event": "collect_error", "nodeid": report.nodeid, "message": str(report.longrepr)[-_MESSAGE_CAP:]})
