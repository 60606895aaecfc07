"""covgen.writer, called directly: what the test files it renders hold, byte for byte.

Each case renders accepted tests and compares the text with tests/golden/writer/<case>.py.golden.
After a deliberate change to the output, regenerate the golden files and review their diff:

    COVGEN_REGENERATE_GOLDEN=1 python3 -m pytest tests/test_writer.py

(the run writes the files and still compares them, so it passes only when it could write them).
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from covgen.errors import CovgenError
from covgen import model
from covgen.model import Candidate, Gap, Verdict
from covgen.writer import AcceptedTest, Rendered, covgen_files, render_files, write_files
from support.textkit import TEXTKIT

GOLDEN = Path(__file__).resolve().parent / "golden" / "writer"
TARGET = "tests/covgen/test_textkit_covgen.py"



def golden(case: str, text: str) -> None:
    path = GOLDEN / f"{case}.py.golden"
    if os.environ.get("COVGEN_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{case}: rendered text differs from {path}"


def gap(qualname: str, lines: tuple[int, ...] = (), arcs: tuple[tuple[int, int], ...] = ()) -> Gap:
    return Gap(path="textkit.py", qualname=qualname, kind="function", start_line=1, end_line=9, signature=f"def {qualname}(name)",
               uncovered_lines=lines, missed_branches=(), coverage_ratio=0.0, missing_arcs=arcs)


# TestVerdict is used through its module: a name starting with "Test" would be collected.
def accept(candidate_id: str, qualname: str, source: str, *tests: str, lines: tuple[int, ...] = (2,),
           arcs: tuple[tuple[int, int], ...] = ()) -> list[AcceptedTest]:
    """Every named test of one candidate, accepted for the gap `qualname` with the given gain."""
    the_gap = gap(qualname, lines, arcs)
    candidate = Candidate(candidate_id, the_gap.id, "llm", 1, textwrap.dedent(source))
    return [AcceptedTest(model.TestVerdict(candidate_id, the_gap.id, test, Verdict.ACCEPTED, gained_lines=lines, gained_arcs=arcs), candidate, the_gap)
            for test in tests]


def render(tmp_path: Path, *groups: list[AcceptedTest], provenance: str = "engine: scripted") -> Rendered:
    return render_files([test for group in groups for test in group], tmp_path, provenance=provenance)


def functions_in(text: str) -> list[str]:
    """Node-id tails of the test functions a file defines (what pytest would collect)."""
    found = []
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            found.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found += [f"{node.name}::{m.name}" for m in node.body if isinstance(m, ast.FunctionDef) and m.name.startswith("test")]
    return found


def header_of(text: str) -> list[str]:
    return list(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))


def run_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the rendered files for real beside the module they test."""
    (root / "textkit.py").write_text(TEXTKIT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)


MERGE_A = '''
    from __future__ import annotations

    import pytest
    from textkit import titleize


    def test_titleize_capitalizes_every_word():
        assert titleize("hello_world") == "Hello World"
'''
MERGE_B = '''
    import os.path
    import pytest
    from textkit import humanize
    from textkit import titleize


    @pytest.mark.parametrize("name", ["__", ""])
    def test_humanize_of_nothing_is_empty(name):
        assert humanize(name) == "" and titleize(name) == ""
'''


def test_imports_are_merged_once_with_future_imports_first(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        accept("c1", "titleize", MERGE_A, "test_titleize_capitalizes_every_word"),
        # A parametrized case is named with its parameters; its function is written whole.
        accept("c2", "humanize", MERGE_B, "test_humanize_of_nothing_is_empty[__]", lines=(4,)),
    )
    golden("merged_imports", rendered.contents[TARGET])
    assert rendered.node_ids[("c2", "test_humanize_of_nothing_is_empty[__]")] == f"{TARGET}::test_humanize_of_nothing_is_empty[__]"
    assert rendered.tests_added == len(functions_in(rendered.contents[TARGET])) == 2
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_text(rendered.contents[TARGET])
    result = run_pytest(tmp_path)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout + result.stderr


SHARED_A = '''
    import pytest
    from textkit import titleize

    ANSWER = "Hello World"


    def spaced(name):
        return name.replace("-", "_")


    @pytest.fixture
    def name():
        return "hello-world"


    def test_titleize_of_a_dashed_name(name):
        assert titleize(spaced(name)) == ANSWER
'''
SHARED_B = '''
    import pytest
    from textkit import humanize

    ANSWER = "Hello world"


    def spaced(name):
        return name.replace("-", "_")


    @pytest.fixture
    def name():
        return "hello-world"


    def test_humanize_of_a_dashed_name(name):
        assert humanize(spaced(name)) == ANSWER
'''


def test_helpers_and_fixtures_two_candidates_share_are_kept_once(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        accept("c1", "titleize", SHARED_A, "test_titleize_of_a_dashed_name"),
        accept("c2", "humanize", SHARED_B, "test_humanize_of_a_dashed_name", lines=(5,)),
    )
    text = rendered.contents[TARGET]
    golden("shared_helpers", text)
    # The same helper and fixture once each; the constant that differs is the candidate's own.
    assert text.count("def spaced(") == 1 and text.count("def name(") == 1
    assert 'ANSWER_2 = "Hello world"' in text and "humanize(spaced(name)) == ANSWER_2" in text
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_text(text)
    result = run_pytest(tmp_path)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr


CLASH_A = '''
    import pytest
    from textkit import titleize


    def label(text):
        return f"[{text}]"


    @pytest.fixture
    def words():
        return "hello_world"


    def test_titleize_capitalizes_every_word(words):
        assert label(titleize(words)) == "[Hello World]"
'''
# Its own `label` and `words` differ from the first candidate's: they are renamed, with exactly
# the references that resolve to them — not the attribute, keyword argument, parameter,
# comprehension variable or class member that merely share the name.
CLASH_B = '''
    import pytest
    from textkit import humanize


    def label(text):
        return text.lower()


    @pytest.fixture
    def words():
        return "Hello_World_"


    class Tag:
        label = "tag"

        def label_of(self):
            return self.label


    def test_humanize_leaves_other_bindings_of_the_name_alone(words):
        assert label(humanize(words)) == "hello world"
        assert Tag().label_of() == Tag.label == "tag"
        assert dict(label=1) == {"label": 1}

        def shout(label):
            return label.upper()

        assert shout("x") == "X"
        assert [label for label in ("a",)] == ["a"]
        assert [label(w) for w in ("A",)] == ["a"]
'''
# The same test name with another body: the test itself is renamed.
CLASH_C = '''
    from textkit import titleize


    def test_titleize_capitalizes_every_word():
        assert titleize("a_b") == "A B"
'''


def test_clashing_names_are_renamed_only_where_they_refer_to_the_definition(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        accept("c1", "titleize", CLASH_A, "test_titleize_capitalizes_every_word"),
        accept("c2", "humanize", CLASH_B, "test_humanize_leaves_other_bindings_of_the_name_alone", lines=(5,)),
        accept("c3", "titleize", CLASH_C, "test_titleize_capitalizes_every_word", lines=(9,)),
    )
    text = rendered.contents[TARGET]
    golden("clashing_names", text)
    assert "self.label" in text and "Tag.label ==" in text and "dict(label=1)" in text
    assert "def shout(label):\n        return label.upper()" in text and "[label for label in" in text
    assert "label_2(humanize(words_2))" in text and "[label_2(w) for w in" in text
    assert "def test_humanize_leaves_other_bindings_of_the_name_alone(words_2):" in text
    assert rendered.node_ids[("c3", "test_titleize_capitalizes_every_word")] == f"{TARGET}::test_titleize_capitalizes_every_word_2"
    # The merged file runs: every test passes where it was put.
    (tmp_path / TARGET).parent.mkdir(parents=True)
    (tmp_path / TARGET).write_text(text)
    result = run_pytest(tmp_path)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout + result.stderr


CLASS_A = '''
    from textkit import titleize


    class TestTitleize:
        def test_two_words(self):
            assert titleize("a_b") == "A B"

        def test_one_word(self):
            assert titleize("a") == "A"
'''
CLASS_B = '''
    from textkit import humanize


    class TestTitleize:
        def test_two_words(self):
            assert humanize("a_b") == "A b"
'''


def test_test_classes_keep_only_accepted_methods_and_are_renamed_whole(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        accept("c1", "titleize", CLASS_A, "TestTitleize::test_two_words", lines=(9,)),
        accept("c2", "humanize", CLASS_B, "TestTitleize::test_two_words", lines=(5,)),
        accept("c3", "titleize", CLASS_A, "TestTitleize::test_two_words", lines=(9,)),
    )
    text = rendered.contents[TARGET]
    golden("test_classes", text)
    assert "test_one_word" not in text
    assert rendered.node_ids == {
        ("c1", "TestTitleize::test_two_words"): f"{TARGET}::TestTitleize::test_two_words",
        ("c2", "TestTitleize::test_two_words"): f"{TARGET}::TestTitleize_2::test_two_words",
        ("c3", "TestTitleize::test_two_words"): f"{TARGET}::TestTitleize::test_two_words",
    }
    assert rendered.tests_added == len(functions_in(text)) == 2


TITLE = '''
    from textkit import titleize


    def test_titleize_capitalizes_every_word():
        assert titleize("hello_world") == "Hello World"
'''
TITLE_RENAMED = '''
    from textkit import titleize


    def test_two_words():
        assert titleize("hello_world") == "Hello World"
'''


def test_one_test_accepted_for_two_gaps_is_written_once(tmp_path: Path) -> None:
    # A test of titleize covers humanize too, so it was accepted for both gaps (the same answer
    # for both prompts; a third candidate gave the same test under another name).
    rendered = render(
        tmp_path,
        accept("c1", "titleize", TITLE, "test_titleize_capitalizes_every_word", lines=(9,)),
        accept("c2", "humanize", TITLE, "test_titleize_capitalizes_every_word", lines=(2, 3, 5), arcs=((3, 5),)),
        accept("c3", "humanize", TITLE_RENAMED, "test_two_words", lines=(2, 3, 5)),
    )
    text = rendered.contents[TARGET]
    golden("duplicate_across_gaps", text)
    assert functions_in(text) == ["test_titleize_capitalizes_every_word"]
    assert {rendered.node_ids[key] for key in [("c1", "test_titleize_capitalizes_every_word"), ("c2", "test_titleize_capitalizes_every_word"),
                                               ("c3", "test_two_words")]} == {f"{TARGET}::test_titleize_capitalizes_every_word"}
    assert rendered.tests_added == 1 and rendered.already_written == {}


def test_a_second_run_adds_to_its_own_file_and_never_writes_a_test_twice(tmp_path: Path) -> None:
    first = render(tmp_path, accept("c1", "titleize", TITLE, "test_titleize_capitalizes_every_word", lines=(9,)),
                   provenance="engine: model-free exploration")
    assert write_files(tmp_path, first.contents) == [TARGET]
    before = (tmp_path / TARGET).read_text()

    # The same test again, for another gap, and one new test: only the new one is added.
    second = render(
        tmp_path,
        accept("c7", "humanize", TITLE, "test_titleize_capitalizes_every_word", lines=(2, 3, 5)),
        accept("c8", "humanize", MERGE_B, "test_humanize_of_nothing_is_empty[__]", lines=(4,)),
    )
    text = second.contents[TARGET]
    golden("second_run", text)
    # The earlier header lines stay; this run's targets and engine follow them.
    assert header_of(text) == [*header_of(before)[:3], "#   humanize: +1 lines (lines 4)", header_of(before)[3], "# engine: scripted"]
    assert functions_in(text) == ["test_titleize_capitalizes_every_word", "test_humanize_of_nothing_is_empty"]
    assert second.already_written == {("c7", "test_titleize_capitalizes_every_word"): TARGET}
    assert second.node_ids[("c7", "test_titleize_capitalizes_every_word")] == f"{TARGET}::test_titleize_capitalizes_every_word"
    assert second.tests_added == 1
    verdicts = second.mark_already_written([t.verdict for t in accept("c7", "humanize", TITLE, "test_titleize_capitalizes_every_word")])
    assert [(v.verdict, v.message) for v in verdicts] == [(Verdict.REDUNDANT, f"already in {TARGET}")]

    # A run whose tests are all in the file already (another case of a parametrized one too)
    # has nothing to write.
    write_files(tmp_path, second.contents)
    third = render(tmp_path, accept("c9", "titleize", TITLE, "test_titleize_capitalizes_every_word"),
                   accept("c10", "humanize", MERGE_B, "test_humanize_of_nothing_is_empty[]"))
    assert third.contents == {} and third.tests_added == 0
    assert set(third.already_written) == {("c9", "test_titleize_capitalizes_every_word"), ("c10", "test_humanize_of_nothing_is_empty[]")}
    assert covgen_files(tmp_path) == [TARGET]


def test_the_header_says_what_each_target_gained_and_which_engine_wrote_it(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        accept("c1", "humanize", MERGE_B, "test_humanize_of_nothing_is_empty[__]", lines=(2, 3, 4), arcs=((3, 4),)),
        accept("c2", "titleize", TITLE, "test_titleize_capitalizes_every_word", lines=tuple(range(1, 12))),
        accept("c3", "titleize", MERGE_A, "test_titleize_capitalizes_every_word", lines=(9,)),
        provenance="engine: vLLM server at http://127.0.0.1:8000/v1 (stub/coder-instruct)",
    )
    text = rendered.contents[TARGET]
    golden("provenance_header", text)
    # Two candidates gave titleize the same test: one test, counted once.
    assert header_of(text) == [
        "# covgen: generated tests for textkit.py. Keep this line: covgen only adds to files that start with it.",
        "# Each test below passed repeatedly in a sandbox and reached lines no other test reached:",
        "#   humanize: +3 lines, 1 branches (lines 2, 3, 4)",
        "#   titleize: +11 lines (lines 1, 2, 3, 4, 5, 6, 7, 8 …)",
        "# engine: vLLM server at http://127.0.0.1:8000/v1 (stub/coder-instruct)",
    ]


def test_a_file_covgen_did_not_write_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / TARGET
    mine.parent.mkdir(parents=True)
    mine.write_text("def test_mine():\n    pass\n")
    rendered = render(tmp_path, accept("c1", "titleize", TITLE, "test_titleize_capitalizes_every_word"))
    assert covgen_files(tmp_path) == []
    with pytest.raises(CovgenError, match="not written by covgen"):
        write_files(tmp_path, rendered.contents)
    assert mine.read_text() == "def test_mine():\n    pass\n"
