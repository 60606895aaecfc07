"""``covgen doctor``: each check against the real thing, or a double where this machine cannot be made to fail."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES
from covgen.config import load_settings
from covgen.doctor import Diagnosis, diagnose
from covgen.runners.java_toolchain import JavaToolchain, java_toolchain
from covgen.sandbox import SandboxLayers
from support.vllm_stub import StubServer, StubState

ISOLATED = SandboxLayers(True, True, True, True, True)


def python_project(tmp_path: Path) -> Path:
    root = tmp_path / "py"
    root.mkdir()
    (root / "lib.py").write_text("def f():\n    return 1\n")
    return root


def java_project(tmp_path: Path) -> Path:
    root = tmp_path / "java"
    (root / "src/main/java/demo").mkdir(parents=True)
    (root / "src/main/java/demo/A.java").write_text("package demo;\npublic class A { public int f() { return 1; } }\n")
    return root


def check(diagnosis: Diagnosis, name: str) -> Any:
    return next(c for c in diagnosis.checks if c.name == name)


def run(root: Path, flags: dict[str, Any] | None = None, **seams: Any) -> Diagnosis:
    return diagnose(root, load_settings(root, flags, env={}), layers=seams.pop("layers", lambda: ISOLATED), **seams)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_live_endpoint_shows_its_models_and_context(tmp_path: Path) -> None:
    root = python_project(tmp_path)
    with StubServer(StubState(max_model_len=16384)) as server:
        diagnosis = run(root, {"model_url": server.url})
        wrong = run(root, {"model_url": server.url, "model": "other/model"})
    with StubServer(StubState(health_route=False, models_status=401)) as locked:
        refused = check(run(root, {"model_url": locked.url}), "model")
    model = check(diagnosis, "model")
    assert model.ok and "serves stub/coder-instruct" in model.detail and "context 16384 tokens" in model.detail
    assert diagnosis.ok
    assert not wrong.ok
    assert "does not serve 'other/model'; it serves stub/coder-instruct" in check(wrong, "model").detail
    assert check(wrong, "model").fix.startswith("pass --model with one of the models it serves")
    assert not refused.ok and "HTTP 401" in refused.detail and refused.fix == "set COVGEN_API_KEY to the key the server expects"


def test_dead_endpoint_fails_even_under_auto_and_says_what_to_do(tmp_path: Path) -> None:
    root = python_project(tmp_path)
    diagnosis = run(root, {"model_url": f"http://127.0.0.1:{closed_port()}/v1", "wait_for_model": 0})
    model = check(diagnosis, "model")
    assert not diagnosis.ok and not model.ok
    assert "unreachable" in model.detail
    assert "vllm serve" in model.fix and "--model-url" in model.fix and "--engine explore" in model.fix


def test_no_endpoint_is_the_model_free_engine(tmp_path: Path) -> None:
    diagnosis = run(python_project(tmp_path))
    assert check(diagnosis, "model").detail == "no endpoint configured: the model-free engine will run (Python only)"
    assert [c.name for c in diagnosis.checks] == ["model", "python", "sandbox"]  # no Java here: no Java checks


def test_python_without_pytest_names_what_to_install(tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    diagnosis = run(python_project(tmp_path), {"python": str(venv / "bin/python")})
    python = check(diagnosis, "python")
    assert not python.ok and python.detail.endswith("cannot import pytest")
    assert python.fix.startswith(f"{venv / 'bin/python'} -m pip install pytest coverage")


def test_missing_jdk_and_agent_name_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = java_project(tmp_path)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "empty"))
    diagnosis = run(root, {"jacoco_agent": str(tmp_path / "missing.jar")})
    jdk, agent = check(diagnosis, "JDK"), check(diagnosis, "JaCoCo agent")
    assert not jdk.ok and "has no bin/javac" in jdk.detail and "apt-get install default-jdk-headless" in jdk.fix
    assert not agent.ok and "pass --jacoco-agent the path of an existing jar" in agent.fix
    assert not diagnosis.ok


def test_class_files_the_agent_cannot_instrument(tmp_path: Path) -> None:
    # The agent here instruments everything this JDK compiles (its probed limit is the JDK's own
    # class version), so the limit is lowered by a toolchain double: the real one, agent_limit - 1.
    real = java_toolchain()
    lower = dataclasses.replace(real, agent_limit=real.class_version - 1)

    def toolchain(**_: object) -> JavaToolchain:
        return lower

    root = java_project(tmp_path)
    subprocess.run([str(real.javac), "--release", str(real.release), "-d", str(root / "classes"),
                    str(root / "src/main/java/demo/A.java")], check=True)
    diagnosis = run(root, {"classpath": "classes"}, toolchain=toolchain)
    build = check(diagnosis, "Java build")
    assert not build.ok and not diagnosis.ok
    assert f"demo/A.class is Java {real.release}" in build.detail
    assert f"compile the project with --release {real.release - 1}" in build.fix
    real_run = run(root, {"classpath": "classes"})
    assert real_run.ok  # the real toolchain instruments it
    # No model for a Java project: run completes, but fills no Java gap; said as advice.
    assert check(real_run, "model").fix == "pass --model-url to a vLLM server: Java gaps need a model"


def test_sandbox_layers_missing_advise_under_auto_and_fail_under_strict(tmp_path: Path) -> None:
    root = python_project(tmp_path)
    bare = SandboxLayers(False, False, False, True, True, "bubblewrap is not installed: apt-get install bubblewrap")
    advised = check(run(root, layers=lambda: bare), "sandbox")
    strict = check(run(root, {"sandbox": "strict"}, layers=lambda: bare), "sandbox")
    assert advised.ok and advised.fix == "apt-get install bubblewrap"
    assert not strict.ok and "--sandbox strict needs filesystem isolation" in strict.detail
    assert strict.fix == "apt-get install bubblewrap"


@pytest.mark.e2e
def test_all_good_through_the_cli(tmp_path: Path, covgen) -> None:  # type: ignore[no-untyped-def]
    """The Java fixture with a live endpoint: exit 0, one ok line per check, and the JSON agrees."""
    with StubServer(StubState()) as server:
        text = covgen("doctor", "--root", FIXTURES / "java", "--model-url", server.url)
        document = covgen("doctor", "--root", FIXTURES / "java", "--model-url", server.url, "--json")
    assert text.code == 0, text.out + text.err
    names = ["model", "JDK", "JUnit launcher", "JaCoCo agent", "Java build", "sandbox"]
    assert [line.split()[1].rstrip(":") for line in text.out.splitlines() if not line.startswith(" ")] == [
        "model", "JDK", "JUnit", "JaCoCo", "Java", "sandbox"]
    assert all(line.startswith(("ok ", "warn ", "     fix:")) for line in text.out.splitlines())
    assert document.code == 0
    body = document.json()
    assert body["schema"] == "covgen.doctor/1" and body["ok"] is True
    assert [c["name"] for c in body["checks"]] == names
    assert "Money.class is Java" in body["checks"][4]["detail"]


@pytest.mark.e2e
def test_a_failing_check_exits_1_through_the_cli(tmp_path: Path, covgen) -> None:  # type: ignore[no-untyped-def]
    root = python_project(tmp_path)
    result = covgen("doctor", "--root", root, "--model-url", f"http://127.0.0.1:{closed_port()}/v1")
    assert result.code == 1
    assert result.out.startswith("FAIL model: model server at http://127.0.0.1:")
    assert result.out.splitlines()[1].startswith("     fix: start the server")
