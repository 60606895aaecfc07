"""``pytest --ai-fill-gaps``: covgen's pytest plugin, run by a real pytest in a subprocess.

Each session is ``pytester.runpytest_subprocess``: the plugin must see a session from its start
(it measures before conftest.py loads), and a fill runs covgen's sandboxed pytest processes,
which an in-process session would share an interpreter with. The plugin is named with ``-p`` as
well as by its entry point: the same name, so an installed covgen registers it once either way.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import threading
import tomllib
from pathlib import Path

import pytest

from covgen.errors import ConfigError
from covgen.pytest_plugin import SANDBOX_MARKER, resolve_settings, run_to_end
from covgen.sandbox import scrubbed_env
from support.vllm_stub import StubServer, StubState

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
PLUGIN = ("-p", "covgen.pytest_plugin")
#: Small budgets: each e2e test here runs at most one real fill.
FILL_TIMEOUT = 600.0
SESSION_TIMEOUT = 240.0

CALC = '''
def add(a: int, b: int) -> int:
    return a + b


def sign(x: int) -> str:
    if x > 0:
        return "positive"
    if x < 0:
        return "negative"
    return "zero"


def clamp(value: int, low: int, high: int) -> int:
    if value < low:
        return low
    if value > high:
        return high
    return value
'''
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
INI = '[tool.pytest.ini_options]\npythonpath = ["."]\n'
DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


def fence(code: str) -> str:
    return "Here are the tests.\n\n```python\n" + textwrap.dedent(code).strip() + "\n```\n"


GOOD_SIGN = fence("""
    from calc import sign

    def test_sign_of_minus_two_is_negative():
        assert sign(-2) == "negative"

    def test_sign_of_zero_is_zero():
        assert sign(0) == "zero"
""")
WRONG_CLAMP = fence("""
    from calc import clamp

    def test_clamp_wrongly():
        assert clamp(5, 0, 3) == 5
""")


def project(pytester: pytest.Pytester, pyproject: str = INI, test_source: str = TEST_CALC) -> Path:
    pytester.makepyfile(calc=CALC)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_calc.py").write_text(test_source)
    (pytester.path / "pyproject.toml").write_text(pyproject)
    return pytester.path


def section(result: pytest.RunResult) -> list[str]:
    """The lines of the session's "covgen" section (empty when there is none)."""
    lines = result.outlines
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ covgen =+", line)]
    if not starts:
        return []
    assert len(starts) == 1, "one covgen section per session"
    body = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("=") or re.match(r"\d+ (passed|failed)", line):
            break
        body.append(line)
    return body


def lines_before_after(body: list[str]) -> tuple[int, int]:
    """Covered lines before and after, from the section's "lines: a/b (x%) → c/d (y%)"."""
    line = next(line for line in body if line.startswith("lines: "))
    match = re.match(r"lines: (\d+)/\d+ .*→ (\d+)/\d+", line)
    assert match, line
    return int(match[1]), int(match[2])


def files_of(root: Path) -> set[str]:
    """The project's files, less caches and pytester's own capture files."""
    skip = ("__pycache__", ".pytest_cache")
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not any(s in p.parts for s in skip)
            and p.relative_to(root).as_posix() not in ("stdout", "stderr")}


def covered_lines(report: Path, name: str) -> int:
    return len(json.loads(report.read_text())["files"][name]["executed_lines"])


# --- end to end: real fills ----------------------------------------------------------------------


@pytest.mark.e2e
def test_fills_the_gaps_of_the_session_it_measured_itself(pytester: pytest.Pytester) -> None:
    root = project(pytester, INI + "\n[tool.covgen]\nexplore_attempts = 40\n")
    before_files = files_of(root)

    result = pytester.runpytest_subprocess(*PLUGIN, "--ai-fill-gaps", "--ai-engine", "explore", "--ai-max-gaps", "1",
                                           timeout=FILL_TIMEOUT)

    assert result.ret == 0, result.stdout.str()
    body = section(result)
    assert body[0] == "coverage: covgen's coverage.py (branch) of this session"
    assert any(line.startswith("engine: model-free exploration") for line in body), body
    assert "gaps targeted: 1; candidate tests: 1" in body
    assert any(re.fullmatch(r"tests accepted: [1-9]\d* in tests/covgen/test_calc_covgen.py", line) for line in body), body
    before, after = lines_before_after(body)
    assert after > before
    # Only the proven tests land in the tree: the session's report went to a temporary directory.
    assert files_of(root) - before_files == {"tests/covgen/test_calc_covgen.py"}

    # A second session passes, new tests included, and measures what the section promised.
    second = pytester.runpytest_subprocess("--cov=calc", "--cov-branch", "--cov-report=json:after.json", timeout=SESSION_TIMEOUT)
    assert second.ret == 0, second.stdout.str()
    assert second.parseoutcomes()["passed"] > 1
    assert section(second) == []
    assert covered_lines(root / "after.json", "calc.py") == after


@pytest.mark.e2e
def test_fills_from_pytest_covs_data_with_the_scripted_model_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each setting is given in two layers; the model server answers only if the right one wins.
    root = project(pytester, INI + textwrap.dedent(f"""\
        ai_engine = "explore"
        ai_model_url = "{DEAD_URL}"
        ai_model = "stub/coder-instruct"

        [tool.covgen]
        model = "no/such-model"
        candidates = 1
        max_attempts = 1
        """))
    state = StubState(script={"sign": [[GOOD_SIGN]], "clamp": [[WRONG_CLAMP]]})
    with StubServer(state) as server:
        monkeypatch.setenv("COVGEN_MODEL_URL", server.url)  # env > ini
        result = pytester.runpytest_subprocess(
            *PLUGIN, "--ai-fill-gaps", "--ai-engine", "llm",  # flag > ini
            "--ai-max-gaps", "2", "--cov=calc", "--cov-branch", "--cov-report=", timeout=FILL_TIMEOUT,
        )

    assert result.ret == 0, result.stdout.str()
    body = section(result)
    assert body[0] == "coverage: pytest-cov"
    assert body[1].startswith(f"engine: vLLM server at {server.url}, model stub/coder-instruct"), body
    assert "tests accepted: 2 in tests/covgen/test_calc_covgen.py" in body
    # ini > [tool.covgen]: every request named the model the ini file gave.
    assert state.requests and {r["model"] for r in state.requests} == {"stub/coder-instruct"}
    # Why the other gap got no test, as `covgen run` says it.
    assert any(line.startswith("no test for calc.py::clamp: FAILED: ") for line in body), body
    written = (root / "tests/covgen/test_calc_covgen.py").read_text()
    assert "def test_sign_of_minus_two_is_negative" in written and "test_clamp_wrongly" not in written
    before, after = lines_before_after(body)
    assert after > before


@pytest.mark.e2e
def test_under_xdist_the_controller_fills_from_pytest_covs_combined_data(pytester: pytest.Pytester) -> None:
    # Turned on from the ini file alone.
    root = project(pytester, INI + textwrap.dedent("""\
        ai_fill_gaps = true
        ai_engine = "explore"
        ai_max_gaps = 1

        [tool.covgen]
        explore_attempts = 40
        """))

    result = pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "--cov=calc", "--cov-branch", "--cov-report=", timeout=FILL_TIMEOUT)

    assert result.ret == 0, result.stdout.str()
    body = section(result)
    assert body[0] == "coverage: pytest-cov"
    before, after = lines_before_after(body)
    # The workers' coverage reached the controller: the test that ran in a worker counts.
    assert before > 0 and after > before
    assert (root / "tests/covgen/test_calc_covgen.py").is_file()


# --- end to end: sessions that fill nothing (no sandbox runs) --------------------------------------


@pytest.mark.e2e
def test_a_dead_model_server_is_one_line_and_fails_only_a_strict_session(pytester: pytest.Pytester,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project(pytester)
    monkeypatch.setenv("COVGEN_WAIT_FOR_MODEL", "0")
    args = (*PLUGIN, "--ai-fill-gaps", "--ai-engine", "llm", "--ai-model-url", DEAD_URL)

    lenient = pytester.runpytest_subprocess(*args, timeout=SESSION_TIMEOUT)
    strict = pytester.runpytest_subprocess(*args, "--ai-fill-gaps-strict", timeout=SESSION_TIMEOUT)

    for result in (lenient, strict):
        body = section(result)
        assert any(line.startswith(f"error: model server at {DEAD_URL} is unreachable") for line in body), body
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
        assert result.parseoutcomes() == {"passed": 1}
    assert lenient.ret == 0
    assert strict.ret == 1
    assert section(strict)[-1] == "--ai-fill-gaps-strict: exit status 1"


@pytest.mark.e2e
def test_a_session_with_failures_is_not_filled_unless_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(pytester, test_source=TEST_CALC + "\n\ndef test_broken():\n    assert add(2, 2) == 5\n")
    monkeypatch.setenv("COVGEN_WAIT_FOR_MODEL", "0")

    skipped = pytester.runpytest_subprocess(*PLUGIN, "--ai-fill-gaps", "--ai-fill-gaps-strict", timeout=SESSION_TIMEOUT)
    # Asked to fill anyway, it gets as far as the engine (a dead server here: no sandbox run needed).
    anyway = pytester.runpytest_subprocess(*PLUGIN, "--ai-fill-gaps", "--ai-fill-gaps-with-failures", "--ai-engine", "llm",
                                           "--ai-model-url", DEAD_URL, timeout=SESSION_TIMEOUT)

    assert skipped.ret == 1  # the failure's, not covgen's
    assert section(skipped)[0].startswith("skipped: 1 test(s) failed;")
    assert not (root / "tests" / "covgen").exists()
    assert anyway.ret == 1
    assert any(line.startswith("error: model server at") for line in section(anyway)), section(anyway)


@pytest.mark.e2e
def test_under_xdist_without_pytest_cov_it_says_what_it_needs(pytester: pytest.Pytester) -> None:
    root = project(pytester)

    result = pytester.runpytest_subprocess(*PLUGIN, "-n", "2", "--ai-fill-gaps", "--ai-fill-gaps-strict", timeout=SESSION_TIMEOUT)

    assert result.parseoutcomes() == {"passed": 1}
    assert result.ret == 1  # strict: the gaps could not be filled
    assert section(result)[0].startswith("skipped: the tests ran in pytest-xdist workers")
    assert "--cov" in section(result)[0]
    assert not (root / "tests" / "covgen").exists()


HEAVY = ("covgen.api", "covgen.config", "covgen.pipeline", "covgen.output", "pydantic", "libcst", "httpx", "rich", "lxml",
         "click", "coverage")
RECORD_MODULES = f"""
import json
import sys


def pytest_unconfigure(config):
    heavy = sorted(name for name in sys.modules if name.startswith({HEAVY!r}))
    loaded = "covgen.pytest_plugin" in sys.modules
    (config.rootpath / "modules.json").write_text(json.dumps({{"heavy": heavy, "plugin": loaded}}))
"""


@pytest.mark.e2e
def test_without_the_flag_it_imports_nothing_heavy_and_changes_nothing(pytester: pytest.Pytester,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(pytester)
    pytester.makeconftest(RECORD_MODULES)

    plain = pytester.runpytest_subprocess(*PLUGIN, timeout=SESSION_TIMEOUT)
    modules = json.loads((root / "modules.json").read_text())
    # covgen's own sandboxed runs of a project whose ini turns the plugin on must not fill again.
    monkeypatch.setenv("COVGEN_SANDBOX", "1")
    sandboxed = pytester.runpytest_subprocess(*PLUGIN, "--ai-fill-gaps", timeout=SESSION_TIMEOUT)

    assert modules == {"heavy": [], "plugin": True}
    for result in (plain, sandboxed):
        assert result.ret == 0
        assert result.parseoutcomes() == {"passed": 1}
        assert section(result) == []
    assert not (root / "tests" / "covgen").exists()


# --- in-process: settings and the event loop --------------------------------------------------------


def test_settings_precedence_is_flag_env_ini_tool_covgen_default(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(textwrap.dedent("""\
        [tool.pytest.ini_options]
        ai_engine = "replay"
        ai_model = "ini-model"
        ai_max_gaps = "7"
        ai_test_dir = "ini_tests"

        [tool.covgen]
        engine = "hybrid"
        model = "toml-model"
        max_gaps = 9
        test_dir = "toml_tests"
        budget_seconds = 99
        """))
    config = pytester.parseconfig(*PLUGIN, "--ai-engine", "explore")
    env = {"COVGEN_ENGINE": "llm", "COVGEN_MODEL": "env-model", "COVGEN_MAX_GAPS": "5"}

    settings = resolve_settings(config, env)

    assert settings.engine == "explore"  # flag > env
    assert (settings.model, settings.max_gaps) == ("env-model", 5)  # env > ini
    assert settings.test_dir == "ini_tests"  # ini > [tool.covgen]
    assert settings.budget_seconds == 99  # [tool.covgen] > default
    assert settings.model_url is None  # default
    # pytest's own test modules are never searched for gaps.
    assert {"test_*.py", "*/test_*.py", "*/conftest.py"} <= set(settings.exclude)


def test_a_bad_ini_value_names_the_file_and_key(pytester: pytest.Pytester) -> None:
    ini = pytester.makepyprojecttoml('[tool.pytest.ini_options]\nai_max_gaps = "0"\n')
    config = pytester.parseconfig(*PLUGIN)

    with pytest.raises(ConfigError, match=re.escape(f"{ini}: ai_max_gaps: Input should be greater than or equal to 1")):
        resolve_settings(config, {})


def test_run_to_end_runs_covgens_loop_beside_one_already_running() -> None:
    async def thread_name() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    async def session_inside_a_loop() -> str:
        return run_to_end(thread_name)  # asyncio.run here would refuse: a loop is running

    assert run_to_end(thread_name) == threading.current_thread().name
    assert asyncio.run(session_inside_a_loop()).startswith("covgen")


def test_installing_covgen_registers_the_plugin_under_its_module_name() -> None:
    with (REPO / "pyproject.toml").open("rb") as stream:
        entry_points = tomllib.load(stream)["project"]["entry-points"]["pytest11"]
    assert entry_points == {"covgen.pytest_plugin": "covgen.pytest_plugin"}


def test_every_sandboxed_run_carries_the_marker_the_plugin_stands_down_for(tmp_path: Path) -> None:
    # The end-to-end no-flag test shows the plugin doing nothing under the marker; this is the other half.
    assert scrubbed_env(tmp_path)[SANDBOX_MARKER] == "1"
