"""The acceptance funnel: every candidate test ends with exactly one :class:`Verdict`.

static screen → collect (import) → run with per-test coverage → gain on its target →
reruns (reverse order; then a fresh process beside the module's existing tests) → greedy
selection of a minimal set. Only tests that pass every run and reach target lines or branches
nothing covered before survive; :func:`select` decides which of them are needed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from covgen import defaults
from covgen.languages import LanguagePack, pack_named
from covgen.model import Candidate, Gap, TestVerdict, Verdict
from covgen.runners import TestRunner
from covgen.runners.pytest_runner import ModuleFailure, TestOutcome
from covgen.screen import Screen, project_modules
from covgen.side_by_side import side_by_side
from covgen.writer import module_name

__all__ = ["Validator", "select", "CANDIDATE_DIR"]

#: Where candidates are written inside the workspace (never in the user's tree).
CANDIDATE_DIR = ".covgen_candidates"


#: Told the final verdicts of candidates as soon as they are known (see Validator.validate).
Settled = Callable[[list[TestVerdict]], None]

#: How a module that failed before its tests ran is judged.
_MODULE_VERDICTS = {"error": Verdict.COMPILE_ERROR, "timeout": Verdict.TIMEOUT, "changed": Verdict.UNSAFE, "unsafe": Verdict.UNSAFE}


@dataclass(frozen=True, slots=True)
class _Runnable:
    candidate: Candidate
    gap: Gap
    file: str


#: Tests that passed their first run, by node id: what they are, how they ran, their verdict so far.
_Survivors = dict[str, tuple[_Runnable, TestOutcome, TestVerdict]]


class Validator:
    """Run batches of candidates through the funnel in one workspace."""

    def __init__(
        self,
        runner: TestRunner,
        gaps: Mapping[str, Gap],
        *,
        runs: int = defaults.RUNS,
        existing_tests: Mapping[str, Sequence[str]] | None = None,
        screen: Screen | None = None,
        pack: LanguagePack | None = None,
    ) -> None:
        self.runner = runner
        self.pack = pack or _python()
        # By default the strict screen, told the project's modules from the workspace and the gaps.
        self.screen = screen or Screen("strict", project_modules(runner.workspace.path, (module_name(g.path) for g in gaps.values())))
        self.gaps = gaps
        self.runs = max(1, runs)
        self.existing_tests = existing_tests or {}
        # Read-only inside the sandbox: a candidate cannot plant a conftest.py beside the others.
        self.directory = runner.workspace.covgen_folder(CANDIDATE_DIR)
        #: Survivors of waves waiting for their reruns, and the task that runs them.
        self._rerun_queue: list[_RerunRequest] = []
        self._rerunning: asyncio.Task[None] | None = None

    async def validate(self, candidates: Sequence[Candidate], settled: Settled | None = None,
                       rerunning: Settled | None = None) -> list[TestVerdict]:
        """Every candidate's verdicts. `settled` is told early of the candidates the reruns cannot
        change (none of their tests passed the first run): a gap whose every answer failed can ask
        for its repair while the other candidates' reruns still run. `rerunning` is told, when
        the reruns start, the verdicts of the others as they stand (what the reruns may change)."""
        verdicts: list[TestVerdict] = []
        runnable: list[_Runnable] = []
        first_with_source: dict[tuple[str, str], str] = {}
        copies: dict[str, str] = {}
        for candidate in candidates:
            gap = self.gaps[candidate.gap_id]
            # n samples at a low temperature are often identical: run one, and give its copies
            # the same verdicts (a copy of a passing test adds nothing: REDUNDANT).
            key = (candidate.gap_id, candidate.source.strip())
            if key in first_with_source:
                copies[candidate.id] = first_with_source[key]
                continue
            first_with_source[key] = candidate.id
            early = _static_verdict(candidate, self.screen, self.pack)
            if early is not None:
                verdicts.append(early)
                continue
            name = self.pack.candidate_file(candidate.id)
            (self.directory / name).write_text(candidate.source, encoding="utf-8")
            runnable.append(_Runnable(candidate, gap, f"{CANDIDATE_DIR}/{name}"))
        static = list(verdicts)

        def settle(found: list[TestVerdict]) -> None:
            if settled is not None:
                settled(_with_copies([*static, *found], copies))

        def standing(found: list[TestVerdict]) -> None:
            if rerunning is not None:
                rerunning(_with_copies(found, copies))

        if runnable:
            try:
                verdicts += await self._run_funnel(runnable, settle, standing)
            finally:
                for item in runnable:  # keep the workspace small for the next wave's collection
                    (self.runner.workspace.path / item.file).unlink(missing_ok=True)
        return _with_copies(verdicts, copies)

    async def _run_funnel(self, runnable: list[_Runnable], settle: Settled, standing: Settled) -> list[TestVerdict]:
        verdicts: list[TestVerdict] = []
        first = await self.runner.run(
            [r.file for r in runnable], coverage_of=sorted({r.gap.path for r in runnable})
        )
        self._restore([*first.outcomes.values(), *first.collect_errors.values()])
        outcomes = dict(first.outcomes)
        outcomes.update(await self._without_the_others(
            [n for n, o in first.outcomes.items() if o.outcome in ("failed", "error")], runnable))
        survivors: _Survivors = {}
        for item in runnable:
            if item.file in first.collect_errors:
                failure = first.collect_errors[item.file]
                verdicts.append(_module_verdict(item.candidate, _MODULE_VERDICTS[failure.kind], _trim(failure.message)))
                continue
            tests = {n: o for n, o in outcomes.items() if n.startswith(item.file + "::")}
            if not tests:
                verdicts.append(_module_verdict(item.candidate, Verdict.FAILED, "the module defines no test that pytest collects"))
                continue
            for nodeid, outcome in tests.items():
                verdict = _first_run_verdict(item, nodeid, outcome)
                if verdict.verdict is Verdict.ACCEPTED:
                    survivors[nodeid] = (item, outcome, verdict)
                else:
                    verdicts.append(verdict)
        rerunning = {item.candidate.id for item, _, _ in survivors.values()}
        settle([v for v in verdicts if v.candidate_id not in rerunning])
        refuted: dict[str, TestVerdict] = {}
        if survivors and self.runs > 1:
            standing([*(v for v in verdicts if v.candidate_id in rerunning), *(verdict for _, _, verdict in survivors.values())])
            refuted = await self._rerun(survivors)
        verdicts.extend(refuted.get(nodeid, verdict) for nodeid, (_, _, verdict) in survivors.items())
        return verdicts

    async def aclose(self) -> None:
        """Stop reruns still running (their waves were stopped), while the workspace still exists."""
        if self._rerunning is not None:
            self._rerunning.cancel()
            await asyncio.gather(self._rerunning, return_exceptions=True)
        for request in self._rerun_queue:
            request.refuted.cancel()
        self._rerun_queue.clear()

    async def _rerun(self, survivors: _Survivors) -> dict[str, TestVerdict]:
        """Rerun `survivors`; return the verdicts of those a rerun refuted (FLAKY, UNSAFE).

        Waves that reach their reruns while another's run share the next ones (up to
        ``_RERUN_BATCH`` tests): each rerun is a process, and its start costs more than a wave's
        tests. A test is judged as it would be alone (see :meth:`_rerun_together`).
        """
        waiting = _RerunRequest(survivors, asyncio.get_running_loop().create_future())
        self._rerun_queue.append(waiting)
        if self._rerunning is None or self._rerunning.done():
            self._rerunning = asyncio.create_task(self._drain_reruns())
        return await waiting.refuted

    async def _drain_reruns(self) -> None:
        """Rerun what waits, the waves queued at that moment together, until nothing waits."""
        while self._rerun_queue:
            batch: list[_RerunRequest] = []
            size = 0
            while self._rerun_queue and (not batch or size + len(self._rerun_queue[0].survivors) <= _RERUN_BATCH):
                batch.append(self._rerun_queue.pop(0))
                size += len(batch[-1].survivors)
            try:
                refuted = await self._rerun_together({n: entry for request in batch for n, entry in request.survivors.items()})
            except Exception as err:  # noqa: BLE001 - every wave in the batch hears of it
                for request in batch:
                    if not request.refuted.done():
                        request.refuted.set_exception(err)
                continue
            except BaseException:
                for request in batch:
                    request.refuted.cancel()
                raise
            for request in batch:
                if not request.refuted.done():
                    request.refuted.set_result({n: verdict for n, verdict in refuted.items() if n in request.survivors})

    async def _rerun_together(self, survivors: _Survivors) -> dict[str, TestVerdict]:
        """Run runs 2…N of `survivors` side by side (run N in a fresh process beside their
        modules' existing tests); return the verdicts of the tests one of them refuted.

        Reruns run at a lower CPU priority (:data:`covgen.sandbox.BACKGROUND`): nothing but the
        run's end waits for them, while first runs decide whether a gap asks for its repair. A
        test gets a second look — once more, at normal priority, with only the tests that need
        one (run N: beside their modules' existing tests) — when its outcome may not be its own:
        it timed out, crashed or did not run (busy cores), or it failed beside another
        candidate's tests. A failure in a process of its own stands, as every run must pass; a
        changed project file stands too (UNSAFE: a test may behave differently when it is looked
        at again, and a change is never waved through).
        """
        refuted: dict[str, TestVerdict] = {}
        orders = []
        for run_number in range(2, self.runs + 1):
            if run_number == self.runs:
                orders.append(("beside the module's existing tests in a fresh process", True, self._existing_of(survivors) + list(survivors)))
            else:
                orders.append((f"on run {run_number} (reverse order)", False, list(survivors)[::-1]))
        reruns = await side_by_side([self.runner.run(order, background=True) for _, _, order in orders])
        shared = len({nodeid.split("::", 1)[0] for nodeid in survivors}) > 1
        for (where, beside_existing, _), rerun in zip(orders, reruns):
            self._restore([*rerun.outcomes.values(), *rerun.collect_errors.values()])
            outcomes: dict[str, TestOutcome | None] = {n: rerun.outcomes.get(n) for n in survivors}
            for nodeid in survivors:  # a module that changed files while being imported: its tests are UNSAFE
                failure = rerun.collect_errors.get(nodeid.split("::", 1)[0])
                if failure is not None and failure.kind == "changed":
                    outcomes[nodeid] = TestOutcome(nodeid, "error", failure.message, changed_files=failure.changed_files)
            retry = [n for n in survivors if n not in refuted and _second_look(outcomes[n], shared)]
            if retry:
                again = await self.runner.run((self._existing_of({n: survivors[n] for n in retry}) if beside_existing else []) + retry)
                self._restore([*again.outcomes.values(), *again.collect_errors.values()])
                outcomes.update((n, again.outcomes.get(n)) for n in retry)
            for nodeid, (_, _, verdict) in survivors.items():
                outcome = outcomes[nodeid]
                if nodeid in refuted:
                    continue
                if outcome is not None and outcome.changed_files:
                    refuted[nodeid] = replace(verdict, verdict=Verdict.UNSAFE, message=f"changed project files: {', '.join(outcome.changed_files)}")
                elif outcome is None or outcome.outcome != "passed":
                    state = outcome.outcome if outcome is not None else "did not run"
                    message = outcome.message if outcome is not None else ""
                    refuted[nodeid] = replace(verdict, verdict=Verdict.FLAKY, message=f"passed once, then {state} {where}: {_trim(message)}")
        return refuted

    def _existing_of(self, survivors: _Survivors) -> list[str]:
        """The existing tests of the modules `survivors` target."""
        return sorted({t for item, _, _ in survivors.values() for t in self.existing_tests.get(item.gap.path, ())})

    async def _without_the_others(self, failed: list[str], runnable: list[_Runnable]) -> dict[str, TestOutcome]:
        """Run tests that failed beside other candidates once more, in a process of their own.

        A candidate that changes shared state (a module's defaults) makes the tests after it fail;
        those that pass without it are its victims, not failures. Whatever is kept is proven
        together again in the clean run. Returns the outcomes of the tests that passed this time.
        """
        if not failed or len({nodeid.split("::", 1)[0] for nodeid in failed}) == len(runnable) == 1:
            return {}
        again = await self.runner.run(failed, coverage_of=sorted({item.gap.path for item in runnable}))
        self._restore(again.outcomes.values())
        return {nodeid: outcome for nodeid, outcome in again.outcomes.items() if nodeid in failed and outcome.outcome == "passed"}

    def _restore(self, outcomes: Iterable[TestOutcome | ModuleFailure]) -> None:
        """Undo what a test changed in the workspace, so it cannot skew other candidates' runs."""
        workspace = self.runner.workspace
        for relative in sorted({path for outcome in outcomes for path in outcome.changed_files}):
            original, copy = workspace.source_root / relative, workspace.path / relative
            if original.is_file():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(original, copy)
            elif copy.is_file() or copy.is_symlink():
                copy.unlink()


#: Tests one rerun batch may hold: waves queued beyond it wait for the next.
_RERUN_BATCH = 128


@dataclass(frozen=True, slots=True)
class _RerunRequest:
    """A wave's survivors waiting for their reruns, and where the verdicts they refute go."""

    survivors: _Survivors
    refuted: asyncio.Future[dict[str, TestVerdict]]


def _second_look(outcome: TestOutcome | None, shared: bool) -> bool:
    """Whether a rerun's outcome may not be the test's own (see Validator._rerun_together)."""
    if outcome is None:
        return True
    if outcome.changed_files or outcome.outcome == "passed":
        return False
    return outcome.outcome not in ("failed", "error") or shared


def _with_copies(verdicts: list[TestVerdict], copies: Mapping[str, str]) -> list[TestVerdict]:
    """`verdicts` and the same for each copy of a candidate among them (a passing copy: REDUNDANT)."""
    found = list(verdicts)
    for copy, original in copies.items():
        for verdict in [v for v in verdicts if v.candidate_id == original]:
            same = verdict.verdict is not Verdict.ACCEPTED
            found.append(replace(
                verdict, candidate_id=copy, verdict=verdict.verdict if same else Verdict.REDUNDANT,
                message=f"identical to candidate {original}" + (f": {verdict.message}" if same and verdict.message else ""),
                gained_lines=() if not same else verdict.gained_lines, gained_arcs=() if not same else verdict.gained_arcs,
            ))
    return found


def select(verdicts: Sequence[TestVerdict]) -> list[TestVerdict]:
    """Keep a minimal set: greedily the test adding the most uncovered lines and arcs.

    Tests whose gain is already covered by those kept become ``REDUNDANT``; everything else is
    returned unchanged. A test's gain is counted on its own gap, so each gap is chosen for alone.
    """
    by_gap: dict[str, list[TestVerdict]] = {}
    for verdict in verdicts:
        if verdict.verdict is Verdict.ACCEPTED:
            by_gap.setdefault(verdict.gap_id, []).append(verdict)
    chosen: list[TestVerdict] = []
    redundant: list[TestVerdict] = []
    for pool in by_gap.values():
        kept, rest = _greedy(pool)
        chosen += kept
        redundant += [replace(v, verdict=Verdict.REDUNDANT, message="adds nothing the kept tests do not cover") for v in rest]
    return [v for v in verdicts if v.verdict is not Verdict.ACCEPTED] + chosen + redundant


def _greedy(pool: list[TestVerdict]) -> tuple[list[TestVerdict], list[TestVerdict]]:
    gains = {id(v): {("line", line) for line in v.gained_lines} | {("arc", arc) for arc in v.gained_arcs} for v in pool}
    covered: set[tuple[str, object]] = set()
    pool = list(pool)
    kept: list[TestVerdict] = []
    while pool:
        best = max(pool, key=lambda v: (len(gains[id(v)] - covered), -len(v.test_name), v.candidate_id))
        fresh = gains[id(best)] - covered
        if not fresh:
            break
        covered |= fresh
        kept.append(best)
        pool.remove(best)
    return kept, pool


def _static_verdict(candidate: Candidate, screen: Screen, pack: LanguagePack) -> TestVerdict | None:
    problem = pack.syntax_problem(candidate.source)
    if problem is not None:
        return _module_verdict(candidate, Verdict.SYNTAX_ERROR, problem)
    reason = screen.reason(candidate.source)
    if reason is not None:
        return _module_verdict(candidate, Verdict.UNSAFE, f"never run: {reason}")
    return None


def _python() -> LanguagePack:
    pack = pack_named("python")
    assert pack is not None
    return pack


def _first_run_verdict(item: _Runnable, nodeid: str, outcome: TestOutcome) -> TestVerdict:
    test_name = nodeid.split("::", 1)[1]
    base = TestVerdict(item.candidate.id, item.gap.id, test_name, Verdict.ACCEPTED)
    if outcome.changed_files:
        return replace(base, verdict=Verdict.UNSAFE, message=f"changed project files: {', '.join(outcome.changed_files)}")
    if outcome.unsafe:
        return replace(base, verdict=Verdict.UNSAFE, message=_trim(outcome.unsafe))
    if outcome.outcome == "timeout":
        return replace(base, verdict=Verdict.TIMEOUT, message=_trim(outcome.message))
    if outcome.outcome == "skipped":
        return replace(base, verdict=Verdict.FAILED, message="skipped: a skipped test proves nothing")
    if outcome.outcome != "passed":
        return replace(base, verdict=Verdict.FAILED, message=_trim(outcome.message))
    gap = item.gap
    lines = outcome.lines.get(gap.path, frozenset())
    arcs = outcome.arcs.get(gap.path, frozenset())
    gained_lines = tuple(sorted(lines.intersection(gap.uncovered_lines)))
    gained_arcs = tuple(sorted(arcs.intersection(gap.missing_arcs)))
    if not gained_lines and not gained_arcs:
        missing = ", ".join(map(str, gap.uncovered_lines[:12])) or "only branches"
        return replace(base, verdict=Verdict.NO_GAIN, message=f"passes but reaches none of the uncovered lines ({missing}) or branches")
    return replace(base, gained_lines=gained_lines, gained_arcs=gained_arcs)


def _module_verdict(candidate: Candidate, verdict: Verdict, message: str) -> TestVerdict:
    return TestVerdict(candidate.id, candidate.gap_id, "", verdict, message)


def _trim(message: str, limit: int = 1500) -> str:
    """Keep a failure's tail (the assertion and the line), which is what a repair prompt needs."""
    message = message.strip()
    return message if len(message) <= limit else "…" + message[-limit:]

