"""Reports that coverage.py itself writes, read back exactly as coverage.py counted them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import coverage
import pytest

from covgen import read_report

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e


def _truth(data_file: Path, root: Path) -> dict[str, tuple[list[int], list[int]]]:
    """Executed and missing statements per file, straight from coverage.py's own API."""
    truth = {}
    # The project's own config (relative_files = true) applies where coverage ran: its root.
    with contextlib.chdir(data_file.parent.parent if (data_file.parent.parent / "pyproject.toml").exists() else root):
        cov = coverage.Coverage(data_file=str(data_file))
        cov.load()
        analyses = {measured: cov.analysis2(measured) for measured in cov.get_data().measured_files()}
    for measured, (_, statements, _, missing, _) in analyses.items():
        path = Path(measured)
        key = (path if path.is_absolute() else root / path).resolve().relative_to(root.resolve()).as_posix()
        truth[key] = (sorted(set(statements) - set(missing)), sorted(missing))
    return truth


@pytest.mark.parametrize("fmt", ["cobertura", "lcov", "coveragepy"])
def test_fixture_reports_match_coverage_py(python_fixture_reports, fmt: str) -> None:
    root = python_fixture_reports["root"]
    truth = _truth(root / "out" / ".coverage", root)
    report = read_report(python_fixture_reports[fmt], root=root)
    assert report.format == fmt
    got = {f.path: (list(f.covered_lines), list(f.uncovered_lines)) for f in report.files}
    assert got == truth
    assert all(f.exists for f in report.files)


def test_all_three_formats_agree_on_lines_and_branches(python_fixture_reports) -> None:
    root = python_fixture_reports["root"]
    views = [read_report(python_fixture_reports[fmt], root=root) for fmt in ("cobertura", "lcov", "coveragepy")]
    lines = [[(f.path, f.covered_lines, f.uncovered_lines) for f in v.files] for v in views]
    assert lines[0] == lines[1] == lines[2]
    partial = [[(f.path, f.partial_branches) for f in v.files] for v in views]
    assert partial[0] == partial[2]
    assert any(f.partial_branches for f in views[0].files)


def test_lcov_tool_agrees_on_totals(python_fixture_reports) -> None:
    """The real lcov tool's summary of coverage.py's tracefile matches covgen's reading."""
    if shutil.which("lcov") is None:
        pytest.fail("lcov is not installed; the README's test command installs it")
    result = subprocess.run(
        ["lcov", "--summary", str(python_fixture_reports["lcov"])], capture_output=True, text=True, check=True
    )
    summary = next(line for line in (result.stdout + result.stderr).splitlines() if "lines" in line)
    report = read_report(python_fixture_reports["lcov"], root=python_fixture_reports["root"])
    covered = sum(len(f.covered_lines) for f in report.files)
    measured = covered + sum(len(f.uncovered_lines) for f in report.files)
    assert f"({covered} of {measured} lines)" in summary


@pytest.fixture(scope="module")
def third_party_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """coverage.py run over a PyPI package nobody here wrote (unidiff), driven by a small script."""
    import unidiff

    package_dir = Path(unidiff.__file__).resolve().parent
    work = tmp_path_factory.mktemp("thirdparty")
    (work / "drive.py").write_text(
        "import unidiff\n"
        "patch = unidiff.PatchSet('--- a/x.txt\\n+++ b/x.txt\\n@@ -1,2 +1,2 @@\\n-old\\n+new\\n same\\n')\n"
        "assert patch[0].added == 1\n"
    )
    env = {**os.environ, "COVERAGE_FILE": str(work / ".coverage")}
    run = [sys.executable, "-m", "coverage"]
    subprocess.run([*run, "run", "--branch", f"--source={package_dir}", "drive.py"], cwd=work, env=env, check=True)
    for command, name in (("xml", "coverage.xml"), ("lcov", "coverage.lcov"), ("json", "coverage.json")):
        subprocess.run([*run, command, "-o", name], cwd=work, env=env, check=True, capture_output=True)
    return {"work": work, "root": package_dir.parent}


@pytest.mark.parametrize("name", ["coverage.xml", "coverage.lcov", "coverage.json"])
def test_third_party_package_reports_match_coverage_py(third_party_reports, name: str) -> None:
    root = third_party_reports["root"]
    truth = _truth(third_party_reports["work"] / ".coverage", root)
    report = read_report(third_party_reports["work"] / name, root=root)
    got = {f.path: (list(f.covered_lines), list(f.uncovered_lines)) for f in report.files}
    assert got == truth
    assert any(path.startswith("unidiff/") for path in got)
