"""The shape every prompt family shares: the context in a fixed order, then the repair turn.

Sections go from the most shared (the same for every gap of a file) to the focal method and
the task, so vLLM's prefix cache serves a file's later gaps; a repair continues the
conversation, so the earlier turns stay in the cache too.
"""

from __future__ import annotations

from covgen.prompts.context import PromptContext

__all__ = ["code_schema", "first_turn", "repair_turn"]

Message = dict[str, str]


def first_turn(context: PromptContext, system: str) -> list[Message]:
    """Messages for a first attempt; identical input gives byte-identical output."""
    sections = [f"## {piece.title}\n{piece.text}" for piece in context.pieces]
    sections.append(f"## Code under test: {context.qualname} (line numbers from {context.path})\n{context.focal}")
    sections.append(f"## Task\n{context.goal}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(sections)}]


def repair_turn(previous: list[Message], answer: str, rejected: str, fix: str) -> list[Message]:
    """`previous`, the model's `answer`, and what covgen saw (`rejected`) with what to send back (`fix`)."""
    return [*previous, {"role": "assistant", "content": answer}, {"role": "user", "content": f"{rejected}\n\n{fix}"}]


def code_schema(description: str) -> dict[str, object]:
    """The JSON schema of a structured answer (``response_format``): one object whose ``code`` is
    `description`; :func:`covgen.extract.extract_structured` reads it back."""
    return {
        "type": "object",
        "properties": {"code": {"type": "string", "description": description}},
        "required": ["code"],
        "additionalProperties": False,
    }
