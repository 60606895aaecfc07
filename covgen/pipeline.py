"""``covgen run``: gaps → candidates → the funnel → a minimal set → confirmed files → summary.

Every gap is its own task (:class:`_Generation`): propose, validate, repair with the error, up
to ``max_attempts``, within ``budget_seconds``; engines bound their own calls. Candidates from all tasks meet in a :class:`_Batcher`, which runs
them through the funnel in one pytest process per wave — so the sandbox validates one wave while
the model is still writing the next. The accepted tests are rendered into their files, run once
more together with coverage in the sandbox, and only then written into the user's tree; a test
that fails there gives way to an equivalent one selection had set aside.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from covgen import defaults
from covgen.engines import Engine, Proposal, Target
from covgen.errors import BackendError, CovgenError, SourceError
from covgen.languages import LanguagePack, find_units, pack_for, pack_named
from covgen.model import Candidate, CodeUnit, CoverageReport, Gap, TestVerdict, Verdict
from covgen.project import ProjectFacts
from covgen.runners import TestRunner
from covgen.confirm import CleanRun, clean_run, digest
from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace, probe
from covgen.screen import Screen, ScreenMode
from covgen.shard import ShardInfo
from covgen.sources import read_source
from covgen.side_by_side import side_by_side
from covgen.validate import Validator, select
from covgen.writer import AcceptedTest, covgen_files, owned_by_covgen, write_files

__all__ = ["RunOptions", "RunSummary", "GapOutcome", "Rejection", "run_pipeline", "build_targets"]

T = TypeVar("T")
#: Called as gaps finish: (done, total, message).
Progress = Callable[[int, int, str], None]
#: Root-relative path → the lines and arcs some run covered in it.
Covered = dict[str, tuple[frozenset[int], frozenset[tuple[int, int]]]]


@dataclass(frozen=True, slots=True)
class RunOptions:
    root: Path
    test_dir: str = defaults.TEST_DIR
    python: str = sys.executable
    runs: int = defaults.RUNS
    max_attempts: int = defaults.MAX_ATTEMPTS
    test_timeout: float = defaults.TEST_TIMEOUT
    budget_seconds: float | None = None
    concurrency: int = defaults.CONCURRENCY
    batch_window: float = 0.2
    max_batch: int = 128
    sandbox: str = "auto"
    write: bool = True
    #: strict (the allowlist) or permissive (the old denylist); see covgen.screen.
    screen: ScreenMode = "strict"
    #: Java: the test classpath (``--classpath``), else found from the build; see covgen.languages.java_build.
    classpath: str | None = None
    #: Java: the root-relative folder of the production sources, when not ``src/main/java``.
    source_root: str | None = None
    jacoco_agent: Path | None = None
    junit_launcher: Path | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one candidate test (or module, test "") was not kept — for the user, not the model."""

    candidate_id: str
    test: str
    verdict: str
    message: str


@dataclass(frozen=True, slots=True)
class GapOutcome:
    gap_id: str
    accepted_tests: tuple[str, ...]
    gained_lines: tuple[int, ...]
    gained_branches: int
    verdicts: dict[str, int]
    rejected: tuple[Rejection, ...] = ()
    #: ``ACCEPTED``; else the verdict of the candidate that came closest, or ``NO_CANDIDATE``.
    outcome: str = "ACCEPTED"
    #: Why no test was kept, for every gap without one.
    reason: str = ""
    #: What the engine said about this gap (what exploration saw, inputs it would not pin).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileGain:
    """Lines and arcs of one file counted covered beyond what the report says, before and after the run.

    Kept as line numbers, not counts: `covgen merge` unites shards' gains per file, and a test
    written by one shard may cover lines in a file another shard owns.
    """

    path: str
    lines_before: tuple[int, ...]
    lines_after: tuple[int, ...]
    arcs_before: tuple[tuple[int, int], ...]
    arcs_after: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class RunSummary:
    engine: str
    engine_reason: str
    sandbox: str
    gaps_targeted: int
    candidates: int
    verdicts: dict[str, int]
    accepted: int
    files_written: tuple[str, ...]
    lines_before: tuple[int, int]
    lines_after: tuple[int, int]
    branches_before: tuple[int, int]
    branches_after: tuple[int, int]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    seconds: dict[str, float]
    gaps: tuple[GapOutcome, ...]
    warnings: tuple[str, ...] = ()
    #: Per file, what the totals above add to the report's own coverage.
    files: tuple[FileGain, ...] = ()
    #: Set for a ``--shard I/N`` run (and a merge of shards).
    shard: ShardInfo | None = None


def build_targets(gaps: Sequence[Gap], root: Path, facts: ProjectFacts, *, with_context: bool) -> tuple[list[Target], list[str]]:
    """Read each file once, parse its units once, and build a Target per gap (grouped by file)."""
    targets: list[Target] = []
    warnings: list[str] = []
    sources: dict[str, tuple[str, tuple[CodeUnit, ...]]] = {}
    for gap in sorted(gaps, key=lambda g: (g.path, g.start_line)):
        pack = pack_for(gap.path)
        if pack is None or pack.not_yet:
            continue  # covgen.api names these gaps; the pipeline is only given what it can fill
        if gap.path not in sources:
            try:
                text = read_source(root, gap.path)
                sources[gap.path] = (text, tuple(find_units(pack.name, text, gap.path)))
            except SourceError as err:  # one unreadable file must not stop the others
                warnings.append(f"{err}; skipped")
                sources[gap.path] = ("", ())
        text, units = sources[gap.path]
        if not text:
            continue
        context = pack.context(gap, text, units, facts) if with_context else None
        targets.append(Target(gap=gap, module=pack.module_name(gap.path), source=text, units=units, context=context, language=pack.name))
    return targets, warnings


class InUse:
    """Wall-clock seconds during which at least one piece of some work was in progress.

    Summing each call's own time would count a minute of 32 concurrent requests as 32 minutes;
    this counts it as one, so the figure compares with the run's total.
    """

    def __init__(self) -> None:
        self.active = 0
        self.since = 0.0
        self.seconds = 0.0

    def __enter__(self) -> None:
        if self.active == 0:
            self.since = time.monotonic()
        self.active += 1

    def __exit__(self, *exc: object) -> None:
        self.active -= 1
        if self.active == 0:
            self.seconds += time.monotonic() - self.since


class _Batcher:
    """Gather candidates from concurrent gap tasks into waves and validate them.

    Each of `workers` takes a wave, and takes the next one as soon as this wave's first runs have
    settled what they can: a gap whose answers all failed hears so, and asks for its repair,
    without waiting for reruns of tests that already passed. Those go on beside the next wave
    (the validator reruns what the waves waiting for reruns kept, together).
    """

    def __init__(self, validator: Validator, window: float, max_batch: int, workers: int = 1, engine_calls: InUse | None = None) -> None:
        self.validator = validator
        self.window = window
        #: Engine calls in flight: while there are none, no more candidates are on their way.
        self.engine_calls = engine_calls or InUse()
        self.max_batch = max_batch
        self.workers = workers
        self.pending: list[tuple[list[Candidate], asyncio.Future[list[TestVerdict]]]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        #: Every wave being validated: in its first runs (one per worker) or waiting for its reruns.
        self.validating: set[asyncio.Task[None]] = set()
        self.in_use = InUse()
        self.waves = 0
        #: Waves not yet past their first runs.
        self.first_running = 0
        #: Candidates submitted and not yet handed back, by their future.
        self.outstanding: dict[asyncio.Future[list[TestVerdict]], list[Candidate]] = {}
        #: A candidate's verdicts as they stand while its wave reruns: final, or what reruns may change.
        self.standing: dict[str, list[TestVerdict]] = {}

    async def submit(self, candidates: list[Candidate]) -> list[TestVerdict]:
        future: asyncio.Future[list[TestVerdict]] = asyncio.get_running_loop().create_future()
        self.pending.append((candidates, future))
        self.outstanding[future] = candidates
        self.tasks = {task for task in self.tasks if not task.done()}
        if len(self.tasks) < self.workers:
            self.tasks.add(asyncio.create_task(self._drain()))
        try:
            return await future
        finally:
            del self.outstanding[future]

    def only_reruns_left(self) -> list[TestVerdict] | None:
        """The verdicts of every candidate not yet handed back, as they stand, when all that is
        left of them is reruns of tests that passed their first run; else None."""
        if self.pending or self.first_running or any(future.done() for future in self.outstanding):
            return None
        candidates = [c for batch in self.outstanding.values() for c in batch]
        if not all(c.id in self.standing for c in candidates):
            return None
        return [v for c in candidates for v in self.standing[c.id]]

    async def _drain(self) -> None:
        while self.pending:
            # Wait for candidates answered at about the same time to join the wave, unless no
            # engine call is in flight (a run's last answers): then waiting only delays it.
            await asyncio.sleep(self.window if self.engine_calls.active else 0)
            if not self.pending:
                break  # the other workers took them
            wave: list[tuple[list[Candidate], asyncio.Future[list[TestVerdict]]]] = []
            size = 0
            while self.pending and (not wave or size + len(self.pending[0][0]) <= self.max_batch):
                item = self.pending.pop(0)
                wave.append(item)
                size += len(item[0])
            first_runs_done = asyncio.Event()
            self.first_running += 1
            validation = asyncio.create_task(self._validate(wave, first_runs_done))
            self.validating.add(validation)
            validation.add_done_callback(self.validating.discard)
            waiting = asyncio.create_task(first_runs_done.wait())
            try:
                await asyncio.wait([validation, waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

    async def _validate(self, wave: list[tuple[list[Candidate], asyncio.Future[list[TestVerdict]]]],
                        first_runs_done: asyncio.Event) -> None:
        """Validate one wave and hand each gap task its verdicts (or the wave's failure)."""
        settled: dict[str, list[TestVerdict]] = {}

        def first_runs_over() -> None:
            if not first_runs_done.is_set():
                first_runs_done.set()
                self.first_running -= 1

        def resolve(found: list[TestVerdict]) -> None:
            # A gap task waits only for its own candidates: one whose answers all failed
            # asks for its repair while the reruns of the others still run.
            settled.update(_by_candidate(found))
            self.standing.update(settled)
            for candidates, future in wave:
                if not future.done() and all(c.id in settled for c in candidates):
                    future.set_result([v for c in candidates for v in settled[c.id]])
            first_runs_over()

        def rerunning(found: list[TestVerdict]) -> None:
            self.standing.update(_by_candidate(found))

        wave_candidates = [c for candidates, _ in wave for c in candidates]
        try:
            with self.in_use:
                verdicts = await self.validator.validate(wave_candidates, resolve, rerunning)
        except Exception as err:  # noqa: BLE001 - hand the failure to every waiting gap task
            for _, future in wave:
                if not future.done():
                    future.set_exception(err)
            return
        except BaseException:
            for _, future in wave:  # stopped: no gap task may wait for this wave for ever
                future.cancel()
            raise
        finally:
            self.waves += 1
            first_runs_over()
            for candidate in wave_candidates:
                self.standing.pop(candidate.id, None)
        by_candidate = _by_candidate(verdicts)
        for candidates, future in wave:
            if not future.done():
                future.set_result([v for c in candidates for v in by_candidate.get(c.id, [])])

    async def aclose(self) -> None:
        """Stop the waves still running and wait for them: their sandboxes are killed and their
        pipes closed while the event loop and the workspace still exist."""
        running = [*self.tasks, *self.validating]
        for task in running:
            task.cancel()
        try:
            await asyncio.gather(*running, return_exceptions=True)
        finally:
            self.tasks.clear()
            self.validating.clear()
            await self.validator.aclose()


def _by_candidate(verdicts: Iterable[TestVerdict]) -> dict[str, list[TestVerdict]]:
    """`verdicts` grouped by candidate, in their order."""
    grouped: dict[str, list[TestVerdict]] = {}
    for verdict in verdicts:
        grouped.setdefault(verdict.candidate_id, []).append(verdict)
    return grouped


class _Generation:
    """The gap tasks of a run: propose, validate in waves, repair with the error; what they found."""

    def __init__(self, batcher: _Batcher, options: RunOptions, deadline: float | None, progress: Progress, engine_calls: InUse) -> None:
        self.batcher = batcher
        self.options = options
        self.deadline = deadline
        self.progress = progress
        self.verdicts: list[TestVerdict] = []
        self.candidates: dict[str, Candidate] = {}
        self.usage = {"prompt": 0, "completion": 0, "cached": 0}
        #: Wall-clock time with at least one engine call in flight (not the sum of their times).
        self.engine_in_use = engine_calls
        self.warnings: list[str] = []
        #: Gaps the budget kept from being attempted, or from their last answer.
        self.cut_short: set[str] = set()
        #: What the engine said about a gap (why it proposed nothing, a refused request).
        self.notes: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        #: Gap tasks of the phase not yet done, and those of them waiting for a wave's verdicts.
        self.open = 0
        self.waiting = 0

    async def run_phase(self, engine: Engine, targets: Sequence[Target]) -> None:
        done = itertools.count(1)
        # Engines bound their own work (the HTTP backend its requests in flight, the explorer
        # its probes per core). Gap tasks waiting on a validation wave must not hold those
        # slots, or the server idles while the sandbox works; this bound only keeps very large
        # runs from starting every task at once.
        semaphore = asyncio.Semaphore(self.options.concurrency * 8)

        async def bounded(target: Target) -> None:
            try:
                async with semaphore:
                    kept = await self._close_gap(engine, target)
            finally:
                self.open -= 1
            self.progress(next(done), len(targets), f"{engine.name}: {target.gap.id}: {kept} test(s) pass with new coverage")

        self.open = len(targets)
        # A fatal error in one gap ends the phase: the others stop, and their errors are reaped.
        await side_by_side([bounded(target) for target in targets])

    async def _close_gap(self, engine: Engine, target: Target) -> int:
        """Work on one gap until a test passes with new coverage or attempts run out; return how many did."""
        proposal = await self._ask(target, lambda: engine.propose(target))
        attempt = 1
        while proposal is not None and proposal.sources:
            batch = [Candidate(f"c{next(self._ids):04d}", target.gap.id, engine.name, attempt, s) for s in proposal.sources]
            self.candidates.update((c.id, c) for c in batch)
            self.waiting += 1
            try:
                results = await self.batcher.submit(batch)
            finally:
                self.waiting -= 1
            self.verdicts.extend(results)
            kept = sum(1 for v in results if v.verdict is Verdict.ACCEPTED)
            if kept or attempt >= self.options.max_attempts:
                return kept
            index, feedback = _repair_feedback(batch, results, target.gap)
            if index is None:
                return 0
            previous = proposal
            proposal = await self._ask(target, lambda: engine.repair(target, previous, index, feedback))
            attempt += 1
        return 0

    async def _ask(self, target: Target, call: Callable[[], Coroutine[Any, Any, Proposal]]) -> Proposal | None:
        """The engine's answer; None once the budget is spent (an answer in flight is dropped) or
        when the engine could not answer this gap (noted; a fatal backend error ends the run)."""
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            self.cut_short.add(target.gap.id)
            return None
        try:
            with self.engine_in_use:
                proposal = await asyncio.wait_for(call(), timeout=remaining)
        except asyncio.TimeoutError:
            self.cut_short.add(target.gap.id)
            return None
        except BackendError as err:
            if err.fatal:
                raise
            self.warnings.append(f"{target.gap.id}: {err}")
            self.notes.setdefault(target.gap.id, []).append(f"the model server refused the request: {err}")
            return None
        self.usage["prompt"] += proposal.prompt_tokens
        self.usage["completion"] += proposal.completion_tokens
        self.usage["cached"] += proposal.cached_tokens
        # A note about this gap belongs to its outcome; any other (answers cut off at the token
        # limit, say) is the run's, said once.
        prefix = f"{target.gap.id}: "
        self.notes.setdefault(target.gap.id, []).extend(note.removeprefix(prefix) for note in proposal.notes if note.startswith(prefix))
        self.warnings.extend(note for note in proposal.notes if not note.startswith(prefix) and note not in self.warnings)
        return proposal


async def run_pipeline(
    report: CoverageReport,
    gaps: Sequence[Gap],
    engines: Sequence[Engine],
    options: RunOptions,
    *,
    engine_reason: str = "",
    progress: Progress = lambda done, total, message: None,
) -> RunSummary:
    """Run `engines` in phases over `gaps`: each later phase works on what is still uncovered."""
    started = time.monotonic()
    deadline = started + options.budget_seconds if options.budget_seconds else None
    layers = probe()
    facts = ProjectFacts(options.root, options.test_dir)
    with_context = engines[0].name != "explore"
    targets, warnings = build_targets(gaps, options.root, facts, with_context=False)
    _refuse_foreign_files(targets, options)
    seconds: dict[str, float] = {}
    written: list[str] = []
    description = ", then ".join(engine.describe() for engine in engines)
    try:
        with Workspace(options.root) as workspace:
            # Every target of a run is in a language the run can fill: Python, so far.
            pack = targets[0].pack if targets else _python()
            runner = pack.runner(workspace, options=options, layers=layers)
            # Prompts need the runner's view of the project's test libraries (Java's classpath).
            facts.test_libraries = runner.test_libraries
            # The interpreter's check (a process of its own, on another core) runs while the
            # prompts are built; sleep(0) lets it start first.
            checking = asyncio.ensure_future(runner.check_interpreter())
            await asyncio.sleep(0)
            try:
                if with_context:
                    targets = [replace(t, context=t.pack.context(t.gap, t.source, t.units, facts)) for t in targets]
                await checking
            finally:
                checking.cancel()  # still running only when building the prompts failed
                await asyncio.gather(checking, return_exceptions=True)
            earlier, targets, more = await _credit_earlier_tests(targets, runner, options, facts, with_context=with_context)
            warnings.extend(more)
            gap_by_id = {t.gap.id: t.gap for t in targets}
            existing = {t.gap.path: pack.existing_tests(facts, t.module) for t in targets}
            screen = pack.screen(options.screen, workspace.path, [t.module for t in targets])
            validator = Validator(runner, gap_by_id, runs=options.runs, existing_tests=existing, screen=screen, pack=pack)
            # One validation wave per core: pytest processes are CPU-bound, the model is not.
            engine_calls = InUse()
            batcher = _Batcher(validator, options.batch_window, options.max_batch, workers=max(1, os.cpu_count() or 1),
                               engine_calls=engine_calls)
            generation = _Generation(batcher, options, deadline, progress, engine_calls)
            original = {t.gap.id: t.gap for t in targets}
            user_tests = sorted({test for t in targets for test in existing.get(t.gap.path, ())})

            def confirm(verdicts: list[TestVerdict], candidates: dict[str, Candidate]) -> Coroutine[Any, Any, _Confirmed]:
                return _confirm(verdicts, candidates, original, options, f"engine: {description}", user_tests, runner, screen)

            speculation = _Speculation(generation, batcher, confirm)
            seconds["prepare"] = time.monotonic() - started

            phase_targets = targets
            try:
                try:
                    for phase, engine in enumerate(engines):
                        if phase > 0:
                            phase_targets, more = _remaining(targets, generation.verdicts, options.root, facts,
                                                             with_context=engine.name != "explore")
                            warnings.extend(more)
                            gap_by_id.update((t.gap.id, t.gap) for t in phase_targets)
                        if phase == len(engines) - 1:
                            speculation.start()
                        await generation.run_phase(engine, phase_targets)
                finally:
                    await batcher.aclose()
                warnings.extend(generation.warnings)
                if generation.cut_short:
                    warnings.append(f"--budget-seconds {options.budget_seconds:g} reached: {len(generation.cut_short)} gap(s) not "
                                    "attempted or cut short; what was proven before that is kept")
                seconds["generate+validate"] = time.monotonic() - started - seconds["prepare"]
                seconds["engine (in use)"] = generation.engine_in_use.seconds
                seconds["sandbox (in use)"] = batcher.in_use.seconds

                writing_started = time.monotonic()
                verdicts = _in_order(generation.verdicts)
                confirmed = await speculation.result(verdicts) or await confirm(verdicts, generation.candidates)
            finally:
                await speculation.aclose()
            if confirmed.contents and options.write:
                written = _write_confirmed(options.root, confirmed.contents)
            seconds["confirm+write"] = time.monotonic() - writing_started
    finally:
        for engine in engines:
            await engine.aclose()
    seconds["total"] = time.monotonic() - started
    return _summarise(report, targets, description, engine_reason, layers.describe(), confirmed, earlier, written,
                      generation, seconds, warnings)


class _Speculation:
    """The clean run of what a run will most likely keep, started while only reruns are left.

    Once every open gap task waits for reruns of tests that passed their first run (no engine
    call in flight, no wave in its first runs), the run's verdicts are what they will be unless a
    rerun fails. Their confirmation (the clean run, a process of its own) then starts beside the
    reruns instead of after them; it is used only if the verdicts at the end are exactly those
    and it refuted nothing (see :meth:`result`).
    """

    def __init__(self, generation: _Generation, batcher: _Batcher,
                 confirm: Callable[[list[TestVerdict], dict[str, Candidate]], Coroutine[Any, Any, _Confirmed]]) -> None:
        self.generation = generation
        self.batcher = batcher
        self.confirm = confirm
        self.verdicts: list[TestVerdict] | None = None
        self.task: asyncio.Task[_Confirmed] | None = None
        self._watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._watch = asyncio.create_task(self._wait_for_reruns_only())

    async def _wait_for_reruns_only(self) -> None:
        while True:
            await asyncio.sleep(_SPECULATION_POLL)
            generation = self.generation
            if not generation.open or generation.open != generation.waiting or generation.engine_in_use.active:
                continue
            standing = self.batcher.only_reruns_left()
            if standing is None:
                continue
            self.verdicts = _in_order([*generation.verdicts, *standing])
            self.task = asyncio.create_task(self.confirm(self.verdicts, dict(generation.candidates)))
            return

    async def result(self, verdicts: list[TestVerdict]) -> _Confirmed | None:
        """The confirmation started early, if it was of exactly `verdicts` and refuted nothing;
        else None (stopped first: it must not load the cores the confirmation that counts uses).

        A clean run that refuted a test ran beside the reruns, on busy cores: only one that
        confirmed everything may stand for the clean run after them.
        """
        await self._stop_watching()
        if self.task is None:
            return None
        if self.verdicts == verdicts:
            try:
                confirmed = await self.task
            except Exception:  # noqa: BLE001 - on busy cores; the confirmation after the reruns decides
                confirmed = None
            if confirmed is not None and not confirmed.refuted:
                return confirmed
        await self.aclose()
        return None

    async def aclose(self) -> None:
        """Stop what still runs (its sandbox ends before the workspace goes), and read how it
        ended, so an error of a confirmation nobody uses is not reported later."""
        await self._stop_watching()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _stop_watching(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)


#: How often a run looks whether only reruns are left (a clean run takes a second or more).
_SPECULATION_POLL = 0.05


def _in_order(verdicts: Sequence[TestVerdict]) -> list[TestVerdict]:
    """Verdicts in one order, whatever order waves ended in: selection breaks ties by order,
    and the same verdicts must give the same files."""
    return sorted(verdicts, key=lambda v: (v.gap_id, v.candidate_id, v.test_name))


def _python() -> LanguagePack:
    pack = pack_named("python")
    assert pack is not None
    return pack


def _pack(path: str) -> LanguagePack:
    """The pack of a file the run fills (an empty selection renders nothing, in any pack)."""
    return pack_for(path) or _python()


def _write_confirmed(root: Path, contents: dict[str, str]) -> list[str]:
    """Write the files the clean run proved, all or none, and check they hold exactly those bytes."""
    expected = {relative: digest(text) for relative, text in contents.items()}
    # A stop signal waits until every file is in place: each is written atomically, and the set whole.
    stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        written = write_files(root, contents)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    for relative, sha in expected.items():
        if digest((root / relative).read_text(encoding="utf-8")) != sha:
            raise CovgenError(f"{relative} changed while covgen wrote it; it is not the file covgen proved", slug="changed")
    return written


def _refuse_foreign_files(targets: list[Target], options: RunOptions) -> None:
    """Fail before any work when a file covgen would write exists and is not covgen's."""
    for path in sorted({t.pack.test_path(t.gap.path, options.test_dir) for t in targets}):
        if (options.root / path).exists() and not owned_by_covgen(options.root / path):
            raise CovgenError(f"{path} exists and was not written by covgen; not touching it (move it, or pass --test-dir)", slug="not-ours")


def _remaining(
    targets: list[Target], verdicts: list[TestVerdict], root: Path, facts: ProjectFacts, *, with_context: bool
) -> tuple[list[Target], list[str]]:
    """The gaps narrowed to the lines and arcs no passing test reached yet."""
    narrowed = []
    for target in targets:
        reached = [v for v in verdicts if v.gap_id == target.gap.id and v.verdict is Verdict.ACCEPTED]
        gap = _narrow(target.gap, {line for v in reached for line in v.gained_lines}, {arc for v in reached for arc in v.gained_arcs})
        if gap is not None:
            narrowed.append(gap)
    return build_targets(narrowed, root, facts, with_context=with_context)


def _narrow(gap: Gap, lines: set[int] | frozenset[int], arcs: set[tuple[int, int]] | frozenset[tuple[int, int]]) -> Gap | None:
    """`gap` without the given covered lines and arcs; None when nothing of it is left."""
    left_lines = tuple(line for line in gap.uncovered_lines if line not in lines)
    left_arcs = tuple(arc for arc in gap.missing_arcs if arc not in arcs)
    if not left_lines and not left_arcs:
        return None
    if (left_lines, left_arcs) == (gap.uncovered_lines, gap.missing_arcs):
        return gap
    branch_lines = {arc[0] for arc in left_arcs}
    return replace(
        gap, uncovered_lines=left_lines, missing_arcs=left_arcs,
        missed_branches=tuple(b for b in gap.missed_branches if b.line in branch_lines or not gap.missing_arcs),
    )


async def _credit_earlier_tests(
    targets: list[Target], runner: TestRunner, options: RunOptions, facts: ProjectFacts, *, with_context: bool
) -> tuple[Covered, list[Target], list[str]]:
    """Count what covgen's files from earlier runs cover as covered, and narrow the gaps to the rest.

    A report made before those files existed (a CI job re-run on the same report) lists their
    lines as uncovered: targeting them again would write the same tests twice and claim their
    gain twice. Only tests that pass now are counted. Returns the credited lines and arcs, the
    narrowed targets, and warnings that say what happened.
    """
    if not targets:
        return {}, targets, []
    pack = targets[0].pack
    # covgen's files in the test folder, and those it would write for these targets (a Java
    # test sits beside its package, not in one folder).
    files = sorted({*covgen_files(options.root, options.test_dir),
                    *(path for t in targets if owned_by_covgen(options.root / (path := pack.test_path(t.gap.path, options.test_dir))))})
    files = [path for path in files if path.endswith(pack.suffixes)]
    if not files:
        return {}, targets, []
    run = await runner.run(files, coverage_of=sorted({t.gap.path for t in targets}))
    failing = sorted(nodeid for nodeid, outcome in run.outcomes.items() if outcome.outcome != "passed")
    warnings = [f"{path}: covgen's earlier tests here do not import, so nothing they cover is counted" for path in sorted(run.collect_errors)]
    if failing:
        warnings.append(f"{len(failing)} of covgen's earlier tests fail now ({', '.join(failing[:3])}{' …' if len(failing) > 3 else ''}); "
                        "what they cover is not counted")
    earlier: Covered = {}
    if not failing and not run.collect_errors:
        # The whole run counts, import time included, as in the confirming run.
        earlier = {p: (run.lines.get(p, frozenset()), run.arcs.get(p, frozenset())) for p in run.lines.keys() | run.arcs.keys()}
    else:
        for outcome in run.outcomes.values():
            for path in outcome.lines.keys() | outcome.arcs.keys() if outcome.outcome == "passed" else ():
                lines, arcs = earlier.get(path, (frozenset(), frozenset()))
                earlier[path] = (lines | outcome.lines.get(path, frozenset()), arcs | outcome.arcs.get(path, frozenset()))
    narrowed = []
    touched = 0
    for target in targets:
        lines, arcs = earlier.get(target.gap.path, (frozenset(), frozenset()))
        gap = _narrow(target.gap, lines, arcs)
        touched += gap is not target.gap
        if gap is not None:
            narrowed.append(gap)
    if not touched:
        return earlier, targets, warnings
    closed = len(targets) - len(narrowed)
    warnings.append(f"the report predates covgen's tests in {', '.join(files)}: what they cover counts as covered before this run "
                    f"({closed} gap(s) they close are not targeted again, {touched - closed} narrowed to what is left)")
    rebuilt, more = build_targets(narrowed, options.root, facts, with_context=with_context)
    return earlier, rebuilt, warnings + more


@dataclass(frozen=True, slots=True)
class _Confirmed:
    """What confirming found: the files to write, every verdict (final), what the run covered."""

    contents: dict[str, str]
    verdicts: list[TestVerdict]
    covered: Covered
    #: Tests written: one test accepted for several gaps counts once.
    tests_added: int
    #: Whether a clean run refuted a test (the files are those of a later round).
    refuted: bool = False


#: Rounds of select → clean run; each drops what the clean run refuted.
_CONFIRM_ROUNDS = 3


async def _confirm(
    verdicts: list[TestVerdict],
    candidates: dict[str, Candidate],
    gaps: dict[str, Gap],
    options: RunOptions,
    provenance: str,
    existing: Sequence[str],
    runner: TestRunner,
    screen: Screen,
) -> _Confirmed:
    """Select, then prove the files as they will be written in a clean run (:mod:`covgen.confirm`).

    A chosen test that fails there is FLAKY; one whose coverage does not reproduce keeps only
    what did (NO_GAIN when nothing did); one that changes the outcome of the user's own tests is
    POLLUTING. Selection then runs again without them, so a test they had made REDUNDANT can
    take their place. A chosen test its covgen file already holds becomes REDUNDANT and is not
    written again. A file is screened again as written: tests from different answers meet there
    (one's helper, another's call).
    """
    clean = _CleanRuns(runner, sorted({g.path for g in gaps.values()}), existing)
    verdicts = list(verdicts)
    for round_number in range(_CONFIRM_ROUNDS):
        selected = select(verdicts)
        tests = [AcceptedTest(v, candidates[v.candidate_id], gaps[v.gap_id]) for v in selected if v.verdict is Verdict.ACCEPTED]
        rendered = _pack(tests[0].gap.path if tests else "").render(tests, options.root, test_dir=options.test_dir, provenance=provenance)
        selected = rendered.mark_already_written(selected)
        chosen = [v for v in selected if v.verdict is Verdict.ACCEPTED]
        if not chosen:
            return _Confirmed({}, selected, {}, 0, refuted=round_number > 0)
        contents = rendered.contents
        refused = {path: reason for path, text in contents.items() if (reason := screen.reason(text)) is not None}
        if refused:
            verdicts = [replace(v, verdict=Verdict.UNSAFE, message=f"refused in the written file beside the other accepted tests: {refused[path]}")
                        if v in chosen and (path := _pack(gaps[v.gap_id].path).test_path(gaps[v.gap_id].path, options.test_dir)) in refused else v
                        for v in verdicts]
            continue
        nodeids = {_key(v): rendered.node_ids[_key(v)] for v in chosen}
        run, polluting = await clean.check(contents, sorted(set(nodeids.values())))
        refuted: dict[tuple[str, str], TestVerdict] = {}
        for verdict in chosen:
            nodeid = nodeids[_key(verdict)]
            outcome = run.outcome(nodeid)
            if nodeid in polluting:
                refuted[_key(verdict)] = replace(verdict, verdict=Verdict.POLLUTING, message=polluting[nodeid])
            elif outcome != "passed":
                state = outcome or f"did not run ({run.problem or 'its file did not import'})"
                refuted[_key(verdict)] = replace(verdict, verdict=Verdict.FLAKY, message=(
                    f"passed its runs, then {state} in a clean run of the written file beside the other accepted tests"))
            elif (confirmed := _reproduced(verdict, run.lines.get(nodeid, {}), run.arcs.get(nodeid, {}), gaps)) != verdict:
                refuted[_key(verdict)] = confirmed
        if not refuted:
            measured = set(run.total_lines) | set(run.total_arcs)
            covered = {p: (run.total_lines.get(p, frozenset()), run.total_arcs.get(p, frozenset())) for p in measured}
            return _Confirmed(contents, selected, covered, rendered.tests_added, refuted=round_number > 0)
        verdicts = [refuted.get(_key(v), v) for v in verdicts]
    unconfirmed = [replace(v, verdict=Verdict.FLAKY, message="not confirmed: the written files kept failing in clean runs")
                   for v in select(verdicts) if v.verdict is Verdict.ACCEPTED]
    return _Confirmed({}, _without(select(verdicts), unconfirmed) + unconfirmed, {}, 0, refuted=True)


def _key(verdict: TestVerdict) -> tuple[str, str]:
    return verdict.candidate_id, verdict.test_name


def _reproduced(verdict: TestVerdict, lines: dict[str, frozenset[int]], arcs: dict[str, frozenset[tuple[int, int]]],
                gaps: dict[str, Gap]) -> TestVerdict:
    """The verdict with only the gain the clean run saw; NO_GAIN when none of it reproduced."""
    path = gaps[verdict.gap_id].path
    gained_lines = tuple(line for line in verdict.gained_lines if line in lines.get(path, frozenset()))
    gained_arcs = tuple(arc for arc in verdict.gained_arcs if arc in arcs.get(path, frozenset()))
    if (gained_lines, gained_arcs) == (verdict.gained_lines, verdict.gained_arcs):
        return verdict
    if not gained_lines and not gained_arcs:
        return replace(verdict, verdict=Verdict.NO_GAIN, gained_lines=(), gained_arcs=(),
                       message="the coverage it showed in the funnel did not reproduce in a clean run")
    return replace(verdict, gained_lines=gained_lines, gained_arcs=gained_arcs)


class _CleanRuns:
    """The clean runs of one confirmation: the new files with coverage, and the user's tests beside them."""

    def __init__(self, runner: TestRunner, coverage_of: list[str], existing: Sequence[str]) -> None:
        self.runner = runner
        self.coverage_of = coverage_of
        self.existing = list(existing)
        self._baseline: CleanRun | None = None

    async def run(self, contents: dict[str, str], args: Sequence[str], measured: Sequence[str] = ()) -> CleanRun:
        return await self.runner.clean_run(contents, args, measured, self.coverage_of)

    async def check(self, contents: dict[str, str], nodeids: list[str]) -> tuple[CleanRun, dict[str, str]]:
        """Run the new files with coverage; and the user's tests with and without them.

        Returns the coverage run and the new tests that change a user's test's outcome, with why.
        """
        files = sorted(contents)
        with_coverage = self._attributed(contents, files, nodeids)
        if not self.existing:
            return await with_coverage, {}
        together = self.run(contents, [*files, *self.existing])
        baseline = self._baseline_run()
        run, beside, before = await side_by_side([with_coverage, together, baseline])
        changed = _changed_outcomes(before, beside)
        if not changed:
            return run, {}
        # Some user tests change outcome from run to run on their own: those prove nothing.
        again = await self.run({}, self.existing)
        changed = {test: change for test, change in changed.items() if again.outcomes.get(test) == before.outcomes.get(test)}
        if not changed:
            return run, {}
        return run, await self._culprits(contents, nodeids, before)

    async def _attributed(self, contents: dict[str, str], files: list[str], nodeids: list[str]) -> CleanRun:
        """The new files' clean run; when it does not end normally, each file alone, so one costs only itself."""
        run = await self.run(contents, files, nodeids)
        if not run.problem or len(files) == 1:
            return run
        parts = [await self.run(contents, [file], [n for n in nodeids if n.startswith(file + "::")]) for file in files]
        good = [part for part in parts if not part.problem]
        return CleanRun(
            {key: outcome for part in good for key, outcome in part.outcomes.items()},
            {test: lines for part in good for test, lines in part.lines.items()},
            {test: arcs for part in good for test, arcs in part.arcs.items()},
            _union(part.total_lines for part in good), _union(part.total_arcs for part in good),
            problem=next((part.problem for part in parts if part.problem), ""), key_of=run.key_of,
        )

    async def _baseline_run(self) -> CleanRun:
        if self._baseline is None:
            self._baseline = await self.run({}, self.existing)
        return self._baseline

    async def _culprits(self, contents: dict[str, str], nodeids: list[str], before: CleanRun) -> dict[str, str]:
        """Which new tests change a user's test's outcome: each new test alone before the user's tests."""
        found: dict[str, str] = {}
        for nodeid in nodeids:
            beside = await self.run(contents, [nodeid, *self.existing])
            changed = _changed_outcomes(before, beside)
            if changed:
                test, (was, now) = next(iter(sorted(changed.items())))
                found[nodeid] = f"changes the outcome of your test {test.replace('::', '.')} ({was} → {now}) when run before it"
        # Several tests together may pollute where none does alone: then all of them are suspect.
        return found or {nodeid: "the new tests together change the outcome of your own tests" for nodeid in nodeids}


def _union(maps: Iterable[Mapping[str, frozenset[T]]]) -> dict[str, frozenset[T]]:
    merged: dict[str, frozenset[T]] = {}
    for mapping in maps:
        for key, values in mapping.items():
            merged[key] = merged.get(key, frozenset()) | values
    return merged


def _changed_outcomes(before: CleanRun, after: CleanRun) -> dict[str, tuple[str, str]]:
    """The user's tests whose outcome differs between two runs (a test that no longer ran counts)."""
    return {test: (was, after.outcomes.get(test, "not run")) for test, was in before.outcomes.items()
            if after.outcomes.get(test, "not run") != was}


def _without(verdicts: list[TestVerdict], removed: list[TestVerdict]) -> list[TestVerdict]:
    gone = {(v.candidate_id, v.test_name) for v in removed}
    return [v for v in verdicts if (v.candidate_id, v.test_name) not in gone]


def _repair_feedback(batch: list[Candidate], results: list[TestVerdict], gap: Gap) -> tuple[int | None, str]:
    """Pick the most promising rejected answer and say precisely what went wrong with it."""
    # UNSAFE last: the screen's message names the rule, which the model can follow, but an answer
    # that ran and failed is closer to a passing test.
    order = {Verdict.NO_GAIN: 0, Verdict.FAILED: 1, Verdict.COMPILE_ERROR: 2, Verdict.SYNTAX_ERROR: 3, Verdict.TIMEOUT: 4,
             Verdict.FLAKY: 5, Verdict.UNSAFE: 6}
    repairable = [v for v in results if v.verdict in order]
    if not repairable:
        return None, ""
    best = min(repairable, key=lambda v: order[v.verdict])
    index = next(i for i, c in enumerate(batch) if c.id == best.candidate_id)
    lines = [f"{v.test_name or 'the module'}: {v.verdict.value}: {v.message}" for v in results if v.candidate_id == best.candidate_id]
    still = ", ".join(map(str, gap.uncovered_lines)) or "(branches only)"
    return index, "\n".join(lines) + f"\n\nLines still not covered in {gap.qualname}: {still}."


#: Which rejection says most about a gap with no test: the candidate that came closest first.
_CLOSEST = ("REDUNDANT", "NO_GAIN", "FLAKY", "POLLUTING", "FAILED", "TIMEOUT", "COMPILE_ERROR", "SYNTAX_ERROR", "UNSAFE")


def _why_no_test(gap_id: str, kept: list[TestVerdict], rejected: tuple[Rejection, ...], generation: _Generation) -> tuple[str, str]:
    """The outcome of a gap and, when no test was kept, why: every gap says something."""
    if kept:
        return "ACCEPTED", ""
    if rejected:
        closest = min(rejected, key=lambda r: _CLOSEST.index(r.verdict) if r.verdict in _CLOSEST else len(_CLOSEST))
        return closest.verdict, closest.message
    notes = generation.notes.get(gap_id, [])
    if notes:
        return "NO_CANDIDATE", "; ".join(dict.fromkeys(notes))
    if gap_id in generation.cut_short:
        return "NO_CANDIDATE", "not attempted: --budget-seconds ran out"
    return "NO_CANDIDATE", "the engine proposed no test"


def _short(message: str, limit: int = 300) -> str:
    """A failure fit for a summary line: pytest's first ``E`` line (the error) and where it was raised."""
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    short = f"{errors[0]} ({lines[-1]})" if errors and lines[-1] != lines[0] else " ".join(line.strip() for line in lines[-2:])
    return short if len(short) <= limit else short[: limit - 1] + "…"


def _summarise(
    report: CoverageReport,
    targets: list[Target],
    description: str,
    engine_reason: str,
    sandbox: str,
    confirmed: _Confirmed,
    earlier: Covered,
    written: list[str],
    generation: _Generation,
    seconds: dict[str, float],
    warnings: list[str],
) -> RunSummary:
    verdicts = confirmed.verdicts
    covered_lines = sum(len(f.covered_lines) for f in report.files)
    measured = covered_lines + sum(len(f.uncovered_lines) for f in report.files)
    covered_branches = sum(b.covered for f in report.files for b in f.branches)
    total_branches = sum(b.total for f in report.files for b in f.branches)
    # What covgen's files from earlier runs cover is covered before this run, whatever a report
    # older than them says; after is the report plus those files plus this run's confirmed files.
    files: list[FileGain] = []
    for file in report.files:
        lines_then, arcs_then = earlier.get(file.path, (frozenset(), frozenset()))
        lines, arcs = confirmed.covered.get(file.path, (frozenset(), frozenset()))
        gain = FileGain(
            file.path, tuple(sorted(lines_then.intersection(file.uncovered_lines))),
            tuple(sorted((lines | lines_then).intersection(file.uncovered_lines))),
            tuple(sorted(arcs_then.intersection(file.missing_arcs))), tuple(sorted((arcs | arcs_then).intersection(file.missing_arcs))),
        )
        if gain.lines_after or gain.arcs_after:
            files.append(gain)
    old_lines, new_lines = sum(len(f.lines_before) for f in files), sum(len(f.lines_after) for f in files)
    old_arcs, new_arcs = sum(len(f.arcs_before) for f in files), sum(len(f.arcs_after) for f in files)
    counts: dict[str, int] = {verdict.value: 0 for verdict in Verdict}
    for verdict in verdicts:
        counts[verdict.verdict.value] += 1
    by_gap: dict[str, list[TestVerdict]] = {}
    for verdict in verdicts:
        by_gap.setdefault(verdict.gap_id, []).append(verdict)
    outcomes = []
    for target in targets:
        mine = by_gap.get(target.gap.id, [])
        kept = [v for v in mine if v.verdict is Verdict.ACCEPTED]
        per: dict[str, int] = {}
        for verdict in mine:
            per[verdict.verdict.value] = per.get(verdict.verdict.value, 0) + 1
        rejected = tuple(Rejection(v.candidate_id, v.test_name, v.verdict.value, _short(v.message))
                         for v in mine if v.verdict is not Verdict.ACCEPTED)
        outcome, reason = _why_no_test(target.gap.id, kept, rejected, generation)
        outcomes.append(GapOutcome(
            target.gap.id, tuple(v.test_name for v in kept),
            tuple(sorted({line for v in kept for line in v.gained_lines})), len({arc for v in kept for arc in v.gained_arcs}), per,
            rejected, outcome, reason, tuple(dict.fromkeys(generation.notes.get(target.gap.id, ()))),
        ))
    return RunSummary(
        engine=description, engine_reason=engine_reason, sandbox=sandbox, gaps_targeted=len(targets),
        candidates=len(generation.candidates), verdicts=counts, accepted=confirmed.tests_added, files_written=tuple(written),
        lines_before=(covered_lines + old_lines, measured), lines_after=(covered_lines + new_lines, measured),
        branches_before=(covered_branches + old_arcs, total_branches), branches_after=(covered_branches + new_arcs, total_branches),
        prompt_tokens=int(generation.usage["prompt"]), completion_tokens=int(generation.usage["completion"]),
        cached_tokens=int(generation.usage["cached"]),
        seconds={k: round(v, 2) for k, v in seconds.items()}, gaps=tuple(outcomes), warnings=tuple(warnings), files=tuple(files),
    )
