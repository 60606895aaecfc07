"""The sandbox layers, each checked against what it promises (the static screen: test_screen.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from covgen.sandbox import SandboxPolicy, probe, run_sandboxed, scrubbed_env


def run(code: str, tmp_path: Path, policy: SandboxPolicy = SandboxPolicy(wall_seconds=20), **env: str):
    return asyncio.run(run_sandboxed([sys.executable, "-c", code], cwd=tmp_path, env=scrubbed_env(tmp_path, env), policy=policy))


def test_network_is_off_where_the_machine_allows(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    result = run(f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')", tmp_path)
    layers = probe()
    if layers.network_isolated:
        assert "connected" not in result.stdout and result.returncode != 0
        assert accepted == []
        assert "network off" in layers.describe()
    else:  # the summary must then say the network is on, rather than pretend
        assert "network ON" in layers.describe()
    listener.close()


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        f"    time.sleep(3); open({str(marker)!r}, 'w').write('x'); os._exit(0)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = run(code, tmp_path, SandboxPolicy(wall_seconds=1))
    assert result.timed_out and time.monotonic() - started < 10
    time.sleep(4)
    assert not marker.exists()


def test_environment_carries_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("COVGEN_API_KEY", "sk-do-not-leak-either")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    result = run("import os, json; print(json.dumps(dict(os.environ)))", tmp_path)
    assert "do-not-leak" not in result.stdout and "proxy.internal" not in result.stdout
    assert f'"HOME": "{tmp_path}"' in result.stdout


def test_stdin_is_closed(tmp_path: Path) -> None:
    result = run("import sys; print(repr(sys.stdin.read()))", tmp_path)
    assert result.stdout.strip() == "''"


def test_imports_that_lead_back_to_the_users_tree_stop_the_run(tmp_path: Path) -> None:
    """A sys.path edit (like an editable install) pointing at the real checkout is caught."""
    import shutil
    import subprocess

    from conftest import FIXTURES
    from test_run_llm import tree_digest

    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests" / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(root)!r})\n")
    before = tree_digest(root)
    result = subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(root / "reports" / "coverage.json"),
         "--engine", "explore", "--explore-seconds", "1", "--include", "inventory/dates.py"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    # Progress lines may come first; the failure itself is one line, and no traceback.
    errors = [line for line in result.stderr.splitlines() if line.startswith("covgen: error:")]
    assert len(errors) == 1 and "imported from your tree" in errors[0] and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert tree_digest(root) == before
