"""JaCoCo reports made by javac, the JUnit Platform launcher and the JaCoCo agent in this run."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from covgen import find_gaps, read_report

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e


def _jacoco_file_counters(report: Path) -> dict[str, tuple[int, int]]:
    """JaCoCo's own per-sourcefile LINE counter (missed, covered), read independently of covgen.

    The DOCTYPE's report.dtd is not beside the file, and ElementTree never loads DTDs.
    """
    counters = {}
    for package in ET.parse(report).getroot().iter("package"):
        for source in package.findall("sourcefile"):
            # JaCoCo leaves out counters whose total is zero (a file with no code).
            line = next((c for c in source.findall("counter") if c.get("type") == "LINE"), None)
            missed, covered = (int(line.get("missed")), int(line.get("covered"))) if line is not None else (0, 0)
            counters[f"{package.get('name')}/{source.get('name')}"] = (missed, covered)
    return counters


def test_fixture_jacoco_lines_match_jacoco_counters(java_fixture_reports) -> None:
    root = java_fixture_reports["root"]
    report = read_report(java_fixture_reports["jacoco"], root=root)
    counters = _jacoco_file_counters(java_fixture_reports["jacoco"])
    got = {f.path.removeprefix("src/main/java/"): (len(f.uncovered_lines), len(f.covered_lines)) for f in report.files}
    assert got == counters
    assert all(f.exists for f in report.files)


def test_fixture_csv_agrees_for_single_class_files(java_fixture_reports) -> None:
    report = read_report(java_fixture_reports["jacoco"], root=java_fixture_reports["root"])
    with open(java_fixture_reports["csv"], newline="") as stream:
        rows = {(r["PACKAGE"], r["CLASS"]): r for r in csv.DictReader(stream)}
    money = report.file("src/main/java/com/example/money/Money.java")
    assert money is not None
    row = rows[("com.example.money", "Money")]
    assert (len(money.uncovered_lines), len(money.covered_lines)) == (int(row["LINE_MISSED"]), int(row["LINE_COVERED"]))


def test_fixture_gaps_match_overloads_and_nested_classes(java_fixture_reports) -> None:
    root = java_fixture_reports["root"]
    report = read_report(java_fixture_reports["jacoco"], root=root)
    search = find_gaps(report, root)
    ids = {g.id for g in search.gaps}
    money = "src/main/java/com/example/money/Money.java"
    shapes = "src/main/java/com/example/geo/Shapes.java"
    # Tested methods are not gaps; the untested overload is.
    assert f"{money}::Money.add(Money)" not in ids
    assert f"{money}::Money.add(long)" in ids
    assert f"{shapes}::Shapes.totalArea(List)" in ids and f"{shapes}::Shapes.totalArea(Shape[])" in ids
    assert f"{shapes}::Shapes.Rect.<init>(double,double)" in ids
    assert f"{shapes}::Shapes$1.area()" in ids
    allocate = next(g for g in search.gaps if g.qualname == "Money.allocate(int)")
    assert allocate.coverage_ratio == 0.0 and allocate.origin == "source"
    assert allocate.signature == "public Money[] allocate(int parts)"


def test_third_party_classes_without_sources(java_fixture_reports, producers, tmp_path: Path) -> None:
    """JaCoCo over JUnit's own platform-commons classes (compiled by Debian, not by us), no sources."""
    project = java_fixture_reports["root"]
    build = project / "out" / "build"
    exec_file = tmp_path / "junit.exec"
    agent = producers.jacoco_agent(tmp_path)
    producers._run(
        [
            "java", f"-javaagent:{agent}=destfile={exec_file},includes=org.junit.platform.commons.*",
            "-jar", str(producers.CONSOLE_JAR), "--disable-banner", "--details=none",
            "--class-path", f"{build / 'classes'}:{build / 'test-classes'}",
            "--scan-class-path", str(build / "test-classes"),
        ],
        project,
    )
    classes = tmp_path / "classes"
    with zipfile.ZipFile(producers.CONSOLE_JAR) as jar:
        for entry in jar.namelist():
            if entry.startswith("org/junit/platform/commons/") and entry.endswith(".class"):
                jar.extract(entry, classes)
    xml_out, csv_out = tmp_path / "junit.xml", tmp_path / "junit.csv"
    producers._run(
        ["java", "-cp", f"{producers.report_generator(tmp_path)}:" + ":".join(map(str, producers.JACOCO_JARS)),
         "ReportGen", str(exec_file), str(classes), str(tmp_path / "no-sources"), str(xml_out), str(csv_out)],
        tmp_path,
    )
    report = read_report(xml_out, root=tmp_path)
    counters = _jacoco_file_counters(xml_out)
    assert len(counters) > 20
    got = {f.path.removeprefix("src/main/java/"): (len(f.uncovered_lines), len(f.covered_lines)) for f in report.files}
    assert got == counters
    search = find_gaps(report, tmp_path)
    assert search.gaps and all(g.origin == "report" for g in search.gaps)
    assert any("using the report's own method data" in w for w in search.warnings)
    if not any(counters[k][1] for k in counters):
        pytest.fail("JaCoCo recorded no covered line in JUnit's classes: the agent did not attach")
