"""The JUnit 5 prompt family: fixed rules, then per-project and per-class context, then the focal method."""

from __future__ import annotations

from covgen.prompts.context import PromptContext
from covgen.prompts.turns import code_schema, first_turn, repair_turn

__all__ = ["SYSTEM", "SYSTEM_STRUCTURED", "TESTS_SCHEMA", "messages_for", "repair_messages"]

Message = dict[str, str]

# The rules match what the Java screen (covgen.screen.java) lets run: a model told the limits
# up front wastes fewer attempts on UNSAFE answers.
_RULES = """\
You write JUnit 5 tests for existing Java code. Rules:
1. Use the JUnit Jupiter API (org.junit.jupiter.api; org.junit.jupiter.params when listed) and \
only the test libraries listed. No JUnit 4, no other libraries.
2. Put the test class in the package of the class under test, so package-private members are \
reachable. Declare exactly one top-level class, public or package-private.
3. Call the code under test. Never copy, redefine or reimplement it.
4. Every test must pass every time: no System.exit, threads or executors, processes, sockets, \
reflection, environment variables, sleeping, unseeded randomness or wall-clock time. Touch files \
only below a @TempDir.
5. Assert the observable result of each call: exact return values, the object's state after it, \
expected exceptions with assertThrows (and their message where it matters). A test that only \
shows nothing was thrown is not enough.
6. Aim at the lines marked NOT COVERED and the branches marked BRANCH: that is the only purpose \
of these tests."""

SYSTEM = _RULES + "\n7. Answer with one ```java fenced block holding the complete compilation unit: package line, imports, one test class."
SYSTEM_STRUCTURED = _RULES + '\n7. Answer with a JSON object {"code": "<the complete compilation unit: package line, imports, one test class>"}.'

#: The JSON schema used with structured outputs (``response_format`` / ``structured_outputs``).
TESTS_SCHEMA = code_schema("a complete Java compilation unit holding one JUnit 5 test class")


def messages_for(context: PromptContext, *, structured: bool = False) -> list[Message]:
    """Messages for a first attempt; identical input gives byte-identical output."""
    return first_turn(context, SYSTEM_STRUCTURED if structured else SYSTEM)


def repair_messages(previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]:
    """Continue the conversation with what went wrong, so earlier turns stay in the prefix cache."""
    answer_format = 'one JSON object {"code": ...}' if structured else "one ```java block"
    return repair_turn(previous, answer, f"covgen compiled and ran your tests in a sandbox and they were rejected:\n\n{feedback}",
                       f"Fix the test class. Answer with {answer_format} holding the complete corrected compilation unit.")
