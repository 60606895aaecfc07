"""The language seam: one pack per language holds everything covgen knows about it.

A pack finds the code units of a file, names the module tests import, says where generated
tests go, screens candidates, writes the prompts, and renders the accepted tests. The pipeline
asks ``pack_for(path)`` for each gap and never imports a language's pieces itself, so the next
language is one more pack, not a fork of the pipeline. A pack that cannot generate tests yet
says why (``not_yet``), and the run names its gaps instead of dropping them.

Parsers and prompt families are imported on first use: ``covgen --help`` pays for none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from covgen.errors import SourceError, UsageError
from covgen.model import CodeUnit

if TYPE_CHECKING:
    from covgen.engines.explore import Explorer
    from covgen.prompts.context import PromptContext
    from covgen.runners.pytest_runner import PytestRunner
    from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace
    from covgen.screen import Screen, ScreenMode
    from covgen.writer import AcceptedTest, Rendered

__all__ = ["LanguagePack", "pack_for", "pack_named", "packs", "find_units", "supports"]

Message = dict[str, str]


class LanguagePack(Protocol):
    """Everything covgen does that depends on the language of the code under test."""

    name: str
    suffixes: tuple[str, ...]
    #: Why ``covgen run`` cannot fill this language's gaps yet; empty when it can.
    not_yet: str

    def find_units(self, source: str, path: str) -> list[CodeUnit]: ...

    def extract(self, answer: str) -> str:
        """The test source in a model's answer (the fenced block of this language)."""
        ...

    def module_name(self, path: str) -> str: ...

    def test_path(self, gap_path: str, test_dir: str) -> str: ...

    def screen(self, mode: ScreenMode, project: Path, modules: Sequence[str]) -> Screen: ...

    def messages_for(self, context: PromptContext, *, structured: bool = False) -> list[Message]: ...

    def repair_messages(self, previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]: ...

    def render(self, accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str, provenance: str) -> Rendered: ...

    def runner(self, workspace: Workspace, *, python: str, policy: SandboxPolicy, test_timeout: float,
               layers: SandboxLayers | None) -> PytestRunner: ...

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer: ...


class PythonPack:
    """Python: libcst units, import names, pytest prompts, the allowlist screen, libcst writer."""

    name = "python"
    suffixes: tuple[str, ...] = (".py",)
    not_yet = ""

    def find_units(self, source: str, path: str) -> list[CodeUnit]:
        from covgen.languages.python import find_python_units

        return find_python_units(source, path)

    def extract(self, answer: str) -> str:
        from covgen.extract import extract_python

        return extract_python(answer)

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

    def runner(self, workspace: Workspace, *, python: str, policy: SandboxPolicy, test_timeout: float,
               layers: SandboxLayers | None) -> PytestRunner:
        from covgen.runners.pytest_runner import PytestRunner

        return PytestRunner(workspace, python=python, policy=policy, test_timeout=test_timeout, layers=layers)

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer:
        from covgen.engines.explore import PythonExplorer

        return PythonExplorer(python, policy, seed, screen, max_attempts)


class JavaPack:
    """Java: javalang and tree-sitter-java units, JUnit 5 prompts, the Java allowlist screen, the JUnit writer."""

    name = "java"
    suffixes: tuple[str, ...] = (".java",)
    not_yet = "covgen run writes tests for python only so far (JUnit 5 is the next stage)"

    def find_units(self, source: str, path: str) -> list[CodeUnit]:
        from covgen.languages.java import find_java_units

        return find_java_units(source, path)

    def extract(self, answer: str) -> str:
        from covgen.extract import extract_java

        return extract_java(answer)

    def module_name(self, path: str) -> str:
        """``src/main/java/com/acme/Money.java`` → ``com.acme.Money``."""
        return path.removesuffix(".java").rsplit("/java/", 1)[-1].replace("/", ".")

    def test_path(self, gap_path: str, test_dir: str) -> str:
        """``src/test/java/<package>/<Class>CovgenTest.java`` (under `test_dir` when it is not covgen's Python default)."""
        from covgen.languages.java_writer import java_test_path

        return java_test_path(gap_path, test_dir)

    def screen(self, mode: ScreenMode, project: Path, modules: Sequence[str]) -> Screen:
        """`modules` are the targets' fully qualified class names; their packages and the project's are allowed."""
        from covgen.screen.java import JavaScreen, project_packages

        return JavaScreen(mode, project_packages(project, modules))

    def messages_for(self, context: PromptContext, *, structured: bool = False) -> list[Message]:
        from covgen.prompts.junit_family import messages_for

        return messages_for(context, structured=structured)

    def repair_messages(self, previous: list[Message], answer: str, feedback: str, *, structured: bool = False) -> list[Message]:
        from covgen.prompts.junit_family import repair_messages

        return repair_messages(previous, answer, feedback, structured=structured)

    def render(self, accepted: Sequence[AcceptedTest], root: Path, *, test_dir: str, provenance: str) -> Rendered:
        from covgen.languages.java_writer import render_java

        return render_java(accepted, root, test_dir=test_dir, provenance=provenance)

    def runner(self, workspace: Workspace, *, python: str, policy: SandboxPolicy, test_timeout: float,
               layers: SandboxLayers | None) -> PytestRunner:
        raise self._not_yet()  # covgen.runners.java_runner is built; the Java stage plugs it in here

    def explorer(self, python: str, policy: SandboxPolicy, *, seed: int, screen: ScreenMode, max_attempts: int | None) -> Explorer:
        raise self._not_yet()

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
