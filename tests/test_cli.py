"""The real ``covgen`` CLI: the covgen.gaps/1 contract, config layering, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from covgen import ConfigError
from covgen.config import load_settings

from conftest import FIXTURES, REPO

GAP_KEYS = {"id", "path", "qualname", "kind", "start_line", "end_line", "signature", "uncovered_lines",
            "missed_branches", "coverage_ratio", "public", "origin"}
FILE_KEYS = {"path", "language", "covered_lines", "uncovered_lines", "partial_branches"}


def test_gaps_json_contract(covgen, python_fixture_reports) -> None:
    result = covgen("gaps", python_fixture_reports["cobertura"], "--root", python_fixture_reports["root"], "--json")
    assert result.code == 0, result.err
    document = result.json()
    assert document["schema"] == "covgen.gaps/1"
    assert all(set(f) == FILE_KEYS for f in document["files"])
    assert all(set(g) == GAP_KEYS for g in document["gaps"])
    dates = next(f for f in document["files"] if f["path"] == "inventory/dates.py")
    assert dates["covered_lines"] == [] and dates["uncovered_lines"] == sorted(dates["uncovered_lines"])
    first = document["gaps"][0]
    assert first["id"] == f"{first['path']}::{first['qualname']}"
    assert first["missed_branches"] and set(first["missed_branches"][0]) == {"line", "covered", "total"}


def test_table_output_names_methods_and_counts(covgen) -> None:
    result = covgen("gaps", FIXTURES / "java" / "reports" / "jacoco.xml", "--root", FIXTURES / "java", "--max-gaps", "5")
    assert result.code == 0, result.err
    assert "Money.allocate(int)" in result.out
    assert "5 of " in result.out


def test_checked_in_fixture_reports_still_read(covgen) -> None:
    """The README's first command reads these; they must stay in step with the fixture sources."""
    for name in ("coverage.xml", "coverage.lcov", "coverage.json"):
        result = covgen("gaps", FIXTURES / "python" / "reports" / name, "--root", FIXTURES / "python", "--json")
        assert result.code == 0 and result.err == ""
        assert all(f["path"].startswith("inventory/") for f in result.json()["files"])


def test_pyproject_settings_apply_and_flags_win(covgen, tmp_path: Path, python_fixture_reports) -> None:
    root = python_fixture_reports["root"]
    pyproject = root / "pyproject.toml"
    original = pyproject.read_text()
    try:
        pyproject.write_text(original + '\n[tool.covgen]\ninclude = ["inventory/dates.py"]\nmax-gaps = 2\n')
        result = covgen("gaps", python_fixture_reports["coveragepy"], "--root", root, "--json")
        assert {g["path"] for g in result.json()["gaps"]} == {"inventory/dates.py"}
        assert len(result.json()["gaps"]) == 2
        flagged = covgen("gaps", python_fixture_reports["coveragepy"], "--root", root, "--json", "--max-gaps", "1")
        assert len(flagged.json()["gaps"]) == 1
    finally:
        pyproject.write_text(original)


def test_unknown_config_key_names_key_and_file(covgen, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.covgen]\nmax_gapz = 3\n")
    (tmp_path / "r.info").write_text("TN:\n")
    result = covgen("gaps", tmp_path / "r.info", "--root", tmp_path)
    assert result.code == 2
    assert "pyproject.toml" in result.err and "'max_gapz'" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_env_overrides_file_and_bad_env_value_is_named(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.covgen]\nmin-lines = 4\n")
    assert load_settings(tmp_path, env={}).min_lines == 4
    assert load_settings(tmp_path, env={"COVGEN_MIN_LINES": "2"}).min_lines == 2
    assert load_settings(tmp_path, {"min_lines": 7}, env={"COVGEN_MIN_LINES": "2"}).min_lines == 7
    assert load_settings(tmp_path, env={"COVGEN_EXCLUDE": "a/*, b/*"}).exclude == ("a/*", "b/*")
    with pytest.raises(ConfigError, match="COVGEN_MAX_GAPS"):
        load_settings(tmp_path, env={"COVGEN_MAX_GAPS": "lots"})


def test_console_script_runs_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "covgen", "gaps", "fixtures/java/reports/jacoco.xml", "--root", "fixtures/java", "--json"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "covgen.gaps/1"


def test_usage_error_exit_code(covgen) -> None:
    assert covgen("gaps").code == 2
    assert covgen("gaps", "x.xml", "--format", "clover").code == 2
