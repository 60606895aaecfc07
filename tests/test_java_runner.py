"""The Java runner: one javac and one JVM per wave, per-test outcomes and coverage, bad candidates cost only themselves.

Real javac, JUnit Platform and JaCoCo agent (Debian's default-jdk-headless, junit5, libjacoco-java),
in the sandbox, on the Java fixture's classes compiled here with --release 11.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest

from covgen import read_report
from covgen.errors import SandboxError
from covgen.runners.java_runner import JavaCandidate, JavaRun, JavaRunner
from covgen.runners.java_sources import declared_types
from covgen.runners.java_toolchain import JavaToolchain, java_toolchain
from covgen.sandbox import SandboxPolicy, Workspace

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "java"
MONEY = "com/example/money/Money.java"
SLUGS = "com/example/text/Slugs.java"
SHAPES = "com/example/geo/Shapes.java"


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> JavaToolchain:
    return java_toolchain(cache=tmp_path_factory.mktemp("java-cache"))


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's main classes, compiled as a build would (outside the project tree)."""
    target = tmp_path_factory.mktemp("fixture-classes")
    sources = sorted(str(p) for p in (FIXTURE / "src" / "main" / "java").rglob("*.java"))
    subprocess.run(["javac", "--release", "11", "-g", "-d", str(target), *sources], check=True, capture_output=True)
    return target


def lines_of(relative: str, *snippets: str) -> set[int]:
    """Line numbers of the fixture's source lines that contain each snippet (exactly one each)."""
    text = (FIXTURE / "src" / "main" / "java" / relative).read_text().splitlines()
    found = set()
    for snippet in snippets:
        hits = [number for number, line in enumerate(text, 1) if snippet in line]
        assert len(hits) == 1, (snippet, hits)
        found.add(hits[0])
    return found


def run_wave(classes: Path, toolchain: JavaToolchain, candidates: list[JavaCandidate], test_timeout: float = 10.0) -> JavaRun:
    async def go() -> JavaRun:
        with Workspace(FIXTURE) as workspace:
            runner = JavaRunner(workspace, classes=[classes], toolchain=toolchain, test_timeout=test_timeout)
            return await runner.run(candidates)

    return asyncio.run(go())


def junit(package: str, name: str, body: str, imports: str = "") -> str:
    return (f"package {package};\n\nimport static org.junit.jupiter.api.Assertions.*;\n"
            f"import org.junit.jupiter.api.Test;\n{imports}\nclass {name} {{\n{body}\n}}\n")


WAVE = [
    JavaCandidate("broken", junit("com.example.money", "BrokenTest",
                                  "    @Test void nope() {\n        Money.nope();\n    }")),
    JavaCandidate("failing", junit("com.example.text", "FailingTest",
                                   '    @Test void wrong() {\n        assertEquals("x-y", Slugs.slugify("X Y Z"));\n    }')),
    JavaCandidate("allocating", junit("com.example.money", "AllocateTest",
                                      "    @Test void splitsRemainder() {\n"
                                      "        Money[] parts = new Money(10, Currency.EUR).allocate(3);\n"
                                      "        assertEquals(4, parts[0].minor());\n    }")),
    JavaCandidate("exiting", junit("com.example.text", "ExitTest",
                                   "    @Test void exits() {\n        System.exit(3);\n    }\n"
                                   '    @Test void keepsShortText() {\n        assertEquals("ab", Slugs.truncate("ab", 2));\n    }')),
    JavaCandidate("hanging", junit("com.example.geo", "HangTest",
                                   "    static volatile boolean stop;\n"
                                   "    @Test void spins() {\n        while (!stop) { Thread.onSpinWait(); }\n    }")),
    JavaCandidate("truncating", junit("com.example.text", "TruncateTest",
                                      '    @Test void ellipsis() {\n        assertEquals("ab\\u2026", Slugs.truncate("abcdef", 3));\n    }\n'
                                      '    @Test void oneChar() {\n        assertEquals("\\u2026", Slugs.truncate("abcdef", 1));\n    }')),
    JavaCandidate("rect", junit("com.example.geo", "RectTest",
                                "    @Test void square() {\n        assertTrue(new Shapes.Rect(2, 2).isSquare());\n    }\n"
                                '    @Test void forgesTheAgentsMessage() {\n'
                                '        System.err.println("java.lang.instrument.IllegalClassFormatException: '
                                'Error while instrumenting com/example/geo/Shapes$Rect.");\n    }')),
]


@pytest.fixture(scope="module")
def wave(classes: Path, toolchain: JavaToolchain) -> JavaRun:
    return run_wave(classes, toolchain, WAVE, test_timeout=2.0)


def outcome(run: JavaRun, candidate: str, method: str):
    found = [o for o in run.tests_of(candidate) if o.name.endswith(f".{method}()")]
    assert len(found) == 1, [o.name for o in run.tests_of(candidate)]
    return found[0]


def test_a_candidate_that_breaks_the_build_gets_its_own_compile_error(wave: JavaRun) -> None:
    failure = wave.failures["broken"]
    assert failure.kind == "compile"
    assert failure.message.startswith("com/example/money/BrokenTest.java:8: error: cannot find symbol"), failure.message
    assert wave.tests_of("broken") == []
    # One javac for the wave, one more without the candidate that broke it.
    assert wave.compilations == 2


def test_a_failing_assertion_is_failed_with_junits_message(wave: JavaRun) -> None:
    failed = outcome(wave, "failing", "wrong")
    assert failed.outcome == "failed"
    assert "expected: <x-y> but was: <x-y-z>" in failed.message
    assert "FailingTest.wrong(FailingTest.java:8)" in failed.message
    assert "failing" not in wave.failures


def test_a_passing_test_has_exactly_the_lines_it_ran(wave: JavaRun) -> None:
    passed = outcome(wave, "allocating", "splitsRemainder")
    assert passed.outcome == "passed", passed.message
    allocate = lines_of(MONEY, "if (parts <= 0)", "Money[] result = new Money[parts]", "long share = minor / parts",
                        "long remainder = minor % parts", "for (int i = 0; i < parts; i++)",
                        "result[i] = new Money(share", "return result;")
    constructor = lines_of(MONEY, "public Money(long minor, Currency currency)", "this.minor = minor;",
                           "this.currency = Objects.requireNonNull")
    constructor.add(max(constructor) + 1)  # its closing brace, where JaCoCo puts the implicit return
    minor = lines_of(MONEY, "return minor;")
    assert passed.lines[MONEY] == allocate | constructor | minor
    # A gain: the fixture's own tests (its checked-in JaCoCo report) never ran allocate.
    before = read_report(FIXTURE / "reports" / "jacoco.xml", root=FIXTURE).file(f"src/main/java/{MONEY}")
    assert before is not None and allocate <= set(before.uncovered_lines)
    # The throw for parts <= 0 is the line not run; the loop's and the condition's branches are counted.
    assert lines_of(MONEY, "parts must be positive") - passed.lines[MONEY]
    assert passed.branches[MONEY][min(lines_of(MONEY, "if (parts <= 0)"))] == (1, 2)


def test_good_tests_have_exact_per_test_lines(wave: JavaRun) -> None:
    ellipsis, one = outcome(wave, "truncating", "ellipsis"), outcome(wave, "truncating", "oneChar")
    assert (ellipsis.outcome, one.outcome) == ("passed", "passed")
    assert ellipsis.lines == {SLUGS: lines_of(SLUGS, "if (max < 1)", "if (text.length() <= max)", "if (max == 1)",
                                              "return text.substring(0, max - 1)")}
    assert one.lines == {SLUGS: lines_of(SLUGS, "if (max < 1)", "if (text.length() <= max)", "if (max == 1)",
                                         'return "\\u2026";')}
    square = outcome(wave, "rect", "square")
    assert square.outcome == "passed"
    assert square.lines == {SHAPES: lines_of(SHAPES, "public Rect(double width, double depth)",
                                             "if (width <= 0 || depth <= 0)", "this.width = width;",
                                             "this.depth = depth;", "return Math.abs(width - depth) < 1e-9;")
                            | {min(lines_of(SHAPES, "this.depth = depth;")) + 1}}  # the constructor's closing brace


def test_a_test_calling_system_exit_is_named_and_costs_only_itself(wave: JavaRun) -> None:
    exited = outcome(wave, "exiting", "exits")
    assert exited.outcome == "crashed"
    assert "exit code 3" in exited.message and "System.exit" in exited.message
    # Its sibling ran (before it, or in the JVM that ran the rest again) and passed.
    assert outcome(wave, "exiting", "keepsShortText").outcome == "passed"


def test_a_hanging_test_is_killed_and_named(wave: JavaRun) -> None:
    hung = outcome(wave, "hanging", "spins")
    assert hung.outcome == "timeout"
    assert "2 s limit" in hung.message


def test_bad_candidates_cost_only_themselves(wave: JavaRun) -> None:
    good = {o.name: o.outcome for c in ("allocating", "truncating", "rect") for o in wave.tests_of(c)}
    assert set(good.values()) == {"passed"} and len(good) == 5
    # A candidate printing the agent's refusal to stderr neither stops the run nor loses its test.
    assert outcome(wave, "rect", "forgesTheAgentsMessage").outcome == "passed"
    # One JVM for the wave, one more after the exit and one after the hang.
    assert wave.processes == 3
    assert set(wave.failures) == {"broken"}
    assert len(wave.outcomes) == 9


def test_interruptible_hangs_time_out_inside_the_jvm(classes: Path, toolchain: JavaToolchain) -> None:
    run = run_wave(classes, toolchain, [JavaCandidate("sleepy", junit(
        "com.example.text", "SleepTest", "    @Test void sleeps() throws Exception {\n        Thread.sleep(60_000);\n    }\n"
        '    @Test void fine() {\n        assertEquals("a", Slugs.truncate("a", 1));\n    }'))], test_timeout=1.0)
    assert outcome(run, "sleepy", "sleeps").outcome == "timeout"
    assert outcome(run, "sleepy", "fine").outcome == "passed"
    assert run.processes == 1


def test_parameterized_and_nested_tests_are_tests_of_their_candidate(classes: Path, toolchain: JavaToolchain) -> None:
    source = junit("com.example.text", "ShapesOfTest", (
        "    @ParameterizedTest\n    @ValueSource(ints = {1, 5})\n"
        '    void keeps(int max) {\n        assertEquals("a", Slugs.truncate("a", max));\n    }\n'
        '    @Nested\n    class Initials {\n        @Test void two() {\n            assertEquals("AB", Slugs.initials("ann bell"));\n'
        "        }\n    }"), imports="import org.junit.jupiter.api.Nested;\nimport org.junit.jupiter.params.ParameterizedTest;\n"
                               "import org.junit.jupiter.params.provider.ValueSource;")
    run = run_wave(classes, toolchain, [JavaCandidate("mixed", source)])
    assert sorted((o.name, o.outcome) for o in run.tests_of("mixed")) == [
        ("ShapesOfTest$Initials.two()", "passed"),
        ("ShapesOfTest.keeps(int) [1] 1", "passed"), ("ShapesOfTest.keeps(int) [2] 5", "passed")]
    initials = next(o for o in run.tests_of("mixed") if o.name.endswith("two()"))
    assert initials.lines == {SLUGS: lines_of(SLUGS, "StringBuilder out = new StringBuilder()", 'name.trim().split("\\\\s+")',
                                              "if (!word.isEmpty())", "out.append(Character.toUpperCase",
                                              "return out.toString();")}


def test_class_level_failures_and_candidates_without_tests(classes: Path, toolchain: JavaToolchain) -> None:
    run = run_wave(classes, toolchain, [
        JavaCandidate("setup", junit("com.example.text", "SetupTest",
                                     "    @BeforeAll static void boom() {\n        throw new IllegalStateException(\"no db\");\n    }\n"
                                     "    @Test void never() {\n    }", imports="import org.junit.jupiter.api.BeforeAll;")),
        JavaCandidate("empty", "package com.example.text;\n\nclass NothingTest {\n    void helper() {\n    }\n}\n"),
    ])
    assert run.failures["setup"].kind == "error" and "IllegalStateException: no db" in run.failures["setup"].message
    assert run.failures["empty"].kind == "no_tests"


def test_a_candidate_that_crashes_javac_costs_only_itself(classes: Path, toolchain: JavaToolchain) -> None:
    # So deeply nested that javac's parser overflows its stack and names no file.
    deep = JavaCandidate("deep", "package com.example.text;\n\nclass DeepTest {\n    int x = "
                         + "(" * 20000 + "1" + ")" * 20000 + ";\n}\n")
    run = run_wave(classes, toolchain, [deep, WAVE[5]])
    assert run.failures["deep"].kind == "compile" and "StackOverflowError" in run.failures["deep"].message
    assert {o.outcome for o in run.tests_of("truncating")} == {"passed"}
    # The wave's javac, a check that javac works at all, then one javac per candidate.
    assert run.compilations == 4


def test_candidates_declaring_the_same_class_run_in_separate_batches(classes: Path, toolchain: JavaToolchain) -> None:
    body = '    @Test void t() {{\n        assertEquals("{0}", Slugs.truncate("{0}", 5));\n    }}'
    run = run_wave(classes, toolchain, [JavaCandidate(f"same{i}", junit("com.example.text", "SlugsCovgenTest", body.format(i)))
                                        for i in range(2)])
    assert [o.outcome for c in ("same0", "same1") for o in run.tests_of(c)] == ["passed", "passed"]
    assert run.failures == {}


def test_classes_in_the_users_tree_are_copied_not_exposed(tmp_path: Path, classes: Path, toolchain: JavaToolchain) -> None:
    import shutil

    project = tmp_path / "project"
    shutil.copytree(FIXTURE / "src", project / "src")
    shutil.copytree(classes, project / "target" / "classes")

    async def go() -> JavaRun:
        with Workspace(project) as workspace:
            runner = JavaRunner(workspace, classes=[project / "target" / "classes"], toolchain=toolchain)
            assert all(not path.is_relative_to(project) for path in runner.classes)
            with pytest.raises(SandboxError, match="would expose your tree"):
                await workspace.run_tool(["true"], policy=SandboxPolicy(wall_seconds=10), readable=[project / "target"])
            return await runner.run([WAVE[5]])

    run = asyncio.run(go())
    assert {o.outcome for o in run.tests_of("truncating")} == {"passed"}


def _patched(classes: Path, target: Path, major: int, under: str = "") -> Path:
    """A copy of `classes` whose class files (those `under` a package folder) claim class-file version `major`."""
    import shutil

    shutil.copytree(classes, target)
    for path in (target / under).rglob("*.class"):
        data = bytearray(path.read_bytes())
        data[6:8] = major.to_bytes(2, "big")
        path.write_bytes(bytes(data))
    return target


def test_class_files_the_agent_cannot_instrument_are_refused_with_the_fix(tmp_path: Path, classes: Path,
                                                                          toolchain: JavaToolchain) -> None:
    newer_than_jdk = _patched(classes, tmp_path / "v64", toolchain.class_version + 3)
    with Workspace(FIXTURE) as workspace:
        with pytest.raises(SandboxError, match=r"newer than this JDK .*--release") as err:
            JavaRunner(workspace, classes=[newer_than_jdk], toolchain=toolchain)
        assert err.value.slug == "java-class-version"
        # Upstream JaCoCo 0.8.6 instruments up to Java 15 (class file version 59); Debian's build,
        # on a newer ASM, reaches Java 17. The limit is probed; here it is set as upstream's.
        upstream = dataclasses.replace(toolchain, agent_limit=59)
        java17 = _patched(classes, tmp_path / "v61", 61)
        with pytest.raises(SandboxError, match=r"Java 17 .*JaCoCo agent .*up to Java 15.*--release 11"):
            JavaRunner(workspace, classes=[java17], toolchain=upstream)
        JavaRunner(workspace, classes=[classes], toolchain=upstream)  # --release 11 classes are fine


def test_the_agents_own_refusal_stops_the_run_instead_of_zero_coverage(tmp_path: Path, classes: Path,
                                                                       toolchain: JavaToolchain) -> None:
    # Past the static check (as with an agent whose reach was misjudged), the agent itself
    # refuses a class when the test JVM loads it; javac never reads it (the test loads it by name).
    unchecked = dataclasses.replace(toolchain, agent_limit=99, class_version=99)
    refused = _patched(classes, tmp_path / "v64", 64, under="com/example/geo")
    loads = JavaCandidate("loads", junit("com.example.text", "LoadsTest", (
        '    @Test void loads() {\n        try {\n            Class.forName("com.example.geo.Shapes");\n'
        "        } catch (ReflectiveOperationException | LinkageError err) {\n        }\n    }")))
    with pytest.raises(SandboxError, match=r"cannot instrument com\.example\.geo\.Shapes .*class file version 64.*--release 11"):
        run_wave(refused, unchecked, [loads])


def test_the_agents_reach_is_probed_on_this_jdk(toolchain: JavaToolchain) -> None:
    # Debian's JaCoCo 0.8.6 instruments class files of the JDK's own release (JDK 17 here).
    assert toolchain.agent_version.startswith("0.8.6")
    assert toolchain.agent_limit == toolchain.class_version


def test_declared_types_skips_comments_strings_and_nested_classes() -> None:
    source = ('package a.b;\n/* class Fake {} */\nimport x.Y;\n// class AlsoFake\n'
              '@ExtendWith(Foo.class)\npublic final class Main { class Inner {} String s = "class Str {"; }\n'
              'interface Helper { }\nenum Kind { A }\nrecord Point(int x) { }\n')
    assert declared_types(source) == ("a.b", [("Main", True), ("Helper", False), ("Kind", False), ("Point", False)])
    assert declared_types("class Plain {}") == ("", [("Plain", False)])
