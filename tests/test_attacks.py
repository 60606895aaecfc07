"""Hostile candidates, end to end through the CLI: every attack is refused or contained.

A scripted model server answers each gap with an attack beside a good test, in the same wave.
Every test asserts the attack's verdict, that the good test is still accepted, that the
user's tree is byte-identical apart from the written test files, that nothing outside the
sandbox was touched, and that no process and no workspace is left behind.

With the default (allowlist) screen most attacks never run; ``--screen permissive`` lets them
run, so the layers behind the screen — the sandbox, the runner's checks and the clean run —
are tested on their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import module_project
from support.vllm_stub import StubServer, StubState
from test_run_llm import tree_digest

pytestmark = pytest.mark.e2e

CALC = textwrap.dedent('''
    def add_tax(cents, rate):
        if rate < 0:
            raise ValueError("negative rate")
        return cents + round(cents * rate)


    def clamp(value, low, high):
        if value < low:
            return low
        if value > high:
            return high
        return value


    DEFAULTS = {"rate": 0.1}


    def default_tax(cents):
        return add_tax(cents, DEFAULTS["rate"])
''').lstrip()

GOOD = '''
from calc import add_tax

def test_ten_percent():
    assert add_tax(1000, 0.1) == 1100

def test_negative_rate_is_refused():
    import pytest
    with pytest.raises(ValueError, match="negative rate"):
        add_tax(1, -1)
'''


def fence(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip() + "\n```\n"


@pytest.fixture
def calc(tmp_path: Path) -> dict[str, Path]:
    """A small project whose own test reaches none of `add_tax`; its coverage.py report."""
    project = module_project(
        tmp_path, "calc", CALC,
        "import calc\nfrom calc import clamp\n\n\ndef test_inside():\n    assert clamp(5, 0, 9) == 5\n\n\n"
        "def test_default_rate():\n    assert calc.DEFAULTS[\"rate\"] == 0.1\n",
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    temp = tmp_path / "covgen-tmp"
    temp.mkdir()
    return {**project, "outside": outside, "temp": temp, "home": Path.home()}


GOOD_CLAMP = '''
from calc import clamp

def test_below_is_raised_to_low():
    assert clamp(-5, 0, 9) == 0
'''


def attack(calc: dict[str, Path], tmp_path: Path, *answers: str, screen: str = "strict", timeout: str = "5",
           gap: str = "add_tax", good: str = GOOD, kept: tuple[str, ...] | None = ("test_negative_rate_is_refused", "test_ten_percent"),
           ) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run covgen with `answers` (attacks) and a good test as one wave for `gap`.

    `kept` is the accepted set the good test makes; None where an attack passing as a test may
    legitimately take a place (it did nothing a permissive screen forbids).
    """
    root = calc["root"]
    before = tree_digest(root)
    outside_before = {p: p.read_bytes() for p in calc["outside"].iterdir()}
    state = StubState(script={gap: [[*map(fence, answers), fence(good)]]})
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = subprocess.run(
            [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(calc["report"]), "--engine", "llm",
             "--model-url", server.url, "--candidates", str(len(answers) + 1), "--max-attempts", "1", "--test-timeout", timeout,
             "--screen", screen, "--include", "calc.py", "--output", f"json:{summary_path}"],
            capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(calc["temp"])},
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    # The good test of the same wave is kept, and written.
    by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    if kept is not None:
        assert sorted(by_gap[gap]["accepted_tests"]) == sorted(kept), (by_gap[gap]["rejected"], summary["warnings"])
    assert summary["files_written"] == ["tests/covgen/test_calc_covgen.py"]
    written = (root / "tests/covgen/test_calc_covgen.py").read_text()
    assert all(f"def {test}" in written for test in kept or ())
    # The user's tree is byte-identical apart from the written file and covgen's log.
    after = tree_digest(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {"tests/covgen/test_calc_covgen.py", ".covgen/requests.jsonl"}
    # Nothing outside the sandbox was touched, and nothing is left behind.
    assert {p: p.read_bytes() for p in calc["outside"].iterdir()} == outside_before
    assert not (calc["home"] / "covgen-pwned").exists()
    assert list(calc["temp"].iterdir()) == []
    assert not _leftover_processes(calc["temp"])
    return result, by_gap[gap]


def _leftover_processes(marker: Path) -> list[str]:
    """Processes whose command line names a covgen workspace under `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if str(marker) in command:
                found.append(command)
    return found


def verdicts_of(gap: dict, test: str | None = None) -> list[tuple[str, str]]:
    """(verdict, message) of every rejected test (or module, test "") not among the good ones."""
    return [(r["verdict"], r["message"]) for r in gap["rejected"] if test is None or r["test"] == test]


# --- the allowlist screen ---------------------------------------------------------------------

SCREEN_BYPASSES = [
    "import os\nrun = os.system\n\ndef test_x():\n    run('true')\n",
    "import os\n\ndef test_x():\n    vars(os)['system']('true')\n",
    "import sys\n\ndef test_x():\n    sys.modules['os'].system('true')\n",
    "def test_x():\n    __builtins__['__import__']('os').system('true')\n",
    "def test_x():\n    [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['true'])\n",
    "from calc import add_tax\n\ndef test_x(request):\n    request.config.pluginmanager.register(object())\n    assert add_tax(1, 0) == 1\n",
]


def test_the_screen_refuses_every_known_bypass_and_says_which_rule(calc, tmp_path: Path) -> None:
    _, gap = attack(calc, tmp_path, *SCREEN_BYPASSES)
    refused = verdicts_of(gap)
    assert len(refused) == len(SCREEN_BYPASSES)
    assert all(verdict == "UNSAFE" for verdict, _ in refused), refused
    assert all(message for _, message in refused)


# --- the sandbox (behind a permissive screen) ---------------------------------------------------

def test_writes_outside_the_workspace_are_impossible(calc, tmp_path: Path) -> None:
    root, outside, home = calc["root"], calc["outside"], calc["home"]
    writes = textwrap.dedent(f"""
        import pathlib
        from calc import add_tax

        def test_into_the_users_tree():
            pathlib.Path({str(root / "PWNED")!r}).write_text("x")
            assert add_tax(1, 0) == 1

        def test_into_home():
            pathlib.Path({str(home / "covgen-pwned")!r}).write_text("x")
            assert add_tax(1, 0) == 1

        def test_into_tmp():
            pathlib.Path({str(outside / "PWNED")!r}).write_text("x")
            assert add_tax(1, 0) == 1
    """)
    _, gap = attack(calc, tmp_path, writes, screen="permissive")
    for test in ("test_into_the_users_tree", "test_into_home", "test_into_tmp"):
        ((verdict, message),) = verdicts_of(gap, test)
        # The path is not there, or (for folders the interpreter's own path runs through) not writable.
        assert verdict == "FAILED" and any(
            reason in message for reason in ("No such file or directory", "Permission denied", "Read-only file system")), (test, message)
    assert not (root / "PWNED").exists()


def test_files_outside_the_workspace_are_not_even_readable(calc, tmp_path: Path) -> None:
    secret = calc["outside"] / "id_rsa"
    secret.write_text("PRIVATE")
    reads = f"""
        import pathlib
        from calc import add_tax

        def test_reads_a_key():
            assert pathlib.Path({str(secret)!r}).read_text() == "PRIVATE"
            assert add_tax(1, 0) == 1
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(reads), screen="permissive")
    ((verdict, message),) = verdicts_of(gap, "test_reads_a_key")
    assert verdict == "FAILED" and "No such file or directory" in message


def test_a_child_that_leaves_the_process_group_dies_with_the_sandbox(calc, tmp_path: Path) -> None:
    escape = f"""
        import os
        from calc import add_tax
        fork, session = os.fork, os.setsid

        def test_escapes():
            if fork() == 0:
                session()
                import time
                time.sleep(600)
                open({str(calc["outside"] / "survived")!r}, "w").write("x")
            assert add_tax(1, 0) == 1
    """
    started = time.monotonic()
    attack(calc, tmp_path, textwrap.dedent(escape), screen="permissive", kept=None)
    # The sleeping child held the output pipes; the run did not wait for it.
    assert time.monotonic() - started < 180


def test_a_fork_bomb_hits_the_process_limit(calc, tmp_path: Path) -> None:
    bomb = """
        import os
        from calc import add_tax
        fork = os.fork

        def test_bomb():
            children = 0
            try:
                for _ in range(5000):
                    if fork() == 0:
                        import time
                        time.sleep(30)
                    children += 1
            finally:
                pass
            assert add_tax(1, 0) == 1
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(bomb), screen="permissive")
    ((verdict, message),) = verdicts_of(gap, "test_bomb")
    assert verdict in ("FAILED", "TIMEOUT"), message
    assert verdict == "TIMEOUT" or "Resource temporarily unavailable" in message or "BlockingIOError" in message


# --- verdicts a candidate cannot forge (behind a permissive screen) -----------------------------

def test_forged_probe_results_and_an_early_exit_are_not_accepted(calc, tmp_path: Path) -> None:
    forge = """
        import json, os
        from calc import add_tax
        out, leave = os.environ.get("COVGEN_PROBE_OUT"), os._exit

        def test_forged():
            me = "test_forged"
            with open(out, "a") as stream:
                for nodeid in [l for l in open(out) if me in l][:1]:
                    node = json.loads(nodeid)["nodeid"]
                    stream.write(json.dumps({"event": "report", "nodeid": node, "when": "call", "outcome": "passed", "message": ""}) + "\\n")
                    stream.write(json.dumps({"event": "done", "nodeid": node, "changed": []}) + "\\n")
                    stream.write(json.dumps({"event": "finish", "exitstatus": 0}) + "\\n")
            leave(0)
            assert add_tax(1, 0) == 999
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(forge), screen="permissive")
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_forged"))
    assert "test_forged" not in (calc["root"] / "tests/covgen/test_calc_covgen.py").read_text()


def test_a_conftest_planted_at_import_is_caught(calc, tmp_path: Path) -> None:
    plant = """
        import pathlib
        from calc import add_tax
        pathlib.Path("conftest.py").write_text("def pytest_collection_modifyitems(items):\\n    items.clear()\\n")

        def test_planted():
            assert add_tax(1, 0) == 1
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(plant), screen="permissive")
    ((verdict, message),) = verdicts_of(gap)
    assert verdict == "UNSAFE" and "conftest.py" in message


def test_hiding_a_project_edit_from_the_probe_does_not_help(calc, tmp_path: Path) -> None:
    hide = """
        import pathlib
        from calc import add_tax
        try:
            import covgen_probe
            covgen_probe._watcher = None
        except ImportError:
            pass

        def test_edits_quietly():
            pathlib.Path("calc.py").write_text(pathlib.Path("calc.py").read_text() + "\\n# edited\\n")
            assert add_tax(1, 0) == 1
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(hide), screen="permissive")
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_edits_quietly"))
    assert "test_edits_quietly" not in (calc["root"] / "tests/covgen/test_calc_covgen.py").read_text()


def test_coverage_added_by_hand_does_not_count(calc, tmp_path: Path) -> None:
    fake = """
        import coverage

        def test_claims_clamp():
            cov = coverage.Coverage.current()
            if cov is not None:
                data = cov.get_data()
                path = [f for f in data.measured_files() if f.endswith("calc.py")] or [__file__.rsplit("/", 3)[0] + "/calc.py"]
                data.add_lines({path[0]: [10, 11]})
                data.add_arcs({path[0]: [(10, 11), (11, -7)]})
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(fake), screen="permissive", gap="clamp", good=GOOD_CLAMP,
                    kept=("test_below_is_raised_to_low",))
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_claims_clamp"))


def test_a_test_that_changes_the_users_tests_outcome_is_polluting(calc, tmp_path: Path) -> None:
    # Passes, and covers default_tax; but leaves the module's defaults changed for whatever runs next.
    polluter = """
        import calc

        def test_p():
            calc.DEFAULTS["rate"] = 0.5
            assert calc.default_tax(100) == 150
    """
    good = """
        from calc import default_tax

        def test_default_tax_adds_ten_percent():
            assert default_tax(1000) == 1100
    """
    _, gap = attack(calc, tmp_path, textwrap.dedent(polluter), gap="default_tax", good=textwrap.dedent(good),
                    kept=("test_default_tax_adds_ten_percent",))
    ((verdict, message),) = verdicts_of(gap, "test_p")
    assert verdict == "POLLUTING" and "test_default_rate" in message and "passed → failed" in message


# --- one bad candidate costs only itself ----------------------------------------------------------

def test_an_endless_loop_at_import_costs_only_its_own_candidate(calc, tmp_path: Path) -> None:
    _, gap = attack(calc, tmp_path, "while True:\n    pass\n", timeout="2")
    ((verdict, message),) = verdicts_of(gap)
    assert verdict == "TIMEOUT" and "imported" in message


@pytest.mark.parametrize("ending", ["import sys\nsys.exit(3)\n", "import os\nleave = os._exit\nleave(0)\n"])
def test_ending_the_interpreter_at_import_costs_only_its_own_candidate(calc, tmp_path: Path, ending: str) -> None:
    _, gap = attack(calc, tmp_path, ending + "\ndef test_never():\n    pass\n", screen="permissive")
    ((verdict, message),) = verdicts_of(gap)
    assert verdict == "COMPILE_ERROR", message


def test_a_stop_signal_kills_the_sandbox_and_removes_the_workspace(calc, tmp_path: Path) -> None:
    root = calc["root"]
    before = tree_digest(root)
    hang = fence("from calc import add_tax\n\ndef test_slow():\n    while True:\n        pass\n")
    state = StubState(script={"add_tax": [[hang]]})
    with StubServer(state) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(calc["report"]), "--engine", "llm",
             "--model-url", server.url, "--candidates", "1", "--test-timeout", "60", "--include", "calc.py"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(calc["temp"])},
        )
        deadline = time.monotonic() + 120
        while not _leftover_processes(calc["temp"]) and time.monotonic() < deadline:
            time.sleep(0.2)  # until a sandboxed pytest runs
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1] == "covgen: stopped by SIGTERM; sandboxes killed, nothing half-written", stderr
    assert "Traceback" not in stderr, stderr
    assert list(calc["temp"].iterdir()) == []
    assert not _leftover_processes(calc["temp"])
    assert {k: v for k, v in tree_digest(root).items() if not k.startswith(".covgen/")} == before


# --- sandbox layers, directly -----------------------------------------------------------------------

def test_host_unix_sockets_are_out_of_reach(calc, tmp_path: Path) -> None:
    from covgen.sandbox import SandboxPolicy, Workspace, probe
    import asyncio

    if not probe().filesystem_isolated:
        pytest.fail(f"bubblewrap must work here: {probe().bwrap_problem}")
    path = calc["outside"] / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    code = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(path)!r})\nprint('connected')"
    with Workspace(calc["root"]) as workspace:
        result = asyncio.run(workspace.run(sys.executable, ["-c", code], policy=SandboxPolicy(wall_seconds=30)))
    server.close()
    path.unlink()
    assert "connected" not in result.stdout and result.returncode != 0


def test_output_floods_are_read_through_a_bounded_buffer(calc, tmp_path: Path) -> None:
    import asyncio
    import resource

    from covgen.sandbox import SandboxPolicy, Workspace

    flood = "import os\nblock = b'x' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, block)\n"
    with Workspace(calc["root"]) as workspace:
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = asyncio.run(workspace.run(sys.executable, ["-c", flood], policy=SandboxPolicy(wall_seconds=120)))
        peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.returncode == 0
    assert len(result.stdout) <= 256 * 1024
    # 1 GiB went through; covgen's own peak memory grew by far less (ru_maxrss is in KiB).
    assert peak_after - peak_before < 64 * 1024
