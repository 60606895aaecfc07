"""The language seam: one pack per language holds everything covgen knows about it.

A pack finds the code units of a file, names the module tests import, says where generated
tests go, screens candidates, writes the prompts, and renders the accepted tests. The pipeline
asks ``pack_for(path)`` for each gap and never imports a language's pieces itself, so the next
language is one more pack, not a fork of the pipeline. A pack that cannot generate tests yet
says why (``not_yet``), and the run names its gaps instead of dropping them.

Parsers and prompt families are imported on first use: ``covgen --help`` pays for none of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from covgen.errors import SourceError, UsageError
from covgen.model import CodeUnit

if TYPE_CHECKING:
    from covgen.engines.explore import Explorer
    from covgen.pipeline import RunOptions
    from covgen.project import ProjectFacts
    from covgen.prompts.context import PromptContext
    from covgen.runners import TestRunner
    from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace
    from covgen.screen import Screen, ScreenMode
    from covgen.writer import AcceptedTest, Rendered

__all__ = ["LanguagePack", "pack_for", "pack_named", "packs", "find_units", "supports"]

Message = dict[str, str]
#: A line any Python test module has at least one of.
_PYTHON_LINE = re.compile(r"^\s*(def |async def |class |import |from \S+ import |assert )", re.MULTILINE)
_JAVA_TYPE = re.compile(r"\b(class|record|enum|interface)\s+[A-Za-z_$]")


class LanguagePack(Protocol):
    """Everything covgen does that depends on the language of the code under test."""

    name: str
    suffixes: tuple[str, ...]
    #: Why ``covgen run`` cannot fill this language's gaps yet; empty when it can.
    not_yet: str

    def find_units(self, source: str, path: str) -> list[CodeUnit]: ...

    def module_name(self, path: str) -> str: ...

    def test_path(self, gap_path: str, test_dir: str) -> str: ...

    def screen(self, mode: ScreenMode, project: Path, modules: Sequence[str]) -> Screen: ...

    def messages_for(self, context: PromptContext, *, structured: bool = False) -> list[Message]: ...

    def repair_messages(self, previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]: ...

    def render(self, accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str, provenance: str) -> Rendered: ...

    def candidate_file(self, candidate_id: str) -> str:
        """The file name a candidate is written to in the workspace."""

    def syntax_problem(self, source: str) -> str | None:
        """Why `source` cannot be a test module at all (no code, not the language); None when it may be."""

    def existing_tests(self, facts: ProjectFacts, module: str) -> list[str]:
        """The user's test files of `module`, root-relative (run beside new tests, never changed)."""

    def runner(self, workspace: Workspace, *, options: RunOptions, layers: SandboxLayers | None) -> TestRunner:
        """The runner for this language's tests in `workspace`, set up for the project (its build, its tools)."""

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer | None:
        """The model-free engine for this language; None where there is none (its gaps need a model)."""


class PythonPack:
    """Python: libcst units, import names, pytest prompts, the allowlist screen, libcst writer."""

    name = "python"
    suffixes: tuple[str, ...] = (".py",)
    not_yet = ""

    def find_units(self, source: str, path: str) -> list[CodeUnit]:
        from covgen.languages.python import find_python_units

        return find_python_units(source, path)

    def module_name(self, path: str) -> str:
        from covgen.writer import module_name

        return module_name(path)

    def test_path(self, gap_path: str, test_dir: str) -> str:
        from covgen.writer import test_path_for

        return test_path_for(gap_path, test_dir)

    def screen(self, mode: ScreenMode, project: Path, modules: Sequence[str]) -> Screen:
        from covgen.screen import Screen, project_modules

        return Screen(mode, project_modules(project, modules))

    def messages_for(self, context: PromptContext, *, structured: bool = False) -> list[Message]:
        from covgen.prompts.pytest_family import messages_for

        return messages_for(context, structured=structured)

    def repair_messages(self, previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]:
        from covgen.prompts.pytest_family import repair_messages

        return repair_messages(previous, answer, feedback, structured=structured)

    def render(self, accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str, provenance: str) -> Rendered:
        from covgen.writer import render_files

        return render_files(accepted, root, test_dir=test_dir, provenance=provenance)

    def candidate_file(self, candidate_id: str) -> str:
        return f"test_covgen_{candidate_id}.py"

    def syntax_problem(self, source: str) -> str | None:
        import ast

        if not source.strip():
            return "the answer holds no Python code: it is empty, or only the model's thinking"
        try:
            ast.parse(source)
        except SyntaxError as err:
            if not _PYTHON_LINE.search(source):
                # Prose ("I cannot help with that"): say so, which a repair turn can act on.
                return "the answer holds no Python code: no ```python block, and its text is not Python"
            return f"line {err.lineno}: {err.msg}"
        return None

    def existing_tests(self, facts: ProjectFacts, module: str) -> list[str]:
        return facts.tests_of(module)

    def runner(self, workspace: Workspace, *, options: RunOptions, layers: SandboxLayers | None) -> TestRunner:
        from covgen.runners.pytest_runner import PytestRunner
        from covgen.sandbox import SandboxPolicy

        return PytestRunner(workspace, python=options.python, policy=SandboxPolicy(network=options.sandbox),
                            test_timeout=options.test_timeout, layers=layers)

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer:
        from covgen.engines.explore import PythonExplorer

        return PythonExplorer(python, policy, seed, screen, max_attempts)


class JavaPack:
    """Java: javalang and tree-sitter-java units; generating JUnit 5 tests is the next stage."""

    name = "java"
    suffixes: tuple[str, ...] = (".java",)
    not_yet = "covgen run writes tests for python only so far (JUnit 5 is the next stage)"

    def find_units(self, source: str, path: str) -> list[CodeUnit]:
        from covgen.languages.java import find_java_units

        return find_java_units(source, path)

    def module_name(self, path: str) -> str:
        """``src/main/java/com/acme/Money.java`` → ``com.acme.Money``."""
        return path.removesuffix(".java").rsplit("/java/", 1)[-1].replace("/", ".")

    def test_path(self, gap_path: str, test_dir: str) -> str:
        raise self._not_yet()

    def screen(self, mode: ScreenMode, project: Path, modules: Sequence[str]) -> Screen:
        raise self._not_yet()

    def messages_for(self, context: PromptContext, *, structured: bool = False) -> list[Message]:
        raise self._not_yet()

    def repair_messages(self, previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]:
        raise self._not_yet()

    def render(self, accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str, provenance: str) -> Rendered:
        raise self._not_yet()

    def candidate_file(self, candidate_id: str) -> str:
        # The runner stages each candidate under the name its public class needs.
        return f"{candidate_id}.java"

    def syntax_problem(self, source: str) -> str | None:
        # javac is the judge of Java syntax (javalang lags the language); only an answer that
        # holds no class at all is refused here.
        if not source.strip():
            return "the answer holds no Java code: it is empty, or only the model's thinking"
        if not _JAVA_TYPE.search(source):
            return "the answer holds no Java class: no ```java block declaring a test class"
        return None

    def existing_tests(self, facts: ProjectFacts, module: str) -> list[str]:
        from covgen.languages.java_project import existing_java_tests

        return existing_java_tests(facts.root, module)

    def runner(self, workspace: Workspace, *, options: RunOptions, layers: SandboxLayers | None) -> TestRunner:
        from covgen.languages.java_project import java_runner

        return java_runner(workspace, options, layers)

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer | None:
        return None  # JUnit tests come from a model; the model-free engine explores Python only

    def _not_yet(self) -> UsageError:
        return UsageError(self.not_yet, slug="not-yet")


_PACKS: tuple[LanguagePack, ...] = (PythonPack(), JavaPack())


def pack_for(path: str) -> LanguagePack | None:
    """The pack for the file at `path`, by its suffix; None for a language covgen does not know."""
    return next((pack for pack in _PACKS if path.endswith(pack.suffixes)), None)


def packs() -> tuple[LanguagePack, ...]:
    return _PACKS


def pack_named(language: str) -> LanguagePack | None:
    return next((pack for pack in _PACKS if pack.name == language), None)


def supports(language: str) -> bool:
    return pack_named(language) is not None


def find_units(language: str, source: str, path: str) -> list[CodeUnit]:
    """Parse `source` (the text of `path`) and return its code units."""
    return list(_parsed(language, source, path))


@lru_cache(maxsize=512)
def _parsed(language: str, source: str, path: str) -> tuple[CodeUnit, ...]:
    # Finding gaps and building prompts both need a file's units; units are frozen values, so
    # the second caller gets the first parse.
    pack = pack_named(language)
    if pack is None:
        raise SourceError(f"{path}: covgen has no parser for this language")
    return tuple(pack.find_units(source, path))
