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

from covgen.sandbox import SandboxLayers, SandboxPolicy, Workspace, probe, run_sandboxed


def run(code: str, tmp_path: Path, policy: SandboxPolicy = SandboxPolicy(wall_seconds=20), **env: str):
    """Run `code` with this interpreter in a sandboxed workspace (a copy of an empty project)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    with Workspace(project) as workspace:
        return asyncio.run(workspace.run(sys.executable, ["-c", code], policy=policy, env=env)), workspace.home


def test_bubblewrap_isolates_the_filesystem_here() -> None:
    # The README's test command installs bubblewrap; on this machine every layer must work.
    layers = probe()
    assert layers.filesystem_isolated and layers.processes_isolated and layers.network_isolated, layers.bwrap_problem
    assert "NOT" not in layers.describe()


def test_only_the_workspace_is_writable_and_the_rest_of_the_disk_is_gone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    code = (
        "import os, pathlib\n"
        f"print('outside', os.path.exists({str(outside)!r}))\n"
        f"print('home', os.path.exists({str(Path.home())!r}) and os.listdir({str(Path.home())!r}))\n"
        "print('run', os.path.exists('/run'))\n"
        "pathlib.Path(os.environ['HOME'], 'mine.txt').write_text('ok')\n"
        "print('wrote home')\n"
        "try:\n    pathlib.Path('/usr/covgen-was-here').write_text('x')\nexcept OSError as err:\n    print('usr', err.errno)\n"
    )
    result, _ = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "outside False" in result.stdout and "run False" in result.stdout and "wrote home" in result.stdout
    assert "usr 30" in result.stdout or "usr 13" in result.stdout  # EROFS or EACCES
    assert outside.read_text() == "mine"


def test_a_process_count_limit_stops_a_fork_bomb(tmp_path: Path) -> None:
    code = (
        "import os, time\n"
        "for i in range(2000):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        print('limited at', i); break\n"
        "    if pid == 0:\n        time.sleep(20); os._exit(0)\n"
    )
    result, _ = run(code, tmp_path, SandboxPolicy(wall_seconds=30, processes=64))
    assert "limited at" in result.stdout, result.stdout + result.stderr
    assert int(result.stdout.split("limited at")[1].split()[0]) < 64


_HOLD_CHILDREN = """
import asyncio, sys
from pathlib import Path
from covgen.sandbox import SandboxPolicy, Workspace
count, hold, project = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
code = (
    "import os, sys, time\\n"
    f"for i in range({count}):\\n"
    "    try:\\n        pid = os.fork()\\n    except OSError:\\n        print('limited at', i, flush=True); sys.exit(0)\\n"
    f"    if pid == 0:\\n        time.sleep({hold}); os._exit(0)\\n"
    "print('all', flush=True)\\n"
    f"time.sleep({hold})\\n"  # the children live as long as the sandbox's first process
)
with Workspace(project) as workspace:
    result = asyncio.run(workspace.run(sys.executable, ["-c", code], policy=SandboxPolicy(wall_seconds=30, processes=64)))
print(result.stdout.strip())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does covgen switch the sandbox to a uid of its own; "
                                              "otherwise every run is the invoking user, as that user's own jobs are")
def test_two_covgen_runs_on_one_machine_do_not_share_a_process_limit(tmp_path: Path) -> None:
    import subprocess

    project = tmp_path / "project"
    project.mkdir()
    # One covgen process holds 50 processes in its sandbox (its limit: 64) for a while…
    greedy = subprocess.Popen([sys.executable, "-c", _HOLD_CHILDREN, "50", "8", str(project)], stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    # …while another starts 50 of its own under the same limit: with one shared user it would
    # be stopped at about 12.
    other = subprocess.run([sys.executable, "-c", _HOLD_CHILDREN, "50", "0.5", str(project)], capture_output=True, text=True, timeout=60)
    first, _ = greedy.communicate(timeout=60)
    assert first.strip() == "all", first
    assert other.stdout.strip() == "all", other.stdout + other.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does covgen switch the sandbox to a uid of its own")
def test_the_sandbox_user_has_a_name_and_no_way_into_the_workspace_from_outside(tmp_path: Path) -> None:
    import pwd

    code = "import getpass, os, pwd\nentry = pwd.getpwuid(os.getuid())\nprint(entry.pw_name, os.getuid() == entry.pw_uid, getpass.getuser())\n"
    project = tmp_path / "project"
    project.mkdir()
    with Workspace(project) as workspace:
        result = asyncio.run(workspace.run(sys.executable, ["-c", code], policy=SandboxPolicy(wall_seconds=20)))
        top = workspace.path.parent.parent  # the folder mkdtemp made: root's, closed to everyone else
        assert top.stat().st_uid == 0 and top.stat().st_mode & 0o077 == 0
        owner = workspace.path.stat().st_uid
    assert result.stdout.split() == ["covgen-sandbox", "True", "covgen-sandbox"], result.stdout + result.stderr
    assert owner != 0 and owner != 65534
    with pytest.raises(KeyError):
        pwd.getpwuid(owner)  # the uid names nobody on this machine


def test_network_is_off_where_the_machine_allows(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    result, _ = run(f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')", tmp_path)
    layers = probe()
    if layers.network_isolated:
        assert "connected" not in result.stdout and result.returncode != 0
        assert accepted == []
        assert "network off" in layers.describe()
    else:  # the summary must then say the network is on, rather than pretend
        assert "network ON" in layers.describe()
    listener.close()


def test_timeout_kills_everything_the_candidate_started(tmp_path: Path) -> None:
    # The child leaves the process group and would outlive a group kill; not the PID namespace.
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    os.execvp('sleep', ['sleep', '47.123'])\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result, _ = run(code, tmp_path, SandboxPolicy(wall_seconds=2))
    assert result.timed_out and time.monotonic() - started < 15
    time.sleep(0.5)
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep 47.123"]
    assert survivors == []


def _cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_environment_carries_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("COVGEN_API_KEY", "sk-do-not-leak-either")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    result, home = run("import os, json; print(json.dumps(dict(os.environ)))", tmp_path)
    assert "do-not-leak" not in result.stdout and "proxy.internal" not in result.stdout
    assert f'"HOME": "{home}"' in result.stdout


def test_stdin_is_closed(tmp_path: Path) -> None:
    result, _ = run("import sys; print(repr(sys.stdin.read()))", tmp_path)
    assert result.stdout.strip() == "''"


def test_imports_that_lead_back_to_the_users_tree_find_nothing_there(tmp_path: Path) -> None:
    """A sys.path edit (like an editable install) pointing at the real checkout leads nowhere:
    the checkout is not in the sandbox, so the copy is imported and the tree stays as it was."""
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
    assert result.returncode == 0, result.stderr
    after = tree_digest(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {"tests/covgen/test_inventory_dates_covgen.py"}


def test_modules_from_the_users_tree_are_recognised(tmp_path: Path) -> None:
    """Where bubblewrap is missing, covgen checks the probe's import locations itself."""
    project = tmp_path / "project"
    (project / ".venv" / "lib").mkdir(parents=True)
    with Workspace(project) as workspace:
        assert workspace.in_users_tree(str(project / "pkg"), sys.executable)
        assert not workspace.in_users_tree(str(workspace.path / "pkg"), sys.executable)
        assert not workspace.in_users_tree("/usr/lib/python3/dist-packages", sys.executable)


def test_strict_refuses_to_run_without_filesystem_or_network_isolation(tmp_path: Path) -> None:
    from covgen.errors import SandboxError

    without_bwrap = SandboxLayers(False, False, True, True, False, "bubblewrap is not installed: apt-get install bubblewrap")
    assert "filesystem NOT isolated (bubblewrap is not installed" in without_bwrap.describe()
    with pytest.raises(SandboxError, match="--sandbox strict: this machine lacks filesystem isolation"):
        asyncio.run(run_sandboxed([sys.executable, "-c", "pass"], cwd=tmp_path, env={}, policy=SandboxPolicy(network="strict"),
                                  layers=without_bwrap))
    # With every layer there, strict runs.
    result = asyncio.run(run_sandboxed(["true"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, policy=SandboxPolicy(network="strict")))
    assert result.returncode == 0
