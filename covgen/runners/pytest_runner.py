"""Run many candidate tests in one pytest process, with per-test outcomes and per-test coverage.

One process for a whole batch is what makes validation cheap: peers start an interpreter (and
import the project) once per candidate. Per-test coverage comes from coverage.py contexts that
the probe plugin switches to each test's node id.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from covgen import defaults
from covgen.coverage_data import read_coverage
from covgen.errors import SandboxError
from covgen.runners import Stall, records
from covgen.sandbox import BACKGROUND, ProcessResult, SandboxLayers, SandboxPolicy, Workspace

if TYPE_CHECKING:
    from covgen.confirm import CleanRun

__all__ = ["TestOutcome", "PytestRun", "PytestRunner", "ModuleFailure"]

Outcome = Literal["passed", "failed", "error", "skipped", "timeout", "crashed", "not_run"]
_PROBE = Path(__file__).with_name("covgen_probe.py")
_TIMEOUT_MARK = "covgen: test exceeded"


@dataclass(frozen=True, slots=True)
class TestOutcome:
    nodeid: str
    outcome: Outcome
    message: str = ""
    #: Project files (workspace-relative) the test created, changed or deleted.
    changed_files: tuple[str, ...] = ()
    #: Covered lines and arcs per workspace-relative path (runs with coverage only).
    lines: dict[str, frozenset[int]] = field(default_factory=dict)
    arcs: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)
    #: What the test did that no test may do, seen as it ran (it ended the JVM); "" if nothing.
    unsafe: str = ""


@dataclass(frozen=True, slots=True)
class ModuleFailure:
    """A test module that could not be collected, and how it failed."""

    #: ``unsafe``: it did what no test may do while being loaded (ended the JVM).
    kind: Literal["error", "timeout", "changed", "unsafe"]
    message: str
    #: Project files (workspace-relative) its import created, changed or deleted.
    changed_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PytestRun:
    outcomes: dict[str, TestOutcome]
    #: Test files that failed to import or collect (or hung, ended the interpreter, or changed
    #: project files while being imported).
    collect_errors: dict[str, ModuleFailure]
    seconds: float
    processes: int
    #: Everything the run covered per workspace-relative path, import time included.
    lines: dict[str, frozenset[int]] = field(default_factory=dict)
    arcs: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class _Process:
    """What one pytest process said about itself, read from the probe's results file."""

    run: PytestRun
    #: Tests that started and never finished: the process died or hung under them.
    unfinished: list[str]
    #: Every test that started.
    started: list[str]
    #: A module whose import started and never ended.
    open_module: str | None
    #: pytest ended its session as pytest does, with the exit status the process really had.
    ended_normally: bool
    returncode: int
    timed_out: bool
    tail: str


class PytestRunner:
    """Runs pytest in a workspace with the project's interpreter, under the sandbox policy."""

    #: A Python project's tests import what its environment has; prompts say so in other words.
    test_libraries: tuple[str, ...] = ()

    def __init__(
        self,
        workspace: Workspace,
        *,
        python: str = sys.executable,
        policy: SandboxPolicy = SandboxPolicy(),
        test_timeout: float = defaults.TEST_TIMEOUT,
        layers: SandboxLayers | None = None,
        import_roots: Sequence[str] = (".", "src"),
    ) -> None:
        self.workspace = workspace
        self.python = python
        self.policy = policy
        self.test_timeout = test_timeout
        self.layers = layers
        self._runs = 0
        probe_dir = workspace.state / "probe"
        probe_dir.mkdir(exist_ok=True)
        shutil.copy(_PROBE, probe_dir / "covgen_probe.py")
        self.import_paths = [str(workspace.path / root) for root in import_roots if (workspace.path / root).is_dir()]
        self._pythonpath = ":".join(dict.fromkeys([str(probe_dir), *self.import_paths]))

    async def run_process(self, argv: Sequence[str], *, env: dict[str, str] | None = None, wall_seconds: float | None = None,
                          stalled: Callable[[], bool] | None = None, niceness: int = 0) -> ProcessResult:
        """Run the project's interpreter with `argv` in this workspace's sandbox."""
        policy = replace(self.policy, wall_seconds=self.policy.wall_seconds if wall_seconds is None else wall_seconds,
                         niceness=niceness)
        return await self.workspace.run(self.python, argv, env=env, policy=policy, layers=self.layers, stalled=stalled)

    async def check_interpreter(self) -> None:
        """Fail early, with the fix, when the project's interpreter cannot run validation."""
        result = await self.run_process(["-c", "import pytest, coverage"])
        if result.returncode != 0:
            raise SandboxError(
                f"{self.python} cannot import pytest and coverage in the sandbox ({_tail(result.stderr)}); install them "
                "in the project's environment or pass --python PATH to an interpreter that has them"
            )

    async def clean_run(self, contents: dict[str, str], tests: Sequence[str], measured: Sequence[str],
                        coverage_of: Sequence[str]) -> CleanRun:
        """Plain pytest and coverage.py in a fresh copy with `contents` added (:func:`covgen.confirm.clean_run`)."""
        from covgen.confirm import clean_run

        return await clean_run(self.workspace.source_root, contents, tests, python=self.python, policy=self.policy,
                               layers=self.layers, test_timeout=self.test_timeout, coverage_of=coverage_of if measured else (),
                               measured_tests=measured)

    async def run(self, tests: Sequence[str], *, coverage_of: Sequence[str] = (), per_test: bool = True,
                  background: bool = False) -> PytestRun:
        """Run `tests` (workspace-relative files or node ids) in order; measure `coverage_of` files.

        Coverage is the whole run's, and with `per_test` also each test's own (its outcome's);
        `background` lowers the processes' CPU priority.
        A test module that ends, hangs or wrecks the process costs only itself: it gets its own
        failure and the rest run again without it.
        """
        merged = _Merged()
        await self._run_all(list(tests), coverage_of, per_test, merged, top=True, niceness=BACKGROUND if background else 0)
        return merged.result()

    async def _run_all(self, tests: list[str], coverage_of: Sequence[str], per_test: bool, merged: _Merged, *, top: bool,
                       niceness: int, deselect: Sequence[str] = ()) -> None:
        deselect = list(deselect)
        for _ in range(_MAX_PROCESSES):
            process = await self._run_once(tests, coverage_of, deselect, per_test, niceness)
            merged.add(process.run)
            if process.ended_normally:
                return
            if process.unfinished:
                # A test that hung or ended the process (blocking in C, ignoring SIGALRM, os._exit):
                # named by the probe's "start" line; the rest runs again without what already ran.
                for nodeid in process.unfinished:
                    merged.outcomes[nodeid] = TestOutcome(nodeid, "timeout", f"{_TIMEOUT_MARK} (the process had to be killed)") \
                        if process.timed_out else TestOutcome(nodeid, "crashed", f"the test process ended while this test ran "
                                                                                 f"(exit code {process.returncode}): {process.tail}")
                deselect.extend(process.started)
                continue
            if process.open_module is not None and process.open_module in tests:
                module = process.open_module
                merged.collect_errors[module] = ModuleFailure(
                    "timeout", f"hung while being imported (killed after {self.test_timeout + _COLLECT_GRACE:g} s)"
                ) if process.timed_out else ModuleFailure(
                    "error", f"ended the test process while being imported (exit code {process.returncode}): {process.tail}")
                tests = [test for test in tests if test != module]
                if not tests:
                    return
                continue
            break
        else:
            return
        # Nothing names the culprit: halve the batch until one module alone fails.
        if top and not await self._pytest_works():
            raise SandboxError(f"pytest could not run in the sandbox (exit {process.returncode}): {process.tail}")
        if len(tests) == 1:
            merged.collect_errors[tests[0]] = ModuleFailure(
                "timeout" if process.timed_out else "error",
                f"the test process did not end normally with this module (exit code {process.returncode}): {process.tail}")
            return
        half = len(tests) // 2
        for part in (tests[:half], tests[half:]):
            await self._run_all(part, coverage_of, per_test, merged, top=False, niceness=niceness, deselect=deselect)

    async def _pytest_works(self) -> bool:
        """Whether pytest itself runs here at all, with no candidate in the way."""
        empty = self.workspace.state / "empty"
        empty.mkdir(exist_ok=True)
        result = await self.run_process(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(empty)],
                                        env={"PYTHONPATH": self._pythonpath})
        return result.returncode in (0, 5)

    async def _run_once(self, tests: Sequence[str], coverage_of: Sequence[str], deselect: Sequence[str], per_test: bool,
                        niceness: int) -> _Process:
        self._runs += 1
        state = self.workspace.state
        results = state / f"results-{self._runs}.jsonl"
        pytest_args = [
            "-m", "pytest", "-p", "covgen_probe", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "log_cli=false",
            "-q", "--color=no", "--continue-on-collection-errors", "--rootdir", str(self.workspace.path),
            *(f"--deselect={nodeid}" for nodeid in deselect), *tests,
        ]
        data_file = state / f"coverage-{self._runs}"
        if coverage_of:
            rcfile = state / f"coveragerc-{self._runs}"
            include = "\n    ".join(str(self.workspace.path / path) for path in coverage_of)
            rcfile.write_text(f"[run]\nbranch = True\ndata_file = {data_file}\ninclude =\n    {include}\n")
            argv = ["-m", "coverage", "run", f"--rcfile={rcfile}", *pytest_args]
        else:
            argv = pytest_args
        env = {
            "PYTHONPATH": self._pythonpath,
            "COVGEN_PROBE_OUT": str(results),
            "COVGEN_PROBE_TIMEOUT": str(self.test_timeout),
            "COVGEN_PROBE_WATCH": str(self.workspace.path),
            "COVGEN_PROBE_CONTEXTS": "1" if coverage_of and per_test else "0",
        }
        # A test may go quiet for its own limit (plus a margin); a module's import, which may load
        # heavy libraries, for longer.
        progress = Stall(results, {"start": self.test_timeout + 5, "collect_start": self.test_timeout + _COLLECT_GRACE})
        process = await self.run_process(
            argv, env=env, wall_seconds=min(self.policy.wall_seconds, 60 + self.test_timeout * max(len(tests), 1) * 2),
            stalled=progress, niceness=niceness,
        )
        record = _read_results(results)
        escaped = [folder for folder in record.folders if self.workspace.in_users_tree(folder, self.python)]
        if escaped:
            raise SandboxError(
                f"modules were imported from your tree ({escaped[0]}) instead of the sandbox copy — an editable "
                "install or a sys.path edit points there; candidates would reach your files, so covgen stopped"
            )
        lines: dict[str, frozenset[int]] = {}
        arcs: dict[str, frozenset[tuple[int, int]]] = {}
        if coverage_of and data_file.exists():
            try:
                lines, arcs = _attach_coverage(record.outcomes, data_file, self.workspace.path, per_test=per_test)
            except Exception:  # noqa: BLE001 - a data file cut short by a kill is no coverage, not a crash
                lines, arcs = {}, {}
        unfinished = [nodeid for nodeid in record.started if record.outcomes[nodeid].outcome == "not_run"]
        # Every collected test must have reported, and pytest's own exit status must be the
        # process's: a test that ends the process early (os._exit, a signal) cannot pass for done.
        ended_normally = (not process.timed_out and record.exitstatus is not None and record.exitstatus == process.returncode
                          and process.returncode in (0, 1, 5) and not unfinished
                          and all(nodeid in record.outcomes for nodeid in record.collected))
        return _Process(
            PytestRun(record.outcomes, record.collect_errors, process.seconds, 1, lines, arcs), unfinished, record.started,
            record.open_module, ended_normally, process.returncode, process.timed_out, _tail(process.stderr or process.stdout),
        )


#: Processes one run may take: a hung test or a module that ends the interpreter costs one each.
_MAX_PROCESSES = 8
#: Extra seconds a module's import may take beyond a test's limit (projects import heavy libraries).
_COLLECT_GRACE = 30.0


class _Merged:
    """The results of one or more processes that together ran a batch."""

    def __init__(self) -> None:
        self.outcomes: dict[str, TestOutcome] = {}
        self.collect_errors: dict[str, ModuleFailure] = {}
        self.seconds = 0.0
        self.processes = 0
        self.lines: dict[str, frozenset[int]] = {}
        self.arcs: dict[str, frozenset[tuple[int, int]]] = {}

    def add(self, run: PytestRun) -> None:
        self.processes += 1
        self.seconds += run.seconds
        for path, lines in run.lines.items():
            self.lines[path] = self.lines.get(path, frozenset()) | lines
        for path, arcs in run.arcs.items():
            self.arcs[path] = self.arcs.get(path, frozenset()) | arcs
        self.outcomes.update((nodeid, outcome) for nodeid, outcome in run.outcomes.items() if outcome.outcome != "not_run"
                             or nodeid not in self.outcomes)
        self.collect_errors.update(run.collect_errors)

    def result(self) -> PytestRun:
        return PytestRun(self.outcomes, self.collect_errors, self.seconds, self.processes, self.lines, self.arcs)


@dataclass(slots=True)
class _Record:
    started: list[str] = field(default_factory=list)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    collect_errors: dict[str, ModuleFailure] = field(default_factory=dict)
    collected: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    open_module: str | None = None
    exitstatus: int | None = None


def _read_results(path: Path) -> _Record:
    record = _Record()
    finished: set[str] = set()
    reports: dict[str, list[dict[str, str]]] = {}
    changed: dict[str, tuple[str, ...]] = {}
    for entry in records(path):
        event, nodeid = entry.get("event"), str(entry.get("nodeid", ""))
        if event == "start":
            record.started.append(nodeid)
        elif event == "done":
            finished.add(nodeid)
            changed[nodeid] = tuple(map(str, entry.get("changed", ())))
        elif event == "report":
            reports.setdefault(nodeid, []).append(entry)
        elif event == "collect_start":
            record.open_module = nodeid
        elif event == "collect_done":
            record.open_module = None
            if entry.get("changed"):
                changed_files = tuple(map(str, entry["changed"]))
                record.collect_errors[nodeid] = ModuleFailure(
                    "changed", "changed project files while being imported: " + ", ".join(changed_files), changed_files)
        elif event == "collect_error" and nodeid not in record.collect_errors:
            record.collect_errors[nodeid] = ModuleFailure("error", str(entry.get("message", "")))
        elif event == "collected":
            record.collected = [str(n) for n in entry.get("nodeids", ())]
            record.folders = [str(f) for f in entry.get("folders", ())]
        elif event == "finish":
            status = entry.get("exitstatus")
            record.exitstatus = status if isinstance(status, int) else None
    for nodeid in record.started:
        entries = reports.get(nodeid, [])
        message = next((e["message"] for e in entries if e["outcome"] != "passed" and e["message"]), "")
        outcome: Outcome
        if nodeid not in finished:
            outcome = "not_run"  # started, never finished: the process died under it
        elif _TIMEOUT_MARK in message:
            outcome = "timeout"
        elif any(e["outcome"] == "failed" and e["when"] == "call" for e in entries):
            outcome = "failed"
        elif any(e["outcome"] == "failed" for e in entries):
            outcome = "error"
        elif any(e["outcome"] == "skipped" for e in entries):
            outcome = "skipped"
        elif any(e["when"] == "call" and e["outcome"] == "passed" for e in entries):
            outcome = "passed"
        else:
            outcome = "not_run"
        record.outcomes[nodeid] = TestOutcome(nodeid, outcome, message, changed.get(nodeid, ()))
    return record


def _attach_coverage(
    outcomes: dict[str, TestOutcome], data_file: Path, root: Path, *, per_test: bool
) -> tuple[dict[str, frozenset[int]], dict[str, frozenset[tuple[int, int]]]]:
    """Return the whole run's lines and arcs; with `per_test`, give each outcome its own too."""
    covered = read_coverage(data_file, root, outcomes if per_test else ())
    if per_test:
        for nodeid, outcome in list(outcomes.items()):
            outcomes[nodeid] = TestOutcome(outcome.nodeid, outcome.outcome, outcome.message, outcome.changed_files,
                                           covered.lines.get(nodeid, {}), covered.arcs.get(nodeid, {}))
    return covered.total_lines, covered.total_arcs


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
