from pathlib import Path

from covgen import read_report
from covgen.model import BranchCount

from conftest import SAMPLES


def test_gcovr_report_with_foreign_absolute_source(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.c").write_text("\n")
    report = read_report(SAMPLES / "cobertura_gcovr.xml", root=tmp_path)
    (file,) = report.files
    assert file.path == "src/calc.c" and file.exists
    assert file.covered_lines == (3, 4, 6)
    assert file.uncovered_lines == (5, 12, 13)
    assert file.partial_branches == (BranchCount(4, 1, 2),)


def test_istanbul_report_with_windows_paths_and_methods(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "math.js").write_text("\n")
    report = read_report(SAMPLES / "cobertura_istanbul.xml", root=tmp_path)
    (file,) = report.files
    assert file.path == "lib/math.js" and file.language == "other"
    assert file.covered_lines == (2, 3, 4)
    assert file.uncovered_lines == (6, 7)
    assert [(m.name, m.start_line, m.uncovered_lines) for m in file.methods] == [("add", 1, ()), ("(anonymous_1)", 5, (5,))]


def test_several_sources_and_one_file_in_several_classes(tmp_path: Path) -> None:
    java = tmp_path / "src" / "main" / "java" / "com" / "acme"
    java.mkdir(parents=True)
    (java / "Foo.java").write_text("class Foo {}\n")
    report = read_report(SAMPLES / "cobertura_classic.xml", root=tmp_path)
    (file,) = report.files
    assert file.path == "src/main/java/com/acme/Foo.java"
    assert file.covered_lines == (5, 10)
    assert file.uncovered_lines == (6, 11)
    # Line 5's branch is half covered in one class and fully in the other: fully covered merged.
    assert file.branches == (BranchCount(5, 2, 2),)
    assert [m.name for m in file.methods] == ["bar"]


def test_empty_but_valid_report(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "cobertura_empty_valid.xml", root=tmp_path)
    assert report.files == () and report.format == "cobertura"
