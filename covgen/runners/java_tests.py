"""The Java runner as the funnel sees a runner: test files in, per-test outcomes and coverage out.

:class:`~covgen.runners.java_runner.JavaRunner` compiles and runs candidate classes; the funnel
(:mod:`covgen.validate`) and the pipeline speak in test files and node ids, as pytest does.
This adapter gives them the same :class:`~covgen.runners.pytest_runner.PytestRun` for Java:

* a node id is ``<file>::<Class>#<method>``: one per test method, a parameterized method's
  invocations folded into it (it passes only when every invocation passes; its coverage is
  theirs together), because a method is what the writer keeps or drops;
* a candidate that fails as a whole (javac refused it, its class set-up failed, it hung or
  ended the JVM outside a test, it holds no test) is a module failure, as a Python module that
  does not import is;
* coverage is keyed by root-relative path (``src/main/java/pkg/Money.java``), as the report's
  gaps are, not by JaCoCo's ``pkg/Money.java``;
* project files a wave changed are found outside the JVM (a snapshot of the workspace copy),
  restored, and blamed on the candidate that changes them when run alone.

The clean run of the files about to be written (:meth:`JavaTestRunner.clean_run`) uses none of
covgen's JVM code beside the tests: plain ``javac``, the JUnit Platform's console launcher with
the JaCoCo agent writing its execution data to a file, and JaCoCo's analysis in another JVM.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from lxml import etree

from covgen.confirm import CleanRun
from covgen.errors import SandboxError
from covgen.runners.java_runner import JavaCandidate, JavaRun, JavaRunner, JavaTestOutcome, readable_by_others
from covgen.runners.java_sources import declared_types
from covgen.runners.java_toolchain import JavaToolchain
from covgen.runners.pytest_runner import ModuleFailure, Outcome, PytestRun, TestOutcome
from covgen.sandbox import BACKGROUND, SandboxLayers, SandboxPolicy, Workspace, hand_over

__all__ = ["JavaTestRunner", "method_of"]

#: Failures of a whole candidate, as the funnel judges a module that does not import. Ending
#: the JVM (``System.exit``, ``Runtime.halt``) is what no test may do: unsafe, not an error.
_FAILURE_KINDS: dict[str, Literal["error", "timeout", "unsafe"]] = {
    "compile": "error", "error": "error", "no_tests": "error", "crashed": "unsafe", "timeout": "timeout"}
#: Outcomes of one invocation, worst first: a method is as bad as its worst invocation.
_WORST_FIRST = ("timeout", "crashed", "failed", "not_run", "skipped", "passed")


class JavaTestRunner:
    """Runs candidate test files (``.java``) in a workspace's sandbox, as :class:`PytestRunner` runs ``.py`` ones.

    `classes` are the project's compiled production classes, `classpath` the rest of the test
    classpath (libraries, the project's test classes), `source_roots` the root-relative folders
    the report's paths start with (``src/main/java``).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        classes: Sequence[Path],
        classpath: Sequence[Path],
        source_roots: Sequence[str],
        toolchain: JavaToolchain,
        policy: SandboxPolicy,
        test_timeout: float,
        layers: SandboxLayers | None,
        release: int | None = None,
        test_libraries: Sequence[str] = ("junit-jupiter",),
    ) -> None:
        self.workspace = workspace
        self.test_libraries = tuple(test_libraries)
        self.toolchain = toolchain
        self.policy = policy
        self.layers = layers
        self.test_timeout = test_timeout
        self.source_roots = tuple(source_roots)
        self.release = release
        self._classes = list(classes)
        self._classpath = list(classpath)
        self._runner = JavaRunner(workspace, classes=classes, classpath=classpath, toolchain=toolchain, policy=policy,
                                  test_timeout=test_timeout, release=release, layers=layers)

    async def check_interpreter(self) -> None:
        """The toolchain was found and checked when the runner was made; nothing more to ask."""

    async def run(self, tests: Sequence[str], *, coverage_of: Sequence[str] = (), per_test: bool = True,
                  background: bool = False) -> PytestRun:
        """Run test files, or single tests (``file::Class#method``: their files run, the rest is dropped);
        `background` lowers the processes' CPU priority."""
        started = time.monotonic()
        files = list(dict.fromkeys(test.split("::", 1)[0] for test in tests))
        wanted = {test for test in tests if "::" in test}
        before = self._snapshot()
        java_run = await self._runner.run([self._candidate(file) for file in files], niceness=BACKGROUND if background else 0)
        changed = self._changes(before)
        blamed: dict[str, tuple[str, ...]] = {}
        if changed:
            self._restore(changed)
            blamed = await self._blame(files) if len(files) > 1 else {files[0]: tuple(changed)}
        run = self._translate(java_run, files, blamed)
        if wanted:
            run = replace(run, outcomes={nodeid: o for nodeid, o in run.outcomes.items() if nodeid in wanted})
        return replace(run, seconds=time.monotonic() - started)

    # -- translating ---------------------------------------------------------------------------

    def _candidate(self, file: str) -> JavaCandidate:
        return JavaCandidate(file, (self.workspace.path / file).read_text(encoding="utf-8"))

    def _translate(self, java_run: JavaRun, files: list[str], blamed: dict[str, tuple[str, ...]]) -> PytestRun:
        outcomes: dict[str, TestOutcome] = {}
        failures: dict[str, ModuleFailure] = {}
        for file in files:
            if file in blamed and file in java_run.failures:
                failures[file] = ModuleFailure("changed", java_run.failures[file].message, blamed[file])
                continue
            if file in java_run.failures:
                failure = java_run.failures[file]
                failures[file] = ModuleFailure(_FAILURE_KINDS.get(failure.kind, "error"), failure.message)
                continue
            by_method: dict[str, list[JavaTestOutcome]] = {}
            for outcome in java_run.tests_of(file):
                by_method.setdefault(method_of(outcome.name), []).append(outcome)
            for method, invocations in by_method.items():
                nodeid = f"{file}::{method}"
                outcomes[nodeid] = self._fold(nodeid, invocations, blamed.get(file, ()))
        return PytestRun(outcomes, failures, java_run.seconds, java_run.processes, self._by_root(java_run.lines), {})

    def _fold(self, nodeid: str, invocations: list[JavaTestOutcome], changed: tuple[str, ...]) -> TestOutcome:
        worst = min(invocations, key=lambda o: _WORST_FIRST.index(o.outcome) if o.outcome in _WORST_FIRST else 0)
        state = worst.outcome
        outcome: Outcome = "passed" if state == "passed" else "skipped" if state == "skipped" else "timeout" if state == "timeout" else "failed"
        lines: dict[str, set[int]] = {}
        for invocation in invocations:
            for path, numbers in self._by_root(invocation.lines).items():
                lines.setdefault(path, set()).update(numbers)
        return TestOutcome(nodeid, outcome, worst.message or state.replace("_", " "), changed, {p: frozenset(n) for p, n in lines.items()},
                           unsafe=worst.message if state == "crashed" else "")

    def _by_root(self, lines: dict[str, frozenset[int]]) -> dict[str, frozenset[int]]:
        """JaCoCo's ``pkg/Money.java`` → the root-relative path the report's gaps use."""
        mapped: dict[str, frozenset[int]] = {}
        root = self.workspace.source_root
        for key, numbers in lines.items():
            path = next((f"{folder}/{key}" for folder in self.source_roots if (root / folder / key).is_file()), key)
            mapped[path] = mapped.get(path, frozenset()) | numbers
        return mapped

    # -- project files a test changes ----------------------------------------------------------

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        return _snapshot(self.workspace.path)

    def _changes(self, before: dict[str, tuple[int, int]]) -> list[str]:
        return _changes(before, self._snapshot())

    def _restore(self, changed: Sequence[str]) -> None:
        for relative in changed:
            original, copy = self.workspace.source_root / relative, self.workspace.path / relative
            if original.is_file():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(original, copy)
                hand_over(copy)
            elif copy.is_file() or copy.is_symlink():
                copy.unlink()

    async def _blame(self, files: list[str]) -> dict[str, tuple[str, ...]]:
        """Run each file alone to find which changes project files (rare: the screen refuses file APIs)."""
        blamed: dict[str, tuple[str, ...]] = {}
        for file in files:
            before = self._snapshot()
            await self._runner.run([self._candidate(file)])
            changed = self._changes(before)
            if changed:
                self._restore(changed)
                blamed[file] = tuple(changed)
        return blamed

    # -- the clean run -------------------------------------------------------------------------

    async def clean_run(self, contents: dict[str, str], tests: Sequence[str], measured: Sequence[str],
                        coverage_of: Sequence[str]) -> CleanRun:
        """Compile `contents` (root-relative path → text) with plain javac and run them on the JUnit
        Platform's console launcher under the JaCoCo agent, in a fresh workspace.

        Outcomes come from the launcher's XML report, per ``<fully.qualified.Class>#<method>``.
        Coverage is the whole run's (the agent's file, analysed in another JVM): every test
        gets the run's lines, so a gain is confirmed for the written files together.
        """
        del measured, coverage_of  # every run here measures all the project's classes: the agent is cheap
        with Workspace(self.workspace.source_root) as fresh:
            return await _CleanJavaRun(self, fresh).run(contents, tests)


class _CleanJavaRun:
    def __init__(self, owner: JavaTestRunner, workspace: Workspace) -> None:
        self.owner = owner
        self.workspace = workspace
        self.toolchain = owner.toolchain
        self.folder = workspace.covgen_folder(".covgen_clean")
        #: Folders and jars outside the workspace and /usr the sandbox must see (read-only).
        self.readable: list[Path] = [] if owner.toolchain.java_home.resolve().is_relative_to(Path("/usr")) else [owner.toolchain.java_home]

    async def run(self, contents: dict[str, str], tests: Sequence[str]) -> CleanRun:
        project = self.workspace.path
        for relative, text in contents.items():
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        # The written files, and the user's test files run beside them (to see whether the new
        # ones change their outcomes).
        sources = list(dict.fromkeys([*contents, *(test for test in tests if test.endswith(".java"))]))
        files = [project / relative for relative in sources]
        measured = [self._visible(path, f"classes-{index}") for index, path in enumerate(self.owner._classes)]
        libraries = [self._visible(path, f"classpath-{index}") for index, path in enumerate(self.owner._classpath)]
        agent = self._visible(self.toolchain.agent, "agent")
        classes = self.workspace.scratch("test-classes")
        classpath = ":".join(str(p) for p in [*measured, *libraries, *self.toolchain.junit])
        release = ["--release", str(self.owner.release)] if self.owner.release else []
        compiled = await self.workspace.run_tool(
            [str(self.toolchain.javac), *release, "-g", "-encoding", "UTF-8", "-proc:none", "-d", str(classes), "-cp", classpath,
             *(str(path) for path in files)],
            policy=self._policy(300), readable=self.readable, layers=self.owner.layers)
        if compiled.returncode != 0:
            return CleanRun({}, problem=f"javac refused the written files: {_first_error(compiled.stdout + compiled.stderr)}", key_of=_same)
        exec_file, reports = self.workspace.scratch("coverage") / "clean.exec", self.workspace.scratch("reports")
        test_classes = sorted({name for path in files for name in _public_types(path.read_text(encoding="utf-8", errors="replace"))})
        excludes = ":".join(pattern for name in test_classes for pattern in (name, f"{name}$*"))
        before = self._snapshot()
        launched = await self.workspace.run_tool(
            [str(self.toolchain.java), "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             f"-javaagent:{agent}=destfile={exec_file},excludes={excludes}",
             "-cp", f"{classes}:{classpath}", "org.junit.platform.console.ConsoleLauncher", "--disable-banner",
             "--details=none", "--disable-ansi-colors", f"--reports-dir={reports}",
             *(f"--select-class={name}" for name in test_classes)],
            policy=self._policy(max(120.0, 30 + len(tests) * (self.owner.test_timeout + 1))),
            readable=self.readable, layers=self.owner.layers)
        changed = self._changes(before)
        outcomes = _junit_outcomes(reports)
        problem = ""
        if launched.timed_out:
            problem = "the clean run did not end within its limit"
        elif changed:
            problem = f"the written tests changed project files: {', '.join(changed[:5])}"
        elif not outcomes:
            problem = f"the JUnit Platform ran no test (exit code {launched.returncode}): {_last(launched.stdout + launched.stderr)}"
        elif (launched.returncode == 0) != all(state == "passed" for state in outcomes.values()):
            problem = f"the launcher's exit code {launched.returncode} does not match its report"
        if problem:
            return CleanRun({}, problem=problem, key_of=_same)
        lines = await self._analyse(exec_file, measured)
        return CleanRun(outcomes, {test: lines for test in outcomes}, {test: {} for test in outcomes}, lines, {}, key_of=_same)

    async def _analyse(self, exec_file: Path, measured: Sequence[Path]) -> dict[str, frozenset[int]]:
        if not exec_file.is_file():
            raise SandboxError("the JaCoCo agent wrote no execution data in the clean run", slug="java-agent")
        out = self.workspace.scratch("analysis") / "coverage.json"
        helpers = ":".join(str(p) for p in [self._visible(self.toolchain.helpers, "helpers"), *self.toolchain.analysis])
        analysed = await self.workspace.run_tool(
            [str(self.toolchain.java), "-Xmx512m", "-cp", helpers, "covgen.jvm.CovgenReport", str(exec_file), str(out),
             *(str(p) for p in measured)],
            policy=self._policy(300), readable=self.readable, layers=self.owner.layers)
        if analysed.returncode != 0 or not out.is_file():
            raise SandboxError(f"JaCoCo's analysis of the clean run failed: {_last(analysed.stderr)}", slug="java-agent")
        raw = json.loads(out.read_text(encoding="utf-8"))
        lines = {str(path): frozenset(int(entry[0]) for entry in entries) for path, entries in raw.items()}
        return self.owner._by_root(lines)

    def _visible(self, path: Path, name: str) -> Path:
        """`path` as the sandbox may see it: copied in (read-only) when it is in the user's tree or
        home, or when the sandbox's user could not read it; otherwise shown where it is."""
        path = path.resolve()
        hidden = path.is_relative_to(self.workspace.source_root) or path.is_relative_to(Path.home().resolve())
        if not hidden and readable_by_others(path):
            if not path.is_relative_to(Path("/usr")):
                self.readable.append(path)
            return path
        target = self.folder / name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        hand_over(target)  # a copy keeps its modes: a 0700 folder would stay closed to the sandbox's user
        return target

    def _policy(self, seconds: float) -> SandboxPolicy:
        # The limit is on address space, not memory: a JVM reserves far more than it touches.
        return replace(self.owner.policy, wall_seconds=seconds, memory_bytes=max(self.owner.policy.memory_bytes, 4 << 30))

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        return _snapshot(self.workspace.path)

    def _changes(self, before: dict[str, tuple[int, int]]) -> list[str]:
        return _changes(before, self._snapshot())


def _snapshot(project: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every project file in a workspace copy (covgen's own folders aside)."""
    files: dict[str, tuple[int, int]] = {}
    for path in project.rglob("*"):
        relative = path.relative_to(project).as_posix()
        if not relative.startswith(".covgen") and (path.is_file() or path.is_symlink()):
            info = path.lstat()
            files[relative] = (info.st_size, info.st_mtime_ns)
    return files


def _changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def _same(nodeid: str) -> str:
    """Java's node ids are the launcher's own ``<fully.qualified.Class>#<method>``."""
    return nodeid


def method_of(name: str) -> str:
    """``MoneyTest.adds()`` or ``MoneyTest.adds(int) [2] 3`` → ``MoneyTest#adds``."""
    head = name.split("(", 1)[0].split(" ", 1)[0]
    cls, _, method = head.rpartition(".")
    return f"{cls}#{method}" if cls else head


def _public_types(text: str) -> list[str]:
    package, types = declared_types(text)
    return [f"{package}.{name}" if package else name for name, _ in types]


def _junit_outcomes(reports: Path) -> dict[str, str]:
    """``<fully.qualified.Class>#<method>`` → passed/failed/skipped from the launcher's legacy XML report."""
    outcomes: dict[str, str] = {}
    for report in sorted(reports.glob("*.xml")) if reports.is_dir() else ():
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        for case in etree.parse(str(report), parser).iter("testcase"):
            method = re.split(r"[(\[ ]", case.get("name", ""), maxsplit=1)[0]
            key = f"{case.get('classname', '')}#{method}"
            state = "failed" if case.find("failure") is not None or case.find("error") is not None else (
                "skipped" if case.find("skipped") is not None else "passed")
            # A method's invocations fold into it: the worst wins.
            if outcomes.get(key) != "failed" and not (outcomes.get(key) == "skipped" and state == "passed"):
                outcomes[key] = state
    return outcomes


def _first_error(text: str) -> str:
    """javac's first ``error:`` line (the rest often follows from it)."""
    return next((line.strip()[:500] for line in text.splitlines() if ": error:" in line), _last(text))


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "(no output)"
