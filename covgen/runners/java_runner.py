"""Run a wave of candidate JUnit 5 test classes: one javac, one JVM, per-test outcomes and coverage.

The peers' way costs a javac, a JVM under the JaCoCo agent and a report per candidate. Here a
wave of candidates compiles in one ``javac`` call (a candidate that breaks the build gets its own
compile error and the rest compile again without it) and runs in one JVM on the JUnit Platform,
where covgen's launcher (``covgen/runners/java/``) takes and resets the agent's execution data
after every test and turns it into covered lines in the same JVM. A test that hangs or ends the
JVM (``System.exit``) is named by the "start" line the launcher wrote before it and costs only
itself: the rest run again without it. javac and the JVM run in the sandbox.

Coverage is keyed as JaCoCo's XML report keys it: ``package/path/Source.java``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from covgen.errors import SandboxError
from covgen.runners import Stall, records
from covgen.runners.java_sources import JavaCandidate, Staged, attribute_errors, batches, stage_source
from covgen.runners.java_toolchain import CLASS_VERSION_OFFSET, JavaToolchain, check_class_versions, java_toolchain
from covgen.sandbox import ProcessResult, SandboxLayers, SandboxPolicy, Workspace, hand_over

__all__ = ["JavaCandidate", "JavaTestOutcome", "CandidateFailure", "JavaRun", "JavaRunner"]

Outcome = Literal["passed", "failed", "skipped", "timeout", "crashed", "not_run"]
#: ``compile``: javac refused it; ``error``: its class failed outside any test (static init,
#: ``@BeforeAll``); ``timeout``/``crashed``: it hung or ended the JVM outside any test;
#: ``no_tests``: it compiled and holds no test the JUnit Platform finds.
FailureKind = Literal["compile", "error", "timeout", "crashed", "no_tests"]

#: Inside the workspace, written by covgen only (read-only in the sandbox): tools, sources, classes.
_DIR = ".covgen_java"
#: JVMs one wave may take: each hung or exiting test costs one.
_MAX_JVMS = 12
#: Extra quiet seconds allowed beyond a test's limit: Jupiter interrupts a sleeping test itself.
_TEST_GRACE = 5.0
#: Quiet seconds allowed outside a test: JVM start, discovery, loading a class.
_START_GRACE = 60.0
_TIMEOUT_MARK = "covgen: test exceeded"
#: For javac and the test JVM: short-lived, on a shared machine, under an address-space limit.
#: The serial collector and C1 alone start fastest; the explicit reservations (and glibc's
#: arenas, capped through the environment) keep a JVM's address space far below the limit,
#: which ergonomics would otherwise fill (a heap of half of it, a 1 GiB class space).
_JVM_OPTIONS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-XX:CompressedClassSpaceSize=256m",
                "-XX:ReservedCodeCacheSize=128m", "-Djava.awt.headless=true")
_JVM_ENV = {"MALLOC_ARENA_MAX": "2"}
_JUPITER_TIMEOUT = "java.util.concurrent.TimeoutException"


@dataclass(frozen=True, slots=True)
class _Wave:
    """One call of :meth:`JavaRunner.run`: its folder's name, and the nice value of its processes."""

    name: str
    niceness: int


@dataclass(frozen=True, slots=True)
class JavaTestOutcome:
    #: The JUnit Platform's unique id (a parameterized test has one per invocation).
    test_id: str
    candidate: str
    #: ``Class.method()`` as a person reads it.
    name: str
    outcome: Outcome
    message: str = ""
    #: Lines this test covered, per ``package/Source.java``.
    lines: dict[str, frozenset[int]] = field(default_factory=dict)
    #: For covered lines with branches: (branches covered, branches in total).
    branches: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CandidateFailure:
    """A candidate that failed as a whole, outside any one test."""

    kind: FailureKind
    message: str


@dataclass(frozen=True, slots=True)
class JavaRun:
    #: Per test, by (candidate id, unique id): candidates in separate batches may share class names.
    outcomes: dict[tuple[str, str], JavaTestOutcome]
    #: Per candidate id, for candidates that failed as a whole.
    failures: dict[str, CandidateFailure]
    #: Everything the wave covered, tests and class set-up alike.
    lines: dict[str, frozenset[int]]
    seconds: float
    #: javac calls (one, plus one per round that dropped candidates breaking the build).
    compilations: int
    #: JVMs (one, plus one per test that hung or ended the JVM).
    processes: int

    def tests_of(self, candidate_id: str) -> list[JavaTestOutcome]:
        return [outcome for outcome in self.outcomes.values() if outcome.candidate == candidate_id]


class JavaRunner:
    """Compiles and runs candidate test classes against a project's compiled classes, in a workspace's sandbox.

    `classes` are the project's compiled classes (folders or jars): measured, and instrumented
    by the agent. `classpath` is what else the tests need (libraries, the project's own test
    classes); the JUnit Platform is added. Entries in the user's tree are copied into the
    workspace first: the sandbox never sees the tree.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        classes: Sequence[Path],
        classpath: Sequence[Path] = (),
        toolchain: JavaToolchain | None = None,
        policy: SandboxPolicy = SandboxPolicy(),
        test_timeout: float = 10.0,
        heap_mb: int = 512,
        release: int | None = None,
        layers: SandboxLayers | None = None,
    ) -> None:
        self.workspace = workspace
        self.toolchain = toolchain or java_toolchain()
        self.policy = policy
        self.test_timeout = test_timeout
        self.heap_mb = heap_mb
        self.release = release
        self.layers = layers
        self._root = workspace.covgen_folder(_DIR)
        # The measured classes are always copied: the agent and the analysis must read the same
        # bytes, which no test may rewrite (the copy is read-only in the sandbox).
        self.classes = [self._stage(Path(path), f"classes-{index}", copy=True) for index, path in enumerate(classes)]
        self.classpath = [self._stage(Path(path), f"classpath-{index}") for index, path in enumerate(classpath)]
        check_class_versions(self.classes, self.toolchain)
        self._helpers = _fresh(self._root, "helpers")
        shutil.copytree(self.toolchain.helpers, self._helpers, dirs_exist_ok=True)
        self._agent = self._helpers / "jacocoagent.jar"
        shutil.copy(self.toolchain.agent, self._agent)
        self._empty = _fresh(self._root, "empty")
        self._includes = _packages(self.classes)
        self._runs = 0

    async def run(self, candidates: Sequence[JavaCandidate], *, niceness: int = 0) -> JavaRun:
        """Compile and run `candidates` together; each gets its tests' outcomes or its own failure.
        Its javac and JVM processes run at `niceness` (see :data:`covgen.sandbox.BACKGROUND`)."""
        folder = _fresh(self._root, "wave")
        wave = _Wave(folder.name, niceness)
        merged = _Merged()
        started = time.monotonic()
        staged = [stage_source(folder / "src", index, candidate) for index, candidate in enumerate(candidates)]
        pending = batches(staged)
        number = 0
        while pending:
            batch = pending.pop(0)
            number += 1
            classes = folder / f"classes-{number}"
            compiled, deferred = await self._compile(batch, classes, wave, merged)
            if deferred:
                pending.append(deferred)
            if compiled:
                await self._execute(compiled, classes, wave, merged)
        for item in staged:
            if item.candidate.id not in merged.failures and not merged.has_tests(item.candidate.id):
                merged.failures[item.candidate.id] = CandidateFailure(
                    "no_tests", "no test found: JUnit 5 runs methods annotated with org.junit.jupiter.api.Test")
        return merged.result(time.monotonic() - started)

    # -- compiling ---------------------------------------------------------------------------

    async def _compile(self, batch: list[Staged], target: Path, wave: _Wave,
                       merged: _Merged) -> tuple[list[Staged], list[Staged]]:
        """javac the batch into `target`; drop what breaks the build and compile the rest again, until it compiles.

        Returns what compiled and the candidates put off to a later batch (they declare a class
        another candidate of this batch declares too).
        """
        remaining, deferred = list(batch), list[Staged]()
        while remaining:
            result, out = await self._javac(remaining, wave, merged, wall_seconds=120 + 5 * len(remaining))
            if result.returncode == 0 and not result.timed_out:
                os.replace(out, target)  # into covgen's read-only folder: no test rewrites another's classes
                return remaining, deferred
            blamed = attribute_errors(result.stdout + "\n" + result.stderr, remaining)
            if not blamed:
                # javac hung or crashed without naming a file (deep nesting or inference can make it
                # do either): compile each on its own, so the one that does costs only itself.
                return await self._compile_each(remaining, target, wave, merged), deferred
            for staged, messages in blamed.items():
                remaining.remove(staged)
                if len(batch) > 1 and all("duplicate class" in message for message in messages):
                    deferred.append(staged)  # not its fault: another candidate took the name first
                else:
                    merged.failures[staged.candidate.id] = CandidateFailure("compile", "\n".join(messages))
        return [], deferred

    async def _compile_each(self, batch: list[Staged], target: Path, wave: _Wave, merged: _Merged) -> list[Staged]:
        check = self.workspace.scratch("javac-check") / "CovgenNothing.java"
        check.write_text("final class CovgenNothing {\n}\n", encoding="utf-8")
        result, _ = await self._javac([], wave, merged, wall_seconds=120, files=[check])
        if result.returncode != 0:
            raise SandboxError(f"javac does not work here ({'timed out' if result.timed_out else result.returncode}): "
                               f"{_tail(result.stderr or result.stdout)}")
        compiled = []
        target.mkdir()
        for staged in batch:
            result, out = await self._javac([staged], wave, merged, wall_seconds=60)
            if result.returncode == 0 and not result.timed_out:
                shutil.copytree(out, target, dirs_exist_ok=True)
                compiled.append(staged)
                continue
            messages = attribute_errors(result.stdout + "\n" + result.stderr, [staged]).get(staged)
            if not messages:
                messages = ["javac did not finish within 60 s" if result.timed_out
                            else f"javac failed: {_tail(result.stderr or result.stdout)}"]
            merged.failures[staged.candidate.id] = CandidateFailure("compile", "\n".join(messages))
        return compiled

    async def _javac(self, batch: Sequence[Staged], wave: _Wave, merged: _Merged, *, wall_seconds: float,
                     files: Sequence[Path] = ()) -> tuple[ProcessResult, Path]:
        merged.compilations += 1
        out = self.workspace.scratch(f"javac-{wave.name}-{merged.compilations}")
        argv = [str(self.toolchain.javac), f"-J-Xmx{self.heap_mb}m", *(f"-J{option}" for option in _JVM_OPTIONS),
                "-d", str(out), "-cp", _classpath([*self.classes, *self.classpath, *self.toolchain.junit]),
                "-sourcepath", str(self._empty), "-proc:none", "-g", "-encoding", "UTF-8", "-nowarn", "-Xlint:none",
                "-Xmaxerrs", "10000"]
        if self.release is not None:
            argv += ["--release", str(self.release)]
        argv += [str(path) for path in (*files, *(staged.file for staged in batch))]
        policy = replace(self._jvm_policy(), wall_seconds=min(self.policy.wall_seconds, wall_seconds), niceness=wave.niceness)
        result = await self.workspace.run_tool(argv, policy=policy, env=_JVM_ENV, readable=self._readable(), layers=self.layers)
        return result, out

    def _jvm_policy(self) -> SandboxPolicy:
        # The limit is on address space, not memory: a JVM reserves far more than it touches.
        return replace(self.policy, memory_bytes=max(self.policy.memory_bytes, (self.heap_mb << 20) + (3 << 30)))

    def _readable(self) -> list[Path]:
        """What the sandbox must see outside the workspace and the system's folders."""
        entries = [*self.classes, *self.classpath, *self.toolchain.junit, *self.toolchain.analysis, self.toolchain.java_home]
        tmp = self.workspace.writable
        return [path for path in entries if not any(path.is_relative_to(top) for top in (*tmp, Path("/usr")))]

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, batch: list[Staged], classes: Path, wave: _Wave, merged: _Merged) -> None:
        """Run the batch's tests in one JVM; one that hangs or ends the JVM is named, the rest run again."""
        remaining = list(batch)
        skip: list[str] = []
        # Within a batch no two candidates declare the same class: the class names its candidate.
        merged.owner = {name: staged for staged in batch for name in staged.types}
        for _ in range(_MAX_JVMS):
            if not remaining:
                return
            record, process = await self._jvm(remaining, classes, wave, skip)
            merged.processes += 1
            merged.add(record)
            blamed_test = [test for test in record.started if test not in record.done]
            if blamed_test:
                for test in blamed_test:
                    merged.blame_test(test, record, process, self.test_timeout)
                skip.extend(record.started)
                continue
            open_class = next((name for name in record.class_started if name not in record.class_done), None)
            if open_class is not None and (owner := merged.owner_of(open_class)) is not None:
                kind: FailureKind = "timeout" if process.timed_out else "crashed"
                merged.failures[owner.candidate.id] = CandidateFailure(kind, (
                    f"{_TIMEOUT_MARK} its {self.test_timeout:g} s limit while setting up class {open_class} (killed)"
                    if process.timed_out else
                    f"the test JVM ended while class {open_class} was being set up (exit code {process.returncode}): "
                    f"System.exit, Runtime.halt or a crash; {_tail(process.stderr)}"))
                remaining = [staged for staged in remaining if staged is not owner]
                skip.extend(record.started)
                continue
            if record.finished and process.returncode == 0 and not process.timed_out:
                return
            # Nothing names a culprit (the JVM ended between classes): halve until one alone fails.
            if len(remaining) == 1:
                merged.failures[remaining[0].candidate.id] = CandidateFailure(
                    "timeout" if process.timed_out else "crashed",
                    f"the test JVM did not end normally with this candidate (exit code {process.returncode}): "
                    f"{_tail(process.stderr)}")
                return
            half = len(remaining) // 2
            for part in (remaining[:half], remaining[half:]):
                await self._execute(part, classes, wave, merged)
            return
        merged.give_up()

    async def _jvm(self, batch: list[Staged], classes: Path, wave: _Wave, skip: Sequence[str]) -> tuple[_Record, ProcessResult]:
        self._runs += 1
        state = self.workspace.state
        results = state / f"java-{wave.name}-{self._runs}.jsonl"
        plan = state / f"java-{wave.name}-{self._runs}.plan"
        lines = [f"out {results}", f"analysis {self._helpers}", f"timeout {self.test_timeout:g}",
                 *(f"jacoco {jar}" for jar in self.toolchain.analysis), *(f"measured {path}" for path in self.classes),
                 *(f"class {name}" for staged in batch for name in staged.types), *(f"skip {test}" for test in skip)]
        plan.write_text("\n".join(lines) + "\n", encoding="utf-8")
        excludes = ":".join(pattern for staged in batch for name in staged.types for pattern in (name, f"{name}$*"))
        agent = f"-javaagent:{self._agent}=output=none,dumponexit=false,jmx=false,includes={self._includes}"
        if excludes:
            agent += f",excludes={excludes}"
        argv = [
            str(self.toolchain.java), f"-Xmx{self.heap_mb}m", *_JVM_OPTIONS, agent,
            # covgen's helpers and the Platform first: a candidate cannot stand in for either.
            "-cp", _classpath([self._helpers, *self.toolchain.junit, *self.classes, *self.classpath, classes]),
            "covgen.jvm.CovgenLauncher", str(plan),
        ]
        guess = max(1, len(batch) * 4)  # tests; each may take its limit
        policy = replace(self._jvm_policy(), wall_seconds=min(self.policy.wall_seconds, _START_GRACE + guess * (self.test_timeout + 1)),
                         niceness=wave.niceness)
        test_stall = self.test_timeout + _TEST_GRACE
        progress = Stall(results, {"start": test_stall, "class_start": test_stall}, default=self.test_timeout + _START_GRACE)
        process = await self.workspace.run_tool(argv, policy=policy, env=_JVM_ENV, readable=self._readable(), layers=self.layers,
                                                stalled=progress)
        refused = _refused_class(process.stderr)
        if refused is not None:
            await self._confirm_refusal(refused)
        record = _read_results(results)
        if record.agent_error is not None:
            raise SandboxError(f"the JaCoCo agent did not start in the test JVM: {record.agent_error}", slug="java-agent")
        if not record.session:
            raise SandboxError(f"the test JVM did not start (exit code {process.returncode}): "
                               f"{_tail(process.stderr or process.stdout)}")
        return record, process

    async def _confirm_refusal(self, class_name: str) -> None:
        """Raise if the agent refuses `class_name` in a JVM that runs no candidate.

        The test JVM's stderr is the candidates' to write: one could print the agent's message
        to stop the run. So the class is loaded again under the agent, with nothing else.
        """
        argv = [str(self.toolchain.java), *_JVM_OPTIONS, f"-javaagent:{self._agent}=output=none,includes={class_name}",
                "-cp", str(self._helpers), "covgen.jvm.CovgenProbe", _classpath([*self.classes, *self.classpath]), class_name]
        process = await self.workspace.run_tool(argv, policy=replace(self._jvm_policy(), wall_seconds=60), env=_JVM_ENV,
                                                readable=self._readable(), layers=self.layers)
        if _refused_class(process.stderr) != class_name:
            return
        version = re.search(r"Unsupported class file major version (\d+)", process.stderr)
        detail = ""
        if version:
            major = int(version.group(1))
            detail = f" (compiled for Java {major - CLASS_VERSION_OFFSET}, class file version {major})"
        raise SandboxError(
            f"the JaCoCo agent {self.toolchain.agent_version} cannot instrument {class_name}{detail}, so its coverage would "
            f"read as zero: compile the project with --release 11, or use a newer JaCoCo agent", slug="java-class-version")

    def _stage(self, path: Path, name: str, *, copy: bool = False) -> Path:
        """A class folder or jar as the sandbox may see it.

        Copied into the workspace when asked, when it is in the user's tree (which the sandbox
        never sees), or when the sandbox's user could not read it where it is (covgen as root
        runs sandboxed commands as an unprivileged uid of its own).
        """
        path = path.resolve()
        if not path.exists():
            raise SandboxError(f"{path} does not exist (a class folder or jar for the Java runner)")
        if not (copy or path.is_relative_to(self.workspace.source_root) or not readable_by_others(path)):
            return path
        target = _fresh(self._root, name) / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
        hand_over(target)
        return target


class _Merged:
    """What the javac and JVM runs of one wave found, put together."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str], JavaTestOutcome] = {}
        self.failures: dict[str, CandidateFailure] = {}
        self.lines: dict[str, set[int]] = {}
        self.owner: dict[str, Staged] = {}
        self.planned: set[tuple[str, str]] = set()
        self.compilations = 0
        self.processes = 0

    def owner_of(self, class_name: str) -> Staged | None:
        return self.owner.get(class_name.split("$", 1)[0])

    def has_tests(self, candidate_id: str) -> bool:
        return any(outcome.candidate == candidate_id for outcome in self.outcomes.values())

    def add(self, record: _Record) -> None:
        for test in record.planned:
            owner = self.owner_of(record.classes.get(test, _class_in_id(test)))
            if owner is not None:
                self.planned.add((owner.candidate.id, test))
        for test, event in record.done.items():
            owner = self.owner_of(str(event.get("class", "")))
            if owner is None:
                continue
            lines, branches = _coverage(event.get("coverage"))
            self._count(lines)
            message = str(event.get("message", ""))
            if event.get("analysis_error"):
                message = f"{message}\ncovgen could not read this test's coverage: {event['analysis_error']}".strip()
            self.outcomes[owner.candidate.id, test] = JavaTestOutcome(
                test, owner.candidate.id, _name(event, record), _outcome(event), message, lines, branches)
        for skipped, event in record.skipped.items():
            owner = self.owner_of(str(event.get("class", "")))
            if owner is None:
                continue
            # A disabled class is skipped as a whole: its tests are not reported one by one.
            for test in [t for t in record.planned if t.startswith(skipped + "/")] or [skipped]:
                if (owner.candidate.id, test) not in self.outcomes:
                    self.outcomes[owner.candidate.id, test] = JavaTestOutcome(
                        test, owner.candidate.id, _name_of_id(test), "skipped", str(event.get("message", "")))
        for class_name, event in record.class_done.items():
            owner = self.owner_of(class_name)
            lines, _ = _coverage(event.get("coverage"))
            self._count(lines)
            if owner is not None and event.get("status") == "FAILED":
                self.failures.setdefault(owner.candidate.id, CandidateFailure("error", str(event.get("message", ""))))

    def blame_test(self, test: str, record: _Record, process: ProcessResult, limit: float) -> None:
        event = record.start_events[test]
        owner = self.owner_of(str(event.get("class", "")))
        if owner is None:
            return
        if process.timed_out:
            outcome: Outcome = "timeout"
            message = f"{_TIMEOUT_MARK} its {limit:g} s limit and did not stop when interrupted (the JVM had to be killed)"
        else:
            outcome = "crashed"
            message = (f"the test JVM ended while this test ran (exit code {process.returncode}): System.exit, "
                       f"Runtime.halt or a crash; {_tail(process.stderr)}")
        self.outcomes[owner.candidate.id, test] = JavaTestOutcome(
            test, owner.candidate.id, _name(event, record), outcome, message)

    def give_up(self) -> None:
        for candidate, test in sorted(self.planned - self.outcomes.keys()):
            self.outcomes[candidate, test] = JavaTestOutcome(
                test, candidate, _name_of_id(test), "not_run",
                f"not run: the wave used its {_MAX_JVMS} JVMs on tests that hung or exited")

    def _count(self, lines: dict[str, frozenset[int]]) -> None:
        for path, numbers in lines.items():
            self.lines.setdefault(path, set()).update(numbers)

    def result(self, seconds: float) -> JavaRun:
        return JavaRun(dict(self.outcomes), dict(self.failures), {p: frozenset(n) for p, n in self.lines.items()}, seconds,
                       self.compilations, self.processes)


@dataclass(slots=True)
class _Record:
    """What one JVM wrote, read back from its results file."""

    session: bool = False
    agent_error: str | None = None
    planned: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    start_events: dict[str, dict[str, object]] = field(default_factory=dict)
    done: dict[str, dict[str, object]] = field(default_factory=dict)
    skipped: dict[str, dict[str, object]] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    class_started: list[str] = field(default_factory=list)
    class_done: dict[str, dict[str, object]] = field(default_factory=dict)
    finished: bool = False


def _read_results(path: Path) -> _Record:
    record = _Record()
    for event in records(path):
        kind, test = event.get("event"), str(event.get("id", ""))
        if kind == "session":
            record.session = True
            if event.get("agent") is None:
                record.agent_error = str(event.get("error", "no agent"))
        elif kind == "plan":
            record.planned = [str(t) for t in event.get("tests", ())]
        elif kind == "start":
            record.started.append(test)
            record.start_events[test] = event
            record.classes[test] = str(event.get("class", ""))
        elif kind == "done":
            record.done[test] = event
        elif kind == "skipped":
            record.skipped[test] = event
        elif kind == "class_start":
            record.class_started.append(str(event.get("class", "")))
        elif kind == "class_done":
            record.class_done[str(event.get("class", ""))] = event
        elif kind == "finish":
            record.finished = True
    return record


def _outcome(event: dict[str, object]) -> Outcome:
    status = event.get("status")
    if status == "SUCCESSFUL":
        return "passed"
    if status == "ABORTED":
        return "skipped"
    if event.get("exception") == _JUPITER_TIMEOUT and "timed out after" in str(event.get("message", "")):
        return "timeout"
    return "failed"


def _coverage(raw: object) -> tuple[dict[str, frozenset[int]], dict[str, dict[int, tuple[int, int]]]]:
    lines: dict[str, frozenset[int]] = {}
    branches: dict[str, dict[int, tuple[int, int]]] = {}
    if not isinstance(raw, dict):
        return lines, branches
    for path, entries in raw.items():
        numbers = [entry for entry in entries if isinstance(entry, list) and len(entry) == 3] if isinstance(entries, list) else []
        lines[str(path)] = frozenset(int(entry[0]) for entry in numbers)
        with_branches = {int(entry[0]): (int(entry[1]), int(entry[2])) for entry in numbers if int(entry[2]) > 0}
        if with_branches:
            branches[str(path)] = with_branches
    return lines, branches


def _name(event: dict[str, object], record: _Record) -> str:
    """``Class.method()``, with the display name after it when it says more (``[2] 3, 4``, ``@DisplayName``)."""
    start = record.start_events.get(str(event.get("id", "")), event)
    simple = str(start.get("class", "") or event.get("class", "")).rsplit(".", 1)[-1]
    method, display = str(start.get("method", "")), str(start.get("name", ""))
    if not method:
        return f"{simple}.{display}" if display else simple
    return f"{simple}.{method}" + (f" {display}" if display and display != method else "")


def _name_of_id(test: str) -> str:
    """``Class.method()`` from a unique id, for a test that never started."""
    segments = re.findall(r"\[[\w-]+:([^\]]*)\]", test)
    class_name = _class_in_id(test).rsplit(".", 1)[-1]
    return f"{class_name}.{segments[-1]}" if len(segments) > 2 else class_name or test


def _class_in_id(test: str) -> str:
    match = re.search(r"\[class:([^\]]+)\]", test)
    return match.group(1) if match else ""


_REFUSED = re.compile(r"Error while instrumenting ([\w/$.-]+?)\.?\s*$", re.MULTILINE)


def _refused_class(stderr: str) -> str | None:
    """The class the agent said (on stderr) it could not instrument: it would show no coverage."""
    match = _REFUSED.search(stderr)
    return match.group(1).replace("/", ".") if match else None


def _packages(roots: Sequence[Path]) -> str:
    """The agent's ``includes``: every package of the measured classes (default-package classes by name)."""
    patterns: set[str] = set()
    for root in roots:
        names: Iterable[str]
        if root.is_dir():
            names = (path.relative_to(root).as_posix() for path in root.rglob("*.class"))
        else:
            import zipfile

            with zipfile.ZipFile(root) as jar:
                names = [entry for entry in jar.namelist() if not entry.startswith("META-INF/")]
        for name in names:
            if name.endswith(".class"):
                package, _, simple = name[: -len(".class")].rpartition("/")
                patterns.add(package.replace("/", ".") + ".*" if package else simple)
    return ":".join(sorted(patterns)) or "covgen.nothing.measured"


def readable_by_others(path: Path) -> bool:
    """Whether any user can reach and read `path` (its folders passable, it readable)."""
    if any(not parent.stat().st_mode & stat.S_IXOTH for parent in path.parents):
        return False
    wanted = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
    return path.stat().st_mode & wanted == wanted


def _fresh(parent: Path, prefix: str) -> Path:
    """A new folder `prefix`-N in `parent`: runners and waves sharing a workspace never meet."""
    for number in itertools.count(1):
        try:
            (folder := parent / f"{prefix}-{number}").mkdir()
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _classpath(entries: Sequence[Path]) -> str:
    return os.pathsep.join(str(entry) for entry in entries)


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.lstrip().startswith("at ")]
    return lines[-1] if lines else "no output"
