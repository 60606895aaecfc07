"""Pull test code out of a model's answer: fenced blocks, prose around them, unterminated fences."""

from __future__ import annotations

import ast
import json
import re

__all__ = ["extract_java", "extract_python", "extract_structured"]

_FENCE = re.compile(r"^(?P<fence>```|~~~)[ \t]*(?P<lang>[\w+.\-]*)[^\n]*\n(?P<body>.*?)(?:^(?P=fence)[ \t]*$|\Z)", re.M | re.S)
_PYTHON_TAGS = {"python", "py", "python3", "pytest", ""}
_JAVA_TAGS = {"java", "junit", ""}
_TEST_ANNOTATION = re.compile(r"@(?:\w+\.)*(?:Test|ParameterizedTest|RepeatedTest|TestFactory)\b")
_CLASS = re.compile(r"\b(?:class|record|enum|interface)\s+[A-Za-z_$]")


def _after_thinking(answer: str) -> str:
    """The answer without a reasoning model's thinking.

    Reasoning models (Qwen3, DeepSeek-R1 distills) served without vLLM's reasoning parser put
    their thinking, drafts included, in the answer; some chat templates open the <think> in
    the prompt, so only the closing tag shows. The answer is what follows the thinking.
    """
    if "</think>" in answer:
        return answer.rsplit("</think>", 1)[1]
    if answer.lstrip().startswith("<think>"):
        return ""  # cut off while still thinking
    return answer


def extract_java(answer: str) -> str:
    """Return the Java test class in `answer`, or the best guess (which may not compile).

    Several blocks: the one declaring a class with a test in it (a model often shows the code
    under test, or a fragment, beside its answer); the largest of those when there are several.
    """
    answer = _after_thinking(answer)
    blocks = [m.group("body") for m in _FENCE.finditer(answer) if m.group("lang").lower() in _JAVA_TAGS]
    if not blocks:
        return answer.strip() + "\n"
    tests = [block for block in blocks if _TEST_ANNOTATION.search(block) and _CLASS.search(block)]
    return max(tests or blocks, key=len).strip() + "\n"


def extract_python(answer: str) -> str:
    """Return the Python test module in `answer`, or the best guess (which may not parse)."""
    answer = _after_thinking(answer)
    blocks = [(m.group("lang").lower(), m.group("body")) for m in _FENCE.finditer(answer)]
    python = [body for lang, body in blocks if lang in _PYTHON_TAGS]
    if not python:
        return answer.strip() + "\n"
    if len(python) == 1:
        return python[0].strip() + "\n"
    # Several blocks: often imports in one and tests in another; join them if that parses,
    # otherwise take the largest block that parses on its own.
    joined = "\n\n".join(block.strip() for block in python) + "\n"
    if _parses(joined):
        return joined
    parsing = [block for block in python if _parses(block)]
    return (max(parsing or python, key=len)).strip() + "\n"


def extract_structured(answer: str) -> str | None:
    """Read ``{"code": "..."}`` from a structured-output answer; None when the schema did not hold."""
    try:
        document = json.loads(answer)
    except json.JSONDecodeError:
        return None
    code = document.get("code") if isinstance(document, dict) else None
    return code if isinstance(code, str) else None


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True
