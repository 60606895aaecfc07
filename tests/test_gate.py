"""``covgen gate``: total and diff coverage of real reports, in a real git repository with a real diff.

The project below is small enough to count by hand. On the branch ``feature`` (against ``main``):

* ``shop/pricing.py`` gains ``discount`` (lines 6-13; executable 8-13). The tests call only
  ``discount(10, "HALF")``: lines 8, 9, 10 run, 11, 12, 13 do not. Branches on changed lines:
  line 9 takes 1 of 2 outcomes (never to 11), line 11 takes 0 of 2 (never to 12 or 13).
* ``shop/legacy.py`` is renamed to ``shop/util.py`` and its line 6 edited: only line 6 changed
  (uncovered: no test imports it); its unmoved lines 1, 2, 5 are not changes.
* ``shop/extra.py`` is new (lines 1-2, both covered); ``shop/gone.py`` is deleted.
* ``tests/test_pricing.py`` changes too, but the report measures ``shop`` only.

Changed executable lines: 6 + 1 + 2 = 9, covered 3 + 0 + 2 = 5 (55.56%); changed branch
outcomes 4, covered 1. Totals: pricing 11 lines (8 covered), util 4 (0), extra 2 (2): 10/17
(58.82%); branches: line 3 (2/2), 9 (1/2), 11 (0/2): 3/6.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.gate_project import coverage_reports, git, make_repo

from covgen.adapters import read_report
from covgen.diffscope import diff_changes
from covgen.gate import Thresholds, evaluate_gate


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate") / "repo"
    make_repo(root)
    return {"root": root, **coverage_reports(root, root / "out")}


def test_the_diff_maps_renames_and_ignores_deleted_files(project: dict[str, Path]) -> None:
    changes = diff_changes(project["root"], "main")
    assert changes.lines["shop/pricing.py"] == set(range(6, 14))
    assert changes.lines["shop/util.py"] == {6}  # moved, not rewritten: only the edited line
    assert changes.lines["shop/extra.py"] == {1, 2}
    assert changes.renamed == {"shop/util.py": "shop/legacy.py"}
    assert changes.deleted == ("shop/gone.py",)
    assert "shop/gone.py" not in changes.lines


@pytest.mark.parametrize("kind", ["coveragepy", "lcov", "cobertura"])
def test_diff_and_total_coverage_by_hand_checked_numbers(project: dict[str, Path], kind: str) -> None:
    root = project["root"]
    report = read_report(project[kind], root=root)
    result = evaluate_gate(report, root, Thresholds(), changes=diff_changes(root, "main"))
    assert (result.totals_lines.covered, result.totals_lines.total) == (10, 17)
    assert (result.totals_branches.covered, result.totals_branches.total) == (3, 6)
    diff = result.diff
    assert diff is not None
    assert (diff.lines.covered, diff.lines.total, diff.lines.percent) == (5, 9, 55.56)
    assert (diff.branches.covered, diff.branches.total) == (1, 4)
    files = {f.path: f for f in diff.files}
    assert set(files) == {"shop/pricing.py", "shop/util.py"}
    assert files["shop/util.py"].renamed_from == "shop/legacy.py"
    [whisper] = files["shop/util.py"].methods
    assert (whisper.name, whisper.uncovered_lines, whisper.missed_branches) == ("whisper", (6,), ())
    [discount] = files["shop/pricing.py"].methods
    assert discount.name == "discount" and discount.uncovered_lines == (11, 12, 13)
    assert [(b.line, b.covered, b.total) for b in discount.missed_branches] == [(9, 1, 2), (11, 0, 2)]
    # lcov counts outcomes only; coverage.py JSON and its Cobertura name where a branch never went.
    targets = [b.missing_targets for b in discount.missed_branches]
    assert targets == ([(), ()] if kind == "lcov" else [(11,), (12, 13)])
    assert result.thresholds == () and result.passed
    assert result.warnings == ()  # the changed test file is not a source the report should have measured


def test_thresholds_decide_the_exit_code(project: dict[str, Path], covgen, tmp_path: Path) -> None:
    root, report = project["root"], project["coveragepy"]
    # 58.82% total, 55.56% of the changed lines.
    assert covgen("gate", report, "--root", root, "--fail-under", "58").code == 0
    failed = covgen("gate", report, "--root", root, "--fail-under", "59")
    assert failed.code == 1
    assert "covgen: error: gate failed: total lines 58.82% < 59%" in failed.err
    assert "FAILED: total lines 58.82% (required 59%)" in failed.out
    assert covgen("gate", report, "--root", root, "--diff", "main", "--diff-fail-under", "55.56").code == 0  # as shown
    assert covgen("gate", report, "--root", root, "--diff", "main", "--diff-fail-under", "55.57").code == 1
    out = tmp_path / "gate.json"
    strict = covgen("gate", report, "--root", root, "--diff", "main", "--diff-fail-under", "55", "--every-changed-line",
                    "--output", f"json:{out}")
    assert strict.code == 1
    document = json.loads(out.read_text())
    assert document["schema"] == "covgen.gate/1" and document["passed"] is False
    assert document["thresholds"] == [
        {"name": "diff lines", "required": 55.0, "actual": 55.56, "passed": True},
        {"name": "every changed line", "required": 100.0, "actual": 55.56, "passed": False},
    ]
    assert document["diff"]["files"][0]["methods"][0]["uncovered_lines"] == [11, 12, 13]
    assert "shop/util.py (renamed from shop/legacy.py)" in strict.out
    assert "    whisper: line 6\n" in strict.out
    assert "    discount: lines 11-13; branch line 9: 1 of 2 outcomes ran (never to line 11); branch line 11" in strict.out
    # No threshold: a report, exit 0 however low the coverage.
    assert covgen("gate", report, "--root", root, "--diff", "main").code == 0


def test_thresholds_kept_in_the_project_or_the_environment_hold_and_a_flag_wins(
        project: dict[str, Path], covgen, monkeypatch: pytest.MonkeyPatch) -> None:
    root, report = project["root"], project["coveragepy"]
    pyproject = root / "pyproject.toml"
    before = pyproject.read_text() if pyproject.exists() else None
    try:
        pyproject.write_text((before or "") + "\n[tool.covgen]\nfail_under = 59\n")
        assert covgen("gate", report, "--root", root).code == 1  # 58.82% < 59 from the file
        assert covgen("gate", report, "--root", root, "--fail-under", "58").code == 0  # the flag wins
        monkeypatch.setenv("COVGEN_FAIL_UNDER", "50")
        assert covgen("gate", report, "--root", root).code == 0  # the environment beats the file
    finally:
        if before is None:
            pyproject.unlink()
        else:
            pyproject.write_text(before)


def test_bad_input_is_one_line_and_exit_2(project: dict[str, Path], covgen, tmp_path: Path) -> None:
    root = project["root"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (
        (bad, "--root", root),
        (project["coveragepy"], "--root", root, "--diff", "no-such-ref"),
        (project["coveragepy"], "--root", root, "--diff-fail-under", "80"),
        (project["coveragepy"], "--root", root, "--fail-under", "101"),
        (project["coveragepy"], "--root", root, "--output", "pdf:x.pdf"),
    ):
        result = covgen("gate", *args)
        assert result.code == 2, args
        assert "Traceback" not in result.err and result.err.strip(), args


def test_a_diff_of_comments_only_has_nothing_to_cover_and_passes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_repo(root)
    git(root, "checkout", "-qb", "comments", "main")
    pricing = root / "shop" / "pricing.py"
    pricing.write_text("# prices\n" + pricing.read_text())  # uncommitted: the working tree counts
    reports = coverage_reports(root, tmp_path / "out", kinds=("json",))
    result = evaluate_gate(read_report(reports["coveragepy"], root=root), root, Thresholds(diff_fail_under=90, every_changed_line=True),
                           changes=diff_changes(root, "main"))
    assert result.diff is not None and result.diff.lines.total == 0 and result.diff.files == ()
    assert result.passed and [t.actual for t in result.thresholds] == [None, None]


def test_a_report_written_under_another_root_is_mapped_and_said(tmp_path: Path, covgen) -> None:
    """CI checked out in builds/ci/repo and wrote absolute paths; the gate runs in another checkout."""
    root = tmp_path / "repo"
    make_repo(root)
    ci = tmp_path / "builds" / "ci" / "repo"
    shutil.copytree(root, ci)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Written from outside the CI checkout, so coverage.py names every file by its absolute path.
    reports = coverage_reports(ci, tmp_path / "artifacts", cwd=elsewhere, kinds=("json",))
    # Cobertura written from the package folder: <source> is CI's .../repo/shop, filenames pricing.py…
    cobertura = tmp_path / "artifacts" / "coverage.xml"
    subprocess.run([sys.executable, "-m", "coverage", "xml", f"--data-file={tmp_path / 'artifacts' / '.coverage'}", "-o", str(cobertura)],
                   cwd=ci / "shop", check=True, capture_output=True)
    shutil.rmtree(tmp_path / "builds")  # only the artifacts survive the CI job
    assert f'"{ci}/shop/pricing.py"' in reports["coveragepy"].read_text()
    assert f"<source>{ci}/shop</source>" in cobertura.read_text() and 'filename="pricing.py"' in cobertura.read_text()
    mapped = read_report(cobertura, root=root)
    assert {f.path for f in mapped.files if f.exists} == {"shop/__init__.py", "shop/pricing.py", "shop/util.py", "shop/extra.py"}
    assert any(f"report paths under {ci}/ (4 file(s))" in w for w in mapped.warnings)
    gate = evaluate_gate(mapped, root, Thresholds(), changes=diff_changes(root, "main"))
    assert gate.diff is not None and (gate.diff.lines.covered, gate.diff.lines.total) == (5, 9)
    result = covgen("gate", reports["coveragepy"], "--root", root, "--diff", "main", "--diff-fail-under", "55", "--output", "json:-")
    assert result.code == 0, result.err
    document = json.loads(result.out[result.out.index("{"):])
    assert document["diff"]["lines"] == {"covered": 5, "total": 9, "percent": 55.56}
    assert any(f"report paths under {ci}/ (4 file(s)) were read as paths under the root" in w for w in document["warnings"])


@pytest.mark.e2e
def test_jacoco_branches_on_changed_lines(tmp_path: Path, producers) -> None:
    """A Java class compiled by javac, tested by JUnit 5 under the real JaCoCo agent."""
    root = tmp_path / "java"
    source = root / "src" / "main" / "java" / "com" / "example" / "Calc.java"
    source.parent.mkdir(parents=True)
    base = "package com.example;\n\npublic class Calc {\n    public static int add(int a, int b) {\n        return a + b;\n    }\n}\n"
    source.write_text(base)
    test = root / "src" / "test" / "java" / "com" / "example" / "CalcTest.java"
    test.parent.mkdir(parents=True)
    test.write_text("package com.example;\n\nimport org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
                    "class CalcTest {\n    @Test\n    void adds() {\n        assertEquals(3, Calc.add(1, 2));\n        assertEquals(1, Calc.sign(5));\n    }\n}\n")
    (root / ".gitignore").write_text("out/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "src/main")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-qb", "feature")
    # Lines 8-13: sign(5) runs 9 and 10 (branch 1 of 2), never 12 (its ?: 0 of 2).
    source.write_text(base.removesuffix("}\n") + "\n    public static int sign(int x) {\n        if (x > 0) {\n            return 1;\n"
                      "        }\n        return x < 0 ? -1 : 0;\n    }\n}\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "sign")
    reports = producers.java_reports(root, root / "out")
    report = read_report(reports["jacoco"], root=root)
    result = evaluate_gate(report, root, Thresholds(diff_fail_under=50), changes=diff_changes(root, "main"))
    assert result.diff is not None
    assert (result.diff.lines.covered, result.diff.lines.total) == (2, 3)  # lines 9, 10 of 9, 10, 12
    assert (result.diff.branches.covered, result.diff.branches.total) == (1, 4)
    [file] = result.diff.files
    [sign] = file.methods
    assert sign.name == "Calc.sign(int)" and sign.uncovered_lines == (12,)
    assert [(b.line, b.covered, b.total, b.missing_targets) for b in sign.missed_branches] == [(9, 1, 2, ()), (12, 0, 2, ())]
    assert result.passed


@pytest.mark.e2e
def test_fill_turns_a_failing_gate_into_a_passing_one(tmp_path: Path, covgen) -> None:
    """One covgen run: the model-free engine writes tests for ``discount`` and ``whisper``, the
    project's own test command measures again in the sandbox, and the gate passes."""
    root = tmp_path / "repo"
    make_repo(root)
    report = coverage_reports(root, tmp_path / "out", kinds=("json",))["coveragepy"]
    out = tmp_path / "gate.json"
    result = covgen("gate", report, "--root", root, "--diff", "main", "--every-changed-line", "--fill", "--engine", "explore",
                    "--explore-attempts", "100", "--test-cmd", "python -m pytest -q", "--output", f"json:{out}")
    assert result.code == 0, result.out + result.err
    document = json.loads(out.read_text())
    filled = document["filled"]
    assert filled["before"]["passed"] is False and filled["before"]["diff_lines"]["covered"] == 5
    assert filled["gaps_targeted"] == 2 and filled["tests_accepted"] >= 2
    assert "re-measured with 'python -m pytest -q'" in filled["remeasured"]
    assert document["diff"]["lines"] == {"covered": 9, "total": 9, "percent": 100.0} and document["passed"] is True
    # The tests are in the tree for the PR, and the project's own suite passes with them.
    written = sorted(filled["files_written"])
    assert written == ["tests/covgen/test_shop_pricing_covgen.py", "tests/covgen/test_shop_util_covgen.py"]
    assert all((root / path).is_file() for path in written)
    assert "covgen: filled shop/pricing.py::discount:" in result.out
