"""The synthetic project's own environment: pytest and coverage.py, nothing else.

A project's CI job runs its tests in the project's environment, not in whatever the machine's
interpreter happens to hold. The benches that time validation of a synthetic project give it a
virtualenv of its own with the same pytest and coverage.py versions as covgen's interpreter, so a
figure does not move with the pytest plugins a machine image ships (on one image here,
hypothesis's plugin alone added 0.5 s to every pytest process). `--python own` runs the project
in covgen's interpreter instead.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def project_python(choice: str) -> str:
    """The interpreter the synthetic project runs in: ``project`` (its own venv) or ``own``."""
    if choice == "own":
        return sys.executable
    pins = [f"pytest=={version('pytest')}", f"coverage=={version('coverage')}"]
    venv = HERE / ".work" / ("project-venv-" + "-".join(pin.replace("==", "") for pin in pins))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", *pins], check=True)
    return str(python)


def describe(python: str) -> str:
    plugins = subprocess.run(
        [python, "-I", "-c", "from importlib.metadata import entry_points as e; print(', '.join(sorted(p.name for p in e(group='pytest11'))) or 'none')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    return f"project interpreter {python} (pytest plugins: {plugins})"
