"""What keeps a run's tail short: a first turn (which may need a repair after it) is sent before
waiting repairs, and a gap whose answers all failed hears so before the other candidates' reruns."""

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
            pack = pack_named("python")
            assert pack is not None
            runner = pack.runner(workspace, options=RunOptions(root=root), layers=probe())
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
        async def validate(self, candidates: list[Candidate], settled: Any) -> list[model.TestVerdict]:
            settled([verdict(c) for c in candidates if c.gap_id == "failing"])
            await asyncio.sleep(0.05)  # the reruns of the other gap's candidates
            raise SandboxError("pytest could not run in the sandbox")

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
