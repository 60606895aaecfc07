"""Source units: spans, qualnames and signatures for Python (libcst) and Java (javalang/tree-sitter)."""

from __future__ import annotations

import textwrap

import pytest

from covgen import SourceError
from covgen.languages import find_units
from covgen.languages.java import _JavalangReader, _TreeSitterReader, erase_type, find_java_units, match_report_method
from covgen.model import ReportMethod

PYTHON = textwrap.dedent(
    '''\
    import os
    from typing import Any


    class Account:
        """A ledger account."""

        def __init__(self, owner: str) -> None:
            self.owner = owner

        @property
        def label(self) -> str:
            """Shown in statements."""
            return self.owner.title()

        @label.setter
        def label(self, value: str) -> None:
            self.owner = value

        @staticmethod
        @functools.cache
        def parse(text: str) -> "Account":
            return Account(text)

        @classmethod
        def empty(cls) -> "Account":
            return cls("")

        async def sync(self, *, timeout: float = 1.0) -> None:
            def retry() -> int:
                return 1

            class Local:
                def run(self) -> None:
                    pass

            return None

        def _secret(self):
            return 42


    def top(a, b=2, *args, **kwargs):
        return a
    '''
)


def test_python_units_match_coverage_py_region_names() -> None:
    units = {u.qualname: u for u in find_units("python", PYTHON, "m.py")}
    assert list(units) == [
        "Account.__init__", "Account.label", "Account.parse", "Account.empty", "Account.sync",
        "Account.sync.retry", "Account.sync.Local.run", "Account._secret", "top",
    ]
    assert units["Account.__init__"].kind == "constructor"
    assert units["Account.parse"].kind == "staticmethod"
    assert units["Account.empty"].kind == "classmethod"
    assert units["Account.sync"].kind == "method"
    assert units["top"].kind == "function"
    assert not units["Account._secret"].is_public and units["Account.__init__"].is_public


def test_python_spans_include_decorators_and_exclude_nested_definitions() -> None:
    units = {u.qualname: u for u in find_units("python", PYTHON, "m.py")}
    parse = units["Account.parse"]
    assert (parse.start_line, parse.end_line) == (20, 23)
    assert parse.signature == '@staticmethod\n@functools.cache\ndef parse(text: str) -> "Account"'
    sync = units["Account.sync"]
    assert (sync.start_line, sync.end_line) == (29, 37)
    # Nested bodies belong to the nested units; their def/class lines run with the parent.
    assert sync.nested_spans == ((31, 31), (34, 35))
    assert sync.body_start_line == 30
    assert sync.owns(30) and sync.owns(33) and sync.owns(37) and not sync.owns(31) and not sync.owns(29)
    assert sync.signature == "async def sync(self, *, timeout: float = 1.0) -> None"


def test_python_docstring_constructor_and_imports() -> None:
    units = {u.qualname: u for u in find_units("python", PYTHON, "m.py")}
    # Two definitions named label (getter and setter) are two units with one qualname, as in coverage.py.
    getter = next(u for u in find_units("python", PYTHON, "m.py") if u.qualname == "Account.label")
    assert getter.docstring == "Shown in statements." and getter.kind == "property"
    assert units["Account.empty"].constructor == "def __init__(self, owner: str) -> None"
    assert units["top"].imports == ("import os", "from typing import Any")


def test_python_parse_error_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="bad.py"):
        find_units("python", "def broken(:\n", "bad.py")


JAVA8 = textwrap.dedent(
    """\
    package com.acme;

    import java.util.List;
    import java.util.Map;

    public class Store<T> {
        private final int size;

        @Deprecated
        public Store(int size) {
            this.size = size;
        }

        Store() { this(0); }

        /** Put things. */
        @SuppressWarnings("unchecked")
        public <U> List<U> put(final String key, int[] values, T item, Map<String, List<U>> extra, long... rest)
                throws Exception {
            Runnable r = new Runnable() {
                @Override
                public void run() {
                    System.out.println("} not a brace {");
                }
            };
            return null;
        }

        public int put(String key) {
            return key.length();
        }

        interface Listener {
            void changed(String key);
        }

        enum Kind {
            A, B;

            Kind() {
            }

            boolean first() { return this == A; }
        }

        static class Entry {
            Entry(String k) {
            }
        }
    }
    """
)


@pytest.mark.parametrize("reader", [_JavalangReader, _TreeSitterReader])
def test_java_units_from_both_parsers(reader) -> None:
    units = {u.qualname: u for u in reader(JAVA8, "Store.java").units()}
    assert list(units) == [
        "Store.<init>(int)", "Store.<init>()", "Store.put(String,int[],T,Map,long[])", "Store$1.run()",
        "Store.put(String)", "Store.Listener.changed(String)", "Store.Kind.<init>()", "Store.Kind.first()",
        "Store.Entry.<init>(String)",
    ]
    put = units["Store.put(String,int[],T,Map,long[])"]
    assert (put.start_line, put.end_line) == (17, 27)
    assert put.nested_spans == ((21, 24),)
    assert put.signature.startswith('@SuppressWarnings("unchecked") public') and put.signature.endswith("throws Exception")
    assert put.package == "com.acme" and put.imports == ("import java.util.List;", "import java.util.Map;")
    assert units["Store.<init>(int)"].start_line == 9
    assert units["Store.<init>(int)"].constructor == units["Store.<init>(int)"].signature
    assert units["Store.Listener.changed(String)"].is_public
    assert not units["Store$1.run()"].is_public


MODERN = textwrap.dedent(
    '''\
    package m;

    public sealed interface Shape permits Circle, Square {
        double area();
    }

    record Point(int x, int y) {
        Point {
            if (x < 0) throw new IllegalArgumentException();
        }

        static String describe(Object o) {
            return switch (o) {
                case Integer i when i > 0 -> "positive";
                default -> {
                    yield """
                        text block""";
                }
            };
        }
    }
    '''
)


def test_modern_java_falls_back_to_tree_sitter() -> None:
    with pytest.raises(Exception):
        _JavalangReader(MODERN, "Shape.java")
    units = {u.qualname: u for u in find_java_units(MODERN, "Shape.java")}
    assert list(units) == ["Shape.area()", "Point.<init>(int,int)", "Point.describe(Object)"]
    assert (units["Point.describe(Object)"].start_line, units["Point.describe(Object)"].end_line) == (12, 20)


def test_jacoco_methods_match_overloads_by_line_and_descriptor() -> None:
    units = find_java_units(JAVA8, "Store.java")
    by_line = match_report_method(units, ReportMethod("Store.put", 29, descriptor="(Ljava/lang/String;)I"))
    assert by_line is not None and by_line.qualname == "Store.put(String)"
    no_line = match_report_method(units, ReportMethod("Store.put", None, descriptor="(Ljava/lang/String;)I"))
    assert no_line is not None and no_line.qualname == "Store.put(String)"
    ctor = match_report_method(units, ReportMethod("Store.<init>", None, descriptor="(I)V"))
    assert ctor is not None and ctor.qualname == "Store.<init>(int)"
    # javac prepends an enum constant's name and ordinal to its constructor's descriptor.
    enum_ctor = match_report_method(units, ReportMethod("Store.Kind.<init>", None, descriptor="(Ljava/lang/String;I)V"))
    assert enum_ctor is not None and enum_ctor.qualname == "Store.Kind.<init>()"
    anonymous = match_report_method(units, ReportMethod("Store$1.run", 23, descriptor="()V"))
    assert anonymous is not None and anonymous.qualname == "Store$1.run()"
    assert match_report_method(units, ReportMethod("Store.missing", 3, descriptor="()V")) is None


def test_erase_type() -> None:
    assert erase_type("java.util.Map<String, List<Integer>>") == "Map"
    assert erase_type("int [ ]") == "int[]"
    assert erase_type("T...") == "T[]"


def test_unparsable_java_is_a_source_error() -> None:
    with pytest.raises(SourceError):
        find_java_units("this is not java at all {{{", "X.java")


def test_each_file_finds_its_language_pack_and_a_pack_says_what_it_has_not() -> None:
    from covgen.languages import pack_for
    from covgen.sandbox import SandboxPolicy

    python, java = pack_for("src/pkg/mod.py"), pack_for("app/src/main/java/com/acme/Money.java")
    assert python is not None and java is not None and pack_for("README.md") is None
    assert (python.name, python.not_yet) == ("python", "") and (java.name, java.not_yet) == ("java", "")
    assert python.module_name("src/pkg/mod.py") == "pkg.mod"
    assert python.test_path("src/pkg/mod.py", "tests/covgen") == "tests/covgen/test_pkg_mod_covgen.py"
    assert java.module_name("app/src/main/java/com/acme/Money.java") == "com.acme.Money"
    assert java.test_path("app/src/main/java/com/acme/Money.java", "src/test/java") == "src/test/java/com/acme/MoneyCovgenTest.java"
    # JUnit tests come from a model: there is no model-free engine for Java.
    assert java.explorer("python3", SandboxPolicy(), seed=0, screen="strict", max_attempts=None) is None
    assert python.explorer("python3", SandboxPolicy(), seed=0, screen="strict", max_attempts=None) is not None
