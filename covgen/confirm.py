"""The clean run: the files about to be written, run by plain pytest and coverage.py in a fresh sandbox.

The funnel's verdicts come from a pytest process that ran candidates with covgen's probe plugin
beside them; whatever a candidate did in that process, this run does not share. It starts
from a fresh copy of the user's tree, loads no covgen code at all, reads outcomes from pytest's
own JUnit XML and per-test coverage from coverage.py's own ``test_function`` contexts, and checks
from outside that the process ended the way pytest said. A verdict stands only if this run
agrees with it; the file written is the one this run ran, byte for byte.

A second pair of runs checks the user's own tests: the existing tests of the targeted modules
must have the same outcomes with the new files as without them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree

from covgen.coverage_data import read_coverage
from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace

__all__ = ["CleanRun", "clean_run", "digest", "junit_key"]


@dataclass(frozen=True, slots=True)
class CleanRun:
    """What plain pytest and coverage.py said about a set of test files."""

    #: JUnit ``classname::name`` → ``passed``, ``failed``, ``error`` or ``skipped``.
    outcomes: dict[str, str]
    #: Node id → covered lines and arcs per workspace-relative path (coverage.py contexts).
    lines: dict[str, dict[str, frozenset[int]]] = field(default_factory=dict)
    arcs: dict[str, dict[str, frozenset[tuple[int, int]]]] = field(default_factory=dict)
    #: Everything the run covered per path, import time included.
    total_lines: dict[str, frozenset[int]] = field(default_factory=dict)
    total_arcs: dict[str, frozenset[tuple[int, int]]] = field(default_factory=dict)
    #: Why the run as a whole cannot be trusted (it did not end as pytest ends), or "".
    problem: str = ""
    #: A test's node id → its key in `outcomes` (pytest's JUnit XML names tests its own way).
    key_of: Callable[[str], str] = field(default=lambda nodeid: junit_key(nodeid), compare=False)

    def outcome(self, nodeid: str) -> str | None:
        """How the test ended; None when it did not run or the run as a whole cannot be trusted."""
        return None if self.problem else self.outcomes.get(self.key_of(nodeid))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def clean_run(
    root: Path,
    files: Mapping[str, str],
    args: Sequence[str],
    *,
    python: str,
    policy: SandboxPolicy,
    layers: SandboxLayers | None,
    test_timeout: float,
    coverage_of: Sequence[str] = (),
    measured_tests: Sequence[str] = (),
) -> CleanRun:
    """Copy `root` afresh, add `files` (relative path → text), and run pytest on `args` there.

    With `coverage_of`, measure those files with branch coverage and give each of
    `measured_tests` (node ids) its own covered lines and arcs.
    """
    with Workspace(root) as workspace:
        for relative, text in files.items():
            destination = workspace.path / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(text, encoding="utf-8")
        scratch = workspace.scratch("clean")
        junit = scratch / "junit.xml"
        pytest_args = ["-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "log_cli=false", "-q", "--color=no",
                       f"--junitxml={junit}", "--rootdir", str(workspace.path), *args]
        data_file = scratch / "coverage"
        if coverage_of:
            rcfile = workspace.state / "clean.coveragerc"
            include = "\n    ".join(str(workspace.path / path) for path in coverage_of)
            rcfile.write_text(f"[run]\nbranch = True\ndynamic_context = test_function\ndata_file = {data_file}\n"
                              f"include =\n    {include}\n")
            argv = ["-m", "coverage", "run", f"--rcfile={rcfile}", *pytest_args]
        else:
            argv = pytest_args
        roots = [str(workspace.path / r) for r in (".", "src") if (workspace.path / r).is_dir()]
        before = _snapshot(workspace.path)
        wall = min(policy.wall_seconds, 120 + test_timeout * max(len(measured_tests), len(args), 1) * 4)
        process = await workspace.run(python, argv, env={"PYTHONPATH": ":".join(roots)}, layers=layers,
                                      policy=replace(policy, wall_seconds=wall))
        outcomes, problem = _read_junit(junit)
        failed = any(outcome in ("failed", "error") for outcome in outcomes.values())
        changed = _changes(before, _snapshot(workspace.path))
        if process.timed_out:
            problem = f"the run timed out after {wall:g} s"
        elif changed:
            # Seen from outside the process: no in-process trick hides an edit from this.
            problem = "changed project files: " + ", ".join(dict.fromkeys(changed[:5]))
        elif not problem and process.returncode != (1 if failed else 0):
            # The exit status comes from outside the process: a test that ends it early, or
            # a report that disagrees with how pytest really ended, voids the whole run.
            problem = f"pytest exited {process.returncode} where its own report says {1 if failed else 0}"
        if problem:
            return CleanRun(outcomes, problem=f"{problem} ({_tail(process.stderr or process.stdout)})")
        if not coverage_of:
            return CleanRun(outcomes)
        if not data_file.exists():
            return CleanRun(outcomes, problem=f"coverage.py wrote no data ({_tail(process.stderr or process.stdout)})")
        return _with_coverage(outcomes, data_file, workspace.path, measured_tests)


#: What pytest and Python leave behind on their own; every other change is the tests' doing.
_CACHES = frozenset({"__pycache__", ".pytest_cache", ".hypothesis"})


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime, mode) of every file and folder under `root`, caches aside."""
    found: dict[str, tuple[int, int, int]] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _CACHES]
        for name in (*subdirs, *files):
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns, info.st_mode)
    return found


def _changes(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> list[str]:
    """Entries created, changed or removed — except new hidden folders (.benchmarks) that pytest
    plugins make for their own state, and what is in them."""
    new_hidden = [path for path in after.keys() - before.keys()
                  if os.path.basename(path).startswith(".") and after[path][2] & 0o170000 == 0o040000]
    return sorted(
        path for path in after.keys() | before.keys() if after.get(path) != before.get(path)
        and not any(path == hidden or path.startswith(hidden + os.sep) for hidden in new_hidden)
    )


def _read_junit(path: Path) -> tuple[dict[str, str], str]:
    if not path.exists():
        return {}, "pytest wrote no report (the process ended before its session did)"
    try:
        tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError as err:
        return {}, f"pytest's report cannot be read: {err}"
    outcomes: dict[str, str] = {}
    for case in tree.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        kinds = {child.tag for child in case}
        outcome = ("failed" if "failure" in kinds else "error" if "error" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        key = f"{classname}::{name}"
        # A test that fails in teardown has two entries: the worse one counts.
        if outcomes.get(key) in (None, "passed"):
            outcomes[key] = outcome
    return outcomes, ""


def junit_key(nodeid: str) -> str:
    """The ``classname::name`` pytest's JUnit XML gives the test with node id `nodeid`."""
    path, *parts = nodeid.split("::")
    names = [path.removesuffix(".py").replace("/", "."), *parts]
    return ".".join(names[:-1]) + "::" + names[-1]


def _context(nodeid: str) -> str:
    """The coverage.py ``test_function`` context of `nodeid`: module stem and qualified name."""
    path, *parts = nodeid.split("::")
    return ".".join([Path(path).stem, *parts]).split("[", 1)[0]


def _with_coverage(outcomes: dict[str, str], data_file: Path, root: Path, tests: Sequence[str]) -> CleanRun:
    contexts = {test: _context(test) for test in tests}
    covered = read_coverage(data_file, root, set(contexts.values()))
    return CleanRun(outcomes, {test: covered.lines.get(context, {}) for test, context in contexts.items()},
                    {test: covered.arcs.get(context, {}) for test, context in contexts.items()},
                    covered.total_lines, covered.total_arcs)


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
