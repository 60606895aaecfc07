"""The pytest prompt family: fixed rules, then per-file context, then the focal method."""

from __future__ import annotations

from covgen.prompts.context import PromptContext
from covgen.prompts.turns import code_schema, first_turn, repair_turn

__all__ = ["SYSTEM", "SYSTEM_STRUCTURED", "TESTS_SCHEMA", "messages_for", "repair_messages"]

Message = dict[str, str]

_RULES = """\
You write pytest tests for existing Python code. Rules:
1. Import what you test from its module. Never redefine, copy or mock the code under test.
2. Every test must pass every time: no network, no subprocesses, no sleeping, no unseeded \
randomness, no wall-clock time unless you monkeypatch it.
3. Use only the standard library, pytest and the project's own modules. Use tmp_path for any \
file; never read or write the project's files.
4. Name each test test_<behaviour>_<condition>. Assert exact return values; check exceptions \
with pytest.raises(Type, match=...).
5. Aim at the lines marked NOT COVERED and the branches marked BRANCH: that is the only \
purpose of these tests."""

SYSTEM = _RULES + "\n6. Answer with one ```python fenced block holding the complete test module."
SYSTEM_STRUCTURED = _RULES + '\n6. Answer with a JSON object {"code": "<the complete test module>"}.'

#: The JSON schema used with structured outputs (``response_format`` / ``structured_outputs``).
TESTS_SCHEMA = code_schema("a complete pytest module")


def messages_for(context: PromptContext, *, structured: bool = False) -> list[Message]:
    """Messages for a first attempt; identical input gives byte-identical output."""
    return first_turn(context, SYSTEM_STRUCTURED if structured else SYSTEM)


def repair_messages(previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]:
    """Continue the conversation with what went wrong, so earlier turns stay in the prefix cache."""
    answer_format = 'one JSON object {"code": ...}' if structured else "one ```python block"
    return repair_turn(previous, answer, f"covgen ran your tests in a sandbox and they were rejected:\n\n{feedback}",
                       f"Fix the module. Answer with {answer_format} holding the complete corrected test module.")
