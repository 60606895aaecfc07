"""The funnel's pytest runs judge a test as the project's plain pytest does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from covgen.languages import pack_named
from covgen.pipeline import RunOptions
from covgen.sandbox import Workspace, probe

_LEAKS = '''
class Leaky:
    def __del__(self):
        raise ValueError("broken finalizer")


def test_leaks_an_unraisable_exception():
    Leaky()


def test_fine():
    assert True
'''


def test_an_unraisable_exception_fails_a_test_where_the_project_turns_warnings_into_errors(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n')
    (project / "tests" / "test_leaks.py").write_text(_LEAKS)
    plain = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project,
                           capture_output=True, text=True)
    assert "1 failed, 1 passed" in plain.stdout, plain.stdout

    async def funnel() -> dict[str, str]:
        pack = pack_named("python")
        assert pack is not None
        with Workspace(project) as workspace:
            runner = pack.runner(workspace, options=RunOptions(root=project), layers=probe())
            run = await runner.run(["tests/test_leaks.py"])
            return {nodeid.split("::")[-1]: outcome.outcome for nodeid, outcome in run.outcomes.items()}

    assert asyncio.run(funnel()) == {"test_leaks_an_unraisable_exception": "failed", "test_fine": "passed"}
