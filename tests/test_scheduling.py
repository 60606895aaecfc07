"""What keeps a run's tail short: a first turn (which may need a repair after it) is sent before
waiting repairs, a gap whose answers all failed hears so before the other candidates' reruns,
waves waiting for reruns share them (without it changing a verdict), and the clean run starts
beside the last reruns."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from covgen.adapters import read_report
from covgen.engines.llm import OpenAICompatBackend
from covgen.engines.slots import PrioritySlots
from covgen.gaps import find_gaps
from covgen.languages import pack_named
from covgen import model
from covgen.model import Candidate, Verdict
from covgen.pipeline import RunOptions
from covgen.sandbox import Workspace, probe
from covgen.validate import Validator

from support.vllm_stub import StubServer, StubState


def _python_runner(workspace: Workspace, root: Path) -> Any:
    """The Python runner a run over `root` validates with, in `workspace`."""
    pack = pack_named("python")
    assert pack is not None
    return pack.runner(workspace, options=RunOptions(root=root), layers=probe())


def test_a_freed_slot_goes_to_the_highest_priority_then_the_earliest_waiter() -> None:
    async def scenario() -> tuple[list[str], int]:
        slots = PrioritySlots(2)
        order: list[str] = []
        release = asyncio.Event()
        most = 0
        holding = 0

        async def holder(name: str, priority: int) -> None:
            nonlocal holding, most
            async with slots.hold(priority):
                holding += 1
                most = max(most, holding)
                order.append(name)
                await release.wait()
                holding -= 1

        first = [asyncio.ensure_future(holder(f"busy{i}", 0)) for i in range(2)]
        await asyncio.sleep(0)
        waiting = [asyncio.ensure_future(holder(name, priority))
                   for name, priority in [("first-a", 1), ("first-b", 1), ("repair-a", 2), ("first-c", 1), ("repair-b", 2)]]
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*first, *waiting)
        return order, most

    order, most = asyncio.run(scenario())
    assert order == ["busy0", "busy1", "repair-a", "repair-b", "first-a", "first-b", "first-c"]
    assert most == 2


def test_a_waiter_cancelled_while_its_slot_is_handed_over_passes_the_slot_on() -> None:
    async def scenario() -> bool:
        slots = PrioritySlots(1)
        held = asyncio.Event()
        release = asyncio.Event()

        async def busy() -> None:
            async with slots.hold():
                held.set()
                await release.wait()

        async def waiter() -> None:
            async with slots.hold(5):
                await asyncio.sleep(0)

        owner = asyncio.ensure_future(busy())
        await held.wait()
        doomed = asyncio.ensure_future(waiter())
        patient = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        release.set()
        await owner  # the slot is handed to `doomed`, which is cancelled before it runs
        doomed.cancel()
        await asyncio.wait_for(patient, 1)
        # No slot was lost: one more holder still gets in at once.
        await asyncio.wait_for(waiter(), 1)
        return doomed.cancelled()

    assert asyncio.run(scenario())


def test_a_first_turn_reaches_the_server_before_repair_turns_queued_earlier() -> None:
    gate = threading.Event()

    def hold(*_: int) -> None:  # the first request keeps the only slot until the others queue
        gate.wait(10)

    state = StubState(delay=hold)

    async def scenario(url: str) -> None:
        backend = OpenAICompatBackend(url, model="stub/coder-instruct", concurrency=1)
        try:
            def ask(*turns: str) -> asyncio.Future[object]:
                messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i, text in enumerate(turns)]
                return asyncio.ensure_future(backend.chat(messages, n=1, sampling={}))

            calls = [ask("first 0")]
            while not state.requests:  # the only slot is taken
                await asyncio.sleep(0.01)
            calls += [ask("first 8", "an answer", "repair 8"), ask("first 9", "an answer", "repair 9")]
            await asyncio.sleep(0.05)
            calls.append(ask("first 1"))
            await asyncio.sleep(0.05)
            gate.set()
            await asyncio.gather(*calls)
        finally:
            await backend.aclose()

    with StubServer(state) as server:
        asyncio.run(scenario(server.url))
    last_turns = [request["messages"][-1]["content"] for request in state.requests]
    assert last_turns == ["first 0", "first 1", "repair 8", "repair 9"]


def test_a_gap_whose_answers_all_failed_is_told_before_the_reruns_of_the_others(python_fixture_reports: dict[str, Path]) -> None:
    root = python_fixture_reports["root"]
    gaps = {gap.id: gap for gap in find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root.resolve()).gaps}
    quarter = next(g for g in gaps if g.endswith("::quarter"))
    weekend = next(g for g in gaps if g.endswith("::is_weekend"))
    good = "from datetime import date\nfrom inventory.dates import quarter\n\ndef test_q():\n    assert quarter(date(2024, 5, 1)) == '2024-Q2'\n"
    wrong = "from datetime import date\nfrom inventory.dates import is_weekend\n\ndef test_w():\n    assert is_weekend(date(2024, 5, 1))\n"
    runs: list[list[str]] = []
    told: list[tuple[int, list[model.TestVerdict]]] = []

    async def scenario() -> list[model.TestVerdict]:
        with Workspace(root) as workspace:
            runner = _python_runner(workspace, root)
            real_run = runner.run

            async def counted(tests: list[str], **kwargs: Any) -> Any:
                runs.append(list(tests))
                return await real_run(tests, **kwargs)

            runner.run = counted  # type: ignore[method-assign,assignment]
            validator = Validator(runner, gaps, runs=3)
            candidates = [Candidate("c1", quarter, "test", 1, good), Candidate("c2", weekend, "test", 1, wrong),
                          Candidate("c3", weekend, "test", 1, wrong)]
            return await validator.validate(candidates, lambda found: told.append((len(runs), found)))

    verdicts = asyncio.run(scenario())
    assert len(told) == 1
    processes_before, early = told[0]
    # The failing gap's two answers (one a copy) were settled after the first run and the run
    # that tried the failing test alone, before the two reruns of the passing one.
    assert processes_before == 2 and len(runs) == 4
    assert {v.candidate_id for v in early} == {"c2", "c3"} and all(v.verdict is Verdict.FAILED for v in early)
    # What it was told early is what the wave ends with; the passing test was rerun and kept.
    assert [v for v in verdicts if v.candidate_id in ("c2", "c3")] == early
    assert [v.verdict for v in verdicts if v.candidate_id == "c1"] == [Verdict.ACCEPTED]


def test_a_wave_hands_settled_gaps_their_verdicts_and_the_rest_its_failure() -> None:
    from covgen.errors import SandboxError
    from covgen.pipeline import InUse, _Batcher

    def verdict(candidate: Candidate) -> model.TestVerdict:
        return model.TestVerdict(candidate.id, candidate.gap_id, "test_x", Verdict.FAILED, "assert 1 == 2")

    class SettlesOneThenFails:
        async def validate(self, candidates: list[Candidate], settled: Any, rerunning: Any) -> list[model.TestVerdict]:
            settled([verdict(c) for c in candidates if c.gap_id == "failing"])
            await asyncio.sleep(0.05)  # the reruns of the other gap's candidates
            raise SandboxError("pytest could not run in the sandbox")

        async def aclose(self) -> None:
            """Nothing of its own runs on."""

    async def scenario() -> tuple[list[model.TestVerdict], BaseException | None, bool]:
        batcher = _Batcher(SettlesOneThenFails(), window=0.01, max_batch=16, engine_calls=InUse())  # type: ignore[arg-type]
        failing = [Candidate(f"f{i}", "failing", "test", 1, "") for i in range(2)]
        rerun = [Candidate("r1", "rerun", "test", 1, "")]
        gone = [Candidate("g1", "gone", "test", 1, "")]
        settled_task = asyncio.ensure_future(batcher.submit(failing))
        rerun_task = asyncio.ensure_future(batcher.submit(rerun))
        gone_task = asyncio.ensure_future(batcher.submit(gone))
        await asyncio.sleep(0.03)
        gone_task.cancel()  # a gap task stopped mid-wave (a budget, a signal)
        settled_verdicts = await settled_task
        failure = (await asyncio.gather(rerun_task, return_exceptions=True))[0]
        await batcher.aclose()
        return settled_verdicts, failure if isinstance(failure, BaseException) else None, gone_task.cancelled()

    settled_verdicts, failure, cancelled = asyncio.run(scenario())
    assert [v.candidate_id for v in settled_verdicts] == ["f0", "f1"]
    assert isinstance(failure, SandboxError) and cancelled


def test_waves_that_wait_for_reruns_share_them_and_keep_the_same_verdicts(python_fixture_reports: dict[str, Path]) -> None:
    root = python_fixture_reports["root"]
    gaps = {gap.id: gap for gap in find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root.resolve()).gaps}
    by_name = {name: next(g for g in gaps if g.endswith(f"::{name}")) for name in ("quarter", "is_weekend", "parse_duration")}
    sources = {
        "quarter": "from datetime import date\nfrom inventory.dates import quarter\n\ndef test_q():\n    assert quarter(date(2024, 5, 1)) == '2024-Q2'\n",
        "is_weekend": "from datetime import date\nfrom inventory.dates import is_weekend\n\ndef test_w():\n    assert is_weekend(date(2024, 5, 4))\n",
        "parse_duration": "from datetime import timedelta\nfrom inventory.dates import parse_duration\n\n"
                          "def test_d():\n    assert parse_duration('P1W2D') == timedelta(days=9)\n",
    }
    reruns: list[list[str]] = []
    settled: list[str] = []

    async def scenario() -> list[list[model.TestVerdict]]:
        others_waiting = asyncio.Event()
        with Workspace(root) as workspace:
            runner = _python_runner(workspace, root)
            real_run = runner.run

            async def counted(tests: list[str], **kwargs: Any) -> Any:
                if not kwargs.get("coverage_of"):  # a rerun: first runs measure coverage
                    reruns.append(list(tests))
                    # The first wave's reruns go on until the other two waves wait for theirs.
                    await others_waiting.wait()
                return await real_run(tests, **kwargs)

            runner.run = counted  # type: ignore[method-assign,assignment]
            validator = Validator(runner, gaps, runs=3)

            def told(name: str) -> Any:
                def settle(found: list[model.TestVerdict]) -> None:
                    settled.append(name)
                    if len(settled) == 3:
                        others_waiting.set()
                return settle

            waves = [validator.validate([Candidate(f"c-{name}", by_name[name], "test", 1, source)], told(name))
                     for name, source in sources.items()]
            try:
                return await asyncio.gather(*waves)
            finally:
                await validator.aclose()

    results = asyncio.run(scenario())
    # Alone, each wave's survivor would have had its two reruns: six processes. The first wave's
    # two ran while the others waited; those two waves then shared two.
    assert len(reruns) == 4
    assert sorted(len(tests) for tests in reruns) == [1, 1, 2, 2]
    assert all(len(verdicts) == 1 and verdicts[0].verdict is Verdict.ACCEPTED for verdicts in results)


_STATE = '''SETTINGS = {"mode": "fast"}


def mode() -> str:
    return SETTINGS["mode"]


def double(x: int) -> int:
    return x * 2
'''


def test_a_test_that_fails_beside_its_modules_tests_is_flaky_whoever_shares_its_reruns(tmp_path: Path) -> None:
    """Sharing a rerun with other candidates must not excuse a failure: the second look runs it
    without them but still beside its module's existing tests."""
    import subprocess
    import sys

    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "state.py").write_text(_STATE)
    # The user's own test changes a setting and never puts it back.
    (project / "tests" / "test_state.py").write_text(
        "from pkg import state\n\ndef test_slow_mode():\n    state.SETTINGS['mode'] = 'slow'\n    assert state.SETTINGS['mode'] == 'slow'\n")
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    data = tmp_path / ".coverage"
    subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "--data-file", str(data), "--source=pkg", "-m", "pytest", "-q",
                    "-p", "no:cacheprovider"], cwd=project, check=True, capture_output=True)
    report = tmp_path / "coverage.json"
    subprocess.run([sys.executable, "-m", "coverage", "json", "--data-file", str(data), "-o", str(report)], cwd=project, check=True,
                   capture_output=True)
    gaps = {gap.id: gap for gap in find_gaps(read_report(report, root=project), project.resolve()).gaps}
    mode_gap = next(g for g in gaps if g.endswith("::mode"))
    double_gap = next(g for g in gaps if g.endswith("::double"))
    fast = "from pkg.state import mode\n\ndef test_mode():\n    assert mode() == 'fast'\n"
    good = "from pkg.state import double\n\ndef test_double():\n    assert double(2) == 4\n"

    async def verdicts(candidates: list[Candidate]) -> dict[str, model.TestVerdict]:
        with Workspace(project) as workspace:
            runner = _python_runner(workspace, project)
            validator = Validator(runner, gaps, runs=3, existing_tests={gaps[mode_gap].path: ["tests/test_state.py"]})
            try:
                return {v.candidate_id: v for v in await validator.validate(candidates)}
            finally:
                await validator.aclose()

    alone = asyncio.run(verdicts([Candidate("a", mode_gap, "test", 1, fast)]))
    shared = asyncio.run(verdicts([Candidate("a", mode_gap, "test", 1, fast), Candidate("b", double_gap, "test", 1, good)]))
    assert alone["a"].verdict is Verdict.FLAKY and "beside the module's existing tests" in alone["a"].message
    assert shared["a"].verdict is Verdict.FLAKY and shared["a"].message == alone["a"].message
    assert shared["b"].verdict is Verdict.ACCEPTED


def test_reruns_run_at_a_lower_priority_than_first_runs(python_fixture_reports: dict[str, Path]) -> None:
    """The kernel shares the cores between sessions first (autogroup), so both the sandbox's
    session and its process get the lower priority; the process cannot lower its nice value."""
    root = python_fixture_reports["root"]
    check = ("import os\n\ndef test_priority():\n    group = open('/proc/self/autogroup').read() if os.path.exists('/proc/self/autogroup') else 'nice 10'\n"
             "    assert os.nice(0) == 10 and group.split()[-1] == '10'\n\n"
             "def test_cannot_lower_it():\n    try:\n        os.nice(-1)\n    except PermissionError:\n        return\n"
             "    assert os.nice(0) >= 10\n")

    async def scenario() -> tuple[str, str]:
        with Workspace(root) as workspace:
            runner = _python_runner(workspace, root)
            (workspace.path / "test_priority_check.py").write_text(check)
            first = await runner.run(["test_priority_check.py"])
            rerun = await runner.run(["test_priority_check.py"], background=True)
            return (first.outcomes["test_priority_check.py::test_priority"].outcome,
                    rerun.outcomes["test_priority_check.py::test_priority"].outcome
                    + " " + rerun.outcomes["test_priority_check.py::test_cannot_lower_it"].outcome)

    first, rerun = asyncio.run(scenario())
    assert first == "failed"
    assert rerun == "passed passed"


class _LetsEverythingThrough:
    """No static screen: what is checked here happens at run time."""

    def reason(self, source: str) -> str | None:
        return None


def test_a_rerun_timeout_gets_a_second_look_at_normal_priority_and_a_failure_of_its_own_stands(
        python_fixture_reports: dict[str, Path]) -> None:
    """Busy cores (here: the reruns' priority itself) may make a test overrun its limit: that gets
    a second look at normal priority. A test failing alone in a rerun is FLAKY, second look or not."""
    root = python_fixture_reports["root"]
    gaps = {gap.id: gap for gap in find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root.resolve()).gaps}
    quarter = next(g for g in gaps if g.endswith("::quarter"))
    head = "import os\nimport time\nfrom datetime import date\nfrom inventory.dates import quarter\n\n"
    slow_when_low = head + "def test_q():\n    if os.nice(0) > 0:\n        time.sleep(3)\n    assert quarter(date(2024, 5, 1)) == '2024-Q2'\n"
    fails_when_low = head + "def test_q():\n    assert os.nice(0) == 0\n    assert quarter(date(2024, 5, 1)) == '2024-Q2'\n"

    async def verdicts(source: str) -> list[model.TestVerdict]:
        with Workspace(root) as workspace:
            pack = pack_named("python")
            assert pack is not None
            runner = pack.runner(workspace, options=RunOptions(root=root, test_timeout=1.0), layers=probe())
            validator = Validator(runner, gaps, runs=3, screen=_LetsEverythingThrough())  # type: ignore[arg-type]
            try:
                return await validator.validate([Candidate("c1", quarter, "test", 1, source)])
            finally:
                await validator.aclose()

    assert [v.verdict for v in asyncio.run(verdicts(slow_when_low))] == [Verdict.ACCEPTED]
    (failed,) = asyncio.run(verdicts(fails_when_low))
    assert failed.verdict is Verdict.FLAKY and "passed once, then failed" in failed.message


def test_a_test_that_changes_a_file_only_in_its_reruns_is_unsafe(python_fixture_reports: dict[str, Path]) -> None:
    """A candidate may behave differently once it sees it is rerun (at a lower priority): a file
    it changes then stands, with no second look that it could pass by behaving again."""
    root = python_fixture_reports["root"]
    gaps = {gap.id: gap for gap in find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root.resolve()).gaps}
    quarter = next(g for g in gaps if g.endswith("::quarter"))
    source = ("import os\nfrom datetime import date\nfrom inventory.dates import quarter\n\n"
              "def test_q():\n    if os.nice(0) > 0:\n        open('inventory/dates.py', 'a').write('\\n# planted\\n')\n"
              "    assert quarter(date(2024, 5, 1)) == '2024-Q2'\n")

    async def scenario() -> tuple[list[model.TestVerdict], str]:
        with Workspace(root) as workspace:
            runner = _python_runner(workspace, root)
            validator = Validator(runner, gaps, runs=3, screen=_LetsEverythingThrough())  # type: ignore[arg-type]
            try:
                verdicts = await validator.validate([Candidate("c1", quarter, "test", 1, source)])
            finally:
                await validator.aclose()
            return verdicts, (workspace.path / "inventory" / "dates.py").read_text()

    (verdict,), dates = asyncio.run(scenario())
    assert verdict.verdict is Verdict.UNSAFE and "inventory/dates.py" in verdict.message
    assert "# planted" not in dates  # restored for the waves after it
    assert "# planted" not in (root / "inventory" / "dates.py").read_text()


def _scripted_phase(python_fixture_reports: dict[str, Path], refute: bool, *, clean_run_seconds: float = 0.2,
                    clean_run_refutes: bool = False) -> tuple[list[tuple[float, list[model.TestVerdict]]], float, Any,
                                                              list[model.TestVerdict], list[str]]:
    """One gap, one answer whose test passes its first run; its reruns take 0.4 s and then
    keep it (or find it FLAKY). Returns the confirmations started (when, of what), when the
    reruns ended, what the speculation handed back for the final verdicts, those verdicts, and
    how the confirmations had ended when the speculation answered."""
    from dataclasses import replace as replaced

    from covgen.engines import Proposal
    from covgen.pipeline import InUse, _Batcher, _Confirmed, _Generation, _Speculation, _in_order, build_targets
    from covgen.project import ProjectFacts

    root = python_fixture_reports["root"]
    gap = next(g for g in find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root.resolve()).gaps
               if g.id.endswith("::quarter"))
    targets, _ = build_targets([gap], root, ProjectFacts(root), with_context=False)

    class OneAnswer:
        name = "scripted"

        async def propose(self, target: Any) -> Proposal:
            return Proposal(sources=("def test_q():\n    pass\n",))

        async def repair(self, *args: Any) -> Proposal:
            raise AssertionError("one attempt only")

        def describe(self) -> str:
            return "scripted"

        async def aclose(self) -> None:
            """Nothing to close."""

    def passed(candidate: Candidate) -> model.TestVerdict:
        return model.TestVerdict(candidate.id, candidate.gap_id, "test_q", Verdict.ACCEPTED, gained_lines=(40,))

    reruns_ended = 0.0

    class RerunsThen:
        async def validate(self, candidates: list[Candidate], settled: Any, rerunning: Any) -> list[model.TestVerdict]:
            nonlocal reruns_ended
            settled([])  # nothing failed its first run
            rerunning([passed(c) for c in candidates])
            await asyncio.sleep(0.4)  # the reruns
            reruns_ended = asyncio.get_running_loop().time()
            if refute:
                return [replaced(passed(c), verdict=Verdict.FLAKY, message="passed once, then failed") for c in candidates]
            return [passed(c) for c in candidates]

        async def aclose(self) -> None:
            """Nothing of its own runs on."""

    confirmations: list[tuple[float, list[model.TestVerdict]]] = []
    endings: list[str] = []

    async def confirm(verdicts: list[model.TestVerdict], candidates: dict[str, Candidate]) -> Any:
        confirmations.append((asyncio.get_running_loop().time(), verdicts))
        try:
            await asyncio.sleep(clean_run_seconds)  # the clean run
        except asyncio.CancelledError:
            endings.append("stopped")
            raise
        endings.append("done")
        return _Confirmed({}, verdicts, {}, 0, refuted=clean_run_refutes)

    async def scenario() -> tuple[Any, list[model.TestVerdict]]:
        engine_calls = InUse()
        batcher = _Batcher(RerunsThen(), window=0.01, max_batch=16, workers=2, engine_calls=engine_calls)  # type: ignore[arg-type]
        generation = _Generation(batcher, RunOptions(root=root, max_attempts=1), None, lambda *args: None, engine_calls)
        speculation = _Speculation(generation, batcher, confirm)
        speculation.start()
        try:
            await generation.run_phase(OneAnswer(), targets)  # type: ignore[arg-type]
            final = _in_order(generation.verdicts)
            handed = await speculation.result(final)
            ended.extend(endings)  # how the confirmations had ended when the speculation answered
            return handed, final
        finally:
            await speculation.aclose()
            await batcher.aclose()

    ended: list[str] = []
    handed, final = asyncio.run(scenario())
    return confirmations, reruns_ended, handed, final, ended


def test_the_clean_run_starts_beside_the_last_reruns_and_is_used_when_they_keep_everything(
        python_fixture_reports: dict[str, Path]) -> None:
    confirmations, reruns_ended, handed, final, _ = _scripted_phase(python_fixture_reports, refute=False)
    assert len(confirmations) == 1
    started, verdicts = confirmations[0]
    assert started < reruns_ended  # beside the reruns, not after them
    assert verdicts == final and [v.verdict for v in final] == [Verdict.ACCEPTED]
    assert handed is not None and handed.verdicts == final


def test_an_early_clean_run_is_stopped_and_not_used_when_a_rerun_changes_a_verdict(python_fixture_reports: dict[str, Path]) -> None:
    confirmations, _, handed, final, endings = _scripted_phase(python_fixture_reports, refute=True, clean_run_seconds=5.0)
    assert len(confirmations) == 1 and [v.verdict for v in confirmations[0][1]] == [Verdict.ACCEPTED]
    assert [v.verdict for v in final] == [Verdict.FLAKY]
    assert handed is None  # the caller confirms the final verdicts instead
    assert endings == ["stopped"]  # it does not load the cores that confirmation needs


def test_an_early_clean_run_that_refuted_a_test_is_not_used(python_fixture_reports: dict[str, Path]) -> None:
    """It ran beside the reruns, on busy cores: only a clean run after them may refute."""
    confirmations, _, handed, final, endings = _scripted_phase(python_fixture_reports, refute=False, clean_run_refutes=True)
    assert len(confirmations) == 1 and confirmations[0][1] == final
    assert handed is None and endings == ["done"]
