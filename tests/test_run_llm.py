"""`covgen run --engine llm` end to end: real CLI, real sockets, real pytest and coverage.py.

The model is a scripted local server (tests/support/vllm_stub.py); everything else is real.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, module_project
from support.vllm_stub import StubServer, StubState

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e


def fence(code: str) -> str:
    return "Here are the tests.\n\n```python\n" + textwrap.dedent(code).strip() + "\n```\n"


GOOD_QUARTER = fence("""
    from datetime import date
    from inventory.dates import quarter

    def test_quarter_of_may_is_q2():
        assert quarter(date(2024, 5, 1)) == "2024-Q2"
""")
BROKEN = "```python\ndef test_broken(:\n    pass\n```"
GOOD_WEEKEND = fence("""
    from datetime import date
    from inventory.dates import is_weekend

    def test_saturday_is_weekend():
        assert is_weekend(date(2024, 6, 1))
""")
WRONG_DURATION = fence("""
    from datetime import timedelta
    from inventory.dates import parse_duration

    def test_three_days_wrongly():
        assert parse_duration("P3D") == timedelta(days=4)
""")
GOOD_DURATION = fence("""
    from datetime import timedelta
    import pytest
    from inventory.dates import parse_duration

    def test_weeks_and_days():
        assert parse_duration("P1W2D") == timedelta(days=9)

    def test_empty_duration_is_rejected():
        with pytest.raises(ValueError, match="unsupported"):
            parse_duration("P")
""")
HANG = fence("""
    def test_forever():
        while True:
            pass
""")
# Passes only after its neighbour has run: the reruns (reverse order, then alone) catch it.
FLAKY = fence("""
    from datetime import date
    from inventory.dates import add_business_days

    seen = []

    def test_remember_a_call():
        seen.append(1)

    def test_friday_plus_one_after_the_first():
        assert seen
        assert add_business_days(date(2024, 6, 7), 1) == date(2024, 6, 10)
""")
GOOD_ADD = fence("""
    from datetime import date
    from inventory.dates import add_business_days

    def test_friday_plus_one_is_monday():
        assert add_business_days(date(2024, 6, 7), 1) == date(2024, 6, 10)

    def test_monday_minus_one_is_friday():
        assert add_business_days(date(2024, 6, 10), -1) == date(2024, 6, 7)
""")
NO_GAIN = fence("""
    from inventory.parsing import parse_sku

    def test_sku_again():
        assert str(parse_sku("abc-0042")) == "ABC-0042"
""")
EDITS_PROJECT = fence("""
    import pathlib

    def test_scribbles_on_the_project():
        pathlib.Path("inventory/items.py").write_text("# gone\\n")
""")
GOOD_REMOVE = fence("""
    import pytest
    from inventory.items import Item, Stock

    def test_removing_the_last_items_forgets_them():
        stock = Stock()
        stock.add(Item("saw", 1000), 2)
        assert stock.remove("saw", 2) == 0
        assert stock.total_value() == 0

    def test_removing_an_unknown_item_raises():
        with pytest.raises(KeyError):
            Stock().remove("hammer")

    def test_removing_more_than_stocked_raises():
        stock = Stock()
        stock.add(Item("saw", 1000))
        with pytest.raises(ValueError, match="only 1 of saw"):
            stock.remove("saw", 5)
""")

# Passes in covgen's candidate folder only: it survives the funnel, then fails in the written file.
PLACE_BOUND_LABEL = fence("""
    from inventory.items import Item

    def test_label():
        assert "covgen_candidates" in __file__
        assert Item("saw", 1250).label() == "saw (tools) 12.50"
""")
GOOD_LABEL = fence("""
    from inventory.items import Category, Item

    def test_label_shows_category_and_price():
        assert Item("milk", 99, Category.FOOD).label() == "milk (food) 0.99"
""")


# Refused by the allowlist screen before it runs; the repair turn tells the model the rule.
READS_ENVIRONMENT = fence("""
    import os
    from inventory.items import Digital

    def test_download_minutes():
        assert Digital("film", 999, int(os.environ.get("SIZE", "1000"))).download_minutes(8) == 16.67
""")
GOOD_DOWNLOAD = fence("""
    import pytest
    from inventory.items import Digital

    def test_a_gigabyte_at_eight_mbit_takes_17_minutes():
        assert Digital("film", 999, 1000).download_minutes(8) == pytest.approx(16.67)

    def test_no_bandwidth_is_rejected():
        with pytest.raises(ValueError, match="bandwidth"):
            Digital("film", 999, 1000).download_minutes(0)
""")


def shell_out(marker: Path) -> str:
    return fence(f"""
        import subprocess

        def test_shell():
            subprocess.run(["touch", "{marker}"])
    """)


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def project(tmp_path: Path, producers) -> dict[str, Path]:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("reports", "__pycache__"))
    reports = producers.python_reports(root, tmp_path / "reports")
    return {"root": root, "report": reports["coveragepy"]}


def run_covgen(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600,
    )


def test_llm_run_keeps_exactly_the_proven_tests(project, tmp_path: Path) -> None:
    root = project["root"]
    marker = tmp_path / "shell-out-ran"
    state = StubState(script={
        "quarter": [[GOOD_QUARTER]],
        "is_weekend": [[BROKEN], [GOOD_WEEKEND]],
        "parse_duration": [[WRONG_DURATION, GOOD_DURATION]],
        "add_business_days": [[HANG, FLAKY], [GOOD_ADD]],
        "parse_bool": [[shell_out(marker), NO_GAIN]],
        "Stock.remove": [[EDITS_PROJECT, GOOD_REMOVE]],
        "Item.label": [[PLACE_BOUND_LABEL, GOOD_LABEL]],
        "Item.is_shippable": [["<think>A draft:\n```python\ndef test_draft():\n    assert False\n```\nHmm, that is not"]],
        "Digital.download_minutes": [[READS_ENVIRONMENT], [GOOD_DOWNLOAD]],
    })
    before = tree_digest(root)
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = run_covgen(
            root, "--report", str(project["report"]), "--engine", "llm", "--model-url", server.url,
            "--candidates", "2", "--test-timeout", "3", "--output", f"json:{summary_path}",
            "--include", "inventory/dates.py", "--include", "inventory/parsing.py", "--include", "inventory/items.py",
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}

    # Exactly the proven tests survive; each failure got its own verdict.
    assert by_gap["quarter"]["accepted_tests"] == ["test_quarter_of_may_is_q2"]
    assert by_gap["quarter"]["verdicts"] == {"ACCEPTED": 1, "REDUNDANT": 1}
    assert by_gap["is_weekend"]["accepted_tests"] == ["test_saturday_is_weekend"]
    assert by_gap["is_weekend"]["verdicts"]["SYNTAX_ERROR"] == 2
    assert sorted(by_gap["parse_duration"]["accepted_tests"]) == ["test_empty_duration_is_rejected", "test_weeks_and_days"]
    assert by_gap["parse_duration"]["verdicts"]["FAILED"] == 1
    # Going backwards runs the same lines and arcs (a conditional expression is no branch arc).
    assert by_gap["add_business_days"]["accepted_tests"] == ["test_friday_plus_one_is_monday"]
    assert by_gap["add_business_days"]["verdicts"]["REDUNDANT"] == 3
    assert by_gap["add_business_days"]["verdicts"]["TIMEOUT"] == 1
    assert by_gap["add_business_days"]["verdicts"]["FLAKY"] == 1
    assert by_gap["parse_bool"]["accepted_tests"] == []
    assert by_gap["parse_bool"]["verdicts"] == {"UNSAFE": 2, "NO_GAIN": 2}
    # Every gap without a test says why: here, the closest a candidate came.
    assert by_gap["parse_bool"]["outcome"] == "NO_GAIN" and "reaches none of the uncovered lines" in by_gap["parse_bool"]["reason"]
    assert all(g["outcome"] != "ACCEPTED" and g["reason"] for g in summary["gaps"] if not g["accepted_tests"])
    assert sorted(by_gap["Stock.remove"]["accepted_tests"]) == [
        "test_removing_an_unknown_item_raises", "test_removing_more_than_stocked_raises", "test_removing_the_last_items_forgets_them",
    ]
    assert by_gap["Stock.remove"]["verdicts"]["UNSAFE"] == 1
    # Selection first kept the shorter test; it failed in the written file, so the equivalent
    # one it had made REDUNDANT took its place.
    assert by_gap["Item.label"]["accepted_tests"] == ["test_label_shows_category_and_price"]
    assert by_gap["Item.label"]["verdicts"] == {"ACCEPTED": 1, "FLAKY": 1}
    # Every test not kept is listed with why, for the user reading the summary.
    label_rejected = by_gap["Item.label"]["rejected"]
    assert [(r["test"], r["verdict"]) for r in label_rejected] == [("test_label", "FLAKY")]
    assert "in a clean run of the written file" in label_rejected[0]["message"]
    (wrong,) = by_gap["parse_duration"]["rejected"]
    assert re.fullmatch(
        r"AssertionError: assert datetime\.timedelta\(days=3\) == datetime\.timedelta\(days=4\) "
        r"\(\.covgen_candidates/test_covgen_c\d+\.py:5: AssertionError\)", wrong["message"],
    ), wrong
    # A reasoning model cut off while thinking answered nothing; its draft never ran.
    assert {re.sub(r"^identical to candidate c\d+: ", "", r["message"]) for r in by_gap["Item.is_shippable"]["rejected"]} == {
        "the answer holds no Python code: it is empty, or only the model's thinking"
    }
    # An unscripted gap gets prose back: the verdict says there was no code, not "invalid syntax".
    assert {re.sub(r"^identical to candidate c\d+: ", "", r["message"]) for r in by_gap["delivery_window"]["rejected"]} == {
        "the answer holds no Python code: no ```python block, and its text is not Python"
    }
    (copy,) = by_gap["quarter"]["rejected"]
    assert copy["verdict"] == "REDUNDANT" and re.fullmatch(r"identical to candidate c\d+", copy["message"])
    # An answer the screen refused is repaired like any other: the model is told the rule.
    assert sorted(by_gap["Digital.download_minutes"]["accepted_tests"]) == [
        "test_a_gigabyte_at_eight_mbit_takes_17_minutes", "test_no_bandwidth_is_rejected",
    ]
    assert by_gap["Digital.download_minutes"]["verdicts"]["UNSAFE"] == 2
    (repair,) = [r for r in state.requests if "Code under test: Digital.download_minutes" in r["messages"][1]["content"]
                 and len(r["messages"]) > 2]
    assert ("the module: UNSAFE: never run: line 1: imports os (not on covgen's import allowlist; "
            "see README 'What a generated test may do')") in repair["messages"][-1]["content"]
    assert summary["accepted_tests"] == 11

    # The shell-out was never executed; the file-editing test ran in the copy only.
    assert not marker.exists()
    after = tree_digest(root)
    written = {"tests/covgen/test_inventory_dates_covgen.py", "tests/covgen/test_inventory_items_covgen.py"}
    assert set(summary["files_written"]) == written
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == written | {".covgen/requests.jsonl"}

    # The gain is real: a fresh coverage run of the project with the new files covers the lines.
    check = subprocess.run(
        [sys.executable, "-m", "coverage", "run", "--branch", "--data-file", str(tmp_path / ".cov"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    report = subprocess.run(
        [sys.executable, "-m", "coverage", "json", "--data-file", str(tmp_path / ".cov"), "-o", str(tmp_path / "after.json")],
        cwd=root, capture_output=True, text=True,
    )
    assert report.returncode == 0, report.stderr
    after_cov = json.loads((tmp_path / "after.json").read_text())["files"]
    dates_missing = set(after_cov["inventory/dates.py"]["missing_lines"])
    assert not {12, 17, 18, 19, 20, 21, 22, 23, 24, 29, 30, 31, 32, 33, 34, 38} & dates_missing
    lines = summary["coverage"]["lines"]
    covered_after = sum(len(f["executed_lines"]) for f in after_cov.values())
    assert lines["after"]["covered"] == covered_after
    assert lines["after"]["covered"] > lines["before"]["covered"]

    # The written files open with covgen's header, name their targets, and merge imports once.
    dates_tests = (root / "tests/covgen/test_inventory_dates_covgen.py").read_text()
    assert dates_tests.startswith("# covgen: generated tests for inventory/dates.py")
    assert "#   quarter: +1 lines" in dates_tests
    assert dates_tests.count("from datetime import ") == 1 and "from datetime import date, timedelta\n" in dates_tests

    # Every request asked for n candidates and never sent the removed guided_* fields.
    assert all(r["n"] == 2 and not any(k.startswith("guided_") for k in r) for r in state.requests)


VAULT = """\
import hashlib


def unlock(password: str) -> str:
    if hashlib.sha256(password.encode()).hexdigest() == "41ef4bb0b23661e66301aac36066912dac037827b4ae63a7b1165a5aa93ed4eb":
        return "unlocked"
    return "locked"


def double(x: int) -> int:
    if x > 10:
        return x * 2
    return x
"""
GOOD_UNLOCK = fence("""
    from vault import unlock

    def test_the_right_password_unlocks():
        assert unlock("open sesame") == "unlocked"
""")


@pytest.fixture
def vault(tmp_path: Path) -> dict[str, Path]:
    """A module exploration covers all but one line of: the one behind a password's hash."""
    return module_project(tmp_path, "vault", VAULT, "import vault\n\n\ndef test_imports():\n    assert vault\n")


def test_hybrid_asks_the_model_only_for_what_exploration_left(vault, tmp_path: Path) -> None:
    root = vault["root"]
    state = StubState(script={"unlock": [[GOOD_UNLOCK]]})
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = run_covgen(
            root, "--report", str(vault["report"]), "--engine", "hybrid", "--model-url", server.url,
            "--candidates", "1", "--explore-seconds", "2", "--output", f"json:{summary_path}",
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["engine"].startswith("model-free exploration") and ", then vLLM server at" in summary["engine"]

    # Exploration covers double() and the wrong-password path; no search finds a password from
    # its hash, so the model is asked for unlock() — and only for it.
    prompts = [r["messages"][1]["content"] for r in state.requests]
    assert [re.search(r"## Code under test: (\S+) \(", p).group(1) for p in prompts] == ["unlock"]
    # The prompt marks only what is still uncovered: exploration reached line 7 already.
    marked = {int(n) for n in re.findall(r"^\s*(\d+) .*# <- NOT COVERED$", prompts[0], re.MULTILINE)}
    assert marked == {6}

    by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    assert by_gap["unlock"]["accepted_tests"][-1] == "test_the_right_password_unlocks"
    assert any(name.startswith("test_unlock_") for name in by_gap["unlock"]["accepted_tests"])  # exploration's
    assert by_gap["double"]["accepted_tests"]
    assert summary["coverage"]["lines"]["after"]["covered"] == summary["coverage"]["lines"]["after"]["total"]
    written = (root / "tests/covgen/test_vault_covgen.py").read_text()
    assert "engine: model-free exploration" in written and "vLLM server" in written
    check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/covgen"], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_auto_uses_a_model_endpoint_that_answers(project, tmp_path: Path) -> None:
    root = project["root"]
    state = StubState(script={"quarter": [[GOOD_QUARTER]]})
    summary_path = tmp_path / "summary.json"
    with StubServer(state) as server:
        result = run_covgen(root, "--report", str(project["report"]), "--model-url", server.url, "--include", "inventory/dates.py",
                            "--output", f"json:{summary_path}")
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["engine"].startswith("vLLM server at") and summary["engine_reason"] == f"the model endpoint {server.url} answered /health"
    assert {g["id"].split("::")[1]: g["accepted_tests"] for g in summary["gaps"]}["quarter"] == ["test_quarter_of_may_is_q2"]


def test_the_budget_stops_waiting_for_the_model_and_keeps_what_was_proven(vault, tmp_path: Path) -> None:
    root = vault["root"]
    # The model would take two minutes per answer; the budget is a fraction of that, with room
    # for exploration to finish first on a slow, loaded machine.
    state = StubState(script={"unlock": [[GOOD_UNLOCK]]}, delay=lambda uncached, completion, n: time.sleep(120))
    summary_path = tmp_path / "summary.json"
    started = time.monotonic()
    with StubServer(state) as server:
        result = run_covgen(
            root, "--report", str(vault["report"]), "--engine", "hybrid", "--model-url", server.url, "--budget-seconds", "30",
            "--explore-attempts", "200", "--output", f"json:{summary_path}",
        )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 100, elapsed  # not the 120 s the answer would have taken
    summary = json.loads(summary_path.read_text())
    assert len(state.requests) == 1  # the model was asked, and not waited for
    assert any(w.startswith("--budget-seconds 30 reached: 1 gap(s) not attempted or cut short") for w in summary["warnings"])
    # Exploration's proven tests are written all the same.
    assert summary["accepted_tests"] > 0 and summary["files_written"] == ["tests/covgen/test_vault_covgen.py"]
    assert "cut short" in result.stdout
