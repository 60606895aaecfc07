"""The model path piece by piece: backend protocol, retries, budgets, prompts, replay, offline vLLM."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from pathlib import Path

import pytest

from covgen.engines import Target
from covgen.engines.llm import AuditLog, LlmEngine, OpenAICompatBackend
from covgen.engines.replay import ReplayBackend
from covgen.errors import BackendError
from covgen.extract import extract_python, extract_structured
from covgen.gaps import find_gaps
from covgen.adapters import read_report
from covgen.pipeline import build_targets
from covgen.project import ProjectFacts
from covgen.prompts.pytest_family import messages_for
from covgen.redact import redact

from support.vllm_stub import StubServer, StubState


# --- extraction and redaction -----------------------------------------------------------------

def test_extractor_survives_prose_several_blocks_and_an_unterminated_fence() -> None:
    answer = "Sure!\n```python\nimport pytest\n```\nand then\n```python\ndef test_a():\n    assert 1\n```\nHope it helps."
    assert extract_python(answer) == "import pytest\n\ndef test_a():\n    assert 1\n"
    assert extract_python("```py\ndef test_b():\n    assert 2\n") == "def test_b():\n    assert 2\n"
    assert extract_python("def test_c():\n    assert 3") == "def test_c():\n    assert 3\n"
    # Two blocks that do not parse together: the largest that parses on its own wins.
    broken = "```python\ndef test_x(:\n```\n```python\ndef test_y():\n    assert True\n```"
    assert extract_python(broken) == "def test_y():\n    assert True\n"
    # A reasoning model's drafts are thinking, not the answer.
    thinking = "<think>First draft:\n```python\ndef test_draft():\n    assert 0\n```\nNo, better:</think>\n```python\ndef test_final():\n    assert 1\n```"
    assert extract_python(thinking) == "def test_final():\n    assert 1\n"
    assert extract_python(thinking.removeprefix("<think>")) == "def test_final():\n    assert 1\n"
    assert extract_python("<think>```python\ndef test_draft():\n    assert 0\n```\nstill going") == "\n"
    assert extract_structured('{"code": "def test_z(): pass"}') == "def test_z(): pass"
    assert extract_structured("```python\nnot json\n```") is None


def test_secrets_are_redacted_before_prompts() -> None:
    source = (
        'AWS_KEY = "AKIAABCDEFGHIJKLMNOP"\n'
        'password = "hunter2hunter2"\n'
        "DSN = 'postgres://admin:s3cr3t-pw@db.internal:5432/app'\n"
        "token: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "KEY = '''-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----'''\n"
        "api_key = 'sk-proj-abcdefghijklmnopqrstuvwx'\n"
        "timeout = 30\n"
    )
    cleaned = redact(source)
    for secret in ("AKIAABCDEFGHIJKLMNOP", "hunter2hunter2", "s3cr3t-pw", "ghp_abcdefghijklmnop", "MIIEpAIBAAKCAQEA", "sk-proj-abcdefghijkl"):
        assert secret not in cleaned
    assert "postgres://admin:<redacted:password>@db.internal:5432/app" in cleaned
    assert "timeout = 30" in cleaned


# --- the HTTP backend against a real local server ----------------------------------------------

def test_backend_discovers_model_and_context_and_asks_for_n() -> None:
    async def scenario(url: str) -> tuple[str, int | None, tuple[str, ...]]:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        result = await backend.chat([{"role": "user", "content": "hi"}], n=3, sampling={"temperature": 0.5})
        await backend.aclose()
        return backend.model, backend.max_model_len, result.texts

    state = StubState(max_model_len=8192)
    with StubServer(state) as server:
        model, length, texts = asyncio.run(scenario(server.url))
    assert model == "stub/coder-instruct" and length == 8192 and len(texts) == 3
    assert state.requests[0]["n"] == 3 and state.requests[0]["temperature"] == 0.5


def test_backend_retries_503_then_succeeds_and_gives_up_after_attempts() -> None:
    async def ask(url: str) -> None:
        backend = OpenAICompatBackend(url, model="stub/coder-instruct", attempts=3, retry_wait=0.01)
        try:
            await backend.chat([{"role": "user", "content": "hi"}], n=1, sampling={})
        finally:
            await backend.aclose()

    state = StubState(fail_next=2)
    with StubServer(state) as server:
        asyncio.run(ask(server.url))
        assert len(state.requests) == 3
        state.fail_next = 10
        with pytest.raises(BackendError, match="failed after 3 attempts") as failure:
            asyncio.run(ask(server.url))
    assert failure.value.fatal and failure.value.exit_code == 3


def test_a_refused_request_is_not_fatal() -> None:
    async def ask(url: str) -> None:
        backend = OpenAICompatBackend(url, model="stub/coder-instruct", retry_wait=0.01)
        try:
            await backend.chat([{"role": "user", "content": "x" * 4000}], n=1, sampling={})
        finally:
            await backend.aclose()

    with StubServer(StubState(max_model_len=100)) as server:
        with pytest.raises(BackendError, match="HTTP 400") as failure:
            asyncio.run(ask(server.url))
    assert not failure.value.fatal


@pytest.fixture(scope="module")
def item_targets(python_fixture_reports) -> list[Target]:
    root = python_fixture_reports["root"]
    report = read_report(python_fixture_reports["coveragepy"], root=root)
    gaps = find_gaps(report, root, include=["inventory/items.py"]).gaps
    targets, _ = build_targets(gaps, root, ProjectFacts(root), with_context=True)
    return targets


def test_prompts_are_byte_stable_and_share_a_prefix_per_file(item_targets: list[Target]) -> None:
    first, second = item_targets[0], item_targets[1]
    assert first.context is not None and second.context is not None
    assert messages_for(first.context) == messages_for(first.context)
    a, b = messages_for(first.context)[1]["content"], messages_for(second.context)[1]["content"]
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    # Everything about the file comes first and is shared; the method under test comes after.
    shared = a[:prefix]
    assert "## Module" in shared and "## Its imports" in shared and "## An existing test of this module" in shared
    assert first.context.focal.splitlines()[0] not in shared
    assert "NOT COVERED" in a and "from inventory.items import" in a


def test_context_is_trimmed_to_the_budget_but_keeps_the_focal_method(item_targets: list[Target]) -> None:
    target = next(t for t in item_targets if t.gap.qualname == "Stock.remove")
    assert target.context is not None
    full = messages_for(target.context)[1]["content"]
    assert "An existing test of this module" in full

    async def scenario(url: str) -> str:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=1, max_completion_tokens=200)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.messages[1]["content"]

    # Room for the rules and the focal method, not for everything.
    budget = len(full) // 4 - 150 + 200 + 16
    near_the_limit = StubState(max_model_len=budget)
    with StubServer(near_the_limit) as server:
        sent = asyncio.run(scenario(server.url))
    assert "An existing test of this module" not in sent
    assert "def remove(self, name: str, count: int = 1) -> int:" in sent and "NOT COVERED" in sent
    assert near_the_limit.tokenize_requests > 2  # readiness, then exact counts while trimming

    # Far below the limit no tokenizer could overflow it: the prompt goes out whole, uncounted.
    roomy = StubState(max_model_len=32768)
    with StubServer(roomy) as server:
        sent = asyncio.run(scenario(server.url))
    assert sent == full and roomy.tokenize_requests == 1


def test_structured_output_is_requested_with_response_format_and_checked(item_targets: list[Target]) -> None:
    target = next(t for t in item_targets if t.gap.qualname == "Stock.remove")
    code = "def test_x():\n    assert True\n"

    async def scenario(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=2, structured=True)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.sources, proposal.notes

    state = StubState(script={"Stock.remove": [[json.dumps({"code": code}), "```python\n" + code + "```"]]})
    with StubServer(state) as server:
        sources, notes = asyncio.run(scenario(server.url))
    assert sources == (code, code)
    assert notes == ("the server ignored the JSON schema; answer read as plain text",)
    request = state.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert not any(key.startswith("guided_") for key in request)


def test_answers_cut_off_at_the_token_limit_are_reported(item_targets: list[Target]) -> None:
    target = next(t for t in item_targets if t.gap.qualname == "Stock.remove")
    short = "```python\ndef test_x():\n    assert True\n```"
    long = "```python\n" + "".join(f"def test_{i}():\n    assert {i} == {i}\n\n" for i in range(40)) + "```"

    async def scenario(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        backend = OpenAICompatBackend(url, retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=2, max_completion_tokens=64)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.sources, proposal.notes

    state = StubState(script={"Stock.remove": [[short, long]]})
    with StubServer(state) as server:
        sources, notes = asyncio.run(scenario(server.url))
    assert sources[0] == "def test_x():\n    assert True\n" and len(sources[1]) < len(long) // 2
    assert notes == ("answers were cut off at --max-tokens (64); a larger limit may save them",)


def test_record_then_replay_without_a_server(tmp_path: Path, item_targets: list[Target]) -> None:
    target = next(t for t in item_targets if t.gap.qualname == "Stock.remove")
    recording = tmp_path / "answers.jsonl"
    answer = "```python\ndef test_recorded():\n    assert True\n```"

    async def record(url: str) -> tuple[str, ...]:
        live = OpenAICompatBackend(url, retry_wait=0.01)
        await live.start(wait_seconds=5)
        engine = LlmEngine(ReplayBackend(recording, live=live), candidates=2)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.sources

    async def replay() -> tuple[str, ...]:
        engine = LlmEngine(ReplayBackend(recording), candidates=2)
        proposal = await engine.propose(target)
        await engine.aclose()
        return proposal.sources

    with StubServer(StubState(script={"Stock.remove": [[answer]]})) as server:
        recorded = asyncio.run(record(server.url))
    assert asyncio.run(replay()) == recorded == ("def test_recorded():\n    assert True\n",) * 2

    async def miss() -> None:
        engine = LlmEngine(ReplayBackend(recording), candidates=3)  # different n: a different request
        await engine.propose(target)

    with pytest.raises(BackendError, match="no recorded answer") as failure:
        asyncio.run(miss())
    assert not failure.value.fatal


def test_offline_vllm_batches_concurrent_requests_into_one_chat_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a stand-in for the vllm package: checks our batching and parameters, not vLLM."""
    calls: list[tuple[list[object], object]] = []

    class SamplingParams:
        def __init__(self, **kwargs: object) -> None:
            self.kwargs = kwargs

    class Output:
        def __init__(self, text: str) -> None:
            self.text, self.token_ids = text, [1, 2, 3]

    class RequestOutput:
        def __init__(self, n: int, index: int) -> None:
            self.outputs = [Output(f"answer {index}.{i}") for i in range(n)]
            self.prompt_token_ids = [0] * 10
            self.num_cached_tokens = 4

    class LLM:
        def __init__(self, **kwargs: object) -> None:
            self.kwargs = kwargs

        def chat(self, conversations: list[object], sampling_params: SamplingParams, use_tqdm: bool) -> list[RequestOutput]:
            calls.append((conversations, sampling_params))
            return [RequestOutput(sampling_params.kwargs["n"], i) for i in range(len(conversations))]  # type: ignore[arg-type]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from covgen.engines.vllm_offline import VllmOfflineBackend

    async def scenario() -> list[object]:
        backend = VllmOfflineBackend("some/model")
        sampling = {"temperature": 0.2, "max_completion_tokens": 512, "seed": 7}
        return await asyncio.gather(*(backend.chat([{"role": "user", "content": f"q{i}"}], n=2, sampling=sampling) for i in range(5)))

    results = asyncio.run(scenario())
    assert len(calls) == 1 and len(calls[0][0]) == 5
    assert calls[0][1].kwargs == {"n": 2, "temperature": 0.2, "max_tokens": 512, "seed": 7}  # type: ignore[attr-defined]
    assert [r.texts for r in results][2] == ("answer 2.0", "answer 2.1")  # type: ignore[attr-defined]
    assert results[0].cached_tokens == 4  # type: ignore[attr-defined]


def test_audit_log_never_holds_the_api_key(tmp_path: Path, item_targets: list[Target]) -> None:
    target = next(t for t in item_targets if t.gap.qualname == "Stock.remove")
    log = tmp_path / "audit.jsonl"

    async def scenario(url: str) -> None:
        backend = OpenAICompatBackend(url, api_key="sk-live-supersecretvalue123456", retry_wait=0.01)
        await backend.start(wait_seconds=5)
        engine = LlmEngine(backend, candidates=1, audit=AuditLog(log))
        await engine.propose(target)
        await engine.aclose()

    with StubServer(StubState()) as server:
        asyncio.run(scenario(server.url))
    text = log.read_text()
    assert "Stock.remove" in text and "supersecretvalue" not in text
