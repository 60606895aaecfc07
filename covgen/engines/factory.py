"""Choose and open the engine a run uses, and say why (the summary shows the reason)."""

from __future__ import annotations

import os
from pathlib import Path

from covgen.engines import Engine
from covgen.errors import BackendError, UsageError
from covgen.screen import ScreenMode

__all__ = ["open_engine", "ENGINE_NAMES"]

ENGINE_NAMES = ("auto", "llm", "explore", "hybrid", "replay", "vllm")


async def open_engine(
    kind: str,
    *,
    model_url: str | None,
    model: str | None,
    concurrency: int,
    candidates: int,
    temperature: float,
    seed: int | None,
    max_tokens: int,
    structured: bool,
    wait_for_model: float,
    request_timeout: float,
    record: Path | None,
    replay: Path | None,
    audit_log: Path | None,
    explore_seconds: float,
    python: str,
    root: Path,
    screen: ScreenMode = "strict",
    explore_attempts: int | None = None,
) -> tuple[list[Engine], str]:
    """Open the engines for `kind`, in the order they run (hybrid: explore, then the model)."""
    from covgen.engines.llm import DEFAULT_MODEL_URL, AuditLog, LlmEngine, OpenAICompatBackend
    from covgen.engines.pool import BackendPool

    def llm(backend: object, label: str) -> LlmEngine:
        return LlmEngine(
            backend,  # type: ignore[arg-type]
            candidates=candidates, temperature=temperature, seed=seed, max_completion_tokens=max_tokens,
            structured=structured, audit=AuditLog(audit_log), label=label,
        )

    urls = [url.strip() for url in (model_url or DEFAULT_MODEL_URL).split(",") if url.strip()] or [DEFAULT_MODEL_URL]

    async def live(wait: float) -> OpenAICompatBackend | BackendPool:
        def one(url: str, attempts: int) -> OpenAICompatBackend:
            return OpenAICompatBackend(url, model=model, api_key=os.environ.get("COVGEN_API_KEY"), concurrency=concurrency,
                                       request_timeout=request_timeout, attempts=attempts)

        # In a pool, a member retries once and then the pool sends the request to another server.
        backend = one(urls[0], 5) if len(urls) == 1 else BackendPool([one(url, 2) for url in urls])
        try:
            await backend.start(wait_seconds=wait)
        except BaseException:
            await backend.aclose()
            raise
        return backend

    def server(backend: OpenAICompatBackend | BackendPool) -> LlmEngine:
        where = f"vLLM server at {backend.base_url}" if len(urls) == 1 else f"{len(urls)} vLLM servers ({backend.base_url})"
        if record is not None:
            from covgen.engines.replay import ReplayBackend

            return llm(ReplayBackend(record, live=backend), f"{where}, recording to {record}")
        return llm(backend, where)

    if kind == "llm":
        return [server(await live(wait_for_model))], "chosen with --engine llm"
    if kind == "replay":
        if replay is None:
            raise UsageError("--engine replay needs --replay PATH (a file written by --record)")
        from covgen.engines.replay import ReplayBackend

        return [llm(ReplayBackend(replay, model=model), f"replay of {replay}")], "chosen with --engine replay"
    if kind == "vllm":
        if not model:
            raise UsageError("--engine vllm needs --model NAME (a model vLLM can load on this machine)")
        from covgen.engines.vllm_offline import VllmOfflineBackend

        return [llm(VllmOfflineBackend(model), f"in-process vLLM ({model})")], "chosen with --engine vllm"
    from covgen.engines.explore import ExploreEngine

    explore = ExploreEngine(root, python=python, seconds_per_gap=explore_seconds, screen=screen, attempts_per_gap=explore_attempts)
    if kind == "explore":
        return [explore], "chosen with --engine explore"
    if kind == "hybrid":
        return [explore, server(await live(wait_for_model))], "chosen with --engine hybrid: exploration first, the model on what remains"
    if kind != "auto":
        raise UsageError(f"unknown --engine {kind!r}; choose from {', '.join(ENGINE_NAMES)}")
    if not model_url:
        return [explore], "no model endpoint configured (--model-url or COVGEN_MODEL_URL), so the model-free engine ran"
    try:
        backend = await live(3.0)
    except BackendError as err:
        return [explore], f"the model endpoint did not answer ({err}); the model-free engine ran instead"
    return [server(backend)], f"the model endpoint {model_url} answered {backend.live_via}"
