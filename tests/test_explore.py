"""The model-free engine: mined constants, receivers, determinism, and code nobody here wrote."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import FIXTURES


def coverage_json(root: Path, out: Path, source: str, tests: str = "tests") -> Path:
    env = {**os.environ, "COVERAGE_FILE": str(out.parent / ".coverage")}
    subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", f"--source={source}", "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
                   cwd=root, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "coverage", "json", "-o", str(out)], cwd=root, env=env, check=True, capture_output=True)
    return out


def explore_run(root: Path, report: Path, summary: Path, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(report), "--engine", "explore",
         "--output", f"json:{summary}", *args],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(summary.read_text())


def fresh_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True)


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("reports", "__pycache__"))
    return root


def test_fixture_branches_unlocked_by_mined_constants(fixture_copy: Path, tmp_path: Path, python_fixture_reports) -> None:
    root = fixture_copy
    summary = explore_run(root, python_fixture_reports["coveragepy"], tmp_path / "s.json", "--include", "inventory/parsing.py",
                          "--explore-seconds", "2")
    gaps = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    # parse_bool's True branch needs one of its own literals ("yes", "y", "true", "1", "on").
    assert 83 in gaps["parse_bool"]["gained_lines"]
    written = (root / "tests/covgen/test_inventory_parsing_covgen.py").read_text()
    assert "parse_bool(" in written and "assert result is True" in written
    assert fresh_pytest(root).returncode == 0


def test_methods_get_receivers_built_and_prepared(fixture_copy: Path, tmp_path: Path, python_fixture_reports) -> None:
    root = fixture_copy
    summary = explore_run(root, python_fixture_reports["coveragepy"], tmp_path / "s.json", "--include", "inventory/items.py",
                          "--explore-seconds", "3")
    gaps = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    # Removing all of an item needs a stock that holds it first: add() before remove().
    assert {88, 89, 90, 91, 92, 93, 94} <= set(gaps["Stock.remove"]["gained_lines"])
    written = (root / "tests/covgen/test_inventory_items_covgen.py").read_text()
    assert "stock = Stock()" in written and "stock.add(" in written
    assert fresh_pytest(root).returncode == 0


def explore_one_module(tmp_path: Path, module: str, source: str) -> tuple[Path, dict]:
    """A project of one module whose only test imports it; explored for 2 s per gap."""
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / f"{module}.py").write_text(source)
    (root / "tests" / f"test_{module}.py").write_text(f"import {module}\n\n\ndef test_imports():\n    assert {module}\n")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    report = coverage_json(root, tmp_path / "coverage.json", source=".")
    return root, explore_run(root, report, tmp_path / "s.json", "--explore-seconds", "2")


NONDETERMINISTIC = '''\
import random
import time


def stamp() -> float:
    return time.time()


def roll(sides: int) -> float:
    return random.random() + sides


def letters() -> list:
    return list({"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"})


def doubled(x: int) -> int:
    if x > 3:
        return x * 2
    return 0
'''


def test_observations_that_change_between_runs_are_never_written(tmp_path: Path) -> None:
    root, summary = explore_one_module(tmp_path, "clock", NONDETERMINISTIC)
    gaps = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    assert gaps["doubled"]["accepted_tests"]
    for unstable in ("stamp", "roll", "letters"):
        assert gaps[unstable]["accepted_tests"] == [], unstable
    written = (root / "tests/covgen/test_clock_covgen.py").read_text()
    assert "doubled(" in written and "stamp(" not in written and "roll(" not in written and "letters(" not in written
    assert fresh_pytest(root).returncode == 0


AWKWARD_NAMES = '''\
class counter:
    def __init__(self, start: int = 0) -> None:
        self.value = start

    def bump(self, step: int) -> int:
        if step > 5:
            self.value += step * 2
        else:
            self.value += step
        return self.value


class Outer:
    class Inner:
        def __init__(self, v: int) -> None:
            self.v = v

    class Error(ValueError):
        pass


def make_adder(n: int):
    if n > 0:
        return lambda x: x + n
    return abs


def box(v: int):
    class Box:
        pass

    if v > 2:
        return Box()
    return None


def nest(v: int):
    if v < 0:
        raise Outer.Error("negative")
    return Outer.Inner(v)
'''


def test_outcomes_without_a_plain_importable_name_are_still_checked_correctly(tmp_path: Path) -> None:
    """A lowercase class, functions returned, local and nested classes: every written test passes."""
    root, summary = explore_one_module(tmp_path, "shapes", AWKWARD_NAMES)
    gaps = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    for name in ("counter.bump", "make_adder", "box", "nest"):
        assert gaps[name]["accepted_tests"], name
    assert summary["verdicts"]["FAILED"] == 0, [r for g in summary["gaps"] for r in g["rejected"]]
    written = (root / "tests/covgen/test_shapes_covgen.py").read_text()
    assert "subject = counter(" in written  # not `counter = counter(...)`, which shadows the class
    assert "types.FunctionType" in written and "types.BuiltinFunctionType" in written
    assert "type(result).__name__ == 'Box'" in written
    assert "pytest.raises(Outer.Error" in written and "isinstance(result, Outer.Inner)" in written
    assert fresh_pytest(root).returncode == 0


def test_code_nobody_here_wrote_gains_coverage(tmp_path: Path) -> None:
    """mdurl (a PyPI package rich depends on): its own source, a one-line test, then exploration."""
    import mdurl

    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    shutil.copytree(Path(mdurl.__file__).parent, root / "mdurl", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests" / "test_smoke.py").write_text(textwrap.dedent("""\
        from mdurl import decode


        def test_plain_text_decodes_to_itself():
            assert decode("plain") == "plain"
    """))
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    report = coverage_json(root, tmp_path / "coverage.json", source="mdurl")
    summary = explore_run(root, report, tmp_path / "s.json", "--explore-seconds", "3")
    lines = summary["coverage"]["lines"]
    assert lines["after"]["covered"] > lines["before"]["covered"] + 20, lines
    assert summary["files_written"]
    assert fresh_pytest(root).returncode == 0


GENERATORS = '''\
import itertools


class Node:
    def __init__(self, name: str) -> None:
        self.name = name


def evens(limit: int):
    for n in range(limit):
        if n % 2 == 0:
            yield n


def forever(start: int):
    n = start
    while True:
        n += 1
        yield n


def checked(values: list[int]):
    for value in values:
        if value < 0:
            raise ValueError(f"negative: {value}")
        yield value * 10


def nodes(count: int):
    for i in range(count):
        yield Node(str(i))
'''


def test_returned_generators_are_consumed_and_their_items_checked(tmp_path: Path) -> None:
    """A generator's body only runs when iterated: the tests iterate it and check what came out."""
    root, summary = explore_one_module(tmp_path, "gens", GENERATORS)
    gaps = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    assert {10, 11, 12} <= set(gaps["evens"]["gained_lines"])
    assert {16, 17, 18, 19} <= set(gaps["forever"]["gained_lines"])
    assert {23, 24, 25, 26} <= set(gaps["checked"]["gained_lines"])
    written = (root / "tests/covgen/test_gens_covgen.py").read_text()
    assert "= list(evens(" in written and "= list(itertools.islice(forever(" in written
    assert "list(checked(" in written and "pytest.raises(ValueError" in written
    assert "len(result) ==" in written  # Node objects have no literal; their count is checked
    assert "GeneratorType" not in written
    assert fresh_pytest(root).returncode == 0


GROUPED = '''\
def validate(fields: dict) -> dict:
    problems = [ValueError(f"{name} is empty") for name, value in fields.items() if not value]
    if problems:
        raise ExceptionGroup("invalid fields", problems)
    return fields
'''


def test_an_exception_group_is_matched_the_way_pytest_matches_it(tmp_path: Path) -> None:
    """pytest matches a group's own message, not str() with its "(1 sub-exception)" suffix."""
    root, summary = explore_one_module(tmp_path, "forms", GROUPED)
    (gap,) = summary["gaps"]
    assert gap["verdicts"].get("FAILED", 0) == 0, gap["rejected"]
    written = (root / "tests/covgen/test_forms_covgen.py").read_text()
    assert "pytest.raises(ExceptionGroup, match=re.escape('invalid fields'))" in written
    assert fresh_pytest(root).returncode == 0


TYPED_MAPPING = '''\
def total(prices: dict[str, int]) -> int:
    if not prices:
        return 0
    if any(value < 0 for value in prices.values()):
        raise ValueError("negative price")
    return sum(prices.values())
'''


def test_typed_mappings_are_built_from_their_key_and_value_types(tmp_path: Path) -> None:
    """Only int values reach the negative-price check; a generic {"key": "value"} fails before it."""
    root, summary = explore_one_module(tmp_path, "prices", TYPED_MAPPING)
    (gap,) = summary["gaps"]
    assert set(gap["gained_lines"]) == {2, 3, 4, 5, 6}
    written = (root / "tests/covgen/test_prices_covgen.py").read_text()
    assert "pytest.raises(ValueError, match=re.escape('negative price'))" in written
    assert fresh_pytest(root).returncode == 0


PARSER = '''\
import re

_TICKET = re.compile(r"^(?P<queue>[A-Z]{2,4})-(?P<number>\\d{1,5})(?:/(?P<part>[a-z]))?$")


def parse_ticket(text: str) -> tuple:
    match = _TICKET.match(text)
    if match is None:
        raise ValueError(f"not a ticket: {text!r}")
    number = int(match.group("number"))
    if match.group("part"):
        return match.group("queue"), number, match.group("part")
    return match.group("queue"), number
'''


def test_strings_the_modules_regular_expressions_accept_reach_a_parsers_happy_path(tmp_path: Path) -> None:
    root, summary = explore_one_module(tmp_path, "tickets", PARSER)
    (gap,) = summary["gaps"]
    assert set(gap["gained_lines"]) == {7, 8, 9, 10, 11, 12, 13}
    written = (root / "tests/covgen/test_tickets_covgen.py").read_text()
    calls = re.findall(r"parse_ticket\('([^']*)'\)", written)
    assert any(re.fullmatch(r"[A-Z]{2,4}-\d{1,5}/[a-z]", c) for c in calls), calls
    assert any(re.fullmatch(r"[A-Z]{2,4}-\d{1,5}", c) for c in calls), calls
    assert fresh_pytest(root).returncode == 0
