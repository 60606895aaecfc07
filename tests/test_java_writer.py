"""covgen.languages.java_writer, called directly: the JUnit files it renders, byte for byte, and that they compile.

Each case renders accepted tests of a small inventory library (tests/samples/java_inventory)
and compares the text with tests/golden/java_writer/<case>.java.golden. After a deliberate
change to the output, regenerate the golden files and review their diff:

    COVGEN_REGENERATE_GOLDEN=1 python3 -m pytest tests/test_java_writer.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from covgen import model
from covgen.errors import CovgenError
from covgen.languages import pack_named
from covgen.languages.java_writer import java_test_path, render_java, method_of_test
from covgen.model import Candidate, Gap, Verdict
from covgen.runners.java_toolchain import JAVA_LIB
from covgen.writer import AcceptedTest, Rendered, write_files

GOLDEN = Path(__file__).resolve().parent / "golden" / "java_writer"
SAMPLE = Path(__file__).resolve().parent / "samples" / "java_inventory"
FOCAL = "src/main/java/com/acme/inventory/Warehouse.java"
TARGET = "src/test/java/com/acme/inventory/WarehouseCovgenTest.java"
CLASS = "com.acme.inventory.WarehouseCovgenTest"
SKU = "src/main/java/com/acme/inventory/Sku.java"
SKU_TARGET = "src/test/java/com/acme/inventory/SkuCovgenTest.java"


def golden(case: str, text: str) -> None:
    path = GOLDEN / f"{case}.java.golden"
    if os.environ.get("COVGEN_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{case}: rendered text differs from {path}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLE, tmp_path, dirs_exist_ok=True)
    return tmp_path


def accept(candidate_id: str, qualname: str, source: str, *tests: str, lines: tuple[int, ...] = (29,),
           path: str = FOCAL) -> list[AcceptedTest]:
    """Every named test of one candidate, accepted for the gap `qualname` of `path` with the given gain."""
    gap = Gap(path=path, qualname=qualname, kind="method", start_line=27, end_line=36, signature=qualname,
              uncovered_lines=lines, missed_branches=(), coverage_ratio=0.5)
    candidate = Candidate(candidate_id, gap.id, "llm", 1, textwrap.dedent(source))
    return [AcceptedTest(model.TestVerdict(candidate_id, gap.id, test, Verdict.ACCEPTED, gained_lines=lines), candidate, gap)
            for test in tests]


def render(root: Path, *groups: list[AcceptedTest], test_dir: str = "") -> Rendered:
    return render_java([test for group in groups for test in group], root, test_dir=test_dir, provenance="engine: scripted")


def javac(root: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """Compile the library and the rendered tests together, as the confirming run will."""
    sources = [str(p) for p in (root / "src/main/java").rglob("*.java")] + [str(root / f) for f in files]
    return subprocess.run([shutil.which("javac") or "javac", "-d", str(root / "out"), "-cp", str(JAVA_LIB / "junit-platform-console-standalone.jar"),
                           *sources], capture_output=True, text=True, timeout=120)


RESERVE_A = """\
    package com.acme.inventory;

    import static org.junit.jupiter.api.Assertions.assertEquals;
    import static org.junit.jupiter.api.Assertions.assertThrows;

    import org.junit.jupiter.api.Test;

    class WarehouseTest {
        private static final Sku SKU = new Sku("ABC-123");

        private static Warehouse stocked(int quantity) {
            Warehouse warehouse = new Warehouse();
            warehouse.receive(SKU, quantity);
            return warehouse;
        }

        @Test
        void reservesWhatIsAvailable() {
            Warehouse warehouse = stocked(5);
            assertEquals(Warehouse.Status.HELD, warehouse.reserve(SKU, 5).status());
            assertEquals(0, warehouse.available(SKU));
        }

        @Test
        void refusesHugeReservations() {
            assertThrows(IllegalArgumentException.class, () -> stocked(1).reserve(SKU, 1001));
        }

        @Test
        void aTestThatWasRejected() {
            assertEquals(1, 2);
        }
    }
    """

# Shares the helper name `stocked` (another body), the constant SKU (the same) and the test name
# reservesWhatIsAvailable (another body) with A; a local also named `stocked` must stay.
RESERVE_B = """\
    package com.acme.inventory;

    import static org.junit.jupiter.api.Assertions.assertEquals;

    import org.junit.jupiter.api.Nested;
    import org.junit.jupiter.api.Test;
    import org.junit.jupiter.params.ParameterizedTest;
    import org.junit.jupiter.params.provider.MethodSource;

    public class WarehouseTest {
        private static final Sku SKU = new Sku("ABC-123");

        static Warehouse stocked(int quantity) {
            Warehouse warehouse = new Warehouse();
            warehouse.receive(SKU, quantity * 2);
            return warehouse;
        }

        static int[] quantities() {
            return new int[] {3, 4};
        }

        @Test
        void reservesWhatIsAvailable() {
            int stocked = 2;
            Warehouse warehouse = WarehouseTest.stocked(stocked);
            assertEquals(Warehouse.Status.HELD, warehouse.reserve(SKU, 4).status());
            assertEquals(1, warehouse.reservedCount());
        }

        @ParameterizedTest
        @MethodSource("quantities")
        void rejectsBeyondStock(int quantity) {
            assertEquals(Warehouse.Status.REJECTED, stocked(1).reserve(SKU, quantity).status());
        }

        @Nested
        class WhenEmpty {
            @Test
            void rejectsAnything() {
                assertEquals(Warehouse.Status.REJECTED, new Warehouse().reserve(SKU, 1).status());
                assertEquals(0, Helper.nothing());
            }
        }
    }

    class Helper {
        static int nothing() {
            return 0;
        }
    }
    """

# The same helper as A's, byte for byte, and A's test under another name; its own `quantities`
# (another body) clashes with B's and is named in its @MethodSource, which must follow the rename.
RESERVE_C = """\
    package com.acme.inventory;

    import static org.junit.jupiter.api.Assertions.assertEquals;

    import org.junit.jupiter.api.Test;
    import org.junit.jupiter.params.ParameterizedTest;
    import org.junit.jupiter.params.provider.MethodSource;

    class WarehouseReserveTest {
        private static final Sku SKU = new Sku("ABC-123");

        private static Warehouse stocked(int quantity) {
            Warehouse warehouse = new Warehouse();
            warehouse.receive(SKU, quantity);
            return warehouse;
        }

        static int[] quantities() {
            return new int[] {1, 2, 3};
        }

        @Test
        void holdsTheWholeStock() {
            Warehouse warehouse = stocked(5);
            assertEquals(Warehouse.Status.HELD, warehouse.reserve(SKU, 5).status());
            assertEquals(0, warehouse.available(SKU));
        }

        @ParameterizedTest
        @MethodSource("quantities")
        void holdsSmallAmounts(int quantity) {
            assertEquals(quantity, stocked(3).reserve(SKU, quantity).quantity());
        }
    }
    """


def three_candidates() -> list[list[AcceptedTest]]:
    return [
        accept("a", "Warehouse.reserve(Sku,int)", RESERVE_A, "WarehouseTest#reservesWhatIsAvailable", "WarehouseTest#refusesHugeReservations",
               lines=(29, 35)),
        accept("b", "Warehouse.reserve(Sku,int)", RESERVE_B, "WarehouseTest.reservesWhatIsAvailable()", "WarehouseTest#rejectsBeyondStock",
               "WarehouseTest$WhenEmpty#rejectsAnything", lines=(32,)),
        accept("c", "Warehouse.available(Sku)", RESERVE_C, "WarehouseReserveTest#holdsTheWholeStock", "holdsSmallAmounts", lines=(24,)),
    ]


def test_candidates_sharing_names_merge_into_one_class_that_compiles(project: Path) -> None:
    rendered = render(project, *three_candidates())
    assert list(rendered.contents) == [TARGET]
    text = rendered.contents[TARGET]
    golden("shared_names", text)
    assert rendered.node_ids == {
        ("a", "WarehouseTest#reservesWhatIsAvailable"): f"{CLASS}#reservesWhatIsAvailable",
        ("a", "WarehouseTest#refusesHugeReservations"): f"{CLASS}#refusesHugeReservations",
        ("b", "WarehouseTest.reservesWhatIsAvailable()"): f"{CLASS}#reservesWhatIsAvailable_2",
        ("b", "WarehouseTest#rejectsBeyondStock"): f"{CLASS}#rejectsBeyondStock",
        ("b", "WarehouseTest$WhenEmpty#rejectsAnything"): f"{CLASS}$WhenEmpty#rejectsAnything",
        # the same code as a's test: written once, both keys point at it
        ("c", "WarehouseReserveTest#holdsTheWholeStock"): f"{CLASS}#reservesWhatIsAvailable",
        ("c", "holdsSmallAmounts"): f"{CLASS}#holdsSmallAmounts",
    }
    assert rendered.tests_added == 6 and rendered.already_written == {}
    assert "aTestThatWasRejected" not in text  # only accepted tests are kept
    assert text.count("private static Warehouse stocked(int quantity)") == 1  # a's and c's identical helper, once
    assert "static Warehouse stocked_2(int quantity)" in text and "WarehouseCovgenTest.stocked_2(stocked)" in text
    assert '@MethodSource("quantities_2")' in text and "static int[] quantities_2()" in text


SET_UP_A = """\
    package com.acme.inventory;

    import static org.junit.jupiter.api.Assertions.assertEquals;

    import org.junit.jupiter.api.BeforeEach;
    import org.junit.jupiter.api.Test;

    class WarehouseTest {
        private Warehouse warehouse;
        private final Sku sku = new Sku("ABC-123");

        @BeforeEach
        void setUp() {
            warehouse = new Warehouse();
            warehouse.receive(sku, 1);
        }

        @Test
        void availableAfterReceiving() {
            assertEquals(1, warehouse.available(sku));
        }
    }
    """

# The same mutable field and another set-up: both set-ups run before every test, so B's field
# must be its own; B's parameter and lambda parameter named `warehouse` are not the field.
SET_UP_B = """\
    package com.acme.inventory;

    import static org.junit.jupiter.api.Assertions.assertEquals;

    import java.util.function.Function;
    import java.util.function.Supplier;
    import org.junit.jupiter.api.BeforeEach;
    import org.junit.jupiter.api.Test;

    class WarehouseTest {
        private Warehouse warehouse;
        private final Sku sku = new Sku("XYZ-999");

        @BeforeEach
        void setUp() {
            this.warehouse = new Warehouse();
            this.warehouse.receive(sku, 3);
        }

        private int count(Warehouse warehouse) {
            return warehouse.available(sku);
        }

        @Test
        void availableThroughAHelper() {
            Supplier<Warehouse> current = () -> warehouse;
            Function<Warehouse, Integer> reserved = warehouse -> warehouse.reservedCount();
            assertEquals(3, count(warehouse));
            assertEquals(0, reserved.apply(current.get()));
        }
    }
    """


def set_up_candidates() -> list[list[AcceptedTest]]:
    """Accepted for a gap of Sku, so they land in their own file (SkuCovgenTest)."""
    return [accept("a", "Sku.<init>(String)", SET_UP_A, "WarehouseTest#availableAfterReceiving", path=SKU),
            accept("b", "Sku.<init>(String)", SET_UP_B, "WarehouseTest#availableThroughAHelper", path=SKU)]


def test_candidates_with_their_own_set_up_keep_their_state_apart(project: Path) -> None:
    rendered = render(project, *set_up_candidates())
    text = rendered.contents[SKU_TARGET]
    golden("set_up_state", text)
    assert "private Warehouse warehouse_2;" in text and "this.warehouse_2.receive(sku_2, 3);" in text
    assert "() -> warehouse_2;" in text and "warehouse -> warehouse.reservedCount()" in text
    assert "count(warehouse_2)" in text and "private int count(Warehouse warehouse) {\n        return warehouse.available(sku_2);" in text
    write_files(project, rendered.contents)
    # accepted again on a later run, both candidates find their copies: nothing new
    again = render(project, *set_up_candidates())
    assert again.contents == {} and len(again.already_written) == 2
    assert again.node_ids[("b", "WarehouseTest#availableThroughAHelper")] == "com.acme.inventory.SkuCovgenTest#availableThroughAHelper"


def test_a_covgen_file_from_an_earlier_run_is_extended(project: Path) -> None:
    first = render(project, three_candidates()[0])
    write_files(project, first.contents)
    later = render(project, *three_candidates()[1:])
    text = later.contents[TARGET]
    golden("extended", text)
    # c's copy of a's test is in the file already: REDUNDANT, not written again
    assert later.already_written == {("c", "WarehouseReserveTest#holdsTheWholeStock"): TARGET}
    assert later.node_ids[("c", "WarehouseReserveTest#holdsTheWholeStock")] == f"{CLASS}#reservesWhatIsAvailable"
    assert later.tests_added == 4
    assert text.count("void reservesWhatIsAvailable()") == 1 and "void reservesWhatIsAvailable_2()" in text
    header = text.split("\npackage ", 1)[0].splitlines()
    assert header[2:5] == [
        "//   Warehouse.reserve(Sku,int): +2 lines by 2 tests (lines 29, 35)",
        "//   Warehouse.reserve(Sku,int): +1 lines by 3 tests (lines 32)",
        "//   Warehouse.available(Sku): +1 lines (lines 24)",
    ]
    write_files(project, later.contents)
    # nothing new: a third run with the same candidates adds nothing and writes nothing
    again = render(project, *three_candidates())
    assert again.contents == {} and again.tests_added == 0


@pytest.mark.e2e
def test_the_rendered_classes_compile_and_pass_on_the_junit_platform(project: Path) -> None:
    """One javac and one JVM for every case above: a merge that breaks a test shows here."""
    write_files(project, render(project, three_candidates()[0]).contents)
    write_files(project, render(project, *three_candidates()[1:]).contents)
    write_files(project, render(project, *set_up_candidates()).contents)
    compiled = javac(project, TARGET, SKU_TARGET)
    assert compiled.returncode == 0, compiled.stderr
    ran = subprocess.run([shutil.which("java") or "java", "-jar", str(JAVA_LIB / "junit-platform-console-standalone.jar"),
                          "-cp", str(project / "out"), "--select-package", "com.acme.inventory", "--details=summary",
                          "--disable-banner"], capture_output=True, text=True, timeout=300)
    # Warehouse: four plain tests and five parameterized cases; Sku: the two set-up tests
    assert "[        11 tests successful      ]" in ran.stdout and "[         0 tests failed          ]" in ran.stdout, ran.stdout


def test_a_file_covgen_did_not_write_is_never_touched(project: Path) -> None:
    foreign = project / TARGET
    foreign.parent.mkdir(parents=True)
    foreign.write_text("package com.acme.inventory;\n\nclass WarehouseCovgenTest {\n}\n", encoding="utf-8")
    rendered = render(project, three_candidates()[0])
    assert rendered.contents == {} and rendered.node_ids == {} and rendered.tests_added == 0
    with pytest.raises(CovgenError, match="was not written by covgen"):
        write_files(project, {TARGET: "// covgen: generated tests\n"})
    assert foreign.read_text(encoding="utf-8").startswith("package com.acme.inventory;")


def test_the_test_file_sits_in_the_focal_package_under_the_test_dir(project: Path) -> None:
    assert java_test_path(FOCAL) == TARGET
    assert java_test_path(FOCAL, "tests/covgen") == TARGET  # covgen's Python default: not a choice of the user
    assert java_test_path(FOCAL, "it/java/") == "it/java/com/acme/inventory/WarehouseCovgenTest.java"
    assert java_test_path("lib/src/com/acme/Money.java", "", package="com.acme") == "src/test/java/com/acme/MoneyCovgenTest.java"
    # the package line wins over folders that do not spell it
    odd = project / "src/com/acme/inventory/Odd.java"
    odd.parent.mkdir(parents=True)
    odd.write_text("/* package wrong; */\npackage com.acme.inventory;\n\npublic class Odd {\n}\n", encoding="utf-8")
    rendered = render_java(accept("x", "Odd.m()", RESERVE_C, "holdsSmallAmounts")[:0] + [
        AcceptedTest(t.verdict, t.candidate, Gap("src/com/acme/inventory/Odd.java", "Odd.m()", "method", 1, 2, "m", (2,), (), 0.0))
        for t in accept("x", "Odd.m()", RESERVE_C, "holdsSmallAmounts")], project, test_dir="", provenance="")
    assert list(rendered.contents) == ["src/test/java/com/acme/inventory/OddCovgenTest.java"]
    assert "\npackage com.acme.inventory;\n" in rendered.contents["src/test/java/com/acme/inventory/OddCovgenTest.java"]


def test_the_java_pack_renders_and_places_through_the_writer(project: Path) -> None:
    pack = pack_named("java")
    assert pack is not None
    assert pack.test_path(FOCAL, "tests/covgen") == TARGET
    rendered = pack.render(three_candidates()[0], project, test_dir="tests/covgen", provenance="engine: scripted")
    assert list(rendered.contents) == [TARGET]


@pytest.mark.parametrize(("name", "expected"), [
    ("WarehouseTest#reserves", ("WarehouseTest", "reserves")),
    ("WarehouseTest$WhenEmpty#rejects", ("WarehouseTest$WhenEmpty", "rejects")),
    ("com.acme.inventory.WarehouseTest$WhenEmpty#rejects", ("WarehouseTest$WhenEmpty", "rejects")),
    ("WarehouseTest.reserves()", ("WarehouseTest", "reserves")),
    ("WarehouseTest.rejects(int) [2] 4", ("WarehouseTest", "rejects")),
    ("reserves", (None, "reserves")),
])
def test_funnel_test_names_are_read_in_every_form(name: str, expected: tuple[str | None, str]) -> None:
    assert method_of_test(name) == expected


def test_a_covgen_file_edited_into_nonsense_is_one_clear_error(project: Path) -> None:
    broken = project / TARGET
    broken.parent.mkdir(parents=True)
    broken.write_text("// covgen: generated tests for it\n// then someone deleted the class\n", encoding="utf-8")
    with pytest.raises(CovgenError, match="WarehouseCovgenTest.java: covgen wrote this file but it no longer holds a class"):
        render(project, three_candidates()[0])
