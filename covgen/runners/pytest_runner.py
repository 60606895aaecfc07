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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from covgen.errors import SandboxError
from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace, run_sandboxed, scrubbed_env

__all__ = ["TestOutcome", "PytestRun", "PytestRunner"]

Outcome = Literal["passed", "failed", "error", "skipped", "timeout", "not_run"]
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


@dataclass(frozen=True, slots=True)
class PytestRun:
    outcomes: dict[str, TestOutcome]
    #: Test files that failed to import or collect, with pytest's message.
    collect_errors: dict[str, str]
    seconds: float
    processes: int
    #: Everything the run covered per workspace-relative path, import time included.
    lines: dict[str, frozenset[int]] = field(default_factory=dict)
    arcs: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)


class PytestRunner:
    """Runs pytest in a workspace with the project's interpreter, under the sandbox policy."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        python: str = sys.executable,
        policy: SandboxPolicy = SandboxPolicy(),
        test_timeout: float = 10.0,
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
        paths = [str(probe_dir)] + [
            str(workspace.path / root) for root in import_roots if (workspace.path / root).is_dir()
        ]
        self._pythonpath = ":".join(dict.fromkeys(paths))

    async def check_interpreter(self) -> None:
        """Fail early, with the fix, when the project's interpreter cannot run validation."""
        result = await run_sandboxed(
            [self.python, "-c", "import pytest, coverage"], cwd=self.workspace.path,
            env=scrubbed_env(self.workspace.home), policy=self.policy, layers=self.layers,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"{self.python} cannot import pytest and coverage; install them in the project's environment "
                "or pass --python PATH to an interpreter that has them"
            )

    async def run(self, tests: Sequence[str], *, coverage_of: Sequence[str] = (), per_test: bool = True) -> PytestRun:
        """Run `tests` (workspace-relative files or node ids) in order; measure `coverage_of` files.

        Coverage is the whole run's, and with `per_test` also each test's own (its outcome's).
        """
        outcomes: dict[str, TestOutcome] = {}
        collect_errors: dict[str, str] = {}
        seconds = 0.0
        processes = 0
        deselect: list[str] = []
        totals: tuple[dict[str, frozenset[int]], dict[str, frozenset[tuple[int, int]]]] = ({}, {})
        # A test that hangs the whole process (blocking in C, ignoring SIGALRM) is named by the
        # probe's "start" line, marked TIMEOUT, and the same batch runs again without it and
        # without what already ran.
        while processes < 5:
            processes += 1
            run, started = await self._run_once(tests, coverage_of, deselect, per_test)
            seconds += run.seconds
            for path, lines in run.lines.items():
                totals[0][path] = totals[0].get(path, frozenset()) | lines
            for path, arcs in run.arcs.items():
                totals[1][path] = totals[1].get(path, frozenset()) | arcs
            outcomes.update(run.outcomes)
            collect_errors.update(run.collect_errors)
            hung = [nodeid for nodeid in started if run.outcomes[nodeid].outcome == "not_run"]
            if not hung:
                break
            for nodeid in hung:
                outcomes[nodeid] = TestOutcome(nodeid, "timeout", f"{_TIMEOUT_MARK} (the process had to be killed)")
            deselect.extend(started)
        return PytestRun(outcomes=outcomes, collect_errors=collect_errors, seconds=seconds, processes=processes,
                         lines=totals[0], arcs=totals[1])

    async def _run_once(
        self, tests: Sequence[str], coverage_of: Sequence[str], deselect: Sequence[str], per_test: bool
    ) -> tuple[PytestRun, list[str]]:
        self._runs += 1
        state = self.workspace.state
        results = state / f"results-{self._runs}.jsonl"
        pytest_args = [
            "-m", "pytest", "-p", "covgen_probe", "-p", "no:cacheprovider", "-o", "addopts=",
            "-q", "--color=no", "--continue-on-collection-errors", "--rootdir", str(self.workspace.path),
            *(f"--deselect={nodeid}" for nodeid in deselect), *tests,
        ]
        data_file = state / f"coverage-{self._runs}"
        if coverage_of:
            rcfile = state / f"coveragerc-{self._runs}"
            include = "\n    ".join(str(self.workspace.path / path) for path in coverage_of)
            rcfile.write_text(f"[run]\nbranch = True\ndata_file = {data_file}\ninclude =\n    {include}\n")
            argv = [self.python, "-m", "coverage", "run", f"--rcfile={rcfile}", *pytest_args]
        else:
            argv = [self.python, *pytest_args]
        env = scrubbed_env(
            self.workspace.home,
            {
                "PYTHONPATH": self._pythonpath,
                "COVGEN_PROBE_OUT": str(results),
                "COVGEN_PROBE_TIMEOUT": str(self.test_timeout),
                "COVGEN_PROBE_WATCH": str(self.workspace.path),
                "COVGEN_PROBE_FORBID": str(self.workspace.source_root),
                "COVGEN_PROBE_CONTEXTS": "1" if coverage_of and per_test else "0",
            },
        )
        budget = replace(self.policy, wall_seconds=min(self.policy.wall_seconds, 60 + self.test_timeout * max(len(tests), 1) * 2))
        progress = _Progress(results, stall_seconds=self.test_timeout + 5)
        process = await run_sandboxed(
            argv, cwd=self.workspace.path, env=env, policy=budget, layers=self.layers, stalled=progress.stalled
        )
        started, outcomes, collect_errors = _read_results(results)
        escape = _escape(results)
        if escape is not None:
            raise SandboxError(
                f"{escape[0]} was imported from your tree ({escape[1]}) instead of the sandbox copy — an editable "
                "install or a sys.path edit points there; candidates would reach your files, so covgen stopped"
            )
        if not started and not collect_errors and process.returncode not in (0, 1, 5):
            raise SandboxError(f"pytest could not run in the sandbox (exit {process.returncode}): {_tail(process.stderr or process.stdout)}")
        lines: dict[str, frozenset[int]] = {}
        arcs: dict[str, frozenset[tuple[int, int]]] = {}
        if coverage_of and data_file.exists():
            lines, arcs = _attach_coverage(outcomes, data_file, self.workspace.path, per_test=per_test)
        return PytestRun(outcomes, collect_errors, process.seconds, 1, lines, arcs), started


class _Progress:
    """Tell a hung pytest process from a slow one: the probe writes a line per test event."""

    def __init__(self, results: Path, stall_seconds: float) -> None:
        self.results = results
        self.stall_seconds = stall_seconds
        self.size = -1
        self.changed_at = time.monotonic()

    def stalled(self) -> bool:
        size = self.results.stat().st_size if self.results.exists() else 0
        now = time.monotonic()
        if size != self.size:
            self.size, self.changed_at = size, now
        # Before the first test starts, collection (imports) may legitimately take a while.
        return size > 0 and now - self.changed_at > self.stall_seconds


def _escape(path: Path) -> tuple[str, str] | None:
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"escape"' in line:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            return str(record.get("nodeid")), str(record.get("message"))
    return None


def _read_results(path: Path) -> tuple[list[str], dict[str, TestOutcome], dict[str, str]]:
    started: list[str] = []
    finished: set[str] = set()
    reports: dict[str, list[dict[str, str]]] = {}
    changed: dict[str, tuple[str, ...]] = {}
    collect_errors: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            event, nodeid = record.get("event"), record.get("nodeid", "")
            if event == "start":
                started.append(nodeid)
            elif event == "done":
                finished.add(nodeid)
                changed[nodeid] = tuple(record.get("changed", ()))
            elif event == "report":
                reports.setdefault(nodeid, []).append(record)
            elif event == "collect_error":
                collect_errors[nodeid] = record.get("message", "")
    outcomes = {}
    for nodeid in started:
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
        outcomes[nodeid] = TestOutcome(nodeid, outcome, message, changed.get(nodeid, ()))
    return started, outcomes, collect_errors


def _attach_coverage(
    outcomes: dict[str, TestOutcome], data_file: Path, root: Path, *, per_test: bool
) -> tuple[dict[str, frozenset[int]], dict[str, frozenset[tuple[int, int]]]]:
    """Return the whole run's lines and arcs; with `per_test`, give each outcome its own too."""
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    files = sorted(data.measured_files())
    relative = {measured: Path(measured).resolve().relative_to(root.resolve()).as_posix() for measured in files}
    total_lines = {relative[m]: frozenset(data.lines(m) or ()) for m in files}
    total_arcs = {relative[m]: frozenset(data.arcs(m) or ()) for m in files}
    if not per_test:
        return total_lines, total_arcs
    # One query per file says which tests reached it; only those (test, file) pairs are read,
    # not every test against every measured file.
    lines: dict[str, dict[str, frozenset[int]]] = {nodeid: {} for nodeid in outcomes}
    arcs: dict[str, dict[str, frozenset[tuple[int, int]]]] = {nodeid: {} for nodeid in outcomes}
    branch = data.has_arcs()
    for measured in files:
        reached: set[str] = set()
        data.set_query_contexts(None)
        for contexts in data.contexts_by_lineno(measured).values():
            reached.update(contexts)
        for nodeid in sorted(reached.intersection(outcomes)):
            data.set_query_context(nodeid)
            if branch:
                executed_arcs = frozenset(data.arcs(measured) or ())
                arcs[nodeid][relative[measured]] = executed_arcs
                lines[nodeid][relative[measured]] = frozenset(n for arc in executed_arcs for n in arc if n > 0)
            else:
                lines[nodeid][relative[measured]] = frozenset(data.lines(measured) or ())
    for nodeid, outcome in list(outcomes.items()):
        outcomes[nodeid] = TestOutcome(outcome.nodeid, outcome.outcome, outcome.message, outcome.changed_files, lines[nodeid], arcs[nodeid])
    return total_lines, total_arcs


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
