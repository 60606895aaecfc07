"""Candidate generators behind one protocol: the model (over HTTP or in-process), replay, explore.

The pipeline asks an :class:`Engine` for candidate test modules for a :class:`Target` and, when
they fail, for repairs; it never knows which engine it talks to. A Java explorer or JUnit prompt
family plugs in here by providing another Engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from covgen.model import CodeUnit, Gap
from covgen.languages import LanguagePack, pack_named
from covgen.prompts.context import PromptContext

__all__ = ["Target", "Proposal", "Engine", "ChatResult", "ChatBackend", "Message"]

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Target:
    """One gap with what an engine may need to work on it."""

    gap: Gap
    #: Dotted import name of the module under test.
    module: str
    source: str
    units: tuple[CodeUnit, ...]
    context: PromptContext | None = None
    #: The language pack that knows this gap's language (``covgen.languages``).
    language: str = "python"

    @property
    def pack(self) -> LanguagePack:
        pack = pack_named(self.language)
        assert pack is not None, self.language  # targets are only built for known languages
        return pack


@dataclass(frozen=True, slots=True)
class Proposal:
    """Candidate test modules for one target, with what they cost."""

    sources: tuple[str, ...]
    #: The raw answers, kept for the repair conversation.
    answers: tuple[str, ...] = ()
    #: The conversation that produced them (LLM engines), for repair turns.
    messages: tuple[Message, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())


class Engine(Protocol):
    name: str

    async def propose(self, target: Target) -> Proposal:
        """First candidates for `target`."""

    async def repair(self, target: Target, previous: Proposal, answer_index: int, feedback: str) -> Proposal:
        """New candidates after `previous.answers[answer_index]` was rejected for `feedback`."""

    def describe(self) -> str:
        """One line for the summary: what this engine is and how it is set up."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChatResult:
    texts: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    #: Answers that stopped at the completion-token limit (finish_reason "length").
    truncated: int = 0


class ChatBackend(Protocol):
    """Something that answers chat messages: a vLLM server, an in-process vLLM, a recording."""

    model: str

    async def chat(self, messages: Sequence[Message], *, n: int, sampling: dict[str, Any]) -> ChatResult: ...

    async def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """Exact prompt tokens (chat template included), or None when the backend cannot tell."""

    @property
    def max_model_len(self) -> int | None: ...

    async def aclose(self) -> None: ...
