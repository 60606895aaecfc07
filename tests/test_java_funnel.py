"""The funnel on Java: the run-time checks that hold even when a candidate gets past the screen.

Real javac, JUnit Platform and JaCoCo agent in the sandbox, on the Java fixture's classes; the
screen is switched off here on purpose, so what is tested is what the runner itself sees.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from pathlib import Path

import pytest

from covgen import read_report
from covgen.gaps import find_gaps
from covgen.languages import pack_named
from covgen import model
from covgen.model import Candidate
from covgen.runners.java_tests import JavaTestRunner
from covgen.runners.java_toolchain import java_toolchain
from covgen.sandbox import SandboxPolicy, Workspace, probe
from covgen.validate import Validator

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "java"


class LetsEverythingThrough:
    """No static screen: the run-time checks alone must hold."""

    def reason(self, source: str) -> str | None:
        return None


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("classes")
    sources = sorted(str(p) for p in (FIXTURE / "src" / "main" / "java").rglob("*.java"))
    subprocess.run(["javac", "--release", "11", "-g", "-d", str(target), *sources], check=True, capture_output=True)
    return target


def candidate(index: int, gap_id: str, name: str, body: str, extra: str = "") -> Candidate:
    source = textwrap.dedent(f"""\
        package com.example.text;

        import static org.junit.jupiter.api.Assertions.*;
        import org.junit.jupiter.api.Test;

        class {name} {{
        {textwrap.indent(textwrap.dedent(body).strip(), "    ")}
        }}
        {extra}""")
    return Candidate(f"c{index:04d}", gap_id, "test", 1, source)


def validate(project: Path, classes: Path, make: list[tuple[str, str, str]], *, runs: int = 3) -> dict[str, list[model.TestVerdict]]:
    async def go() -> list[model.TestVerdict]:
        report = read_report(project / "reports" / "jacoco.xml", root=project)
        gaps = {gap.id: gap for gap in find_gaps(report, project).gaps}
        gap_id = next(g for g in gaps if g.endswith("Slugs.initials(String)"))
        with Workspace(project) as workspace:
            runner = JavaTestRunner(workspace, classes=[classes], classpath=[], source_roots=["src/main/java"],
                                    toolchain=java_toolchain(), policy=SandboxPolicy(), test_timeout=3, layers=probe())
            validator = Validator(runner, gaps, runs=runs, screen=LetsEverythingThrough(), pack=pack_named("java"))  # type: ignore[arg-type]
            return await validator.validate([candidate(i, gap_id, *spec) for i, spec in enumerate(make)])

    by_class: dict[str, list[model.TestVerdict]] = {}
    for verdict in asyncio.run(go()):
        by_class.setdefault(make[int(verdict.candidate_id[1:])][0], []).append(verdict)
    return by_class


def test_what_a_test_does_at_run_time_is_judged_by_the_runner(tmp_path: Path, classes: Path) -> None:
    import shutil

    project = tmp_path / "shop"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("tools"))
    slugs = project / "src/main/java/com/example/text/Slugs.java"
    original = slugs.read_bytes()
    verdicts = validate(project, classes, [
        ("GoodTest", '@Test void initials() { assertEquals("AB", Slugs.initials("alpha beta")); }', ""),
        ("ExitsInTest", '@Test void leaves() { Slugs.initials("a b"); Runtime.getRuntime().halt(3); }', ""),
        ("ExitsInSetUp", 'static { System.exit(4); }\n@Test void never() { Slugs.initials("a b"); }', ""),
        ("HangsTest", '@Test void spins() { while (Slugs.initials("a b").length() > 0) { } }', ""),
        ("EditsSources", """
            @Test void scribbles() throws Exception {
                Slugs.initials("a b");
                java.nio.file.Files.writeString(java.nio.file.Path.of("src/main/java/com/example/text/Slugs.java"), "gone");
            }""", ""),
        ("OrderA", "static boolean ran;\n@Test void remembers() { ran = true; }", ""),
        ("OrderB", '@Test void after() { assertTrue(OrderA.ran); assertEquals("A", Slugs.initials("a")); }', ""),
    ])
    assert [v.verdict.value for v in verdicts["GoodTest"]] == ["ACCEPTED"]
    ((halted,),) = [verdicts["ExitsInTest"]]
    assert halted.verdict.value == "UNSAFE" and "ended" in halted.message
    ((exited,),) = [verdicts["ExitsInSetUp"]]
    assert exited.verdict.value == "UNSAFE" and exited.test_name == ""
    ((hung,),) = [verdicts["HangsTest"]]
    assert hung.verdict.value == "TIMEOUT"
    ((edited,),) = [verdicts["EditsSources"]]
    assert edited.verdict.value == "UNSAFE" and "src/main/java/com/example/text/Slugs.java" in edited.message
    assert slugs.read_bytes() == original  # the user's tree is never the sandbox's to write
    ((order,),) = [verdicts["OrderB"]]
    assert order.verdict.value == "FLAKY" and "reverse order" in order.message


def test_the_clean_run_judges_the_written_file_with_the_users_tests_beside_it(tmp_path: Path, classes: Path) -> None:
    written = "src/test/java/com/example/text/SlugsCovgenTest.java"
    text = textwrap.dedent("""\
        package com.example.text;

        import static org.junit.jupiter.api.Assertions.assertEquals;
        import org.junit.jupiter.api.Test;

        class SlugsCovgenTest {
            @Test void initials() { assertEquals("AB", Slugs.initials("alpha beta")); }
            @Test void wrong() { assertEquals("x", Slugs.initials("alpha beta")); }
        }
        """)

    async def go() -> object:
        with Workspace(FIXTURE) as workspace:
            runner = JavaTestRunner(workspace, classes=[classes], classpath=[], source_roots=["src/main/java"],
                                    toolchain=java_toolchain(), policy=SandboxPolicy(), test_timeout=5, layers=probe())
            return await runner.clean_run({written: text}, [written, "src/test/java/com/example/text/SlugsTest.java"], [], [])

    run = asyncio.run(go())
    assert run.problem == "", run  # type: ignore[attr-defined]
    assert run.outcomes == {  # type: ignore[attr-defined]
        "com.example.text.SlugsCovgenTest#initials": "passed", "com.example.text.SlugsCovgenTest#wrong": "failed",
        "com.example.text.SlugsTest#slugifiesAccentsAndSpaces": "passed", "com.example.text.SlugsTest#keepsShortText": "passed",
    }
    lines = run.total_lines["src/main/java/com/example/text/Slugs.java"]  # type: ignore[attr-defined]
    text_lines = (FIXTURE / "src/main/java/com/example/text/Slugs.java").read_text().splitlines()
    assert {n for n, line in enumerate(text_lines, 1) if "out.append(Character.toUpperCase" in line} <= lines
    assert run.outcome("com.example.text.SlugsCovgenTest#initials") == "passed"  # type: ignore[attr-defined]
