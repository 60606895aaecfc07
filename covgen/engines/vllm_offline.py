"""In-process generation with ``vllm.LLM`` for GPU CI runners (``pip install covgen[vllm]``).

Concurrent requests are gathered into waves: each wave is one batched ``LLM.chat`` call (one per
distinct sampling setup), which is how vLLM's offline engine reaches its throughput. ``vllm`` is
imported only when this backend starts, and generation runs in a worker thread so the pipeline's
event loop keeps validating meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from covgen.engines import ChatResult, Message
from covgen.errors import BackendError

__all__ = ["VllmOfflineBackend"]


class VllmOfflineBackend:
    def __init__(self, model: str, *, wave_seconds: float = 0.05, engine_args: dict[str, Any] | None = None) -> None:
        self.model = model
        self.wave_seconds = wave_seconds
        self.engine_args = engine_args or {}
        self._llm: Any = None
        self._vllm: Any = None
        self._pending: list[tuple[list[Message], int, dict[str, Any], asyncio.Future[ChatResult]]] = []
        self._flush: asyncio.Task[None] | None = None
        self.waves = 0

    @property
    def max_model_len(self) -> int | None:
        if self._llm is None:
            return None
        config = getattr(self._llm.llm_engine, "model_config", None)
        return getattr(config, "max_model_len", None)

    def start(self) -> None:
        try:
            import vllm
        except ImportError as err:
            raise BackendError("--engine vllm needs the vllm package: pip install 'covgen[vllm]' on a GPU machine") from err
        self._vllm = vllm
        # generation_config="vllm": covgen's own sampling values, not the model's defaults.
        self._llm = vllm.LLM(model=self.model, enable_prefix_caching=True, generation_config="vllm", **self.engine_args)

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult:
        if self._llm is None:
            self.start()
        future: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._pending.append((list(messages), n, sampling, future))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._run_wave())
        return await future

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        if self._llm is None:
            return None
        tokenizer = self._llm.get_tokenizer()
        return len(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True))

    async def aclose(self) -> None:
        self._llm = None

    async def _run_wave(self) -> None:
        await asyncio.sleep(self.wave_seconds)  # let concurrent requests join this wave
        wave, self._pending = self._pending, []
        groups: dict[str, list[tuple[list[Message], int, dict[str, Any], asyncio.Future[ChatResult]]]] = {}
        for request in wave:
            groups.setdefault(json.dumps([request[1], request[2]], sort_keys=True), []).append(request)
        for group in groups.values():
            _, n, sampling, _ = group[0]
            params = self._sampling_params(n, sampling)
            try:
                outputs = await asyncio.to_thread(self._llm.chat, [r[0] for r in group], sampling_params=params, use_tqdm=False)
                self.waves += 1
            except Exception as err:  # noqa: BLE001 - vllm raises many kinds; each waiter gets one clear error
                for *_, future in group:
                    future.set_exception(BackendError(f"vllm.LLM.chat failed: {err}"))
                continue
            for request, output in zip(group, outputs):
                cached = int(getattr(output, "num_cached_tokens", 0) or 0)
                request[3].set_result(
                    ChatResult(
                        texts=tuple(choice.text for choice in output.outputs),
                        prompt_tokens=len(output.prompt_token_ids or ()),
                        completion_tokens=sum(len(choice.token_ids) for choice in output.outputs),
                        cached_tokens=cached,
                        truncated=sum(1 for choice in output.outputs if getattr(choice, "finish_reason", None) == "length"),
                    )
                )
        if self._pending:
            self._flush = asyncio.create_task(self._run_wave())

    def _sampling_params(self, n: int, sampling: dict[str, Any]) -> Any:
        arguments: dict[str, Any] = {
            "n": n,
            "temperature": sampling.get("temperature", 0.7),
            "max_tokens": sampling.get("max_completion_tokens", 2048),
        }
        if sampling.get("seed") is not None:
            arguments["seed"] = sampling["seed"]
        response_format = sampling.get("response_format")
        if response_format:
            from vllm.sampling_params import StructuredOutputsParams

            arguments["structured_outputs"] = StructuredOutputsParams(json=response_format["json_schema"]["schema"])
        return self._vllm.SamplingParams(**arguments)
