"""covgen.screen.java: what a generated JUnit test may do, attack by attack.

Each attack is a realistic test class with one hostile line; the screen must refuse it and say
which construct on which line, because that sentence goes back to the model. The good tests are
what a model writes for real library code (AssertJ, parameterized tests, @TempDir, @Nested,
lambdas, streams) and must all pass untouched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from covgen.languages import pack_named
from covgen.screen import Screen
from covgen.screen.java import JavaScreen, decode_unicode_escapes, project_packages

PACKAGES = ("com.acme.inventory",)
STRICT = JavaScreen("strict", PACKAGES)
PERMISSIVE = JavaScreen("permissive", PACKAGES)


def source_with(body: str, imports: str = "", package: str = "com.acme.inventory") -> str:
    """A test class whose test method holds `body` (line 9 is the body's first line)."""
    return (f"package {package};\n"
            "\n"
            "import static org.junit.jupiter.api.Assertions.assertEquals;\n"
            "import org.junit.jupiter.api.Test;\n"
            f"{imports or '// no extra imports'}\n"
            "\n"
            "class WarehouseTest {\n"
            "    @Test void reserves() {\n"
            f"        {body}\n"
            "    }\n"
            "}\n")


# (id, body, extra imports, the line, the words the reason must hold)
ATTACKS = [
    ("exit", "System.exit(0);", "", 9, "System.exit is not allowed: a test may not end the JVM"),
    ("exit-qualified", "java.lang.System.exit(0);", "", 9, "java.lang.System.exit is not allowed: a test may not end the JVM"),
    ("exit-unicode", r"\u0053ystem.exit(0);", "", 9, "System.exit is not allowed"),
    ("exit-unicode-many-u", r"System.\uuu0065xit(0);", "", 9, "System.exit is not allowed"),
    ("exit-unicode-newline-in-comment", r"// harmless \u000a System.exit(0);", "", 10, "System.exit is not allowed"),
    ("exit-after-carriage-return", "// harmless \r System.exit(0);", "", 10, "System.exit is not allowed"),
    ("exit-after-escaped-carriage-return", r"// harmless \u000d System.exit(0);", "", 10, "System.exit is not allowed"),
    ("exit-with-ignorable-characters", "Sys\u200btem.ex\u0000it(0);", "", 9, "System.exit is not allowed"),
    ("exit-with-escaped-ignorable-characters", r"Sys\u200btem.exit(0);", "", 9, "System.exit is not allowed"),
    ("exit-static-import", "exit(0);", "import static java.lang.System.exit;", 5, "import static java.lang.System.exit is not allowed"),
    ("exit-static-wildcard", "out.println(1);", "import static java.lang.System.*;", 5, "import static java.lang.System.* is not allowed"),
    ("exit-method-reference", "java.util.function.IntConsumer quit = System::exit;", "", 9, "System.exit is not allowed"),
    ("halt", "Runtime.getRuntime().halt(1);", "", 9, "Runtime is not allowed: a test may not end the JVM"),
    ("runtime-var", "var rt = Runtime.getRuntime();", "", 9, "Runtime is not allowed"),
    ("exit-through-project", "Env.runtime().exit(1);", "", 9, ".exit() is not allowed: a test may not end the JVM"),
    ("process", 'new ProcessBuilder("sh", "-c", "id").start();', "", 9, "ProcessBuilder is not allowed: a test may not start processes"),
    ("thread", "new Thread(() -> {}).start();", "", 9, "Thread is not allowed: a test may not start threads"),
    ("executor", "Executors.newSingleThreadExecutor();", "import java.util.concurrent.Executors;", 5, "java.util.concurrent.Executors is not allowed"),
    ("parallel-stream", "java.util.List.of(1, 2).parallelStream().count();", "", 9, "parallelStream() is not allowed"),
    ("forname-concatenated", 'Class.forName("java.lang." + "Run" + "time");', "", 9, ".forName() is not allowed: a test may not load classes"),
    ("reflection-import", "Method m = null;", "import java.lang.reflect.Method;", 5, "import java.lang.reflect.Method is not allowed: a test may not use reflection"),
    ("reflection-qualified", "java.lang.reflect.Field f = null;", "", 9, "java.lang.reflect.Field is not allowed"),
    ("declared-field", 'Object f = Warehouse.class.getDeclaredField("onHand");', "", 9, ".getDeclaredField() is not allowed"),
    ("set-accessible", "field.setAccessible(true);", "", 9, ".setAccessible() is not allowed"),
    ("method-handles", "MethodHandles.lookup();", "import java.lang.invoke.MethodHandles;", 5, "import java.lang.invoke.MethodHandles is not allowed"),
    ("class-loader", "getClass().getClassLoader();", "", 9, ".getClassLoader() is not allowed"),
    ("set-out", "System.setOut(null);", "", 9, "System.setOut is not allowed: a test may not change the JVM's global state"),
    ("set-out-through-a-variable", "System system = null; system.setOut(null);", "", 9,
     "System as a type is not allowed: use System's members as System.member only"),
    ("set-out-through-a-qualified-variable", "java.lang.System system = null; system.getenv();", "", 9,
     "System as a type is not allowed"),
    ("set-property", 'System.setProperty("user.dir", "/");', "", 9, "System.setProperty is not allowed"),
    ("properties-object", 'System.getProperties().put("a", "b");', "", 9, "System.getProperties is not allowed"),
    ("getenv", 'String home = System.getenv("HOME");', "", 9, "System.getenv is not allowed: a test may not read the environment"),
    ("load-library", 'System.loadLibrary("evil");', "", 9, "System.loadLibrary is not allowed"),
    ("file", 'new java.io.File("/etc/passwd").delete();', "", 9, "java.io.File is not allowed: a test may touch files only in a @TempDir"),
    ("file-output", 'new FileOutputStream("x");', "import java.io.FileOutputStream;", 5, "import java.io.FileOutputStream is not allowed"),
    ("nio-without-tempdir", 'Files.delete(Path.of("pom.xml"));', "import java.nio.file.Files;", 5, "import java.nio.file.Files is not allowed: a test may touch files only in a @TempDir"),
    ("nio-qualified", 'java.nio.file.Files.readString(java.nio.file.Path.of("/etc/shadow"));', "", 9, "java.nio.file.Files.readString is not allowed"),
    ("socket", 'new java.net.Socket("example.com", 80);', "", 9, "java.net.Socket is not allowed: a test may not use the network"),
    ("url-import", 'new URL("http://x").openStream();', "import java.net.URL;", 5, "import java.net.URL is not allowed: a test may not use the network"),
    ("unsafe", "Object u = sun.misc.Unsafe.class;", "", 9, "sun.misc.Unsafe is not allowed"),
    ("jdk-internal", "", "import jdk.internal.misc.Unsafe;", 5, "import jdk.internal.misc.Unsafe is not allowed"),
    ("jacoco", "", "import org.jacoco.agent.rt.RT;", 5, "import org.jacoco.agent.rt.RT is not allowed: a test may not reach covgen's runner"),
    ("junit-platform", "", "import org.junit.platform.launcher.core.LauncherFactory;", 5, "is not allowed: a test may not reach covgen's runner"),
    ("covgen-launcher", "covgen.jvm.CovgenLauncher.main(null);", "", 9, "covgen.jvm.CovgenLauncher.main is not allowed"),
    ("package-hidden-behind-a-variable", 'int java = 0; java.nio.file.Files.delete(java.nio.file.Path.of("pom.xml"));', "", 9,
     "java.nio.file.Files.delete is not allowed"),
    ("own-extension", "", "import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;", 5,
     "is not allowed: a test may not install JUnit extensions of its own"),
    ("foreign-function-linker", "Linker.nativeLinker();", "import java.lang.foreign.Linker;", 5,
     "import java.lang.foreign.Linker is not allowed: a test may not load classes or native code"),
    ("java-lang-subpackage", "", "import java.lang.runtime.ObjectMethods;", 5, "import java.lang.runtime.ObjectMethods is not allowed"),
    ("java-lang-unknown-subpackage", "", "import java.lang.someday.Thing;", 5, "import java.lang.someday.Thing is not allowed"),
    ("other-library", "com.google.common.io.Files.touch(null);", "", 9, "a generated test may use only java.lang, java.util"),
    ("other-library-import", "", "import org.apache.commons.io.FileUtils;", 5, "import org.apache.commons.io.FileUtils is not allowed"),
    ("parallel-execution", "", "import org.junit.jupiter.api.parallel.Execution;", 5, "import org.junit.jupiter.api.parallel.Execution is not allowed"),
    ("scanner-on-a-file", 'new java.util.Scanner(new java.io.File("x"));', "", 9, "java.util.Scanner is not allowed"),
    ("formatter-writes-file", 'new java.util.Formatter("out.txt");', "", 9, "java.util.Formatter is not allowed"),
]


@pytest.mark.parametrize(("body", "imports", "line", "reason"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_each_attack_is_refused_with_the_construct_and_its_line(body: str, imports: str, line: int, reason: str) -> None:
    refused = STRICT.reason(source_with(body, imports))
    assert refused is not None, body
    assert refused.startswith(f"line {line}: "), refused
    assert reason in refused


def test_the_whole_message_is_one_readable_sentence() -> None:
    assert STRICT.reason(source_with("System.exit(0);")) == "line 9: System.exit is not allowed: a test may not end the JVM"


CLASS_ATTACKS = [
    ("shadowing-system", "class System { static void exit(int code) { } }", 2, "a type named System is not allowed: it would shadow java.lang.System"),
    ("nested-shadowing-string", "class T { static class String { } }", 2, "a type named String is not allowed"),
    ("static-initializer", "class T {\n    static {\n        Runtime.getRuntime();\n    }\n}", 3,
     "static { ... } is not allowed: a static initializer may only assign constants"),
    ("static-initializer-call", "class T { static int n; static { n = Integer.parseInt(\"3\"); } }", 2,
     "static { ... } is not allowed: a static initializer may only assign constants"),
    ("native", "class T { native void boom(); }", 2, "native is not allowed"),
    ("method-source-elsewhere", 'class T { @org.junit.jupiter.params.ParameterizedTest @org.junit.jupiter.params.provider.MethodSource('
     '"java.lang.Runtime#getRuntime") void t(Object o) { } }', 2, 'MethodSource("java.lang.Runtime#getRuntime") is not allowed'),
    ("enabled-if-elsewhere", 'class T { @org.junit.jupiter.api.condition.EnabledIf("com.acme.Evil#run") void t() { } }', 2,
     'EnabledIf("com.acme.Evil#run") is not allowed'),
    ("unparseable-text-block", 'class T { String s = """\n  System.exit(0)\n  """; }', 0, "the screen cannot"),
]


@pytest.mark.parametrize(("code", "line", "reason"), [a[1:] for a in CLASS_ATTACKS], ids=[a[0] for a in CLASS_ATTACKS])
def test_class_level_attacks_are_refused(code: str, line: int, reason: str) -> None:
    refused = STRICT.reason(f"package com.acme.inventory;\n{code}\n")
    assert refused is not None
    assert reason in refused
    if line:
        assert refused.startswith(f"line {line}: "), refused


@pytest.mark.parametrize("package", ["covgen.jvm", "java.lang", "org.junit.platform.engine", "org.jacoco.agent.rt"])
def test_a_test_may_not_sit_in_the_runners_or_the_jdks_package(package: str) -> None:
    for screen in (STRICT, PERMISSIVE, JavaScreen("strict", ())):
        refused = screen.reason(f"package {package};\nclass T {{ }}\n")
        assert refused is not None and refused.startswith(f"line 1: package {package} is not allowed"), refused


def test_a_package_outside_the_project_is_refused_when_the_project_is_known() -> None:
    refused = STRICT.reason("package org.example.elsewhere;\nclass T { }\n")
    assert refused == ("line 1: package org.example.elsewhere is not allowed: a generated test lives in a package "
                       "of the project (its focal class's)")


GOOD = {
    "assertj-and-project-types": """\
        package com.acme.inventory;

        import static org.assertj.core.api.Assertions.assertThat;
        import static org.assertj.core.api.Assertions.assertThatThrownBy;

        import java.util.List;
        import java.util.Map;
        import java.util.stream.Collectors;
        import org.junit.jupiter.api.BeforeEach;
        import org.junit.jupiter.api.DisplayName;
        import org.junit.jupiter.api.Test;

        @DisplayName("Warehouse reservations")
        class WarehouseCovgenTest {
            private Warehouse warehouse;
            private final Sku sku = new Sku("ABC-123");

            @BeforeEach
            void setUp() {
                warehouse = new Warehouse();
                warehouse.receive(sku, 5);
            }

            @Test
            void rejectsMoreThanAvailable() {
                Warehouse.Reservation reservation = warehouse.reserve(sku, 6);
                assertThat(reservation.status()).isEqualTo(Warehouse.Status.REJECTED);
                assertThat(warehouse.reservedCount()).isZero();
            }

            @Test
            void refusesHugeReservations() {
                assertThatThrownBy(() -> warehouse.reserve(sku, Warehouse.MAX_RESERVATION + 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("too many");
            }

            @Test
            void groupsByStatus() {
                Map<Warehouse.Status, Long> counts = List.of(3, 9, 1).stream()
                    .map(quantity -> warehouse.reserve(sku, quantity).status())
                    .collect(Collectors.groupingBy(status -> status, Collectors.counting()));
                assertThat(counts).containsEntry(Warehouse.Status.HELD, 2L);
                System.out.println(counts);
                String line = System.lineSeparator();
                assertThat(line).isNotEmpty();
            }
        }
        """,
    "parameterized-and-nested": """\
        package com.acme.inventory;

        import static org.junit.jupiter.api.Assertions.assertEquals;
        import static org.junit.jupiter.api.Assertions.assertThrows;

        import java.math.BigDecimal;
        import java.time.LocalDate;
        import java.util.concurrent.atomic.AtomicInteger;
        import java.util.stream.Stream;
        import org.junit.jupiter.api.Nested;
        import org.junit.jupiter.api.Test;
        import org.junit.jupiter.params.ParameterizedTest;
        import org.junit.jupiter.params.provider.Arguments;
        import org.junit.jupiter.params.provider.CsvSource;
        import org.junit.jupiter.params.provider.MethodSource;
        import org.junit.jupiter.params.provider.ValueSource;

        class SkuCovgenTest {
            static final int LIMIT;
            static {
                LIMIT = 3 * 2;
            }

            static Stream<Arguments> codes() {
                return Stream.of(Arguments.of("ABC-123", true), Arguments.of("abc", false));
            }

            @ParameterizedTest
            @ValueSource(strings = {"", "AB-1", "ABCD-123"})
            void rejectsMalformedCodes(String code) {
                assertThrows(IllegalArgumentException.class, () -> new Sku(code));
            }

            @ParameterizedTest
            @CsvSource({"ABC-123, ABC-123", "XYZ-999, XYZ-999"})
            void keepsTheCode(String code, String expected) {
                assertEquals(expected, new Sku(code).code());
            }

            @ParameterizedTest
            @MethodSource("codes")
            void validates(String code, boolean valid) {
                AtomicInteger made = new AtomicInteger();
                try {
                    new Sku(code);
                    made.incrementAndGet();
                } catch (IllegalArgumentException expected) {
                    assertEquals(false, valid);
                }
                assertEquals(valid ? 1 : 0, made.get());
            }

            @Nested
            class Equality {
                @Test
                void equalCodesAreEqual() {
                    assertEquals(new Sku("ABC-123"), new Sku("ABC-123"));
                    assertEquals(new BigDecimal("1.0").scale(), LocalDate.of(2024, 1, 1).getDayOfMonth());
                }
            }
        }
        """,
    "tempdir": """\
        package com.acme.inventory;

        import static org.junit.jupiter.api.Assertions.assertEquals;

        import java.io.IOException;
        import java.nio.charset.StandardCharsets;
        import java.nio.file.Files;
        import java.nio.file.Path;
        import org.junit.jupiter.api.Test;
        import org.junit.jupiter.api.io.TempDir;

        class StockFileCovgenTest {
            @TempDir
            Path dir;

            @Test
            void roundTrips() throws IOException {
                Path file = dir.resolve("stock.csv");
                Files.writeString(file, "ABC-123,5", StandardCharsets.UTF_8);
                assertEquals("ABC-123,5", Files.readString(file));
            }
        }
        """,
    "mockito-and-hamcrest": """\
        package com.acme.inventory;

        import static org.hamcrest.MatcherAssert.assertThat;
        import static org.hamcrest.Matchers.is;
        import static org.mockito.Mockito.mock;
        import static org.mockito.Mockito.verify;
        import static org.mockito.Mockito.when;

        import java.util.function.Supplier;
        import org.junit.jupiter.api.Test;
        import org.junit.jupiter.api.extension.ExtendWith;
        import org.mockito.Mock;
        import org.mockito.junit.jupiter.MockitoExtension;

        @ExtendWith(MockitoExtension.class)
        class SupplierCovgenTest {
            @Mock
            Supplier<Integer> counter;

            @Test
            @SuppressWarnings("unchecked")
            void asksTheSupplierOnce() {
                Supplier<String> supplier = mock(Supplier.class);
                when(supplier.get()).thenReturn("ABC-123");
                when(counter.get()).thenReturn(3);
                assertThat(new Sku(supplier.get()).code(), is("ABC-123"));
                verify(supplier).get();
                String escaped = "\\\\u0053ystem.exit";
                assertThat(escaped.length(), is(16));
            }
        }
        """,
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_realistic_tests_are_allowed(name: str) -> None:
    assert STRICT.reason(textwrap.dedent(GOOD[name])) is None
    assert PERMISSIVE.reason(textwrap.dedent(GOOD[name])) is None


def test_permissive_mode_keeps_only_the_short_denylist() -> None:
    assert PERMISSIVE.reason(source_with("System.exit(0);")) == "line 9: System.exit is not allowed: a test may not end the JVM"
    assert PERMISSIVE.reason(source_with('new ProcessBuilder("id").start();')) is not None
    assert PERMISSIVE.reason(source_with('new java.net.Socket("h", 1);')) is not None
    assert PERMISSIVE.reason(source_with('getClass().getDeclaredMethod("x");')) is not None
    # what only strict refuses: threads, files, other libraries
    for body in ("new Thread(() -> {}).start();", 'new java.io.File("x").exists();', "com.google.common.base.Strings.repeat(\"a\", 2);"):
        assert STRICT.reason(source_with(body)) is not None
        assert PERMISSIVE.reason(source_with(body)) is None


def test_unicode_escapes_decode_as_javac_decodes_them() -> None:
    assert decode_unicode_escapes(r"\u0053ystem") == "System"
    assert decode_unicode_escapes(r"\uuuu0041") == "A"
    # an escaped backslash does not start an escape: "\\u0041" in a string is six characters
    assert decode_unicode_escapes(r'"\\u0041"') == r'"\\u0041"'
    assert decode_unicode_escapes(r"\\\u0041") == "\\\\A"
    # the character an escape produces does not start another escape
    assert decode_unicode_escapes(r"\u005cu0041") == r"\u0041"


def test_project_packages_come_from_the_targets_and_the_source_tree(tmp_path: Path) -> None:
    (tmp_path / "src/main/java/com/acme/inventory").mkdir(parents=True)
    (tmp_path / "src/main/java/com/acme/inventory/Sku.java").write_text("package com.acme.inventory;\n")
    (tmp_path / "src/main/java/com/acme/empty").mkdir()
    assert project_packages(tmp_path, ["org.shop.Cart"]) == {"com.acme.inventory", "org.shop"}


def test_the_java_pack_screens_with_the_projects_packages(tmp_path: Path) -> None:
    pack = pack_named("java")
    assert pack is not None
    screen = pack.screen("strict", tmp_path, ["com.acme.inventory.Warehouse"])
    assert isinstance(screen, Screen)
    assert screen.reason(source_with("assertEquals(1, new Warehouse().reservedCount());")) is None
    assert screen.reason(source_with("assertEquals(1, 1);", package="com.elsewhere")) is not None
    assert screen.reason(source_with("System.exit(3);")) == "line 9: System.exit is not allowed: a test may not end the JVM"


def test_project_classes_named_like_jdk_helpers_outside_java_lang_are_fine() -> None:
    # com.acme.inventory.Timer / Executor / Module: the project's, not java.util's or java.lang's
    body = "Timer timer = new Timer(); Executor executor = new Executor(); Module module = Module.of(timer, executor);"
    assert STRICT.reason(source_with(body)) is None
    assert STRICT.reason(source_with("Timer t = null;", "import java.util.Timer;")) == (
        "line 5: import java.util.Timer is not allowed: a test may not start threads or executors (tests must be deterministic)")
