"""`covgen run` through the real CLI: engine choice, failures, dry runs, and files it must not touch."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from support.vllm_stub import StubServer, StubState
from test_run_llm import tree_digest

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def covgen_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "covgen", "run", "--root", str(root), *args], capture_output=True, text=True, timeout=600)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_model_is_exit_3_with_one_line_and_nothing_written(project: Path) -> None:
    before = tree_digest(project)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--engine", "llm", "--model-url", url, "--wait-for-model", "1")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "vllm serve" in lines[0] and "Traceback" not in result.stderr
    assert tree_digest(project) == before


def test_an_interpreter_without_pytest_stops_the_run_before_any_prompt(project: Path, tmp_path: Path) -> None:
    # The interpreter is checked while the prompts are built: a failing check must still stop the
    # run with its fix, before a single prompt is sent, and touch nothing.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    state = StubState()
    before = tree_digest(project)
    with StubServer(state) as server:
        result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--engine", "llm", "--model-url", server.url,
                            "--python", str(bare / "bin" / "python"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("covgen: error:")]
    assert len(error) == 1 and "cannot import pytest and coverage" in error[0] and "--python PATH" in error[0]
    assert state.requests == [] and tree_digest(project) == before


def test_auto_falls_back_to_exploration_and_says_why(project: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    summary = tmp_path / "summary.json"
    result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--model-url", url, "--include", "inventory/dates.py",
                        "--output", f"json:{summary}", "--explore-seconds", "2")
    assert result.returncode == 0, result.stderr
    document = json.loads(summary.read_text())
    assert document["engine"].startswith("model-free exploration")
    assert "did not answer" in document["engine_reason"]
    assert document["accepted_tests"] > 0
    assert "engine: model-free exploration" in result.stdout


def test_dry_run_shows_prompts_and_calls_nothing(project: Path) -> None:
    state = StubState()
    before = tree_digest(project)
    with StubServer(state) as server:
        result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--engine", "llm", "--model-url", server.url,
                            "--dry-run", "--max-gaps", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n=== inventory/") == 2
    assert "--- system ---" in result.stdout and "NOT COVERED" in result.stdout
    assert state.requests == [] and tree_digest(project) == before


def test_a_test_file_covgen_did_not_write_is_never_touched(project: Path) -> None:
    mine = project / "tests" / "covgen" / "test_inventory_dates_covgen.py"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own tests, not covgen's\n")
    result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--engine", "explore", "--explore-seconds", "2",
                        "--include", "inventory/dates.py")
    assert result.returncode == 2
    assert "exists and was not written by covgen" in result.stderr
    assert mine.read_text() == "# my own tests, not covgen's\n"


def test_test_cmd_measures_first_and_a_second_run_adds_to_its_own_files(project: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    result = covgen_run(project, "--test-cmd", "pytest -q -p no:cacheprovider", "--engine", "explore",
                        "--explore-seconds", "2", "--include", "inventory/parsing.py", "--output", f"json:{first}")
    assert result.returncode == 0, result.stderr
    written = project / "tests" / "covgen" / "test_inventory_parsing_covgen.py"
    assert written.exists()
    gained = json.loads(first.read_text())["coverage"]["lines"]
    assert gained["after"]["covered"] > gained["before"]["covered"]
    second = tmp_path / "second.json"
    again = covgen_run(project, "--test-cmd", "pytest -q -p no:cacheprovider", "--engine", "explore",
                       "--explore-seconds", "2", "--include", "inventory/parsing.py", "--output", f"json:{second}")
    assert again.returncode == 0, again.stderr
    # The second run measured the first run's tests: it starts where the first one ended.
    assert json.loads(second.read_text())["coverage"]["lines"]["before"]["covered"] == gained["after"]["covered"]
    check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_a_bad_recording_is_an_input_error_not_a_dead_server(project: Path, tmp_path: Path) -> None:
    recording = tmp_path / "answers.jsonl"
    recording.write_text("this is not a recording\n")
    before = tree_digest(project)
    result = covgen_run(project, "--report", str(project / "reports/coverage.json"), "--engine", "replay", "--replay", str(recording))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("covgen: error:")]
    assert len(lines) == 1 and "not a covgen recording" in lines[0] and "Traceback" not in result.stderr
    assert tree_digest(project) == before


def test_gaps_the_run_cannot_fill_are_named_not_dropped(tmp_path: Path) -> None:
    project = tmp_path / "web"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.js").write_text("function add(a, b) {\n  return a + b;\n}\nmodule.exports = { add };\n")
    report = tmp_path / "lcov.info"
    report.write_text("TN:\nSF:src/app.js\nFN:1,add\nFNDA:0,add\nDA:1,1\nDA:2,0\nDA:4,1\nend_of_record\n")
    result = covgen_run(project, "--report", str(report), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "covgen: warning: 1 gaps in js files: no language pack for them; `covgen gaps` lists them" in result.stderr


def test_java_gaps_without_a_model_say_so_per_gap(tmp_path: Path) -> None:
    java = tmp_path / "java"
    shutil.copytree(FIXTURES / "java", java)
    summary = tmp_path / "summary.json"
    result = covgen_run(java, "--report", str(java / "reports/jacoco.xml"), "--engine", "explore", "--max-gaps", "2",
                        "--output", f"json:{summary}")
    assert result.returncode == 0, result.stderr
    gaps = json.loads(summary.read_text())["gaps"]
    assert len(gaps) == 2 and all(g["outcome"] == "NO_CANDIDATE" and "need a model server" in g["reason"] for g in gaps), gaps
