"""pytest plugin covgen loads into sandboxed runs (``-p covgen_probe``).

It is copied into the sandbox and imported by the *project's* interpreter, which may not have
covgen installed: it uses only the standard library, pytest and (optionally) coverage.

* one JSON line per test to ``$COVGEN_PROBE_OUT``: a ``start`` line before it runs (so a test that
  hangs the process can be named), then its outcome, message and the project files it changed;
* per-test coverage contexts (the node id) when running under ``coverage run`` and asked to;
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
#: Per-test coverage contexts cost time in the tracer and the data file; only asked for when read.
_CONTEXTS = os.environ.get("COVGEN_PROBE_CONTEXTS") == "1"
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".covgen_state"}
#: The user's own tree: nothing imported in the sandbox may come from there.
_FORBIDDEN = os.environ.get("COVGEN_PROBE_FORBID")
_MESSAGE_CAP = 4000
#: The tree as the previous test left it: nothing runs between two tests' protocols, so it is
#: the next test's "before" and each test costs one walk of the tree, not two.
_last_snapshot: dict[str, tuple[int, int]] | None = None


class CovgenTimeout(BaseException):
    """Raised inside a test that overran its limit; BaseException so `except Exception` cannot eat it."""


#: Line-buffered: every record reaches the file as it is written, so covgen can tell which test
#: a killed process was running.
_STREAM = open(_OUT, "a", encoding="utf-8", buffering=1) if _OUT else None  # noqa: SIM115 - lives as long as the process


def _emit(record: dict[str, object]) -> None:
    if _STREAM is not None:
        _STREAM.write(json.dumps(record) + "\n")


def _snapshot() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every project file, by path relative to the watched root."""
    files: dict[str, tuple[int, int]] = {}
    if _WATCH:
        _scan(_WATCH, "", files)
    return files


def _scan(directory: str, prefix: str, files: dict[str, tuple[int, int]]) -> None:
    # scandir reuses the directory read's file types, and the relative path is built as we go:
    # this runs twice per test, so it avoids os.walk's and relpath's extra work.
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                # Hidden folders (.git, covgen's candidates) are not the project's code or data.
                if entry.name not in _IGNORED_PARTS and not entry.name.startswith("."):
                    _scan(entry.path, prefix + entry.name + os.sep, files)
            elif not entry.name.startswith(".coverage"):
                info = entry.stat()
                files[prefix + entry.name] = (info.st_size, info.st_mtime_ns)
        except OSError:
            continue


def _alarm(signum: int, frame: object) -> None:
    raise CovgenTimeout(f"covgen: test exceeded its {_TIMEOUT:g} s limit")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    _emit({"event": "start", "nodeid": item.nodeid})
    cov = None
    if _CONTEXTS:
        try:
            import coverage

            cov = coverage.Coverage.current()
        except ImportError:
            pass
    if cov is not None:
        cov.switch_context(item.nodeid)
    global _last_snapshot
    before = _last_snapshot if _last_snapshot is not None else _snapshot()
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
        after = _last_snapshot = _snapshot()
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
