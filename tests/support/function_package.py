"""A package of small independent functions with no tests, and the coverage.py report of it:
the project the shard tests and the generation benches fill with scripted answers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def write_function_package(root: Path, modules: Mapping[int, list[str]]) -> Path:
    """Write ``pkg/mod<m>.py`` from each module's function sources, a test that covers nothing,
    and a pytest config; run the tests under coverage.py and return its JSON report (beside `root`)."""
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "tests" / "test_nothing.py").write_text("def test_nothing():\n    assert True\n")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    for m, functions in modules.items():
        (root / "pkg" / f"mod{m}.py").write_text("\n\n".join(functions))
    data = root.parent / ".coverage"
    subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "--data-file", str(data), "--source=pkg", "-m", "pytest", "-q",
                    "-p", "no:cacheprovider"], cwd=root, check=True, capture_output=True)
    report = root.parent / "coverage.json"
    subprocess.run([sys.executable, "-m", "coverage", "json", "--data-file", str(data), "-o", str(report)], cwd=root, check=True,
                   capture_output=True)
    return report
