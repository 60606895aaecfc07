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
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from covgen.engines import Engine, Proposal, Target
from covgen.errors import BackendError, CovgenError, SourceError
from covgen.languages import find_units
from covgen.model import Candidate, CodeUnit, CoverageReport, Gap, TestVerdict, Verdict
from covgen.project import ProjectFacts
from covgen.prompts.context import build_context
from covgen.runners.pytest_runner import PytestRunner, TestOutcome
from covgen.sandbox import SandboxPolicy, Workspace, probe
from covgen.sources import read_source
from covgen.validate import Validator, select
from covgen.writer import AcceptedTest, module_name, owned_by_covgen, render_files, test_path_for, write_files

__all__ = ["RunOptions", "RunSummary", "GapOutcome", "Rejection", "run_pipeline", "build_targets"]

#: Called as gaps finish: (done, total, message).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    root: Path
    test_dir: str = "tests/covgen"
    python: str = sys.executable
    runs: int = 3
    max_attempts: int = 2
    test_timeout: float = 10.0
    budget_seconds: float | None = None
    concurrency: int = 32
    batch_window: float = 0.2
    max_batch: int = 128
    sandbox: str = "auto"
    write: bool = True


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


def build_targets(gaps: Sequence[Gap], root: Path, facts: ProjectFacts, *, with_context: bool) -> tuple[list[Target], list[str]]:
    """Read each file once, parse its units once, and build a Target per gap (grouped by file)."""
    targets: list[Target] = []
    warnings: list[str] = []
    sources: dict[str, tuple[str, tuple[CodeUnit, ...]]] = {}
    for gap in sorted(gaps, key=lambda g: (g.path, g.start_line)):
        if gap.path not in sources:
            try:
                text = read_source(root, gap.path)
                sources[gap.path] = (text, tuple(find_units("python", text, gap.path)))
            except SourceError as err:  # one unreadable file must not stop the others
                warnings.append(f"{err}; skipped")
                sources[gap.path] = ("", ())
        text, units = sources[gap.path]
        if not text or not gap.path.endswith(".py"):
            continue
        context = build_context(gap, text, units, facts) if with_context else None
        targets.append(Target(gap=gap, module=module_name(gap.path), source=text, units=units, context=context))
    return targets, warnings


class _Batcher:
    """Gather candidates from concurrent gap tasks into waves; validate one wave at a time."""

    def __init__(self, validator: Validator, window: float, max_batch: int, workers: int = 1) -> None:
        self.validator = validator
        self.window = window
        self.max_batch = max_batch
        self.workers = workers
        self.pending: list[tuple[list[Candidate], asyncio.Future[list[TestVerdict]]]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.seconds = 0.0
        self.waves = 0

    async def submit(self, candidates: list[Candidate]) -> list[TestVerdict]:
        future: asyncio.Future[list[TestVerdict]] = asyncio.get_running_loop().create_future()
        self.pending.append((candidates, future))
        self.tasks = {task for task in self.tasks if not task.done()}
        if len(self.tasks) < self.workers:
            self.tasks.add(asyncio.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        while self.pending:
            await asyncio.sleep(self.window)
            wave: list[tuple[list[Candidate], asyncio.Future[list[TestVerdict]]]] = []
            size = 0
            while self.pending and (not wave or size + len(self.pending[0][0]) <= self.max_batch):
                item = self.pending.pop(0)
                wave.append(item)
                size += len(item[0])
            started = time.monotonic()
            try:
                verdicts = await self.validator.validate([c for candidates, _ in wave for c in candidates])
            except Exception as err:  # noqa: BLE001 - hand the failure to every waiting gap task
                for _, future in wave:
                    if not future.done():
                        future.set_exception(err)
                continue
            finally:
                self.seconds += time.monotonic() - started
                self.waves += 1
            by_candidate: dict[str, list[TestVerdict]] = {}
            for verdict in verdicts:
                by_candidate.setdefault(verdict.candidate_id, []).append(verdict)
            for candidates, future in wave:
                if not future.done():
                    future.set_result([v for c in candidates for v in by_candidate.get(c.id, [])])


class _Generation:
    """The gap tasks of a run: propose, validate in waves, repair with the error; what they found."""

    def __init__(self, batcher: _Batcher, options: RunOptions, deadline: float | None, progress: Progress) -> None:
        self.batcher = batcher
        self.options = options
        self.deadline = deadline
        self.progress = progress
        self.verdicts: list[TestVerdict] = []
        self.candidates: dict[str, Candidate] = {}
        self.usage = {"prompt": 0, "completion": 0, "cached": 0, "model_seconds": 0.0}
        self.warnings: list[str] = []
        #: Gaps the budget kept from being attempted, or from their last answer.
        self.cut_short: set[str] = set()
        self._ids = itertools.count(1)

    async def run_phase(self, engine: Engine, targets: Sequence[Target]) -> None:
        done = itertools.count(1)
        # Engines bound their own work (the HTTP backend its requests in flight, the explorer
        # its probes per core). Gap tasks waiting on a validation wave must not hold those
        # slots, or the server idles while the sandbox works; this bound only keeps very large
        # runs from starting every task at once.
        semaphore = asyncio.Semaphore(self.options.concurrency * 8)

        async def bounded(target: Target) -> None:
            async with semaphore:
                kept = await self._close_gap(engine, target)
            self.progress(next(done), len(targets), f"{engine.name}: {target.gap.id}: {kept} test(s) pass with new coverage")

        tasks = [asyncio.ensure_future(bounded(target)) for target in targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            # A fatal error in one gap ends the phase: the others stop, and their errors are reaped.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_gap(self, engine: Engine, target: Target) -> int:
        """Work on one gap until a test passes with new coverage or attempts run out; return how many did."""
        proposal = await self._ask(target, lambda: engine.propose(target))
        attempt = 1
        while proposal is not None and proposal.sources:
            batch = [Candidate(f"c{next(self._ids):04d}", target.gap.id, engine.name, attempt, s) for s in proposal.sources]
            self.candidates.update((c.id, c) for c in batch)
            results = await self.batcher.submit(batch)
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
            proposal = await asyncio.wait_for(call(), timeout=remaining)
        except asyncio.TimeoutError:
            self.cut_short.add(target.gap.id)
            return None
        except BackendError as err:
            if err.fatal:
                raise
            self.warnings.append(f"{target.gap.id}: {err}")
            return None
        self.usage["prompt"] += proposal.prompt_tokens
        self.usage["completion"] += proposal.completion_tokens
        self.usage["cached"] += proposal.cached_tokens
        self.usage["model_seconds"] += proposal.seconds
        self.warnings.extend(note for note in proposal.notes if note not in self.warnings)
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
    targets, warnings = build_targets(gaps, options.root, facts, with_context=engines[0].name != "explore")
    _refuse_foreign_files(targets, options)
    seconds: dict[str, float] = {}
    written: list[str] = []
    description = ", then ".join(engine.describe() for engine in engines)
    try:
        with Workspace(options.root) as workspace:
            runner = PytestRunner(
                workspace, python=options.python, policy=SandboxPolicy(network=options.sandbox),
                test_timeout=options.test_timeout, layers=layers,
            )
            await runner.check_interpreter()
            gap_by_id = {t.gap.id: t.gap for t in targets}
            existing = {t.gap.path: facts.tests_of(t.module) for t in targets}
            validator = Validator(runner, gap_by_id, runs=options.runs, existing_tests=existing)
            # One validation wave per core: pytest processes are CPU-bound, the model is not.
            batcher = _Batcher(validator, options.batch_window, options.max_batch, workers=max(1, os.cpu_count() or 1))
            generation = _Generation(batcher, options, deadline, progress)
            seconds["prepare"] = time.monotonic() - started

            phase_targets = targets
            for phase, engine in enumerate(engines):
                if phase > 0:
                    phase_targets, more = _remaining(targets, generation.verdicts, options.root, facts, with_context=engine.name != "explore")
                    warnings.extend(more)
                    gap_by_id.update((t.gap.id, t.gap) for t in phase_targets)
                await generation.run_phase(engine, phase_targets)
            warnings.extend(generation.warnings)
            if generation.cut_short:
                warnings.append(f"--budget-seconds {options.budget_seconds:g} reached: {len(generation.cut_short)} gap(s) not attempted "
                                "or cut short; what was proven before that is kept")
            seconds["generate+validate"] = time.monotonic() - started - seconds["prepare"]
            seconds["engine (busy)"] = generation.usage["model_seconds"]
            seconds["sandbox (busy)"] = batcher.seconds

            writing_started = time.monotonic()
            original = {t.gap.id: t.gap for t in targets}
            contents, verdicts, confirmed = await _confirm(
                generation.verdicts, generation.candidates, original, workspace, runner, options, f"engine: {description}"
            )
            if contents and options.write:
                written = write_files(options.root, contents)
            seconds["confirm+write"] = time.monotonic() - writing_started
    finally:
        for engine in engines:
            await engine.aclose()
    seconds["total"] = time.monotonic() - started
    return _summarise(report, targets, description, engine_reason, layers.describe(), verdicts, confirmed, written,
                      generation.usage, seconds, warnings, len(generation.candidates))


def _refuse_foreign_files(targets: list[Target], options: RunOptions) -> None:
    """Fail before any work when a file covgen would write exists and is not covgen's."""
    for path in sorted({test_path_for(t.gap.path, options.test_dir) for t in targets}):
        if (options.root / path).exists() and not owned_by_covgen(options.root / path):
            raise CovgenError(f"{path} exists and was not written by covgen; not touching it (move it, or pass --test-dir)", slug="not-ours")


def _remaining(
    targets: list[Target], verdicts: list[TestVerdict], root: Path, facts: ProjectFacts, *, with_context: bool
) -> tuple[list[Target], list[str]]:
    """The gaps narrowed to the lines and arcs no passing test reached yet."""
    narrowed = []
    for target in targets:
        gap = target.gap
        reached = [v for v in verdicts if v.gap_id == gap.id and v.verdict is Verdict.ACCEPTED]
        lines = tuple(line for line in gap.uncovered_lines if not any(line in v.gained_lines for v in reached))
        arcs = tuple(arc for arc in gap.missing_arcs if not any(arc in v.gained_arcs for v in reached))
        if lines or arcs:
            branch_lines = {arc[0] for arc in arcs}
            narrowed.append(replace(
                gap, uncovered_lines=lines, missing_arcs=arcs,
                missed_branches=tuple(b for b in gap.missed_branches if b.line in branch_lines or not gap.missing_arcs),
            ))
    return build_targets(narrowed, root, facts, with_context=with_context)


async def _confirm(
    verdicts: list[TestVerdict],
    candidates: dict[str, Candidate],
    gaps: dict[str, Gap],
    workspace: Workspace,
    runner: PytestRunner,
    options: RunOptions,
    provenance: str,
) -> tuple[dict[str, str], list[TestVerdict], dict[str, tuple[frozenset[int], frozenset[tuple[int, int]]]]]:
    """Select, then run the files as they will be written, together, with coverage.

    A chosen test that fails there becomes FLAKY and selection runs again without it, so a
    test it had made REDUNDANT can take its place. Returns the files' contents, every verdict
    (final), and the lines and arcs the confirming run covered.
    """
    failed: list[TestVerdict] = []
    for _ in range(3):
        selected = select(_without(verdicts, failed))
        chosen = [v for v in selected if v.verdict is Verdict.ACCEPTED]
        if not chosen:
            return {}, selected + failed, {}
        tests = [AcceptedTest(v, candidates[v.candidate_id], gaps[v.gap_id]) for v in chosen]
        contents, names = render_files(tests, options.root, test_dir=options.test_dir, provenance=provenance)
        for relative, text in contents.items():
            destination = workspace.path / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(text, encoding="utf-8")
        run = await runner.run(sorted(contents), coverage_of=sorted({g.path for g in gaps.values()}), per_test=False)
        outcome = {v: run.outcomes.get(names[(v.candidate_id, v.test_name)]) for v in chosen}
        failing = [v for v, o in outcome.items() if o is None or o.outcome != "passed"]
        if not failing and not run.collect_errors:
            # The whole run counts, import time included: a module no test imported before has
            # its def lines covered now too.
            measured = set(run.lines) | set(run.arcs)
            return contents, selected + failed, {p: (run.lines.get(p, frozenset()), run.arcs.get(p, frozenset())) for p in measured}
        failed += [
            replace(v, verdict=Verdict.FLAKY, message=f"passed its runs, then {_state(outcome[v])} in the written file beside the other accepted tests")
            for v in (failing or chosen)  # a file that does not import fails all it holds
        ]
    unconfirmed = [replace(v, verdict=Verdict.FLAKY, message="not confirmed: the written files kept failing together")
                   for v in _without(chosen, failed)]
    return {}, _without(selected, failed + unconfirmed) + failed + unconfirmed, {}


def _without(verdicts: list[TestVerdict], removed: list[TestVerdict]) -> list[TestVerdict]:
    gone = {(v.candidate_id, v.test_name) for v in removed}
    return [v for v in verdicts if (v.candidate_id, v.test_name) not in gone]


def _state(outcome: TestOutcome | None) -> str:
    if outcome is None:
        return "did not run (its file did not import)"
    return outcome.outcome + (f": {outcome.message.strip().splitlines()[-1]}" if outcome.message.strip() else "")


def _repair_feedback(batch: list[Candidate], results: list[TestVerdict], gap: Gap) -> tuple[int | None, str]:
    """Pick the most promising rejected answer and say precisely what went wrong with it."""
    order = {Verdict.NO_GAIN: 0, Verdict.FAILED: 1, Verdict.COMPILE_ERROR: 2, Verdict.SYNTAX_ERROR: 3, Verdict.TIMEOUT: 4, Verdict.FLAKY: 5}
    repairable = [v for v in results if v.verdict in order]
    if not repairable:
        return None, ""
    best = min(repairable, key=lambda v: order[v.verdict])
    index = next(i for i, c in enumerate(batch) if c.id == best.candidate_id)
    lines = [f"{v.test_name or 'the module'}: {v.verdict.value}: {v.message}" for v in results if v.candidate_id == best.candidate_id]
    still = ", ".join(map(str, gap.uncovered_lines)) or "(branches only)"
    return index, "\n".join(lines) + f"\n\nLines still not covered in {gap.qualname}: {still}."


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
    verdicts: list[TestVerdict],
    confirmed: dict[str, tuple[frozenset[int], frozenset[tuple[int, int]]]],
    written: list[str],
    usage: dict[str, float],
    seconds: dict[str, float],
    warnings: list[str],
    candidate_count: int,
) -> RunSummary:
    accepted = [v for v in verdicts if v.verdict is Verdict.ACCEPTED]
    covered_lines = sum(len(f.covered_lines) for f in report.files)
    measured = covered_lines + sum(len(f.uncovered_lines) for f in report.files)
    covered_branches = sum(b.covered for f in report.files for b in f.branches)
    total_branches = sum(b.total for f in report.files for b in f.branches)
    new_lines = 0
    new_arcs = 0
    if accepted:
        for file in report.files:
            lines, arcs = confirmed.get(file.path, (frozenset(), frozenset()))
            new_lines += len(lines.intersection(file.uncovered_lines))
            new_arcs += len(arcs.intersection(file.missing_arcs))
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
        outcomes.append(GapOutcome(
            target.gap.id, tuple(v.test_name for v in kept),
            tuple(sorted({line for v in kept for line in v.gained_lines})), len({arc for v in kept for arc in v.gained_arcs}), per,
            tuple(Rejection(v.candidate_id, v.test_name, v.verdict.value, _short(v.message)) for v in mine if v.verdict is not Verdict.ACCEPTED),
        ))
    return RunSummary(
        engine=description, engine_reason=engine_reason, sandbox=sandbox, gaps_targeted=len(targets),
        candidates=candidate_count, verdicts=counts, accepted=len(accepted), files_written=tuple(written),
        lines_before=(covered_lines, measured), lines_after=(covered_lines + new_lines, measured),
        branches_before=(covered_branches, total_branches), branches_after=(covered_branches + new_arcs, total_branches),
        prompt_tokens=int(usage["prompt"]), completion_tokens=int(usage["completion"]), cached_tokens=int(usage["cached"]),
        seconds={k: round(v, 2) for k, v in seconds.items()}, gaps=tuple(outcomes), warnings=tuple(warnings),
    )
