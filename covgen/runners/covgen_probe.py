"""pytest plugin covgen loads into sandboxed runs (``-p covgen_probe``).

It is copied into the sandbox and imported by the *project's* interpreter, which may not have
covgen installed: it uses only the standard library, pytest and (optionally) coverage.

* one JSON line per test to ``$COVGEN_PROBE_OUT``: a ``start`` line before it runs (so a test that
  hangs the process can be named), then its outcome, message and the project files it changed
  (from inotify on Linux, so the cost per test does not grow with the tree; else a scan);
* per-test coverage contexts (the node id) when running under ``coverage run`` and asked to;
* a per-test time limit through SIGALRM, so one hanging test costs its limit, not the run;
* ``collect_start``/``collect_done`` around each module's import, so covgen can name a module
  that ends or hangs the interpreter while being imported, and the files its import changed;
* ``collected`` (every test pytest will run, and where imported modules came from) and
  ``finish`` (pytest's exit status): covgen checks that every collected test reported and that
  the process ended as pytest said, from outside the process.

Nothing here is told where the user's tree is: covgen checks the import locations itself.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import time

import pytest

try:
    from _pytest.unraisableexception import gc_collect_iterations_key as _GC_ITERATIONS
except ImportError:  # an older pytest: it collects five times, nothing to change
    _GC_ITERATIONS = None  # type: ignore[assignment]

_OUT = os.environ.get("COVGEN_PROBE_OUT")
_TIMEOUT = float(os.environ.get("COVGEN_PROBE_TIMEOUT", "0") or 0)
_WATCH = os.environ.get("COVGEN_PROBE_WATCH")
#: Per-test coverage contexts cost time in the tracer and the data file; only asked for when read.
_CONTEXTS = os.environ.get("COVGEN_PROBE_CONTEXTS") == "1"
#: VCS data, caches pytest and the interpreter keep, and covgen's candidate folder (which covgen writes
#: while other runs go on, and which is read-only inside the sandbox); every other file a test
#: touches is reported.
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis", ".covgen_candidates", ".git", ".hg", ".svn"}
_MESSAGE_CAP = 4000
#: Opened before the first test: what changed since is the first test's doing. Nothing runs
#: between two tests' protocols, so each later test owns the changes since the one before.
_watcher: _TreeScan | _Inotify | None = None


class CovgenTimeout(BaseException):
    """Raised inside a test that overran its limit; BaseException so `except Exception` cannot eat it."""


def _emit(record: dict[str, object]) -> None:
    """Append one record to the results file, opened and closed each time.

    Every record is on disk as soon as it is written, so covgen can tell which test a killed
    process was running; and no file stays open for a project that turns ResourceWarning into an
    error (``filterwarnings = error``) to trip over, however the module is loaded.
    """
    if _OUT:
        with open(_OUT, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


class _TreeScan:
    """Which project files changed: (size, mtime) of every file, compared with the last look."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.last = self._snapshot()

    def changed(self) -> list[str]:
        now = self._snapshot()
        changed = sorted(path for path in set(self.last) | set(now) if self.last.get(path) != now.get(path))
        self.last = now
        return changed

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        files: dict[str, tuple[int, int]] = {}
        self._scan(self.root, "", files)
        return files

    def _scan(self, directory: str, prefix: str, files: dict[str, tuple[int, int]]) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if _watched_directory(entry.name):
                        self._scan(entry.path, prefix + entry.name + os.sep, files)
                elif _watched_file(entry.name):
                    info = entry.stat()
                    files[prefix + entry.name] = (info.st_size, info.st_mtime_ns)
            except OSError:
                continue


class _Inotify:
    """Which project files changed, from Linux's inotify: one read per test, whatever the tree's size.

    The kernel queues an event inside the system call that changes a file, so reading right
    after a test sees everything it did.
    """

    _MODIFY, _ATTRIB, _MOVED_FROM, _MOVED_TO, _CREATE, _DELETE, _DELETE_SELF, _MOVE_SELF = (
        0x2, 0x4, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800)
    _MASK = _MODIFY | _ATTRIB | _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE | _DELETE_SELF | _MOVE_SELF
    _OVERFLOW, _IGNORED, _ISDIR = 0x4000, 0x8000, 0x40000000
    _HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name

    def __init__(self, root: str) -> None:
        import ctypes

        self._root = root
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._errno = ctypes.get_errno
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(self._errno(), "inotify_init1 failed")
        self._directories: dict[int, str] = {}
        try:
            self._watch_tree(root, "")
        except OSError:
            os.close(self._fd)
            raise

    def changed(self) -> list[str]:
        found: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = self._HEADER.unpack_from(data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode("utf-8", "replace")
                offset += 16 + length
                if mask & self._OVERFLOW:
                    found.add("(more file changes than the kernel could queue)")
                    continue
                prefix = self._directories.get(wd)
                if prefix is None or mask & self._IGNORED:
                    continue
                is_directory = bool(mask & self._ISDIR)
                if name and not (_watched_directory(name) if is_directory else _watched_file(name)):
                    continue
                found.add(prefix + name if name else prefix.rstrip(os.sep) or ".")
                if is_directory and mask & (self._CREATE | self._MOVED_TO):
                    # Watch it from now on; what the test already put in it was created by the test.
                    try:
                        self._watch_tree(os.path.join(self._root, prefix + name), prefix + name + os.sep, found)
                    except OSError:
                        pass
        return sorted(found)

    def _watch_tree(self, directory: str, prefix: str, found: set[str] | None = None) -> None:
        """Watch `directory` and the folders below it; with `found`, also list the files in them."""
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), self._MASK)
        if wd < 0:
            raise OSError(self._errno(), f"inotify_add_watch failed for {directory}")
        self._directories[wd] = prefix
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                if _watched_directory(entry.name):
                    self._watch_tree(entry.path, prefix + entry.name + os.sep, found)
            elif found is not None and _watched_file(entry.name):
                found.add(prefix + entry.name)


def _watched_directory(name: str) -> bool:
    # Hidden folders too: a conftest.py planted in covgen's candidate folder would steer later runs.
    return name not in _IGNORED_PARTS


def _watched_file(name: str) -> bool:
    return not name.startswith(".coverage")


def _open_watcher(root: str) -> _TreeScan | _Inotify:
    """inotify where the OS has it and the tree fits its watch limit; otherwise a scan per test."""
    if sys.platform.startswith("linux"):
        try:
            return _Inotify(root)
        except (OSError, AttributeError):
            pass
    return _TreeScan(root)


def _alarm(signum: int, frame: object) -> None:
    raise CovgenTimeout(f"covgen: test exceeded its {_TIMEOUT:g} s limit")


def _changes() -> list[str]:
    return _watcher.changed() if _watcher is not None else []


def pytest_configure(config: pytest.Config) -> None:
    """Start watching before collection: what a module's import changes is that module's doing."""
    global _watcher
    # pytest collects garbage five times as the session ends, to find late unraisable
    # exceptions: a quarter of a small run's time. Once does here; each test's own are still
    # found as pytest finds them, and the clean run (plain pytest) has all five.
    if _GC_ITERATIONS is not None:
        config.stash[_GC_ITERATIONS] = 1
    if _watcher is None and _WATCH:
        _watcher = _open_watcher(_WATCH)
    _emit({"event": "session", "pid": os.getpid()})


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module):
        _changes()  # what happened before this import is not this module's doing
        _emit({"event": "collect_start", "nodeid": collector.nodeid})


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
        _emit({"event": "done", "nodeid": item.nodeid, "seconds": time.monotonic() - started, "changed": _changes()})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        message = ""
        if report.outcome != "passed":
            message = str(report.longrepr)[-_MESSAGE_CAP:]
        _emit({"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome, "message": message})


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say which tests will run, and from which folders every loaded module came.

    covgen compares the folders with the user's tree: an editable install, a .pth file or a
    conftest that edits sys.path could point imports back at the real checkout.
    """
    folders = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            folders.add(os.path.dirname(os.path.realpath(path)))
    _emit({"event": "collected", "nodeids": [item.nodeid for item in session.items], "folders": sorted(folders)})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit({"event": "collect_error", "nodeid": report.nodeid, "message": str(report.longrepr)[-_MESSAGE_CAP:]})
    if report.nodeid.endswith(".py"):
        _emit({"event": "collect_done", "nodeid": report.nodeid, "changed": _changes()})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"event": "finish", "exitstatus": int(exitstatus)})
