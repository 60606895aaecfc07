"""The model-free engine: what its tests check, what they never pin, and how budget buys coverage.

Every run here is bounded by calls (``--explore-attempts``), not seconds, so what is written does
not depend on how loaded the machine is.
"""

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

#: Through the real CLI with real processes: `pytest -m 'not e2e'` runs only the unit tests.
pytestmark = pytest.mark.e2e

ATTEMPTS = "300"
PROBE = Path(__file__).resolve().parent.parent / "covgen" / "engines" / "explore_probe.py"


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
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(summary.read_text())


def fresh_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True)


def by_name(summary: dict) -> dict[str, dict]:
    return {g["id"].split("::")[1]: g for g in summary["gaps"]}


def note_for(summary: dict, qualname: str) -> str:
    return "; ".join(by_name(summary)[qualname]["notes"])


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root, ignore=shutil.ignore_patterns("reports", "__pycache__"))
    return root


def test_fixture_branches_unlocked_by_mined_constants(fixture_copy: Path, tmp_path: Path, python_fixture_reports) -> None:
    root = fixture_copy
    summary = explore_run(root, python_fixture_reports["coveragepy"], tmp_path / "s.json", "--include", "inventory/parsing.py",
                          "--explore-attempts", ATTEMPTS)
    # parse_bool's True branch needs one of its own literals ("yes", "y", "true", "1", "on").
    assert 83 in by_name(summary)["parse_bool"]["gained_lines"]
    written = (root / "tests/covgen/test_inventory_parsing_covgen.py").read_text()
    assert "parse_bool(" in written and "assert result is True" in written
    assert fresh_pytest(root).returncode == 0


def test_methods_get_receivers_built_and_prepared(fixture_copy: Path, tmp_path: Path, python_fixture_reports) -> None:
    root = fixture_copy
    summary = explore_run(root, python_fixture_reports["coveragepy"], tmp_path / "s.json", "--include", "inventory/items.py",
                          "--explore-attempts", "1000")
    # Removing all of an item needs a stock that holds it first: add() before remove().
    assert {88, 89, 90, 91, 92, 93, 94} <= set(by_name(summary)["Stock.remove"]["gained_lines"])
    written = (root / "tests/covgen/test_inventory_items_covgen.py").read_text()
    assert "stock = Stock()" in written and "stock.add(" in written
    assert fresh_pytest(root).returncode == 0


def project_of(tmp_path: Path, module: str, source: str) -> tuple[Path, Path]:
    """A project of one module whose only test imports it, and its coverage report."""
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / f"{module}.py").write_text(source)
    (root / "tests" / f"test_{module}.py").write_text(f"import {module}\n\n\ndef test_imports():\n    assert {module}\n")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    return root, coverage_json(root, tmp_path / "coverage.json", source=".")


def explore_one_module(tmp_path: Path, module: str, source: str, attempts: str = ATTEMPTS) -> tuple[Path, dict]:
    root, report = project_of(tmp_path, module, source)
    return root, explore_run(root, report, tmp_path / "s.json", "--explore-attempts", attempts)


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
    gaps = by_name(summary)
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
    gaps = by_name(summary)
    for name in ("counter.bump", "make_adder", "box", "nest"):
        assert gaps[name]["accepted_tests"], name
    assert summary["verdicts"]["FAILED"] == 0, [r for g in summary["gaps"] for r in g["rejected"]]
    written = (root / "tests/covgen/test_shapes_covgen.py").read_text()
    assert "subject = counter(" in written  # not `counter = counter(...)`, which shadows the class
    assert "types.FunctionType" in written and "types.BuiltinFunctionType" in written
    assert "type(result).__name__ == 'Box'" in written  # a local class with nothing public: its name
    assert "pytest.raises(Outer.Error, match=re.escape('negative'))" in written
    # What came back is checked by its public state, not by its type.
    assert re.search(r"result = nest\((\d+)\)\n    assert result\.v == \1\n", written), written
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
    summary = explore_run(root, report, tmp_path / "s.json", "--explore-attempts", ATTEMPTS)
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
    gaps = by_name(summary)
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
    # Only the words the code wrote are matched, not the input echoed back in the message.
    assert "match=re.escape('not a ticket:')" in written
    assert fresh_pytest(root).returncode == 0


HONEST_ERRORS = '''\
class Shape:
    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height


def area(shape):
    return shape.width * shape.height


def scale(value, factor):
    if factor < 0:
        raise ValueError(f"factor {factor!r}: must not be negative")
    return value * factor


def parse_count(text: str) -> int:
    number = int(text)
    if number > 100:
        return 100
    return number
'''


def test_errors_python_raises_for_calls_that_make_no_sense_are_never_pinned(tmp_path: Path) -> None:
    """`area(1)` raises AttributeError and `int("a")` ValueError from Python itself: not behaviour."""
    root, summary = explore_one_module(tmp_path, "geometry", HONEST_ERRORS)
    gaps = by_name(summary)
    for name in ("area", "scale", "parse_count"):
        assert gaps[name]["accepted_tests"], name
    written = (root / "tests/covgen/test_geometry_covgen.py").read_text()
    assert "AttributeError" not in written and "TypeError" not in written
    assert "invalid literal" not in written  # CPython's wording, which changes between versions
    # The project's own raise is kept, matched on the words its code wrote (not the value it echoes).
    assert "pytest.raises(ValueError, match=re.escape(': must not be negative'))" in written
    assert written.count("pytest.raises(") == 1, written
    # `shape` has no annotation; how the body uses it (.width, .height) finds the class to build.
    assert "area(Shape(" in written
    assert "Python itself raised" in note_for(summary, "parse_count")
    assert fresh_pytest(root).returncode == 0


VALUES = '''\
class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def moved(self, dx: int) -> "Point":
        if dx > 0:
            return Point(self.x + dx, self.y)
        return Point(self.x, self.y)


class Cart:
    def __init__(self, owner: str = "guest") -> None:
        self.owner = owner
        self.items: list[int] = []
        self.notes: list[str] = []

    def add(self, price: int) -> None:
        if price < 0:
            raise ValueError("price must not be negative")
        self.items.append(price)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def total(self, currency: str = "EUR") -> str:
        if not self.items:
            return f"0 {currency}"
        amount = sum(self.items)
        if amount > 100:
            amount -= 10
        return f"{amount} {currency}"
'''


def test_tests_check_values_and_state_and_keep_only_what_matters(tmp_path: Path) -> None:
    root, summary = explore_one_module(tmp_path, "shop", VALUES)
    gaps = by_name(summary)
    assert set(gaps["Cart.total"]["gained_lines"]) == {27, 28, 29, 30, 31, 32}
    written = (root / "tests/covgen/test_shop_covgen.py").read_text()
    assert "isinstance(" not in written
    # A returned object: its public attributes. A method run for its effect: the receiver's new state.
    assert re.search(r"result = point\.moved\(\d+\)\n    assert result\.x == \d+\n    assert result\.y == -?\d+\n", written), written
    assert re.search(r"    cart\.add\((\d+)\)\n    assert cart\.items == \[\1\]\n", written), written
    # Minimized: receiver calls and optional arguments that change nothing the test covers are gone.
    total_tests = re.findall(r"def test_cart_total\w*\(\):\n((?:    .*\n)+)", written)
    assert total_tests, written
    for body in total_tests:
        assert "cart = Cart()" in body and "cart.note(" not in body and "cart.total()" in body, body
    assert fresh_pytest(root).returncode == 0


REACH = '''\
import re


def _normalize(text: str) -> str:
    cleaned = text.strip().lower()
    if not cleaned:
        return "untitled"
    return re.sub(r"[^a-z0-9]+", "-", cleaned).strip("-")


def slug(title: str) -> str:
    return _normalize(title)


def make_scaler(factor: int):
    def scale(value: int) -> int:
        if value < 0:
            return 0
        return value * factor
    return scale


def total_length(words: list[str]) -> int:
    def size(word: str) -> int:
        if word.isupper():
            return 2 * len(word)
        return len(word)
    return sum(size(w) for w in words)
'''


def test_private_helpers_and_nested_functions_are_reached_through_the_public_api(tmp_path: Path) -> None:
    root, summary = explore_one_module(tmp_path, "text", REACH)
    gaps = by_name(summary)
    assert {5, 6, 7, 8} <= set(gaps["_normalize"]["gained_lines"])
    assert {17, 18, 19} <= set(gaps["make_scaler.scale"]["gained_lines"])
    assert {25, 26, 27} <= set(gaps["total_length.size"]["gained_lines"])
    written = (root / "tests/covgen/test_text_covgen.py").read_text()
    assert "_normalize(" not in written and "result = slug(" in written
    assert re.search(r"scale = make_scaler\(-?\d+\)\n    result = scale\(-?\d+\)\n", written), written
    # Every gap says how it went, nested ones included (the summary shows these notes).
    assert "through slug" in note_for(summary, "_normalize")
    assert "nested function, not reachable directly: explored through make_scaler" in note_for(summary, "make_scaler.scale")
    assert "nested function, not reachable directly" in note_for(summary, "total_length.size")
    assert fresh_pytest(root).returncode == 0


DEEP = '''\
def classify(code: str) -> str:
    if not code:
        return "empty"
    if code[0] != "X":
        return "other"
    if len(code) < 4:
        return "short"
    if code[3] != "9":
        return "long"
    if code.count("-") < 2:
        return "deep"
    return "deepest"
'''


def test_a_larger_budget_reaches_more_and_a_call_budget_gives_the_same_tests_every_time(tmp_path: Path) -> None:
    """After the first plateau the search mutates what it found: more calls, more branches."""
    small_root, small = explore_one_module(tmp_path / "small", "codes", DEEP, attempts="25")
    again_root, again = explore_one_module(tmp_path / "again", "codes", DEEP, attempts="25")
    large_root, large = explore_one_module(tmp_path / "large", "codes", DEEP, attempts="4000")
    (small_gap,), (large_gap,) = small["gaps"], large["gaps"]
    assert set(small_gap["gained_lines"]) < set(large_gap["gained_lines"]), (small_gap["gained_lines"], large_gap["gained_lines"])
    assert {9, 11} <= set(large_gap["gained_lines"])  # "X..9…" is nowhere in the code: only mutation finds it
    written = "tests/covgen/test_codes_covgen.py"
    assert (small_root / written).read_text() == (again_root / written).read_text()
    assert fresh_pytest(large_root).returncode == 0


PLUGGED = '''\
from typing import TypedDict


class Box(TypedDict):
    width: int
    height: int


def size_class(box: Box) -> str:
    if box["width"] > 10 and box["height"] > 10:
        return "large"
    return "small"


def describe(sku) -> str:
    if len(sku) == 9 and sku[2] == "-" and sku[:2].isalpha() and sku[3:].isdigit():
        return "catalog item"
    return "unknown"
'''


def test_projects_add_their_own_values_through_an_entry_point(tmp_path: Path) -> None:
    """A `covgen.explore` entry point names values for a parameter; TypedDicts are built key by key."""
    root, report = project_of(tmp_path, "catalog", PLUGGED)
    (root / "shop_values.py").write_text("def register(registry):\n    registry.add_name('sku', \"'AB-123456'\")\n")
    info = root / "shop_values-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-values\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[covgen.explore]\nshop = shop_values:register\n")
    summary = explore_run(root, report, tmp_path / "s.json", "--explore-attempts", "60")
    gaps = by_name(summary)
    assert 17 in gaps["describe"]["gained_lines"] and 11 in gaps["size_class"]["gained_lines"]
    written = (root / "tests/covgen/test_catalog_covgen.py").read_text()
    assert "describe('AB-123456')" in written
    assert re.search(r"size_class\(\{'(width|height)': \d+, '(width|height)': \d+\}\)", written), written
    assert fresh_pytest(root).returncode == 0


def test_exploration_works_in_a_project_without_hypothesis(tmp_path: Path) -> None:
    """The probe runs under the project's interpreter; without Hypothesis it builds values itself."""
    root, _ = project_of(tmp_path, "catalog", PLUGGED)
    (root / "hypothesis.py").write_text("raise ImportError('this project has no Hypothesis')\n")
    request = {"mode": "explore", "module": "catalog", "qualname": "size_class", "start": 9, "end": 12, "lines": [10, 11, 12],
               "arcs": [], "seconds": 60, "max_attempts": 200, "seed": 0, "source": PLUGGED, "paths": [str(root)]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, str(PROBE), str(tmp_path / "request.json"), str(tmp_path / "result.json")],
                   cwd=root, check=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "0"})
    result = json.loads((tmp_path / "result.json").read_text())
    assert sorted(result["covered_lines"]) == [10, 11, 12], result["note"]
    assert any(re.fullmatch(r"size_class\(\{'(width|height)': \d+, '(width|height)': \d+\}\)", case["code"]) for case in result["cases"])
