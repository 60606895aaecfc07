"""The synthetic project's own environment: pytest and coverage.py, nothing else.

A project's CI job runs its tests in the project's environment, not in whatever the machine's
interpreter happens to hold. The benches that time validation of a synthetic project give it a
virtualenv of its own with the same pytest and coverage.py versions as covgen's interpreter, so a
figure does not move with the pytest plugins a machine image ships (on one image here,
hypothesis's plugin alone added 0.5 s to every pytest process). `--python own` runs the project
in covgen's interpreter instead.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def add_python_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", choices=("project", "own"), default="project",
                        help="the project's interpreter: its own venv with pytest and coverage.py only (default), or covgen's")


def project_python(choice: str) -> str:
    """The interpreter the synthetic project runs in: ``project`` (its own venv) or ``own``."""
    if choice == "own":
        return sys.executable
    # pytest and what it needs, at covgen's interpreter's versions: the same test runner, only
    # without the other plugins.
    pins = [f"{name}=={version(name)}" for name in ("pytest", "coverage", "pluggy", "iniconfig", "packaging")]
    key = f"py{sys.version_info.major}.{sys.version_info.minor}-" + "-".join(pin.replace("==", "") for pin in pins)
    venv = HERE / ".work" / f"project-venv-{key}"
    python = venv / "bin" / "python"
    ready = venv / "covgen-bench-ready"
    if not ready.exists():
        # A venv left half-built by an interrupted install is built again, not reused.
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", *pins], check=True)
        ready.write_text("\n".join(pins) + "\n")
    return str(python)


def describe(python: str) -> str:
    plugins = subprocess.run(
        [python, "-I", "-c", "from importlib.metadata import entry_points as e; print(', '.join(sorted(p.name for p in e(group='pytest11'))) or 'none')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return f"project interpreter {python} (pytest plugins: {plugins})"
