"""The container image and the compose file that starts vLLM beside it.

The compose checks run in the main suite. The image test builds the image for real
(``scripts/build-image.sh``: podman, and a debootstrapped base where no registry answers) and
runs the README's main job inside it; it takes minutes, so it is marked ``image``, left out of the
default run (pyproject's addopts) and run by its own CI step: ``pytest -m image``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
TAG = "covgen:latest"
# What scripts/build-image.sh runs podman with on a CI machine (no systemd session, no crun).
PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# The README's hardened run: what the compose file's covgen service sets, with no network at all.
HARDENED = ["--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges:true"]
# What bubblewrap needs on top: unshare/sethostname past seccomp, and a /proc it may mount.
FOR_BUBBLEWRAP = ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    return services


def _flag(arguments: list[str], name: str) -> str:
    values = [argument.split("=", 1)[1] for argument in arguments if argument.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} given {len(values)} times in {arguments}"
    return values[0]


def test_compose_file_validates_against_the_compose_specification(tmp_path: Path) -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The validator is not a rubber stamp: a misspelt key in the same file is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text(encoding="utf-8").replace("depends_on:", "depend_on:"), encoding="utf-8")
    refused = _validate(broken)
    assert refused.returncode != 0
    assert "depend_on" in refused.stdout + refused.stderr


def test_vllm_service_is_pinned_and_reserves_one_gpu() -> None:
    vllm = _services()["vllm"]
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", vllm["image"])
    command = vllm["command"]
    assert _flag(command, "--model") == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert re.fullmatch(r"[0-9a-f]{40}", _flag(command, "--revision"))
    assert int(_flag(command, "--max-model-len")) > 0
    assert 0 < float(_flag(command, "--gpu-memory-utilization")) <= 1
    assert vllm["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert any(volume.endswith(":/root/.cache/huggingface") for volume in vllm["volumes"])
    assert "http://localhost:8000/health" in " ".join(vllm["healthcheck"]["test"])


def test_covgen_service_waits_for_a_healthy_vllm_and_runs_hardened() -> None:
    services = _services()
    covgen, vllm = services["covgen"], services["vllm"]
    assert covgen["build"] == "."
    assert covgen["depends_on"] == {"vllm": {"condition": "service_healthy"}}
    command = covgen["command"]
    assert command[0] == "run"
    assert _flag(command, "--engine") == "llm"
    assert _flag(command, "--model-url") == "http://vllm:8000/v1"
    # covgen asks for the name vLLM serves the model under.
    assert _flag(command, "--model") == _flag(vllm["command"], "--served-model-name")
    assert any(volume.endswith(":/project") for volume in covgen["volumes"])
    assert "no-new-privileges:true" in covgen["security_opt"]
    assert covgen["cap_drop"] == ["ALL"]
    assert covgen["read_only"] is True
    assert any(mount.split()[0] == "/tmp" for mount in covgen["tmpfs"])
    # covgen's only network is the internal one it shares with vLLM.
    networks = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["networks"]
    assert all(networks[name].get("internal") is True for name in covgen["networks"])
    assert set(covgen["networks"]) <= set(vllm["networks"])


def _open_for_the_image_user(root: Path) -> None:
    """The image runs as uid 1000; CI's copy belongs to root."""
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(Path(folder) / name, 0o666)


@pytest.mark.image
@pytest.mark.e2e
def test_image_runs_the_readme_main_job_offline_with_full_isolation(tmp_path: Path) -> None:
    assert shutil.which("bash")
    build = subprocess.run(["bash", str(REPO / "scripts" / "build-image.sh"), TAG],
                           capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stderr[-4000:]

    # What the image holds, and what it does not: a non-root user, the toolchain, no pip or compiler.
    probe = subprocess.run(
        [*PODMAN, "run", "--rm", *ULIMITS, "--network", "none", "--entrypoint", "sh", TAG, "-c",
         "id -u; for tool in python3 java javac bwrap git pip pip3 gcc cc; do "
         "command -v $tool >/dev/null && echo has:$tool; done; "
         "ls /usr/share/java/junit-platform-console-standalone.jar /usr/share/java/org.jacoco.agent.jar"],
        capture_output=True, text=True, timeout=300,
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.split()
    assert lines[0] != "0"
    assert {"has:python3", "has:java", "has:javac", "has:bwrap", "has:git"} <= set(lines)
    assert not {"has:pip", "has:pip3", "has:gcc", "has:cc"} & set(lines)

    project = tmp_path / "project"
    shutil.copytree(REPO / "fixtures" / "python", project, ignore=shutil.ignore_patterns("__pycache__"))
    _open_for_the_image_user(project)
    job = ["run", "--root", "/project", "--report", "/project/reports/coverage.xml", "--sandbox", "strict",
           "--output", "json:/project/run.json"]

    # Without the options bubblewrap needs, --sandbox strict refuses at once, in one line.
    refused = subprocess.run([*PODMAN, "run", "--rm", *ULIMITS, *HARDENED, "-v", f"{project}:/project", TAG, *job],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert refused.stderr.startswith("covgen: error: --sandbox strict: this machine lacks filesystem isolation")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (project / "tests" / "covgen").exists()

    run = subprocess.run(
        [*PODMAN, "run", "--rm", *ULIMITS, *HARDENED, *FOR_BUBBLEWRAP, "-v", f"{project}:/project", TAG, *job],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads((project / "run.json").read_text(encoding="utf-8"))
    assert summary["schema"] == "covgen.run/1"
    # --sandbox strict ran, so bubblewrap isolated every candidate inside the container.
    assert summary["sandbox"].startswith("bubblewrap")
    lines_cov = summary["coverage"]["lines"]
    assert lines_cov["after"]["covered"] > lines_cov["before"]["covered"]
    assert summary["coverage"]["branches"]["after"]["covered"] > summary["coverage"]["branches"]["before"]["covered"]
    assert summary["accepted_tests"] > 0
    assert summary["files_written"]
    for written in summary["files_written"]:
        assert (project / written).is_file()
