"""`covgen run` on a Java project end to end: JaCoCo report in, JUnit 5 tests proven and written.

The model is the scripted vLLM-protocol server (tests/support); javac, the JUnit Platform and the
JaCoCo agent are real, in the sandbox. One run carries every kind of candidate the funnel must
sort, and the written file is then checked the way a user's CI would run it: a fresh javac,
JUnit and JaCoCo, outside covgen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import FIXTURES
from support.vllm_stub import StubServer, StubState

pytestmark = pytest.mark.e2e

JAVA_LIB = Path("/usr/share/java")
SLUGS = "src/main/java/com/example/text/Slugs.java"
WRITTEN = "src/test/java/com/example/text/SlugsCovgenTest.java"


def fence(code: str) -> str:
    return "Here is the test class.\n\n```java\n" + textwrap.dedent(code).strip() + "\n```\n"


def test_class(name: str, body: str, imports: str = "") -> str:
    return fence(f"""
package com.example.text;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
{imports}
class {name} {{
{textwrap.indent(textwrap.dedent(body).strip(), "    ")}
}}
""")


GOOD_INITIALS = test_class("SlugsInitialsTest", """
    @Test
    void initialsOfEveryWordAreUpperCase() {
        assertEquals("AB", Slugs.initials("  alpha   beta "));
    }
""")
WRONG_INITIALS = test_class("SlugsInitialsWrongTest", """
    @Test
    void initialsWrongly() {
        assertEquals("ab", Slugs.initials("alpha beta"));
    }
""")
DOES_NOT_COMPILE = test_class("SlugsBrokenTest", """
    @Test
    void broken() {
        String s = Slugs.initials(42);
    }
""")
GOOD_TRUNCATE = test_class("SlugsTruncateTest", """
    @Test
    void longTextIsCutWithAnEllipsis() {
        assertEquals("abcd\\u2026", Slugs.truncate("abcdefgh", 5));
    }

    @Test
    void oneCharacterLimitGivesTheEllipsisAlone() {
        assertEquals("\\u2026", Slugs.truncate("abc", 1));
    }

    @Test
    void zeroLimitIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> Slugs.truncate("abc", 0));
    }
""")
# Passes only when its neighbour ran first in the same JVM: the reverse-order rerun catches it.
ORDER_HELPER = test_class("SlugsOrderA", """
    static boolean ran;

    @Test
    void remembers() {
        ran = true;
    }
""")
ORDER_DEPENDENT = test_class("SlugsOrderB", """
    @Test
    void truncatesAfterItsNeighbour() {
        assertTrue(SlugsOrderA.ran);
        assertEquals("ab\\u2026", Slugs.truncate("abcdef", 3));
    }
""")
NO_GAIN = test_class("SlugsAgainTest", """
    @Test
    void slugifiesAgain() {
        assertEquals("a-b", Slugs.slugify("A B"));
    }
""")
HANGS = test_class("SlugsHangTest", """
    @Test
    void forever() {
        while (true) {
            Slugs.initials("x");
        }
    }
""")
EXITS = test_class("SlugsExitTest", """
    @Test
    void leaves() {
        System.exit(0);
    }
""")
STARTS_A_PROCESS = test_class("SlugsProcessTest", """
    @Test
    void shellsOut() throws Exception {
        new ProcessBuilder("touch", "/tmp/pwned").start().waitFor();
        assertEquals("A", Slugs.initials("a"));
    }
""")
OPENS_A_SOCKET = test_class("SlugsSocketTest", """
    @Test
    void phonesHome() throws Exception {
        new java.net.Socket("127.0.0.1", 9).close();
        assertEquals("A", Slugs.initials("a"));
    }
""")
REFLECTS = test_class("SlugsReflectTest", """
    @Test
    void reachesIn() throws Exception {
        Class.forName("org.jacoco.agent.rt.RT").getMethod("getAgent").invoke(null);
        assertEquals("A", Slugs.initials("a"));
    }
""")
EDITS_SOURCES = test_class("SlugsEditTest", """
    @Test
    void scribbles() throws Exception {
        java.nio.file.Files.writeString(java.nio.file.Path.of("src/main/java/com/example/text/Slugs.java"), "gone");
        assertEquals("A", Slugs.initials("a"));
    }
""")


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def java_project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(FIXTURES / "java", root, ignore=shutil.ignore_patterns("tools"))
    return root


def test_java_run_keeps_exactly_the_proven_tests_and_a_fresh_jacoco_run_confirms_them(java_project: Path, tmp_path: Path) -> None:
    root = java_project
    before = tree_digest(root)
    summary_path = tmp_path / "summary.json"
    state = StubState(script={
        "Slugs.initials(String)": [[DOES_NOT_COMPILE, WRONG_INITIALS, HANGS, EXITS, STARTS_A_PROCESS, OPENS_A_SOCKET, REFLECTS,
                                    EDITS_SOURCES], [GOOD_INITIALS, GOOD_INITIALS]],
        "Slugs.truncate(String,int)": [[ORDER_HELPER, ORDER_DEPENDENT, NO_GAIN, GOOD_TRUNCATE]],
    })
    with StubServer(state) as server:
        result = subprocess.run(
            [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(root / "reports" / "jacoco.xml"),
             "--engine", "llm", "--model-url", server.url, "--candidates", "8", "--test-timeout", "5",
             "--include", SLUGS, "--output", f"json:{summary_path}"],
            capture_output=True, text=True, timeout=900, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    by_gap = {g["id"].split("::")[1]: g for g in summary["gaps"]}

    initials = by_gap["Slugs.initials(String)"]
    assert initials["accepted_tests"] == ["SlugsInitialsTest#initialsOfEveryWordAreUpperCase"]
    rejected = {r["verdict"] for r in initials["rejected"]}
    assert {"COMPILE_ERROR", "FAILED", "TIMEOUT", "UNSAFE"} <= rejected, initials["rejected"]
    unsafe = [r["message"] for r in initials["rejected"] if r["verdict"] == "UNSAFE"]
    assert len(unsafe) == 5, unsafe  # exit, process, socket, reflection, file edit: never run
    assert initials["verdicts"]["REDUNDANT"] >= 1  # the second identical good answer

    truncate = by_gap["Slugs.truncate(String,int)"]
    assert sorted(truncate["accepted_tests"]) == [
        "SlugsTruncateTest#longTextIsCutWithAnEllipsis", "SlugsTruncateTest#oneCharacterLimitGivesTheEllipsisAlone",
        "SlugsTruncateTest#zeroLimitIsRefused",
    ]
    assert truncate["verdicts"].get("FLAKY") == 1 and truncate["verdicts"].get("NO_GAIN", 0) >= 2

    # The tree is the same but for the one file covgen wrote, in the focal class's package.
    after = tree_digest(root)
    assert {path for path in after if after.get(path) != before.get(path)} == {WRITTEN}
    assert summary["files_written"] == [WRITTEN]
    assert not Path("/tmp/pwned").exists()

    # The user's CI, outside covgen: javac, the JUnit Platform and the JaCoCo agent.
    covered = fresh_jacoco_run(root, tmp_path / "ci")
    gained = set(initials["gained_lines"]) | set(truncate["gained_lines"])
    assert gained and gained <= covered[SLUGS.removeprefix("src/main/java/")]
    assert summary["lines_after"][0] > summary["lines_before"][0]


def fresh_jacoco_run(root: Path, work: Path) -> dict[str, set[int]]:
    """Compile the project and its tests, run them on the console launcher under the agent, and
    read the covered lines with JaCoCo's own analysis (covgen's report helper is not used)."""
    main, tests, exec_file = work / "main", work / "tests", work / "jacoco.exec"
    junit = JAVA_LIB / "junit-platform-console-standalone.jar"
    javac = ["javac", "--release", "11", "-g", "-encoding", "UTF-8"]
    subprocess.run([*javac, "-d", str(main), *map(str, (root / "src/main/java").rglob("*.java"))], check=True, capture_output=True)
    subprocess.run([*javac, "-d", str(tests), "-cp", f"{main}:{junit}", *map(str, (root / "src/test/java").rglob("*.java"))],
                   check=True, capture_output=True)
    agent = work / "jacocoagent.jar"
    import zipfile

    with zipfile.ZipFile(JAVA_LIB / "org.jacoco.agent.jar") as bundle:
        agent.write_bytes(bundle.read("jacocoagent.jar"))
    launched = subprocess.run(
        ["java", f"-javaagent:{agent}=destfile={exec_file},includes=com.example.*", "-cp", f"{tests}:{main}:{junit}",
         "org.junit.platform.console.ConsoleLauncher", "--disable-banner", "--scan-classpath", str(tests)],
        capture_output=True, text=True)
    assert launched.returncode == 0, launched.stdout[-3000:]
    report = work / "report.xml"
    tool = FIXTURES / "java" / "tools" / "ReportGen.java"
    analysis = ":".join(str(JAVA_LIB / jar) for jar in ("org.jacoco.core.jar", "org.jacoco.report.jar", "asm.jar", "asm-commons.jar",
                                                        "asm-tree.jar"))
    subprocess.run(["java", "-cp", analysis, str(tool), str(exec_file), str(main), str(root / "src/main/java"), str(report),
                    str(work / "report.csv")],
                   check=True, capture_output=True)
    from lxml import etree

    covered: dict[str, set[int]] = {}
    for package in etree.parse(str(report)).iter("package"):
        for source in package.iter("sourcefile"):
            key = f"{package.get('name')}/{source.get('name')}"
            covered[key] = {int(line.get("nr")) for line in source.iter("line") if int(line.get("ci")) > 0}
    return covered
