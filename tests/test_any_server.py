"""Any OpenAI-compatible server, and servers that misbehave: covgen says what happened, never crashes.

Against the scripted local server with its switches: no ``/health`` and no ``/tokenize``
(LiteLLM, llama.cpp, hosted endpoints), ``/v1/models`` refusing, 429 with ``Retry-After``, an
answer that is not UTF-8, a completion that never comes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES
from covgen.adapters import read_report
from covgen.engines import Target
from covgen.engines.llm import LlmEngine, OpenAICompatBackend
from covgen.errors import BackendError
from covgen.gaps import find_gaps
from covgen.pipeline import build_targets
from covgen.project import ProjectFacts
from covgen.prompts.pytest_family import messages_for
from support.vllm_stub import StubServer, StubState
from test_run_llm import GOOD_QUARTER, tree_digest

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def covgen_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(root / "reports/coverage.json"),
         "--include", "inventory/dates.py", "--candidates", "1", *args],
        capture_output=True, text=True, timeout=600,
    )


def chat_times(state: StubState) -> list[float]:
    return [when for path, _, when in state.raw_requests if path == "/v1/chat/completions"]


def test_a_server_without_health_or_tokenize_serves_the_run(project: Path, tmp_path: Path) -> None:
    state = StubState(health_route=False, tokenize=False, script={"quarter": [[GOOD_QUARTER]]})
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = covgen_run(project, "--model-url", server.url, "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    # auto still prefers a live model (within its 3 s): /v1/models showed it alive.
    assert summary["engine_reason"] == f"the model endpoint {server.url} answered /v1/models"
    assert {g["id"].split("::")[1]: g["accepted_tests"] for g in summary["gaps"]}["quarter"] == ["test_quarter_of_may_is_q2"]
    assert state.tokenize_requests == 1  # asked once, absent, never again


@pytest.fixture(scope="module")
def remove_target(python_fixture_reports) -> Target:
    root = python_fixture_reports["root"]
    gaps = find_gaps(read_report(python_fixture_reports["coveragepy"], root=root), root, include=["inventory/items.py"]).gaps
    targets, _ = build_targets(gaps, root, ProjectFacts(root), with_context=True)
    return next(t for t in targets if t.gap.qualname == "Stock.remove")


def test_without_tokenize_prompts_are_bounded_by_their_bytes(remove_target: Target) -> None:
    assert remove_target.context is not None
    full = messages_for(remove_target.context)
    bare = remove_target.context
    while (smaller := bare.without_lowest()) is not None:
        bare = smaller

    def upper(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].encode()) + 32 for m in messages) + 256

    # The context length comes from /v1/models; between the bounds of the bare and the full prompt.
    state = StubState(tokenize=False, max_model_len=(upper(full) + upper(messages_for(bare))) // 2 + 200 + 16)

    async def scenario(url: str) -> str:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=1, max_completion_tokens=200)
        proposal = await engine.propose(remove_target)
        await engine.aclose()
        return proposal.messages[1]["content"]

    with StubServer(state) as server:
        sent = asyncio.run(scenario(server.url))
    assert "An existing test of this module" not in sent
    assert "def remove(self, name: str, count: int = 1) -> int:" in sent and "NOT COVERED" in sent
    assert state.tokenize_requests == 1


def test_a_server_that_is_not_alive_is_told_with_what_it_answered(project: Path) -> None:
    # Wants an API key: said at once, not after the wait.
    with StubServer(StubState(health_route=False, models_status=401)) as server:
        started = time.monotonic()
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--wait-for-model", "30")
    assert result.returncode == 3 and time.monotonic() - started < 20
    (line,) = result.stderr.strip().splitlines()
    assert "/v1/models answered HTTP 401" in line and "Invalid API key" in line and "COVGEN_API_KEY" in line

    # Neither route: both answers are in the one line.
    with StubServer(StubState(health_route=False, models_status=404)) as server:
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--wait-for-model", "1")
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert "/health answered HTTP 404" in line and "/v1/models answered HTTP 404" in line and server.url in line


def test_a_server_that_never_answers_is_given_up_on(project: Path) -> None:
    before = tree_digest(project)
    state = StubState(hang=True)
    started = time.monotonic()
    with StubServer(state) as server:
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--request-timeout", "2")
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 60
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"covgen: waiting for the model server at {server.url}: ") for line in lines), lines
    errors = [line for line in lines if "error" in line]
    assert errors == [f"covgen: error: model server at {server.url} did not answer within 2 s (--request-timeout); "
                      "it has answered nothing so far"], lines
    assert "Traceback" not in result.stderr and chat_times(state)
    assert tree_digest(project) == before


def test_a_request_left_unanswered_after_others_were_costs_only_its_gap() -> None:
    async def scenario(url: str, state: StubState) -> BackendError:
        backend = OpenAICompatBackend(url, model="stub/coder-instruct", request_timeout=1, retry_wait=0.01, notify=lambda line: None)
        try:
            await backend.chat([{"role": "user", "content": "hi"}], n=1, sampling={})
            state.hang = True
            with pytest.raises(BackendError) as failure:
                await backend.chat([{"role": "user", "content": "again"}], n=1, sampling={})
            return failure.value
        finally:
            await backend.aclose()

    state = StubState()
    with StubServer(state) as server:
        error = asyncio.run(scenario(server.url, state))
    assert not error.fatal and "did not answer within 1 s" in str(error)


def test_an_answer_that_is_not_utf8_is_a_bad_answer_not_a_crash(project: Path, tmp_path: Path) -> None:
    state = StubState(raw_answer=b'{"choices": [{"message": {"content": "\xff\xfe not text"}}]}')
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    warnings = json.loads(summary_path.read_text())["warnings"]
    assert any(w.startswith("inventory/dates.py::quarter: model server at") and "not UTF-8 JSON (UnicodeDecodeError)" in w for w in warnings)

    not_json = StubState(raw_answer=b"<html>502 Bad Gateway</html>")
    with StubServer(not_json) as server:
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    assert any("not UTF-8 JSON (JSONDecodeError): <html>502 Bad Gateway</html>" in w for w in json.loads(summary_path.read_text())["warnings"])


def test_retry_after_is_honoured_and_said_in_covgens_own_words(project: Path) -> None:
    state = StubState(throttle_next=2, retry_after="1")
    with StubServer(state) as server:
        result = covgen_run(project, "--engine", "llm", "--model-url", server.url, "--max-gaps", "1", "--max-attempts", "1")
    assert result.returncode == 0, result.stderr
    first, second, third = chat_times(state)
    assert second - first >= 0.95 and third - second >= 0.95
    assert f"covgen: model server at {server.url} answered HTTP 429; retrying in 1.0 s (attempt 2 of 5)" in result.stderr.splitlines()
    assert "stamina" not in result.stderr and "HTTP Request" not in result.stderr and "retry_scheduled" not in result.stderr


def test_retry_after_is_capped() -> None:
    said: list[str] = []

    async def scenario(url: str) -> None:
        backend = OpenAICompatBackend(url, model="stub/coder-instruct", retry_after_cap=0.3, notify=said.append)
        try:
            await backend.chat([{"role": "user", "content": "hi"}], n=1, sampling={})
        finally:
            await backend.aclose()

    state = StubState(throttle_next=1, retry_after="3600")
    with StubServer(state) as server:
        started = time.monotonic()
        asyncio.run(scenario(server.url))
    assert time.monotonic() - started < 5
    assert said == [f"model server at {server.url} answered HTTP 429; retrying in 0.3 s (attempt 2 of 5)"]
