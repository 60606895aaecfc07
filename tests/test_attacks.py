"""Hostile candidates, end to end through the CLI: every attack is refused or contained.

A scripted model server answers gaps with an attack beside a good test, in the same wave.
Attacks that can share a run share one: each gets a gap (a function of ``calc``) of its own, so
one covgen run carries many attacks and every test still asserts its attack's verdict on its own
gap. Every test asserts that its gap's good test is still accepted, that the user's tree is
byte-identical apart from the written test file, that nothing outside the sandbox was touched,
and that no process and no workspace is left behind. Attacks that need a run of their own still
get one: the fork bomb (the process limit counts the whole sandbox), the stop signal, and two
whose fallout reaches other gaps' tests (a planted conftest.py, an edit caught by the clean run).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import module_project
from support.vllm_stub import StubServer, StubState
from test_run_llm import tree_digest

pytestmark = pytest.mark.e2e

# A small billing module: one function per attack that shares a run, so each verdict is read
# off a gap no other attack of that run touches.
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


    def discount(cents, percent):
        if not 0 <= percent <= 100:
            raise ValueError("percent out of range")
        return cents - cents * percent // 100


    def split(cents, parts):
        if parts <= 0:
            raise ValueError("parts must be positive")
        share, rest = divmod(cents, parts)
        return [share + 1] * rest + [share] * (parts - rest)


    def format_cents(cents):
        sign = "-" if cents < 0 else ""
        whole, rest = divmod(abs(cents), 100)
        return f"{sign}{whole}.{rest:02d}"


    def round_to(cents, step):
        if step <= 0:
            raise ValueError("step must be positive")
        return (cents + step // 2) // step * step


    def total(items):
        return sum(price * quantity for price, quantity in items)


    def average(values):
        if not values:
            raise ValueError("no values")
        return sum(values) // len(values)


    def percent_of(part, whole):
        if whole == 0:
            return 0.0
        return 100 * part / whole
''').lstrip()

USER_TESTS = ("import calc\nfrom calc import clamp\n\n\ndef test_inside():\n    assert clamp(5, 0, 9) == 5\n\n\n"
              "def test_default_rate():\n    assert calc.DEFAULTS[\"rate\"] == 0.1\n")


@dataclass(frozen=True)
class Good:
    """A test that covers its gap: accepted beside the attack of the same wave."""

    source: str
    tests: tuple[str, ...]


GOODS = {
    "add_tax": Good('''
from calc import add_tax

def test_ten_percent():
    assert add_tax(1000, 0.1) == 1100

def test_negative_rate_is_refused():
    import pytest
    with pytest.raises(ValueError, match="negative rate"):
        add_tax(1, -1)
''', ("test_negative_rate_is_refused", "test_ten_percent")),
    "clamp": Good("from calc import clamp\n\ndef test_below_is_raised_to_low():\n    assert clamp(-5, 0, 9) == 0\n",
                  ("test_below_is_raised_to_low",)),
    "default_tax": Good("from calc import default_tax\n\ndef test_default_tax_adds_ten_percent():\n    assert default_tax(1000) == 1100\n",
                        ("test_default_tax_adds_ten_percent",)),
    "discount": Good("from calc import discount\n\ndef test_a_quarter_off():\n    assert discount(200, 25) == 150\n",
                     ("test_a_quarter_off",)),
    "split": Good("from calc import split\n\ndef test_the_remainder_goes_first():\n    assert split(10, 3) == [4, 3, 3]\n",
                  ("test_the_remainder_goes_first",)),
    "format_cents": Good("from calc import format_cents\n\ndef test_negative_amounts():\n    assert format_cents(-1234) == \"-12.34\"\n",
                         ("test_negative_amounts",)),
    "round_to": Good("from calc import round_to\n\ndef test_rounds_down_below_half():\n    assert round_to(149, 100) == 100\n",
                     ("test_rounds_down_below_half",)),
    "total": Good("from calc import total\n\ndef test_total_of_lines():\n    assert total([(250, 2), (100, 1)]) == 600\n",
                  ("test_total_of_lines",)),
    "average": Good("from calc import average\n\ndef test_average_rounds_down():\n    assert average([1, 2, 4]) == 2\n",
                    ("test_average_rounds_down",)),
    "percent_of": Good("from calc import percent_of\n\ndef test_a_quarter():\n    assert percent_of(1, 4) == 25.0\n",
                       ("test_a_quarter",)),
}


def fence(code: str) -> str:
    return "```python\n" + textwrap.dedent(code).strip() + "\n```\n"


def line_of(text: str) -> int:
    """The 1-based line of `text` in CALC (the forged coverage below names real lines)."""
    return CALC.splitlines().index(text) + 1


def make_calc(base: Path) -> dict[str, Path]:
    """A project whose own test reaches `clamp` in part and nothing else of `calc`; its report."""
    project = module_project(base, "calc", CALC, USER_TESTS)
    outside = base / "outside"
    outside.mkdir()
    temp = base / "covgen-tmp"
    temp.mkdir()
    return {**project, "outside": outside, "temp": temp, "home": Path.home(), "base": base}


@pytest.fixture
def calc(tmp_path: Path) -> dict[str, Path]:
    return make_calc(tmp_path)


@dataclass(frozen=True)
class Run:
    """One covgen run against `calc` and what it left behind, recorded as soon as it ended."""

    calc: dict[str, Path]
    result: subprocess.CompletedProcess[str]
    seconds: float
    summary: dict[str, Any]
    tree_before: dict[str, str]
    tree_after: dict[str, str]
    outside_before: dict[Path, bytes]
    outside_after: dict[Path, bytes]
    temp_left: list[Path]
    leftovers: list[str]

    def gap(self, name: str, *, good_kept: bool = True) -> dict[str, Any]:
        """`name`'s gap in the summary, after asserting the run held and its good test was kept.

        `good_kept` False where an attack passing as a test may legitimately take the good test's
        place (it did nothing a permissive screen forbids).
        """
        assert self.result.returncode == 0, self.result.stderr
        summary = self.summary
        by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}
        kept = GOODS[name].tests if good_kept else ()
        # The good test of the same wave is kept, and written.
        if good_kept:
            assert sorted(by_gap[name]["accepted_tests"]) == sorted(kept), (by_gap[name]["rejected"], summary["warnings"])
        assert summary["files_written"] == ["tests/covgen/test_calc_covgen.py"]
        written = (self.calc["root"] / "tests/covgen/test_calc_covgen.py").read_text()
        assert all(f"def {test}" in written for test in kept)
        # The user's tree is byte-identical apart from the written file and covgen's log.
        before, after = self.tree_before, self.tree_after
        assert {k: v for k, v in after.items() if k in before} == before
        assert set(after) - set(before) == {"tests/covgen/test_calc_covgen.py", ".covgen/requests.jsonl"}
        # Nothing outside the sandbox was touched, and nothing is left behind.
        assert self.outside_after == self.outside_before
        assert not (self.calc["home"] / "covgen-pwned").exists()
        assert self.temp_left == []
        assert not self.leftovers
        return by_gap[name]


def run_attacks(calc: dict[str, Path], attacks: dict[str, list[str]], *, screen: str, timeout: str = "5") -> Run:
    """Run covgen once; each gap in `attacks` is answered with its attacks and its good test as one wave."""
    sizes = {len(answers) for answers in attacks.values()}
    # `--candidates` is one number for the run, and the stub repeats a shorter list of answers
    # (covgen then merges the copies): every gap must bring as many answers as the others.
    assert len(sizes) == 1, sizes
    root = calc["root"]
    before = tree_digest(root)
    outside_before = {p: p.read_bytes() for p in calc["outside"].iterdir()}
    state = StubState(script={gap: [[*map(fence, answers), fence(GOODS[gap].source)]] for gap, answers in attacks.items()})
    summary_path = calc["base"] / "summary.json"
    started = time.monotonic()
    with StubServer(state) as server:
        result = subprocess.run(
            [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(calc["report"]), "--engine", "llm",
             "--model-url", server.url, "--candidates", str(sizes.pop() + 1), "--max-attempts", "1", "--test-timeout", timeout,
             "--screen", screen, "--include", "calc.py", "--output", f"json:{summary_path}"],
            capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(calc["temp"])},
        )
    seconds = time.monotonic() - started
    return Run(
        calc, result, seconds, json.loads(summary_path.read_text()) if summary_path.exists() else {}, before, tree_digest(root),
        outside_before, {p: p.read_bytes() for p in calc["outside"].iterdir()}, list(calc["temp"].iterdir()),
        _leftover_processes(calc["temp"]),
    )


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


def verdicts_of(gap: dict[str, Any], test: str | None = None) -> list[tuple[str, str]]:
    """(verdict, message) of every rejected test (or module, test "") not among the good ones."""
    return [(r["verdict"], r["message"]) for r in gap["rejected"] if test is None or r["test"] == test]


# --- the allowlist screen (one strict run) ------------------------------------------------------

#: Each bypass gets a gap of its own, so a failure names the bypass.
SCREEN_BYPASSES = {
    "discount": "import os\nrun = os.system\n\ndef test_x():\n    run('true')\n",
    "split": "import os\n\ndef test_x():\n    vars(os)['system']('true')\n",
    "format_cents": "import sys\n\ndef test_x():\n    sys.modules['os'].system('true')\n",
    "round_to": "def test_x():\n    __builtins__['__import__']('os').system('true')\n",
    "average": "def test_x():\n    [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['true'])\n",
    "add_tax": "from calc import add_tax\n\ndef test_x(request):\n    request.config.pluginmanager.register(object())\n    assert add_tax(1, 0) == 1\n",
}

# Passes, and covers default_tax; but leaves the module's defaults changed for whatever runs next.
POLLUTER = """
    import calc

    def test_p():
        calc.DEFAULTS["rate"] = 0.5
        assert calc.default_tax(100) == 150
"""

ENDLESS_IMPORT = "while True:\n    pass\n"


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    calc = make_calc(tmp_path_factory.mktemp("strict"))
    attacks = {gap: [code] for gap, code in SCREEN_BYPASSES.items()}
    attacks["default_tax"] = [textwrap.dedent(POLLUTER)]
    attacks["total"] = [ENDLESS_IMPORT]
    return run_attacks(calc, attacks, screen="strict")


@pytest.mark.parametrize("gap", list(SCREEN_BYPASSES))
def test_the_screen_refuses_every_known_bypass_and_says_which_rule(strict_run: Run, gap: str) -> None:
    refused = verdicts_of(strict_run.gap(gap))
    assert len(refused) == 1, refused
    ((verdict, message),) = refused
    assert verdict == "UNSAFE" and message, (SCREEN_BYPASSES[gap], refused)


def test_a_test_that_changes_the_users_tests_outcome_is_polluting(strict_run: Run) -> None:
    gap = strict_run.gap("default_tax")
    ((verdict, message),) = verdicts_of(gap, "test_p")
    assert verdict == "POLLUTING" and "test_default_rate" in message and "passed → failed" in message


def test_an_endless_loop_at_import_costs_only_its_own_candidate(strict_run: Run) -> None:
    ((verdict, message),) = verdicts_of(strict_run.gap("total"))
    assert verdict == "TIMEOUT" and "imported" in message


# --- behind a permissive screen (one run): the sandbox, verdicts a candidate cannot forge,
# --- and one bad candidate costs only itself ----------------------------------------------------

def _writes(calc: dict[str, Path]) -> str:
    root, outside, home = calc["root"], calc["outside"], calc["home"]
    return textwrap.dedent(f"""
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


def _reads(calc: dict[str, Path]) -> str:
    return textwrap.dedent(f"""
        import pathlib
        from calc import discount

        def test_reads_a_key():
            assert pathlib.Path({str(calc["outside"] / "id_rsa")!r}).read_text() == "PRIVATE"
            assert discount(100, 0) == 100
    """)


def _escape(calc: dict[str, Path]) -> str:
    return textwrap.dedent(f"""
        import os
        from calc import split
        fork, session = os.fork, os.setsid

        def test_escapes():
            if fork() == 0:
                session()
                import time
                time.sleep(600)
                open({str(calc["outside"] / "survived")!r}, "w").write("x")
            assert split(3, 3) == [1, 1, 1]
    """)


FORGE = """
    import json, os
    from calc import format_cents
    out, leave = os.environ.get("COVGEN_PROBE_OUT"), os._exit

    def test_forged():
        me = "test_forged"
        # Its own "start" event names its node id (other lines may list every test of the wave).
        starts = [json.loads(l) for l in open(out) if '"start"' in l and me in l]
        with open(out, "a") as stream:
            for node in [event["nodeid"] for event in starts if event["event"] == "start"][:1]:
                stream.write(json.dumps({"event": "report", "nodeid": node, "when": "call", "outcome": "passed", "message": ""}) + "\\n")
                stream.write(json.dumps({"event": "done", "nodeid": node, "changed": []}) + "\\n")
                stream.write(json.dumps({"event": "finish", "exitstatus": 0}) + "\\n")
        leave(0)
        assert format_cents(1) == "9.99"
"""

PLANT = """
    import pathlib
    from calc import round_to
    pathlib.Path("conftest.py").write_text("def pytest_collection_modifyitems(items):\\n    items.clear()\\n")

    def test_planted():
        assert round_to(149, 100) == 100
"""

HIDE = """
    import pathlib
    from calc import total
    try:
        import covgen_probe
        covgen_probe._watcher = None
    except ImportError:
        pass

    def test_edits_quietly():
        pathlib.Path("calc.py").write_text(pathlib.Path("calc.py").read_text() + "\\n# edited\\n")
        assert total([(1, 1)]) == 1
"""

# Claims clamp's `return high` (its own test never reaches it) by writing it into the live data.
# NB: under branch measurement add_lines raises DataError before add_arcs runs, so today this
# candidate FAILs by itself; the same claim made with add_arcs alone is ACCEPTED (a covgen hole,
# reported to the lead; strengthen this attack when it is fixed).
FAKE_COVERAGE = f"""
    import coverage

    def test_claims_clamp():
        cov = coverage.Coverage.current()
        if cov is not None:
            data = cov.get_data()
            path = [f for f in data.measured_files() if f.endswith("calc.py")] or [__file__.rsplit("/", 3)[0] + "/calc.py"]
            data.add_lines({{path[0]: [{line_of("    if value > high:")}, {line_of("        return high")}]}})
            data.add_arcs({{path[0]: [({line_of("    if value > high:")}, {line_of("        return high")}), ({line_of("        return high")}, -{line_of("def clamp(value, low, high):")})]}})
"""

ENDINGS = {"average": "import sys\nsys.exit(3)\n", "percent_of": "import os\nleave = os._exit\nleave(0)\n"}

PERMISSIVE: dict[str, Callable[[dict[str, Path]], str]] = {
    "add_tax": _writes,
    "discount": _reads,
    "split": _escape,
    "format_cents": lambda calc: textwrap.dedent(FORGE),
    "clamp": lambda calc: textwrap.dedent(FAKE_COVERAGE),
    **{gap: (lambda calc, ending=ending: ending + "\ndef test_never():\n    pass\n") for gap, ending in ENDINGS.items()},
}


@pytest.fixture(scope="module")
def permissive_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    calc = make_calc(tmp_path_factory.mktemp("permissive"))
    (calc["outside"] / "id_rsa").write_text("PRIVATE")
    return run_attacks(calc, {gap: [make(calc)] for gap, make in PERMISSIVE.items()}, screen="permissive")


def test_writes_outside_the_workspace_are_impossible(permissive_run: Run) -> None:
    gap = permissive_run.gap("add_tax")
    for test in ("test_into_the_users_tree", "test_into_home", "test_into_tmp"):
        ((verdict, message),) = verdicts_of(gap, test)
        # The path is not there, or (for folders the interpreter's own path runs through) not writable.
        assert verdict == "FAILED" and any(
            reason in message for reason in ("No such file or directory", "Permission denied", "Read-only file system")), (test, message)
    assert not (permissive_run.calc["root"] / "PWNED").exists()


def test_files_outside_the_workspace_are_not_even_readable(permissive_run: Run) -> None:
    ((verdict, message),) = verdicts_of(permissive_run.gap("discount"), "test_reads_a_key")
    assert verdict == "FAILED" and "No such file or directory" in message


def test_a_child_that_leaves_the_process_group_dies_with_the_sandbox(permissive_run: Run) -> None:
    permissive_run.gap("split", good_kept=False)
    # The sleeping child held the output pipes for 600 s; the run (every attack here) did not wait for it.
    assert permissive_run.seconds < 180


def test_forged_probe_results_and_an_early_exit_are_not_accepted(permissive_run: Run) -> None:
    gap = permissive_run.gap("format_cents")
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_forged"))
    assert "test_forged" not in (permissive_run.calc["root"] / "tests/covgen/test_calc_covgen.py").read_text()


def test_coverage_added_by_hand_does_not_count(permissive_run: Run) -> None:
    gap = permissive_run.gap("clamp")
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_claims_clamp"))


@pytest.mark.parametrize("gap", list(ENDINGS))
def test_ending_the_interpreter_at_import_costs_only_its_own_candidate(permissive_run: Run, gap: str) -> None:
    ((verdict, message),) = verdicts_of(permissive_run.gap(gap))
    assert verdict == "COMPILE_ERROR", message


# --- runs of their own --------------------------------------------------------------------------

def test_a_conftest_planted_at_import_is_caught(calc: dict[str, Path]) -> None:
    # Alone: the planted conftest.py stays in the shared workspace after its import is caught,
    # and its hook empties every later collection, so in a wave beside other gaps' candidates
    # those would all be rejected ("defines no test that pytest collects"); a covgen limit.
    gap = run_attacks(calc, {"round_to": [textwrap.dedent(PLANT)]}, screen="permissive").gap("round_to")
    ((verdict, message),) = verdicts_of(gap)
    assert verdict == "UNSAFE" and "conftest.py" in message


def test_hiding_a_project_edit_from_the_probe_does_not_help(calc: dict[str, Path]) -> None:
    # Alone: the edit is caught by the clean run of everything accepted, and that run's failure
    # is not pinned on this one test, so other gaps' tests of the same run would be lost with it.
    run = run_attacks(calc, {"total": [textwrap.dedent(HIDE)]}, screen="permissive")
    gap = run.gap("total")
    assert all(verdict != "ACCEPTED" for verdict, _ in verdicts_of(gap, "test_edits_quietly"))
    assert "test_edits_quietly" not in (calc["root"] / "tests/covgen/test_calc_covgen.py").read_text()


def test_a_fork_bomb_hits_the_process_limit(calc: dict[str, Path]) -> None:
    # Alone: the process limit it runs into counts every process of the sandbox, other attacks' too.
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
    gap = run_attacks(calc, {"add_tax": [textwrap.dedent(bomb)]}, screen="permissive").gap("add_tax")
    ((verdict, message),) = verdicts_of(gap, "test_bomb")
    assert verdict in ("FAILED", "TIMEOUT"), message
    assert verdict == "TIMEOUT" or "Resource temporarily unavailable" in message or "BlockingIOError" in message


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
