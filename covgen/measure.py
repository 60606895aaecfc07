"""``--test-cmd``: run the project's own suite under coverage.py (in a throwaway copy) for a report."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from covgen.adapters import read_report
from covgen.errors import UsageError
from covgen.model import CoverageReport
from covgen.sandbox import SandboxPolicy, Workspace

__all__ = ["measure_suite"]


def measure_suite(root: Path, test_cmd: str, python: str) -> CoverageReport:
    """Run `test_cmd` (``pytest -q``, ``python -m pytest tests``) with branch coverage; read the result."""
    words = shlex.split(test_cmd)
    if words[:2] == ["python", "-m"] or words[:2] == ["python3", "-m"]:
        words = words[2:]
    if not words:
        raise UsageError("--test-cmd is empty")
    with Workspace(root) as workspace:
        data = workspace.state / ".coverage"
        env = {"PYTHONPATH": ":".join(str(workspace.path / p) for p in (".", "src"))}
        # The project's own suite is trusted: it keeps its network, but still runs in the copy.
        policy = SandboxPolicy(network="allow", wall_seconds=3600)
        run = ["-m", "coverage", "run", "--branch", f"--data-file={data}", "-m", *words]
        result = asyncio.run(workspace.run(python, run, env=env, policy=policy))
        if not data.exists():
            raise UsageError(f"--test-cmd {test_cmd!r} produced no coverage data (exit {result.returncode}): {result.stderr.strip()[-300:]}")
        report = workspace.state / "coverage.json"
        asyncio.run(workspace.run(python, ["-m", "coverage", "json", f"--data-file={data}", "-o", str(report)], env=env, policy=policy))
        # Paths in the JSON are relative to the copy's root, which mirrors the user's root.
        return read_report(report, root=workspace.path)
