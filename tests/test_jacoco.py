from pathlib import Path

from covgen import find_gaps, read_report
from covgen.adapters.jacoco import descriptor_parameter_types
from covgen.model import BranchCount

from conftest import SAMPLES


def test_grouped_report_with_doctype_and_sessions(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "jacoco_grouped.xml", root=tmp_path)
    (file,) = report.files
    assert file.path == "src/main/java/com/acme/core/Calc.java" and not file.exists
    assert file.covered_lines == (2, 3, 5, 15)
    assert file.uncovered_lines == (9, 10, 11, 18)
    assert file.partial_branches == (BranchCount(9, 0, 2), BranchCount(15, 1, 2))
    names = sorted(m.name for m in file.methods)
    assert names == ["Calc.<clinit>", "Calc.<init>", "Calc.Mode.values", "Calc.add", "Calc.add", "Calc.lambda$sum$0"]
    assert any("com.acme.core.Generated has no debug info" in w for w in report.warnings)


def test_without_sources_gaps_come_from_report_methods(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "jacoco_grouped.xml", root=tmp_path)
    search = find_gaps(report, tmp_path)
    gaps = {g.qualname: g for g in search.gaps}
    # The overload at line 9 is the gap; synthetic lambdas and <clinit> are never targets.
    assert set(gaps) == {"Calc.add(String,int[])", "Calc.Mode.values()"}
    assert gaps["Calc.add(String,int[])"].uncovered_lines == (9, 10, 11)
    assert gaps["Calc.add(String,int[])"].origin == "report"
    assert any("source not found" in w for w in search.warnings)


def test_descriptor_parameter_types() -> None:
    assert descriptor_parameter_types("(Ljava/util/Map;[IJLcom/x/Outer$Inner;[[Ljava/lang/String;)V") == (
        "Map", "int[]", "long", "Inner", "String[][]",
    )
    assert descriptor_parameter_types("()V") == ()
