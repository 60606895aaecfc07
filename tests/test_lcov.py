from pathlib import Path

import pytest

from covgen import ReportError, read_report
from covgen.model import BranchCount

from conftest import SAMPLES


def test_geninfo_2_2_records_are_read_and_repeated_sf_is_merged(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "calc.c").write_text("int x;\n")
    report = read_report(SAMPLES / "lcov_geninfo_2_2.info", root=tmp_path)

    (file,) = report.files
    # The CI machine's absolute path is mapped onto this checkout by its tail.
    assert file.path == "src/calc.c" and file.exists
    # Line 6 was missed by the unit run but hit by the integration run: hits are summed.
    assert file.covered_lines == (3, 4, 5, 6, 17)
    assert file.uncovered_lines == (12, 13)
    # BRDA 4/0/1 was '-' (never evaluated) in one record and taken in the other.
    assert file.branches == (BranchCount(4, 2, 2), BranchCount(5, 1, 2))
    assert file.partial_branches == (BranchCount(5, 1, 2),)
    methods = {m.name: m for m in file.methods}
    assert (methods["add"].start_line, methods["add"].end_line, methods["add"].hits) == (3, 9, 4)
    assert (methods["sub"].start_line, methods["sub"].end_line, methods["sub"].hits) == (11, 14, 0)
    assert (methods["mul"].start_line, methods["mul"].end_line) == (16, 18)


def test_hit_counts_beyond_32_bits_stay_exact(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "lcov_geninfo_2_2.info", root=tmp_path)
    assert 17 in report.files[0].covered_lines


def test_crlf_tracefile(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "lcov_crlf.info", root=tmp_path)
    (file,) = report.files
    assert (file.path, file.covered_lines, file.uncovered_lines) == ("src/app.py", (1, 2), (3,))
    assert not file.exists
    assert any("not found under the root" in w for w in report.warnings)


def test_unknown_record_is_a_warning_not_an_error(tmp_path: Path) -> None:
    report = read_report(SAMPLES / "lcov_unknown_record.info", root=tmp_path)
    assert report.files[0].covered_lines == (1,)
    assert any("unknown lcov record 'XYZ'" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("sample", "problem"),
    [("lcov_truncated.info", "no end_of_record"), ("lcov_bad_number.info", "bad number")],
)
def test_malformed_tracefiles_are_refused(sample: str, problem: str, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=problem):
        read_report(SAMPLES / sample, root=tmp_path)


def test_empty_but_valid_tracefile_has_no_files(tmp_path: Path) -> None:
    assert read_report(SAMPLES / "lcov_empty_valid.info", root=tmp_path).files == ()


def test_functions_repeated_across_records_are_one_method_with_summed_hits(tmp_path: Path) -> None:
    record = "TN:{name}\nSF:src/app.c\nFN:3,9,add\nFNDA:{hits},add\nDA:3,{hits}\nend_of_record\n"
    tracefile = tmp_path / "merged.info"
    tracefile.write_text(record.format(name="unit", hits=2) + record.format(name="e2e", hits=5))
    (method,) = read_report(tracefile, root=tmp_path).files[0].methods
    assert (method.name, method.start_line, method.end_line, method.hits) == ("add", 3, 9, 7)
