"""Per-language source knowledge: find the code units (functions, methods) of a file."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from covgen.errors import SourceError
from covgen.model import CodeUnit

__all__ = ["find_units", "supports"]

_FINDERS: dict[str, Callable[[str, str], list[CodeUnit]]] = {}


def _finder(language: str) -> Callable[[str, str], list[CodeUnit]] | None:
    # Parsers are imported on first use: `covgen --help` should not pay for libcst or tree-sitter.
    if language not in _FINDERS:
        if language == "python":
            from covgen.languages.python import find_python_units

            _FINDERS[language] = find_python_units
        elif language == "java":
            from covgen.languages.java import find_java_units

            _FINDERS[language] = find_java_units
        else:
            return None
    return _FINDERS[language]


def supports(language: str) -> bool:
    return language in ("python", "java")


def find_units(language: str, source: str, path: str) -> list[CodeUnit]:
    """Parse `source` (the text of `path`) and return its code units."""
    return list(_parsed(language, source, path))


@lru_cache(maxsize=512)
def _parsed(language: str, source: str, path: str) -> tuple[CodeUnit, ...]:
    # Finding gaps and building prompts both need a file's units; units are frozen values, so
    # the second caller gets the first parse.
    finder = _finder(language)
    if finder is None:
        raise SourceError(f"{path}: covgen has no parser for this language")
    return tuple(finder(source, path))
