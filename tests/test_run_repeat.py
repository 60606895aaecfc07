"""`covgen run` when one test closes several gaps, and when a run is repeated on the same report.

Real CLI, real pytest and coverage.py; the model is the scripted local server. What a user
relies on: the summary counts the tests the files really hold, and a second run on a report
made before covgen's first run (a CI job re-run) writes nothing twice and claims no gain twice.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.vllm_stub import StubServer, StubState
from conftest import module_project
from support.textkit import TEXTKIT as SHARED_TEXTKIT
from test_run_llm import fence, run_covgen, tree_digest

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e

#: The shared text module plus a function no candidate reaches.
TEXTKIT = SHARED_TEXTKIT + '''

def slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)
'''
# titleize calls humanize: this one test reaches both gaps, and is the answer for both.
TITLE = fence("""
    from textkit import titleize

    def test_titleize_capitalizes_every_word():
        assert titleize("hello_world") == "Hello World"
""")
SLUG = fence("""
    from textkit import slug

    def test_slug_joins_words_with_dashes():
        assert slug("Hello, World!") == "hello-world"
""")
EMPTY = fence("""
    from textkit import humanize

    def test_humanize_of_underscores_is_empty():
        assert humanize("__") == ""
""")
TEXTKIT_FILE = "tests/covgen/test_textkit_covgen.py"


@pytest.fixture
def textkit(tmp_path: Path) -> dict[str, Path]:
    """A module its own tests only import, and a coverage.py report made before covgen ran."""
    return module_project(tmp_path, "textkit", TEXTKIT, "import textkit\n\n\ndef test_imports():\n    assert textkit\n")


def written_tests(path: Path) -> list[str]:
    """The test functions a written file really holds (parsed, not grepped)."""
    tree = ast.parse(path.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]


def run_llm(textkit: dict[str, Path], tmp_path: Path, script: dict[str, list[list[str]]], name: str,
            candidates: str = "1") -> tuple[dict[str, Any], StubState, subprocess.CompletedProcess[str]]:
    state = StubState(script=script)
    summary_path = tmp_path / f"{name}.json"
    with StubServer(state) as server:
        result = run_covgen(textkit["root"], "--report", str(textkit["report"]), "--engine", "llm", "--model-url", server.url,
                            "--candidates", candidates, "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    return json.loads(summary_path.read_text()), state, result


def by_gap(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"].split("::")[1]: g for g in summary["gaps"]}


@dataclass(frozen=True)
class FirstRun:
    """The first LLM run on a fresh textkit, and the project's own pytest run right after it."""

    textkit: dict[str, Path]
    summary: dict[str, Any]
    result: subprocess.CompletedProcess[str]
    written: list[str]
    check: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """Shared: both tests below start from this run; everything is recorded before either goes on."""
    base = tmp_path_factory.mktemp("textkit")
    textkit = module_project(base, "textkit", TEXTKIT, "import textkit\n\n\ndef test_imports():\n    assert textkit\n")
    summary, _, result = run_llm(textkit, base, {"humanize": [[TITLE]], "titleize": [[TITLE]], "slug": [[SLUG]]}, "first")
    check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=textkit["root"], capture_output=True, text=True)
    return FirstRun(textkit, summary, result, written_tests(textkit["root"] / TEXTKIT_FILE), check)


def test_one_test_accepted_for_two_gaps_is_written_and_counted_once(first_run: FirstRun) -> None:
    summary, result, written, check = first_run.summary, first_run.result, first_run.written, first_run.check
    gaps = by_gap(summary)
    # The test is accepted for both gaps it closes, and written once.
    assert gaps["humanize"]["accepted_tests"] == gaps["titleize"]["accepted_tests"] == ["test_titleize_capitalizes_every_word"]
    assert summary["verdicts"]["ACCEPTED"] == 3
    assert summary["files_written"] == [TEXTKIT_FILE]
    assert sorted(written) == ["test_slug_joins_words_with_dashes", "test_titleize_capitalizes_every_word"]
    assert summary["accepted_tests"] == len(written) == 2
    assert f"tests accepted: 2 in {TEXTKIT_FILE}" in result.stdout
    assert check.returncode == 0 and "3 passed" in check.stdout, check.stdout + check.stderr


def test_a_run_repeated_on_the_same_report_adds_nothing_twice(first_run: FirstRun, tmp_path: Path) -> None:
    textkit, first = first_run.textkit, first_run.summary
    path = textkit["root"] / TEXTKIT_FILE
    after_first = first_run.written
    assert written_tests(path) == after_first  # nothing ran on this project since
    assert first["accepted_tests"] == len(after_first) == 2

    # Same report, which knows nothing of covgen's file. The model would answer as before, and
    # for humanize also with a test of the one line the first run left (the empty name).
    second, state, result = run_llm(textkit, tmp_path, {"humanize": [[TITLE, EMPTY]], "titleize": [[TITLE]], "slug": [[SLUG]]},
                                    "second", candidates="2")
    # The gaps covgen's file closed are not asked about again; humanize only for what is left.
    prompts = [r["messages"][1]["content"] for r in state.requests]
    assert [p.split("## Code under test: ")[1].split(" (")[0] for p in prompts] == ["humanize"]
    assert any("the report predates covgen's tests in tests/covgen/test_textkit_covgen.py" in w for w in second["warnings"])
    assert "the report predates covgen's tests" in result.stdout + result.stderr
    gaps = by_gap(second)
    assert list(gaps) == ["humanize"]
    assert gaps["humanize"]["accepted_tests"] == ["test_humanize_of_underscores_is_empty"]
    # The old test again gains nothing over what covgen's file covers.
    assert [(r["test"], r["verdict"]) for r in gaps["humanize"]["rejected"]] == [("test_titleize_capitalizes_every_word", "NO_GAIN")]
    after_second = written_tests(path)
    assert after_second == [*after_first, "test_humanize_of_underscores_is_empty"]
    assert second["accepted_tests"] == len(after_second) - len(after_first) == 1
    # Coverage starts where the first run ended: the first run's gain is not claimed again.
    assert second["coverage"]["lines"]["before"] == first["coverage"]["lines"]["after"]
    assert second["coverage"]["branches"]["before"] == first["coverage"]["branches"]["after"]
    assert second["coverage"]["lines"]["after"]["covered"] == second["coverage"]["lines"]["after"]["total"]

    # A third run finds nothing left: it asks nothing, writes nothing, and changes no byte.
    before = tree_digest(textkit["root"])
    third, state, _ = run_llm(textkit, tmp_path, {"humanize": [[TITLE, EMPTY]], "titleize": [[TITLE]], "slug": [[SLUG]]}, "third")
    assert state.requests == []
    assert third["accepted_tests"] == 0 and third["files_written"] == [] and third["gaps_targeted"] == 0
    assert third["coverage"]["lines"]["before"] == third["coverage"]["lines"]["after"] == second["coverage"]["lines"]["after"]
    assert {k: v for k, v in tree_digest(textkit["root"]).items() if not k.startswith(".covgen/")} == {
        k: v for k, v in before.items() if not k.startswith(".covgen/")
    }
    check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=textkit["root"], capture_output=True, text=True)
    assert check.returncode == 0 and "4 passed" in check.stdout, check.stdout + check.stderr


def test_the_model_free_run_repeated_on_the_same_report_changes_nothing(textkit, tmp_path: Path) -> None:
    """The README's main command run twice (a CI re-run): the second run ends well and adds nothing."""
    args = ["--report", str(textkit["report"]), "--engine", "explore", "--explore-seconds", "1"]
    first = run_covgen(textkit["root"], *args, "--output", f"json:{tmp_path / 'first.json'}")
    assert first.returncode == 0, first.stderr
    before = tree_digest(textkit["root"])
    summary = json.loads((tmp_path / "first.json").read_text())
    assert summary["accepted_tests"] == len(written_tests(textkit["root"] / TEXTKIT_FILE)) > 0

    again = run_covgen(textkit["root"], *args, "--output", f"json:{tmp_path / 'again.json'}")
    assert again.returncode == 0, again.stderr
    repeated = json.loads((tmp_path / "again.json").read_text())
    assert repeated["accepted_tests"] == 0 and repeated["files_written"] == []
    assert repeated["coverage"]["lines"]["before"] == summary["coverage"]["lines"]["after"]
    assert tree_digest(textkit["root"]) == before
