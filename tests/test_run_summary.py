"""The run summary a CI job and a PR comment show: what was kept, and why the rest was not."""

import json

from covgen.output.runsummary import summary_document, summary_markdown
from covgen.pipeline import GapOutcome, Rejection, RunSummary


def summary(rejected: tuple[Rejection, ...]) -> RunSummary:
    return RunSummary(
        engine="model-free exploration", engine_reason="chosen with --engine explore", sandbox="throwaway copy",
        gaps_targeted=1, candidates=3, verdicts={"ACCEPTED": 1, "FAILED": 1}, accepted=1,
        files_written=("tests/covgen/test_pkg_mod_covgen.py",), lines_before=(5, 10), lines_after=(8, 10),
        branches_before=(1, 4), branches_after=(3, 4), prompt_tokens=0, completion_tokens=0, cached_tokens=0,
        seconds={"total": 2.0},
        gaps=(GapOutcome("pkg/mod.py::f", ("test_f_doubles",), (3, 4, 5), 2, {"ACCEPTED": 1, "FAILED": 1}, rejected),),
    )


def test_json_lists_every_test_not_kept_with_its_reason() -> None:
    why = Rejection("c0002", "test_f_wrong", "FAILED", "AssertionError: assert 4 == 5 (test_x.py:3: AssertionError)")
    document = json.loads(json.dumps(summary_document(summary((why,)))))
    (gap,) = document["gaps"]
    assert gap["accepted_tests"] == ["test_f_doubles"] and gap["gained_lines"] == [3, 4, 5]
    assert gap["rejected"] == [{"candidate": "c0002", "test": "test_f_wrong", "verdict": "FAILED",
                                "message": "AssertionError: assert 4 == 5 (test_x.py:3: AssertionError)"}]


def test_markdown_folds_the_rejections_into_a_table_that_survives_pipes_and_backticks() -> None:
    why = Rejection("c0002", "test_f_wrong", "FAILED", "assert f(1) | 2 == `3`")
    module = Rejection("c0003", "", "SYNTAX_ERROR", "line 1: invalid syntax")
    text = summary_markdown(summary((why, module)))
    assert "| `pkg/mod.py::f` | `test_f_doubles` | 3 | 2 |" in text
    assert "<details><summary>2 candidate tests not kept</summary>" in text
    assert "| `pkg/mod.py::f` | `test_f_wrong` | FAILED | assert f(1) \\| 2 == '3' |" in text
    assert "| `pkg/mod.py::f` | (module) | SYNTAX_ERROR | line 1: invalid syntax |" in text


def test_markdown_caps_the_rejection_table() -> None:
    many = tuple(Rejection(f"c{i:04d}", f"test_{i}", "NO_GAIN", "reaches none of the uncovered lines") for i in range(60))
    text = summary_markdown(summary(many))
    assert text.count("| NO_GAIN |") == 50
    assert "10 more in the JSON summary" in text


def test_a_clean_run_has_no_rejection_section() -> None:
    assert "not kept" not in summary_markdown(summary(()))


def test_every_gap_without_a_test_says_why_in_each_output() -> None:
    import io

    from covgen.output.runsummary import print_summary

    nested = GapOutcome("pkg/mod.py::f.inner", (), (), 0, {}, (), "NO_CANDIDATE", "nested function, not reachable directly")
    run = summary(())
    run = RunSummary(**{**{f: getattr(run, f) for f in run.__dataclass_fields__}, "gaps": (*run.gaps, nested)})
    (_, gap) = summary_document(run)["gaps"]
    assert (gap["outcome"], gap["reason"]) == ("NO_CANDIDATE", "nested function, not reachable directly")
    assert "| `pkg/mod.py::f.inner` | NO_CANDIDATE | nested function, not reachable directly |" in summary_markdown(run)
    console = io.StringIO()
    print_summary(run, console)
    assert "covgen: no test for pkg/mod.py::f.inner: NO_CANDIDATE: nested function, not reachable directly\n" in console.getvalue()


def test_a_report_in_two_languages_sums_into_one_summary_with_each_gain_counted_once() -> None:
    from dataclasses import replace

    from covgen.merge import combine
    from covgen.pipeline import FileGain

    # The report: 10 of 20 lines covered over two files; Python gained 3 lines, Java 2.
    python = replace(summary(()), lines_before=(10, 20), lines_after=(13, 20), branches_before=(0, 0), branches_after=(0, 0),
                     files=(FileGain("pkg/mod.py", (), (6, 7, 8), (), ()),))
    java = replace(summary(()), engine="vLLM server", files_written=("src/test/java/a/BCovgenTest.java",),
                   lines_before=(10, 20), lines_after=(12, 20), branches_before=(0, 0), branches_after=(0, 0),
                   files=(FileGain("src/main/java/a/B.java", (), (6, 7), (), ()),),
                   gaps=(GapOutcome("src/main/java/a/B.java::B.f()", ("BTest#f",), (6, 7), 0, {"ACCEPTED": 1}),))
    combined = combine([python, java])
    assert combined.lines_before == (10, 20) and combined.lines_after == (15, 20)
    assert combined.files_written == ("src/test/java/a/BCovgenTest.java", "tests/covgen/test_pkg_mod_covgen.py")
    assert combined.accepted == 2 and combined.gaps_targeted == 2 and combined.verdicts["ACCEPTED"] == 2
    assert [g.gap_id for g in combined.gaps] == ["pkg/mod.py::f", "src/main/java/a/B.java::B.f()"]
    assert combined.engine == "model-free exploration; vLLM server"
