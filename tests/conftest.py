"""Shared helpers: run the real CLI in-process, locate samples, fixtures and the producers."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from covgen.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
FIXTURES = REPO / "fixtures"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def covgen(capsys: pytest.CaptureFixture[str]):
    """Call ``covgen ARGS…`` in-process and return its exit code and output."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def module_project(tmp_path: Path, name: str, source: str, test_source: str) -> dict[str, Path]:
    """A one-module project (`name`.py and its test) with a coverage.py JSON report of that test."""
    root = tmp_path / name
    (root / "tests").mkdir(parents=True)
    (root / f"{name}.py").write_text(source)
    (root / "tests" / f"test_{name}.py").write_text(test_source)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    data = tmp_path / f".coverage-{name}"
    subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "--data-file", str(data), "--source", ".", "-m", "pytest",
                    "-q", "-p", "no:cacheprovider"], cwd=root, check=True, capture_output=True)
    report = tmp_path / f"{name}.json"
    subprocess.run([sys.executable, "-m", "coverage", "json", "--data-file", str(data), "-o", str(report)], cwd=root, check=True,
                   capture_output=True)
    return {"root": root, "report": report}


def load_producers() -> ModuleType:
    """Import fixtures/produce.py, which drives coverage.py and javac/JUnit/JaCoCo."""
    spec = importlib.util.spec_from_file_location("covgen_fixture_producers", FIXTURES / "produce.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def producers() -> ModuleType:
    return load_producers()


@pytest.fixture(scope="session")
def python_fixture_reports(tmp_path_factory: pytest.TempPathFactory, producers: ModuleType) -> dict[str, Path]:
    """Fresh coverage.py reports of the Python fixture, made during this test run."""
    project = tmp_path_factory.mktemp("pyfixture") / "python"
    shutil.copytree(FIXTURES / "python", project, ignore=shutil.ignore_patterns("reports", "__pycache__"))
    reports = producers.python_reports(project, project / "out")
    return {"root": project, **reports}


@pytest.fixture(scope="session")
def java_fixture_reports(tmp_path_factory: pytest.TempPathFactory, producers: ModuleType) -> dict[str, Path]:
    """Fresh JaCoCo reports of the Java fixture: javac, the JUnit launcher and the JaCoCo agent."""
    project = tmp_path_factory.mktemp("javafixture") / "java"
    shutil.copytree(FIXTURES / "java", project, ignore=shutil.ignore_patterns("reports"))
    reports = producers.java_reports(project, project / "out")
    return {"root": project, **reports}
