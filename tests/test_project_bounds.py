"""covgen reads only the project: report entries and config paths that lead out of it are refused.

A coverage report is a CI artifact a pull request can shape, and so is ``[tool.covgen]``: an
entry naming ``/elsewhere/x.py``, ``../x.py``, a symlink out of the root or a symlinked directory
is never read, never sent to the model, and says so; a source that is not valid UTF-8 or is a
symlink is skipped with a warning, never an internal error — in ``covgen gaps`` and ``covgen run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from covgen.config import load_settings
from support.vllm_stub import StubServer, StubState
from test_run_llm import fence

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e

MARKER = "OUTSIDE-MARKER-31337"
GOOD = "def add(a, b):\n    if a > b:\n        return a - b\n    return a + b\n"
GOOD_ADD = fence("""
    from pkg.good import add

    def test_add_when_first_is_larger():
        assert add(5, 3) == 2
""")


def lcov_entry(path: str) -> str:
    return f"SF:{path}\nDA:1,1\nDA:2,0\nDA:3,0\nDA:4,0\nLF:4\nLH:1\nend_of_record\n"


@pytest.fixture
def tricky(tmp_path: Path) -> dict[str, Path]:
    """A project whose report names files outside it, through symlinks, and one that is not UTF-8."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret_mod.py").write_text(f'from pkg.good import add\n\n\ndef leak(a, b):\n    if a:\n        return "{MARKER}"\n    return b\n')
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "good.py").write_text(GOOD)
    (root / "pkg" / "latin.py").write_bytes(b'def sub(a, b):\n    if a:\n        return "caf\xe9"\n    return b\n')
    os.symlink(outside / "secret_mod.py", root / "pkg" / "linked_out.py")
    os.symlink(root / "pkg" / "good.py", root / "pkg" / "linked_in.py")
    os.symlink(outside, root / "vendor")
    (root / "tests" / "test_good.py").write_text("from pkg.good import add\n\n\ndef test_add():\n    assert add\n")
    # A test file of pkg.good that is a symlink out of the project: never shown to the model.
    os.symlink(outside / "secret_mod.py", root / "tests" / "test_aaa.py")
    report = tmp_path / "coverage.lcov"
    report.write_text("".join(lcov_entry(p) for p in (
        "pkg/good.py", "pkg/latin.py", "pkg/linked_out.py", "pkg/linked_in.py", "vendor/secret_mod.py",
        str(outside / "secret_mod.py"), "../outside/secret_mod.py", "pkg/../../outside/secret_mod.py",
    )))
    return {"root": root, "report": report, "outside": outside}


def test_gaps_reads_nothing_outside_the_root_and_says_why(tricky, covgen) -> None:
    result = covgen("gaps", tricky["report"], "--root", tricky["root"], "--json")
    assert result.code == 0, result.err
    document = result.json()
    assert [(g["id"], g["origin"]) for g in document["gaps"]] == [("pkg/good.py::add", "source")]
    warnings = "\n".join(document["warnings"])
    outside = tricky["outside"].resolve() / "secret_mod.py"
    assert f"{outside}: is outside the project root" in warnings  # absolute, and ../ (the same file)
    for link in ("vendor/secret_mod.py", "pkg/linked_out.py"):  # a symlinked directory, a symlinked file
        assert f"{link}: leads outside the project root {tricky['root'].resolve()} through a symlink (to {outside}); not read" in warnings
    assert f"pkg/linked_in.py: is a symlink (to {tricky['root'] / 'pkg' / 'good.py'})" in warnings
    assert "pkg/latin.py: not valid utf-8 at byte 44" in warnings
    assert "internal error" not in result.err and MARKER not in result.out + result.err


def test_run_sends_nothing_from_outside_the_root(tricky, tmp_path: Path) -> None:
    root = tricky["root"]
    state = StubState(script={"add": [[GOOD_ADD]]})
    summary = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = subprocess.run(
            [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(tricky["report"]), "--engine", "llm",
             "--model-url", server.url, "--candidates", "1", "--output", f"json:{summary}"],
            capture_output=True, text=True, timeout=600,
        )
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert [g["id"] for g in json.loads(summary.read_text())["gaps"]] == ["pkg/good.py::add"]
    assert "pkg/linked_in.py: is a symlink" in result.stderr and "pkg/latin.py: not valid utf-8" in result.stderr
    assert "vendor/secret_mod.py: leads outside the project root" in result.stderr
    assert "pkg/linked_out.py: leads outside the project root" in result.stderr
    assert len(state.requests) == 1
    assert "# tests/test_good.py" in state.requests[0]["messages"][1]["content"]  # the project's own test, as the sample
    for _, body, _ in state.raw_requests:
        assert MARKER.encode() not in body and b"def leak" not in body
    assert (root / "tests" / "covgen" / "test_pkg_good_covgen.py").exists()


@pytest.mark.parametrize(("setting", "message"), [
    ('audit_log = "../audit.jsonl"', "[tool.covgen] audit_log: '../audit.jsonl' is outside the project root"),
    ('test_dir = "/tmp"', "[tool.covgen] test_dir: '/tmp' is outside the project root"),
    ('source-roots = ["src", "../../elsewhere"]', "[tool.covgen] source-roots: '../../elsewhere' is outside the project root"),
    ('python = "/usr/bin/python3"', "[tool.covgen] python: '/usr/bin/python3' is outside the project root"),
    ('audit_log = "logs/requests.jsonl"', "[tool.covgen] audit_log: 'logs/requests.jsonl' leads outside the project root"),
])
def test_paths_in_pyproject_stay_inside_the_project(tmp_path: Path, covgen, setting: str, message: str) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "logs")
    (root / "pyproject.toml").write_text(f"[tool.covgen]\n{setting}\n")
    (tmp_path / "empty.info").write_text("")
    result = covgen("gaps", tmp_path / "empty.info", "--format", "lcov", "--root", root)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"covgen: error: {root / 'pyproject.toml'} ") and message in line, line
    assert "a command-line flag or COVGEN_" in line


def test_a_default_path_through_a_symlink_out_of_the_project_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "project"
    root.mkdir()
    os.symlink(tmp_path / "elsewhere", root / "tests")
    result = subprocess.run([sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", "x.json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("covgen: error: default test_dir: 'tests/covgen' leads outside the project root")


def test_flags_and_environment_may_point_elsewhere_and_pyproject_paths_are_the_projects(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.covgen]\naudit_log = "/tmp/audit.jsonl"\npython = ".venv/bin/python"\n')
    settings = load_settings(root, {"test_dir": "/tmp/generated"}, env={"COVGEN_AUDIT_LOG": "/var/log/covgen.jsonl"})
    assert settings.test_dir == "/tmp/generated" and settings.audit_log == "/var/log/covgen.jsonl"
    # A virtualenv's interpreter is a symlink out of the project by design; it is taken from the root.
    assert settings.python == str(root.absolute() / ".venv/bin/python")
