"""Record model answers and replay them: reproducible CI runs and tests with no model at hand.

Each answer is keyed by a hash of (model, messages, n, sampling). Recording wraps a live
backend and appends every exchange to a JSONL file; replaying serves answers from that file and
fails loudly on a prompt it has never seen, rather than inventing one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from covgen.engines import ChatBackend, ChatResult, Message
from covgen.errors import BackendError, UsageError

__all__ = ["ReplayBackend", "request_key"]


#: ChatResult's counts, in field order; recordings keep them so a replay reports the same.
_COUNTS = ("prompt_tokens", "completion_tokens", "cached_tokens", "truncated")


def request_key(model: str, messages: Sequence[Message], n: int, sampling: dict[str, Any]) -> str:
    canonical = json.dumps({"model": model, "messages": list(messages), "n": n, "sampling": sampling}, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ReplayBackend:
    """Serve recorded answers; with `live`, record what the live backend answers instead."""

    def __init__(self, path: Path, *, live: ChatBackend | None = None, model: str | None = None) -> None:
        self.path = path
        self.live = live
        self._answers: dict[str, dict[str, Any]] = {}
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                try:
                    entry = json.loads(line)
                    self._answers[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise UsageError(f"{path}:{number}: not a covgen recording ({err})", slug="bad-recording") from err
        elif live is None:
            raise UsageError(f"{path}: no recording to replay (record one with --record {path})", slug="bad-recording")
        recorded_models = sorted({str(e.get("model")) for e in self._answers.values()})
        self.model = model or (live.model if live is not None else (recorded_models[0] if len(recorded_models) == 1 else ""))

    @property
    def max_model_len(self) -> int | None:
        return self.live.max_model_len if self.live is not None else None

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult:
        model = self.live.model if self.live is not None else self.model
        key = request_key(model, messages, n, sampling)
        if self.live is None:
            entry = self._answers.get(key)
            if entry is None:
                raise BackendError(
                    f"{self.path}: no recorded answer for this prompt (key {key[:12]}); the code or prompts changed "
                    "since it was recorded — record again with --record", slug="replay-miss", fatal=False,
                )
            return ChatResult(tuple(entry["texts"]), *(int(entry.get(k, 0)) for k in _COUNTS))
        result = await self.live.chat(messages, n=n, sampling=sampling)
        entry = {"key": key, "model": model, "texts": list(result.texts), **{k: getattr(result, k) for k in _COUNTS}}
        self._answers[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry, sort_keys=True) + "\n")
        return result

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return await self.live.count_tokens(messages) if self.live is not None else None

    async def aclose(self) -> None:
        if self.live is not None:
            await self.live.aclose()
