"""The static screen: every way out a hostile candidate tried is refused, with the rule; ordinary tests pass.

Each attack is a real candidate module (a model's answer) and asserts the rule the model is told
in the repair turn. The ordinary tests include what covgen's own explorer writes, rendered by
the explorer itself.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from covgen.engines import Target
from covgen.engines.explore import render_pytest
from covgen.model import Gap
from covgen.screen import Screen, policy, project_modules, unsafe_reason
from support.vllm_stub import StubServer, StubState
from test_explore import explore_one_module
from test_run_llm import fence, project, run_covgen  # noqa: F401 - project is a fixture

PROJECT = frozenset({"inventory"})
README = Path(__file__).resolve().parent.parent / "README.md"
SEE = "see README 'What a generated test may do'"


def refusal(source: str, modules: frozenset[str] = PROJECT) -> str | None:
    return unsafe_reason(textwrap.dedent(source), modules)


ATTACKS = {
    # The attacks an earlier, denylist screen let through.
    "alias of os.system": ("""
        import os
        run = os.system

        def test_x():
            run("touch /tmp/owned")
    """, "line 2: imports os (not on covgen's import allowlist; " + SEE),
    "os reached through a project module": ("""
        from inventory import parsing

        def test_x():
            parsing.os.system("id")
    """, "reaches .os (the module os is not on covgen's allowlist"),
    "os imported from a project module": ("""
        from inventory.parsing import os as _o
    """, "reaches os through inventory.parsing"),
    "vars(module)[...]": ("""
        import inventory

        def test_x():
            vars(inventory)["helper"]()
    """, "uses vars()"),
    "sys.modules[...]": ("""
        import sys

        def test_x():
            sys.modules["os"].system("id")
    """, "imports sys (not on covgen's import allowlist"),
    "__builtins__[...]": ("""
        def test_x():
            __builtins__["exec"]("import os")
    """, "uses __builtins__ (dunder names reach the interpreter's internals"),
    "the __subclasses__ chain": ("""
        def test_x():
            ().__class__.__base__.__subclasses__()
    """, "dunder names reach the interpreter's internals"),
    "a plugin registered at run time": ("""
        def test_x(request):
            request.config.pluginmanager.register(object())
    """, "uses .pluginmanager"),
    "request.config": ("""
        def test_x(request):
            config = request.config
    """, "uses request.config (only .param of the request fixture"),
    "the pytestconfig fixture": ("""
        def test_x(pytestconfig):
            assert pytestconfig
    """, "requests the pytestconfig fixture"),
    "a hook defined in the module": ("""
        def pytest_runtest_makereport(item, call):
            pass
    """, "defines or uses pytest_runtest_makereport (pytest_* names are hooks"),
    "pytest_plugins": ("""
        pytest_plugins = ["evil_plugin"]
    """, "defines or uses pytest_plugins"),
    "pytest.hookimpl": ("""
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def report(item):
            yield
    """, "uses pytest.hookimpl (a test may use only pytest.{"),
    "coverage.Coverage.current()": ("""
        import coverage

        def test_x():
            coverage.Coverage.current().collector.data.clear()
    """, "imports coverage (pytest's, coverage's and covgen's machinery is out of reach"),
    "forging the probe's results file": ("""
        def test_x():
            with open("../state/results-1.jsonl", "a") as out:
                out.write('{"event": "outcome", "outcome": "passed"}')
    """, "writes files with open(..., 'a') outside tmp_path"),
    "ending the process after forging": ("""
        from inventory import parsing

        def test_x():
            parsing._os._exit(0)
    """, "uses ._exit (frames, tracebacks, process exits"),
    "os reached under a private alias": ("""
        from inventory import parsing

        def test_x():
            parsing._os.getpid()
    """, "reaches ._os (the module os"),
    "writing a conftest.py at import time": ("""
        from pathlib import Path

        Path("conftest.py").write_text("import pytest\\n")
    """, "writes files with .write_text() outside tmp_path"),
    # Ending pytest's session.
    "raise SystemExit": ("""
        def test_x():
            raise SystemExit(0)
    """, "uses SystemExit (raising it ends pytest's session"),
    "raise a KeyboardInterrupt subclass": ("""
        class Stop(KeyboardInterrupt):
            pass
    """, "uses KeyboardInterrupt"),
    "a look-alike of pytest.raises": ("""
        from pytest import raises

        def raises(kind):
            raise kind()

        def test_x():
            raises(SystemExit)
    """, "uses SystemExit"),
    "exit()": ("""
        def test_x():
            exit(0)
    """, "uses exit()"),
    "pytest.exit": ("""
        import pytest

        def test_x():
            pytest.exit("done", returncode=0)
    """, "uses pytest.exit"),
    # Code from strings, and attribute names from strings.
    "eval": ("""
        def test_x():
            eval("1 + 1")
    """, "uses eval()"),
    "eval shadowed in a nested function only": ("""
        def test_x():
            def inner():
                eval = len
            eval("__import__('os')")
    """, "uses eval()"),
    "eval in a default, where the function's own eval does not reach": ("""
        def test_x(value=eval("1")):
            eval = len
    """, "uses eval()"),
    "getattr with a computed name": ("""
        import inventory

        def test_x():
            name = "_".join(["", "", "dict", "", ""])
            getattr(inventory, name)
    """, "calls getattr() with a computed attribute name"),
    "getattr passed around": ("""
        import functools
        lookup = functools.partial(getattr)
    """, "uses getattr without calling it"),
    "operator.attrgetter": ("""
        from operator import attrgetter
    """, "uses operator.attrgetter (not among the names covgen allows from operator"),
    "a format string that follows attributes": ("""
        def test_x():
            "{0.gi_frame.f_globals}".format(iter([]))
    """, "uses .gi_frame"),
    "a string naming a dunder": ("""
        NAME = "__globals__"
    """, "holds the string '__globals__'"),
    "typing.get_type_hints evaluates strings": ("""
        import typing
    
        def f(x: "eval('1')"):
            pass

        def test_x():
            typing.get_type_hints(f)
    """, "uses typing.get_type_hints"),
    "functools.wraps copying named attributes": ("""
        import functools

        @functools.wraps(len, assigned=("x",))
        def f():
            pass
    """, "passes assigned=/updated= to functools.wraps"),
    "type() building a class from a dict": ("""
        TestX = type("TestX", (), {})
    """, "uses type() other than to compare a type or read its name"),
    "a metaclass": ("""
        class Meta(type):
            pass

        class TestX(metaclass=Meta):
            pass
    """, "gives class TestX a metaclass"),
    "__reduce__ hands out getattr": ("""
        def test_x():
            (1).__add__.__reduce__()
    """, "uses .__reduce__"),
    "a module-level __getattr__": ("""
        def __getattr__(name):
            return ["evil"]
    """, "defines __getattr__"),
    # Modules an allowlisted module imports are not reachable through it.
    "sys through dataclasses": ("""
        import dataclasses

        def test_x():
            dataclasses.sys.modules
    """, "reaches .sys"),
    "builtins through enum": ("""
        from enum import bltns
    """, "which is the module builtins"),
    "codecs through json": ("""
        import json
        json.codecs.lookup("utf-8")
    """, "reaches .codecs"),
    "io.open": ("""
        import io
        io.open("inventory/items.py")
    """, "uses io.open (not among the names covgen allows from io"),
    "pytest.importorskip imports by name": ("""
        import pytest
        os = pytest.importorskip("os")
    """, "uses pytest.importorskip"),
    "a private pytest module": ("""
        from _pytest.config import Config
    """, "imports _pytest.config (pytest's, coverage's and covgen's machinery"),
    "covgen's probe": ("""
        import covgen_probe
    """, "imports covgen_probe"),
    "a module that is neither the project's nor allowlisted": ("""
        import requests
    """, "imports requests (not a module of this project, pytest, or the standard library covgen allows"),
    "a star import": ("""
        from inventory.parsing import *
    """, "uses `from inventory.parsing import *`"),
    "a relative import": ("""
        from . import helpers
    """, "uses a relative import"),
    "a module used as a value": ("""
        import json
        codec = json
    """, "uses the module json as a value"),
    # Frames and tracebacks.
    "a generator's frame": ("""
        def gen():
            yield 1

        def test_x():
            gen().gi_frame.f_globals
    """, "uses .f_globals"),
    "an exception's traceback": ("""
        import pytest

        def test_x():
            with pytest.raises(ValueError) as caught:
                int("x")
            caught.tb.tb_frame
    """, "uses .tb_frame"),
    # Tampering with what pytest and the probe run on.
    "patching the standard library": ("""
        import json
        json.dumps = lambda *args, **kwargs: "{}"
    """, "changes json.dumps (only the test's own and the project's objects may be changed"),
    "patching the standard library through a project module": ("""
        import inventory.parsing
        inventory.parsing.re.compile = lambda pattern: None
    """, "changes inventory.parsing.re.compile"),
    "patching the standard library a project package re-exports": ("""
        from inventory import json
        json.dumps = str
    """, "changes json.dumps"),
    "patching a standard-library class through an alias": ("""
        from json import JSONEncoder
        Encoder = JSONEncoder
        Encoder.encode = lambda self, o: "{}"
    """, "changes Encoder.encode"),
    "monkeypatching the standard library": ("""
        import json

        def test_x(monkeypatch):
            monkeypatch.setattr(json.JSONEncoder, "encode", lambda self, o: "{}")
    """, "changes json.JSONEncoder.encode"),
    "monkeypatching by a string outside the project": ("""
        def test_x(monkeypatch):
            monkeypatch.setattr("json.dumps", str)
    """, "patches 'json.dumps' (string targets must name the project's own objects"),
    "monkeypatching the standard library through a project module's import": ("""
        def test_x(monkeypatch):
            monkeypatch.setattr("inventory.dates.json.dumps", str)
    """, "patches 'inventory.dates.json.dumps' (through json, a standard-library module"),
    "mock.patch of a builtin": ("""
        from unittest.mock import patch

        @patch("builtins.open")
        def test_x(fake_open):
            pass
    """, "patches 'builtins.open'"),
    "a patcher kept as an object": ("""
        from unittest.mock import patch
        import inventory

        patcher = patch.object(inventory, "parsing")
    """, "uses patch.object() other than as a decorator or in a with statement"),
    "a redirect told to swap sys.modules": ("""
        import contextlib
        import io

        redirect = contextlib.redirect_stdout(io.StringIO())
        redirect._stream = "modules"
    """, "changes redirect._stream"),
    "a subclass reaching its standard-library base's private state": ("""
        import contextlib

        class Swap(contextlib.redirect_stdout):
            def point_at_modules(self):
                self._stream = "modules"
    """, "changes self._stream"),
    "a method called unbound on a foreign object": ("""
        import contextlib
        import io

        class Helper:
            def poke(self):
                self.attribute = "x"

        Helper.poke(contextlib.redirect_stdout(io.StringIO()))
    """, "uses the method poke on a class (called unbound"),
    "reading private state of a standard-library object": ("""
        import warnings

        def test_x():
            with warnings.catch_warnings() as caught:
                pass
            warnings.catch_warnings()._module
    """, "reads warnings.catch_warnings()._module"),
    "re-running a shared handler's constructor on the results file": ("""
        import logging

        def test_x():
            logging.getLogger().handlers[0].__init__("../state/results-1.jsonl")
    """, "uses .__init__ (dunder names reach the interpreter's internals; only names, docs, super().__init__"),
    "changing a shared handler": ("""
        import logging

        def test_x():
            handler = logging.getLogger().handlers[0]
            handler.baseFilename = "../state/results-1.jsonl"
    """, "changes handler.baseFilename"),
    "__setitem__ past the store rule": ("""
        import logging

        def test_x():
            logging.getLogger().__dict__.__setitem__("x", 1)
    """, "uses .__setitem__"),
    "a gadget under a project module's name": ("""
        import contextlib
        import io
        from inventory import parsing

        def test_x():
            parsing = contextlib.redirect_stdout(io.StringIO())
            parsing._stream = "modules"
    """, "changes parsing._stream"),
    "a subclass overriding its standard-library base's private class attribute": ("""
        import contextlib

        class Swap(contextlib.redirect_stdout):
            _stream = "modules"
    """, "sets _stream in class Swap, which derives from the standard library"),
    "a standard-library base under another name": ("""
        import contextlib
        Base = contextlib.redirect_stdout

        class Swap(Base):
            def __init__(self, target):
                super().__init__(target)

        def test_x():
            Swap(None)._stream = "modules"
    """, "changes Swap(None)._stream"),
    "getattr reaching a module through a project module": ("""
        import inventory.parsing

        def test_x():
            getattr(inventory.parsing, "re").compile = None
    """, "changes getattr(inventory.parsing, 're').compile"),
    "a gadget handed to a helper method": ("""
        import contextlib
        import io

        class TestSwap:
            def poke(self, redirect):
                redirect._stream = "modules"

            def test_x(self):
                self.poke(contextlib.redirect_stdout(io.StringIO()))
    """, "changes redirect._stream"),
    "a copy of a gadget": ("""
        import contextlib
        import copy
        import io

        def test_x():
            swap = copy.copy(contextlib.redirect_stdout(io.StringIO()))
            swap._stream = "modules"
    """, "changes swap._stream"),
    "a class whose method writes to self, passed around to be called unbound": ("""
        import inventory.dates

        class Setter:
            def point(self, where):
                self.baseFilename = where

        def test_x(monkeypatch):
            monkeypatch.setattr(inventory.dates, "Setter", Setter)
    """, "passes the class Setter around"),
    "mocker patching by a string outside the project": ("""
        def test_x(mocker):
            mocker.patch("os.system")
    """, "patches 'os.system' (string targets must name the project's own objects"),
    "mocker's private patch list": ("""
        def test_x(mocker):
            mocker._patches
    """, "uses mocker._patches (only"),
    # Fixtures.
    "monkeypatch.syspath_prepend": ("""
        def test_x(monkeypatch, tmp_path):
            monkeypatch.syspath_prepend(tmp_path)
    """, "uses monkeypatch.syspath_prepend (only .chdir, .delattr, .delenv, .delitem, .setattr, .setenv, .setitem, .undo"),
    "monkeypatch.context() gives an unchecked patcher": ("""
        def test_x(monkeypatch):
            with monkeypatch.context() as patcher:
                patcher.syspath_prepend("/")
    """, "uses monkeypatch.context"),
    "the monkeypatch fixture passed to a helper": ("""
        def helper(patcher):
            patcher.syspath_prepend("/")

        def test_x(monkeypatch):
            helper(monkeypatch)
    """, "passes the monkeypatch fixture around"),
    "monkeypatch.chdir out of tmp_path": ("""
        def test_x(monkeypatch):
            monkeypatch.chdir("..")
    """, "changes directory outside tmp_path"),
    "a private attribute of caplog": ("""
        def test_x(caplog):
            caplog._item.config
    """, "uses caplog._item (only"),
    "redefining tmp_path": ("""
        import pytest
        from pathlib import Path

        @pytest.fixture
        def tmp_path():
            return Path("../state")
    """, "redefines or parametrizes the tmp_path fixture"),
    "redefining tmp_path without def": ("""
        import pytest
        from pathlib import Path

        tmp_path = pytest.fixture(lambda: Path("../state"))
    """, "redefines or parametrizes the tmp_path fixture"),
    "parametrizing tmp_path": ("""
        import pytest

        @pytest.mark.parametrize("tmp_path", ["../state"])
        def test_x(tmp_path):
            pass
    """, "redefines or parametrizes the tmp_path fixture"),
    # Files outside tmp_path.
    "tmp_path / '..'": ("""
        def test_x(tmp_path):
            (tmp_path / ".." / "escaped.txt").write_text("x")
    """, "writes files with .write_text() outside tmp_path"),
    "tmp_path / an absolute path": ("""
        def test_x(tmp_path):
            (tmp_path / "/etc/passwd").write_text("x")
    """, "writes files with .write_text() outside tmp_path"),
    "tmp_path / a computed name": ("""
        def test_x(tmp_path):
            name = "../" * 3 + "state"
            (tmp_path / name).mkdir()
    """, "writes files with .mkdir() outside tmp_path"),
    "a helper's tmp_path parameter given another path": ("""
        from pathlib import Path

        def write(tmp_path):
            (tmp_path / "out.txt").write_text("x")

        def test_x():
            write(Path("../state"))
    """, "writes files with .write_text() outside tmp_path"),
    "a default for tmp_path (pytest then injects nothing)": ("""
        from pathlib import Path

        def test_x(tmp_path=Path("../state")):
            (tmp_path / "out.txt").write_text("x")
    """, "writes files with .write_text() outside tmp_path"),
    "a symlink out of tmp_path": ("""
        def test_x(tmp_path):
            (tmp_path / "link").symlink_to("/")
    """, "creates a link with .symlink_to()"),
    "renaming a path out of tmp_path": ("""
        def test_x(tmp_path):
            (tmp_path / "a.txt").rename("../a.txt")
    """, "writes files with .rename() to a destination outside tmp_path"),
    "deleting a file": ("""
        from pathlib import Path

        def test_x():
            Path("inventory/items.py").unlink()
    """, "writes files with .unlink() outside tmp_path"),
    "opening a path for writing": ("""
        from pathlib import Path

        def test_x():
            Path.home().joinpath(".bashrc").open("a")
    """, "writes files with .open() for writing outside tmp_path"),
    "the project claiming a dangerous name": ("""
        import os
    """, "imports os (not on covgen's import allowlist"),
    "a project module that runs when imported": ("""
        import setup
    """, "imports setup (not a module of this project"),
}


@pytest.mark.parametrize(("source", "rule"), list(ATTACKS.values()), ids=list(ATTACKS))
def test_the_strict_screen_refuses_each_way_out_and_names_the_rule(source: str, rule: str) -> None:
    found = refusal(source, PROJECT | {"os", "setup"})
    assert found is not None and rule in found, found
    assert re.match(r"line \d+: ", found) and found.endswith(SEE + ")")


ORDINARY = {
    "the model's tests of the bundled fixture": """
        from datetime import date, timedelta
        import pytest
        from inventory.dates import parse_duration, quarter
        from inventory.items import Item, Stock

        def test_quarter_of_may_is_q2():
            assert quarter(date(2024, 5, 1)) == "2024-Q2"

        def test_weeks_and_days():
            assert parse_duration("P1W2D") == timedelta(days=9)

        def test_removing_an_unknown_item_raises():
            with pytest.raises(KeyError):
                Stock().remove("hammer")

        def test_label():
            assert "covgen_candidates" in __file__
            assert Item("saw", 1250).label() == "saw (tools) 12.50"
    """,
    "files, fixtures and helpers under tmp_path": """
        import json
        from pathlib import Path
        import pytest
        from inventory import parsing

        @pytest.fixture
        def data_file(tmp_path):
            path = tmp_path / "data.json"
            path.write_text(json.dumps({"a": 1}))
            return path

        def write_rows(tmp_path, rows):
            (tmp_path / "rows").mkdir()
            with open(tmp_path / "rows" / "rows.csv", "w", encoding="utf-8") as out:
                out.write("\\n".join(rows))

        def test_reads_what_was_written(data_file, tmp_path, tmp_path_factory):
            write_rows(tmp_path, ["a,1"])
            other = tmp_path_factory.mktemp("other") / "x.txt"
            other.write_text("x")
            Path(f"{tmp_path}/copy.json").write_text(data_file.read_text())
            (tmp_path / "a.txt").touch()
            (tmp_path / "a.txt").rename(tmp_path / "b.txt")
            assert json.loads(data_file.read_text()) == {"a": 1}
            assert parsing.parse_bool("yes") is True and "ab".replace("a", "c") == "cb"
    """,
    "monkeypatch, capsys, caplog, recwarn and request.param": """
        import logging
        import warnings
        import pytest
        import inventory.dates
        from inventory.dates import quarter

        @pytest.fixture(params=[1, 2])
        def count(request):
            return request.param

        def test_patched(monkeypatch, capsys, caplog, recwarn, tmp_path, count):
            monkeypatch.setattr(inventory.dates, "quarter", lambda day: "Q")
            monkeypatch.setattr("inventory.dates.quarter", lambda day: "Q")
            monkeypatch.setattr("inventory.dates.time", None)  # the project's name for the module, not the module
            monkeypatch.setenv("INVENTORY_MODE", "test")
            monkeypatch.chdir(tmp_path)
            caplog.set_level(logging.INFO)
            print("hello")
            warnings.warn("careful", UserWarning)
            assert capsys.readouterr().out == "hello\\n"
            assert len(recwarn) == 1 and recwarn[0].category is UserWarning
            assert caplog.records == [] and count in (1, 2)
    """,
    "mocks, fakes and the test's own classes": """
        from types import SimpleNamespace
        from unittest import mock
        from unittest.mock import MagicMock, patch
        import inventory.dates
        from inventory.items import Item

        class Clock:
            def __init__(self):
                self.now = 0

        class FakeClock(Clock):
            def __init__(self, now):
                super().__init__()
                self.now = now
                self._ticks = 0

            def tick(self):
                self._ticks += 1
                return self.now

        @patch("inventory.dates.date")
        def test_with_mocks(fake_date):
            fake_date.today.return_value = 3
            clock = FakeClock(5)
            assert clock.tick() == 5 and clock._ticks == 1
            backend = MagicMock()
            backend.fetch.return_value = {"a": 1}
            settings = SimpleNamespace(mode="test")
            settings.mode = "prod"
            with patch.object(inventory.dates, "quarter") as quarter:
                quarter.return_value = "Q1"
            with mock.patch.dict("inventory.dates.HOLIDAYS", {}):
                pass
            item = Item("saw", 100)
            item.price_cents = 90
            assert item._category is not None
    """,
    "fakes passed in place of project objects, and pytest-mock": """
        import datetime
        import inventory.dates

        class FrozenDate(datetime.date):
            @classmethod
            def today(cls):
                return cls(2024, 6, 7)

        class FakeClient:
            def __init__(self, answer):
                self.answer = answer
                self.calls = []

            def fetch(self, key):
                self.calls.append(key)
                return self.answer

        def test_frozen(monkeypatch, mocker):
            monkeypatch.setattr(inventory.dates, "date", FrozenDate)
            monkeypatch.setattr(inventory.dates, "Client", FakeClient)
            fake = mocker.patch("inventory.dates.quarter")
            fake.return_value = "2024-Q2"
            spy = mocker.spy(inventory.dates, "is_weekend")
            assert FrozenDate.today().year == 2024 and spy.call_count == 0
    """,
    "helper methods, unpacking and containers the test builds": """
        import inventory.items
        from inventory.items import Stock

        class TestStock:
            def fill(self, stock, tmp_path):
                stock.add(inventory.items.Item("saw", 1))
                stock._audit = []
                (tmp_path / "log.txt").write_text("filled")

            def test_fill(self, tmp_path):
                stock, spare = Stock(), Stock()
                self.fill(stock, tmp_path)
                counts = {name: 0 for name in ("saw", "hammer")}
                counts["saw"] += 1
                grid = [[0] * 3 for _ in range(3)]
                grid[1][2] = 5
                totals = dict.fromkeys(["a"], 0)
                totals["a"] = 1
                for kind in (Stock, Stock):
                    kind()._audit = None
                assert spare._audit is None or True
    """,
    "parametrize, marks, approx, warns and expected exits": """
        import math
        import re
        import pytest
        from inventory.parsing import parse_quantity

        pytestmark = pytest.mark.filterwarnings("error")

        @pytest.mark.parametrize(("text", "expected"), [("1", 1), pytest.param("2", 2, id="two")])
        def test_quantities(text, expected):
            assert parse_quantity(text) == expected
            assert 0.1 + 0.2 == pytest.approx(0.3)
            assert math.isclose(math.pi, 3.14159, rel_tol=1e-5)

        def test_cli_exits():
            with pytest.raises(SystemExit):
                parse_quantity(None)
            try:
                parse_quantity("x")
            except (KeyboardInterrupt, ValueError):
                pass
            with pytest.raises(ValueError, match=re.escape("bad (quantity)")):
                parse_quantity("-1")

        class TestGrouped:
            def test_in_a_class(self):
                assert type(parse_quantity("1")) is int
                assert type(parse_quantity("1")).__name__ == "int"

        if __name__ == "__main__":
            pass
    """,
    "async code and the standard library allowlist": """
        import asyncio
        import collections
        import dataclasses
        import decimal
        import enum
        import fractions
        import functools
        import itertools
        import json
        import operator
        import statistics
        import string
        import textwrap
        import typing
        import uuid
        from collections.abc import Mapping
        from io import StringIO

        class Colour(enum.Enum):
            RED = 1

        @dataclasses.dataclass(frozen=True)
        class Point:
            x: int
            y: int = 0

        def test_values():
            assert asyncio.run(asyncio.sleep(0, result=3)) == 3
            assert collections.Counter("aab")["a"] == 2 and isinstance({}, Mapping)
            assert dataclasses.replace(Point(1), y=2) == Point(1, 2)
            assert decimal.Decimal("1.10") == decimal.Decimal("1.1") and fractions.Fraction(2, 4).denominator == 2
            assert functools.reduce(operator.add, itertools.repeat(1, 3)) == 3
            assert statistics.mean([1, 2, 3]) == 2 and string.ascii_lowercase[0] == "a"
            assert textwrap.dedent("  a") == "a" and typing.cast(int, 1) == 1
            assert uuid.UUID(int=0).int == 0 and Colour.RED.value == 1
            counts = collections.Counter()
            counts["a"] += 1
            loaded = json.loads('{"a": [1]}')
            loaded["b"] = 2
            loaded["a"].append(2)
            buffer = StringIO()
            buffer.write("x")
            assert buffer.getvalue() == "x"
            assert "__init__" != "__eq__" and "a__b" and "{0.real}".format(1) == "1"
    """,
}


@pytest.mark.parametrize("source", list(ORDINARY.values()), ids=list(ORDINARY))
def test_ordinary_tests_pass_the_strict_screen(source: str) -> None:
    assert refusal(source) is None


def _target(qualname: str = "nest") -> Target:
    gap = Gap("shapes.py", qualname, "function", 1, 5, f"def {qualname}(v)", (2,), (), 0.0)
    return Target(gap=gap, module="shapes", source="", units=())


def _case(code: str, outcome: dict, imports: tuple[str, ...] = ("from shapes import nest",), setup: tuple[str, ...] = ()) -> dict:
    return {"imports": list(imports), "setup": list(setup), "code": code, "outcome": outcome}


def _value(*checks: tuple[str, str, str], imports: tuple[str, ...] = ()) -> dict:
    return {"kind": "value", "imports": list(imports), "checks": [list(check) for check in checks]}


def test_what_the_explorer_writes_passes_the_strict_screen() -> None:
    cases = [
        _case("nest(-1)", {"kind": "raise", "type": "Outer.Error", "module": "shapes", "match": "negative"}),
        _case("nest(9)", {"kind": "raise", "type": "SystemExit", "module": "builtins", "match": ""}),
        _case("nest(0)", {"kind": "raise", "type": "KeyboardInterrupt", "module": "builtins", "match": ""}),
        _case("nest(1)", _value(("result", "is", "True"))),
        _case("nest(2)", _value(("result", "==", "[Colour.RED, datetime.date(2024, 1, 1), decimal.Decimal('1.5')]"),
                                imports=("from shapes import Colour", "import datetime", "import decimal"))),
        _case("nest(3)", _value(("result", "==", "(math.inf, -math.inf, fractions.Fraction(1, 3))"),
                                imports=("import math", "import fractions"))),
        _case("nest(4)", _value(("result", "approx", "0.1"))),
        _case("list(itertools.islice(nest(5), 20))", _value(("len(result)", "==", "3")),
              imports=("from shapes import nest", "import itertools")),
        _case("nest(6)", _value(("result", "typename", "Box"))),
        _case("nest(7)", _value(("result", "isinstance", "types.FunctionType"), imports=("import types",))),
        _case("subject.bump(8)", _value(("subject.count", "==", "9"), ("result", "isinstance", "Outer.Inner"),
                                        imports=("from shapes import Outer",)),
              imports=("from shapes import counter",), setup=("subject = counter(0)", "subject.bump(1)")),
        _case("nest(10)", _value(("result", "==", "Point(x=1, y='__')"), imports=("from shapes import Point",))),
    ]
    source = render_pytest(_target(), cases)
    assert "pytest.raises(SystemExit" in source and "type(result).__name__ == 'Box'" in source
    assert unsafe_reason(source, frozenset({"shapes"})) is None


def test_the_explorer_checks_third_party_outcomes_without_importing_them(tmp_path: Path) -> None:
    """A method that returns and raises third-party types: checked by name and as Exception, not dropped."""
    root, summary = explore_one_module(tmp_path, "styled", textwrap.dedent("""\
        from rich.errors import StyleSyntaxError
        from rich.text import Text


        def styled(n: int):
            if n > 3:
                return Text(str(n))
            if n < 0:
                raise StyleSyntaxError("negative")
            return None
    """))
    (gap,) = summary["gaps"]
    assert set(gap["gained_lines"]) == {6, 7, 8, 9, 10} and gap["verdicts"].get("UNSAFE", 0) == 0, gap
    written = (root / "tests/covgen/test_styled_covgen.py").read_text()
    # The Text is checked through its public attributes, with no import of rich.
    assert "import rich" not in written and "from rich" not in written and "assert result.end == " in written, written
    assert "pytest.raises(Exception, match=re.escape('negative'))" in written


def test_permissive_mode_keeps_the_denylist() -> None:
    reads_the_environment = "import os\n\ndef test_x():\n    assert os.environ.get('HOME') is not None\n"
    assert "imports os" in (unsafe_reason(reads_the_environment, PROJECT) or "")
    assert unsafe_reason(reads_the_environment, PROJECT, mode="permissive") is None
    assert Screen("permissive").reason("import subprocess\n") == "imports subprocess (processes, network, signals or native code)"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import subprocess\ndef test_x():\n    subprocess.run(['ls'])\n", "imports subprocess"),
        ("from os import system\ndef test_x():\n    system('ls')\n", "imports os"),
        ("import os\ndef test_x():\n    os.remove('f')\n", "imports os"),
        ("import shutil\ndef test_x():\n    shutil.rmtree('.')\n", "imports shutil"),
        ("import pathlib\ndef test_x():\n    pathlib.Path('a').unlink()\n", "writes files with .unlink() outside tmp_path"),
        ("import socket\n", "imports socket"),
        ("import urllib.request\n", "imports urllib.request"),
        ("def test_x():\n    eval('1')\n", "uses eval()"),
        ("import os as o\ndef test_x():\n    o.fork()\n", "imports os"),
        ("import signal\n", "imports signal"),
        ("import ctypes\n", "imports ctypes"),
        ("import importlib\n", "imports importlib"),
        ("import inspect\n", "imports inspect"),
        ("import threading\n", "imports threading"),
        ("import pickle\n", "imports pickle"),
        ("import tempfile\n", "imports tempfile"),
        ("import gc\n", "imports gc"),
        ("import builtins\n", "imports builtins"),
        ("import multiprocessing\n", "imports multiprocessing"),
    ],
)
def test_the_screen_refuses_what_reaches_outside_a_test(source: str, reason: str) -> None:
    found = unsafe_reason(source, PROJECT)
    assert found is not None and reason in found, found


def test_project_modules_are_the_roots_and_src_packages(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "tool.py").write_text("")
    (tmp_path / "docs").mkdir()  # no __init__.py: not a package
    (tmp_path / "not-a-name.py").write_text("")
    (tmp_path / "src" / "lib").mkdir(parents=True)
    (tmp_path / "src" / "lib" / "__init__.py").write_text("")
    assert project_modules(tmp_path, ["scripts.run"]) == {"pkg", "tool", "lib", "scripts"}


def test_the_readme_documents_every_allowlisted_module_and_pytest_name() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## What a generated test may do"):]
    section = section[: section.index("\n## ", 4)]
    expected = [f"`{name}`" for name in [*policy.STDLIB, *policy.FIXTURE_ATTRIBUTES]] + [f"`pytest.{name}`" for name in policy.PYTEST_NAMES]
    assert [name for name in expected if name not in section] == []
    assert "--screen permissive" in section


def test_the_settings_and_the_command_line_accept_the_screen_mode(tmp_path: Path) -> None:
    from covgen.config import load_settings
    from covgen.errors import ConfigError

    (tmp_path / "pyproject.toml").write_text('[tool.covgen]\nscreen = "permissive"\n')
    assert load_settings(tmp_path, env={}).screen == "permissive"
    assert load_settings(tmp_path, {"screen": "strict"}, env={}).screen == "strict"
    with pytest.raises(ConfigError, match="COVGEN_SCREEN"):
        load_settings(tmp_path, env={"COVGEN_SCREEN": "off"})
    assert json.dumps(load_settings(tmp_path / "nowhere", env={}).screen) == '"strict"'


# --- end to end: the screen inside `covgen run` ----------------------------------------------------

SAVES_THROUGH_A_HELPER = fence("""
    from datetime import date
    from inventory.dates import quarter

    def save(tmp_path, text):
        (tmp_path / "quarter.txt").write_text(text)

    def test_quarter_is_saved(tmp_path):
        save(tmp_path, quarter(date(2024, 5, 1)))
        assert (tmp_path / "quarter.txt").read_text() == "2024-Q2"
""")
# Alone, `save` is undefined here and the call a harmless NameError; in the file covgen writes,
# it would be the other answer's helper, writing wherever this call says.
CALLS_ANOTHER_ANSWERS_HELPER = fence("""
    from datetime import date
    from pathlib import Path
    from inventory.dates import is_weekend

    def test_saturday_is_weekend():
        try:
            save(Path("../state"), "forged")
        except NameError:
            pass
        assert is_weekend(date(2024, 6, 1))
""")


def _run(root: Path, report: Path, tmp_path: Path, script: dict[str, list[list[str]]], *args: str) -> dict:
    summary_path = tmp_path / "summary.json"
    with StubServer(StubState(script=script)) as server:
        result = run_covgen(root, "--report", str(report), "--engine", "llm", "--model-url", server.url, "--candidates", "1",
                            "--max-attempts", "1", "--include", "inventory/dates.py", "--output", f"json:{summary_path}", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(summary_path.read_text())


def test_answers_that_meet_in_one_written_file_are_screened_together(project, tmp_path: Path) -> None:
    summary = _run(project["root"], project["report"], tmp_path,
                   {"quarter": [[SAVES_THROUGH_A_HELPER]], "is_weekend": [[CALLS_ANOTHER_ANSWERS_HELPER]]})
    by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}
    for gap in ("quarter", "is_weekend"):
        assert by_gap[gap]["accepted_tests"] == [] and by_gap[gap]["verdicts"] == {"UNSAFE": 1}, by_gap[gap]
        (rejected,) = by_gap[gap]["rejected"]
        assert rejected["message"].startswith("refused in the written file beside the other accepted tests: line ")
        assert "writes files with .write_text() outside tmp_path" in rejected["message"]
    assert summary["files_written"] == []


READS_THE_ENVIRONMENT = fence("""
    import os
    from datetime import date
    from inventory.dates import quarter

    def test_quarter_of_may_is_q2():
        assert os.sep and quarter(date(2024, 5, 1)) == "2024-Q2"
""")


def test_screen_permissive_runs_what_the_allowlist_refuses(project, tmp_path: Path) -> None:
    script = {"quarter": [[READS_THE_ENVIRONMENT]]}
    strict = _run(project["root"], project["report"], tmp_path, script)
    (quarter,) = [g for g in strict["gaps"] if g["id"].endswith("::quarter")]
    assert quarter["verdicts"] == {"UNSAFE": 1} and "imports os (not on covgen's import allowlist" in quarter["rejected"][0]["message"]

    permissive = _run(project["root"], project["report"], tmp_path, script, "--screen", "permissive")
    (quarter,) = [g for g in permissive["gaps"] if g["id"].endswith("::quarter")]
    assert quarter["accepted_tests"] == ["test_quarter_of_may_is_q2"]
