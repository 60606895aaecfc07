"""Finding a Java project's classes and test classpath: --classpath, javac alone, Maven (real, offline), Gradle.

Real javac and real Maven (Debian's ``maven`` and its plugin packages, with a local repository
that links to Debian's ``/usr/share/maven-repo``). Gradle cannot be installed offline here: its
path runs a stand-in ``gradlew`` that records how covgen called it and prints what covgen's init
script prints.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from covgen.errors import BuildError, CovgenError, SandboxError, UsageError
from covgen.languages.java_build import GRADLE_INIT_SCRIPT, JavaBuild, resolve_build
from covgen.runners.java_runner import JavaCandidate, JavaRun, JavaRunner
from covgen.runners.java_toolchain import (
    CLASS_VERSION_OFFSET,
    JavaToolchain,
    find_jacoco_agent,
    find_junit_launcher,
    java_toolchain,
)
from covgen.sandbox import Workspace

SAMPLE = Path(__file__).resolve().parent / "samples" / "java-maven"
JAVA_LIB = Path("/usr/share/java")
DEBIAN_MAVEN_REPO = Path("/usr/share/maven-repo")

INTERVAL = """\
package org.example.interval;

/** A closed interval of ints. */
public final class Interval {
    private final int low;
    private final int high;

    public Interval(int low, int high) {
        if (low > high) {
            throw new IllegalArgumentException(low + " > " + high);
        }
        this.low = low;
        this.high = high;
    }

    public boolean contains(int value) {
        return low <= value && value <= high;
    }

    public Interval span(Interval other) {
        return new Interval(Math.min(low, other.low), Math.max(high, other.high));
    }
}
"""

INTERVAL_TEST = """\
package org.example.interval;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

class IntervalTest {
    @Test
    void containsItsEnds() {
        Assertions.assertTrue(new Interval(1, 3).contains(3));
    }
}
"""


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> JavaToolchain:
    return java_toolchain(cache=tmp_path_factory.mktemp("java-cache"))


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime: covgen must leave the user's tree as it was."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def class_names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.class")}


def one_line(error: CovgenError) -> str:
    text = str(error)
    assert "\n" not in text and error.exit_code == 2
    return text


# -- javac alone ------------------------------------------------------------------------------


def test_sources_without_a_build_compile_alone_for_the_agents_release_and_are_cached(
        tmp_path: Path, toolchain: JavaToolchain) -> None:
    root = tmp_path / "interval"
    write(root, "src/main/java/org/example/interval/Interval.java", INTERVAL)
    write(root, "src/test/java/org/example/interval/IntervalTest.java", INTERVAL_TEST)
    before = snapshot(root)
    cache = tmp_path / "cache"

    build = resolve_build(root, cache=cache, toolchain=toolchain)

    release = min(toolchain.agent_limit, toolchain.class_version) - CLASS_VERSION_OFFSET
    assert build.release == release
    assert build.how == f"javac --release {release}: 1 sources, 1 test sources"
    assert build.source_roots == ("src/main/java",) and build.test_source_root == "src/test/java"
    assert build.libraries == ("junit-jupiter",)
    (classes,) = build.classes
    assert classes.is_relative_to(cache)
    assert class_names(classes) == {"org/example/interval/Interval.class"}
    (test_classes,) = build.classpath
    assert class_names(test_classes) == {"org/example/interval/IntervalTest.class"}
    assert snapshot(root) == before

    again = resolve_build(root, cache=cache, toolchain=toolchain)
    assert again.classes == build.classes and again.how.endswith("(cached)")

    source = root / "src/main/java/org/example/interval/Interval.java"
    source.write_text(INTERVAL.replace("public boolean contains", "public boolean isEmpty() {\n        return false;\n    }\n\n"
                                                                   "    public boolean contains"))
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    changed = resolve_build(root, cache=cache, toolchain=toolchain)
    assert "cached" not in changed.how and changed.classes != build.classes


def test_a_source_root_is_compiled_even_beside_a_build_file(tmp_path: Path, toolchain: JavaToolchain) -> None:
    root = tmp_path / "legacy"
    write(root, "java/org/example/interval/Interval.java", INTERVAL)
    write(root, "pom.xml", "<project>this pom is never read</project>")
    write(root, "src/test/java/org/example/interval/IntervalTest.java",
          INTERVAL_TEST.replace("import org.junit", "import org.assertj.core.api.Assertions;\nimport org.junit"))
    build = resolve_build(root, source_root="java", cache=tmp_path / "cache", toolchain=toolchain)
    assert build.source_roots == ("java",)
    assert class_names(build.classes[0]) == {"org/example/interval/Interval.class"}
    # Tests that need a library javac alone does not have are left out, and the summary says why.
    assert build.classpath == ()
    assert build.how.endswith(", existing tests left out (src/test/java/org/example/interval/IntervalTest.java:3: "
                              "package org.assertj.core.api does not exist)")


def test_sources_that_need_a_library_name_the_first_javac_error_and_the_classpath_flag(
        tmp_path: Path, toolchain: JavaToolchain) -> None:
    root = tmp_path / "needs-lib"
    write(root, "src/main/java/org/example/interval/Interval.java", INTERVAL)
    write(root, "src/main/java/org/example/interval/Lists.java",
          "package org.example.interval;\n\nimport com.google.common.collect.ImmutableList;\n\n"
          "final class Lists {\n    ImmutableList<Interval> none() { return ImmutableList.of(); }\n}\n")
    with pytest.raises(BuildError) as caught:
        resolve_build(root, cache=tmp_path / "cache", toolchain=toolchain)
    text = one_line(caught.value)
    assert "src/main/java/org/example/interval/Lists.java:3: package com.google.common.collect does not exist" in text
    assert "--classpath" in text
    assert not list((tmp_path / "cache").glob("javac-*")), "a failed build leaves no cache entry"


def test_no_sources_and_no_build_says_which_flags_to_pass(tmp_path: Path, toolchain: JavaToolchain) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError) as caught:
        resolve_build(tmp_path / "empty", cache=tmp_path / "cache", toolchain=toolchain)
    assert "--source-root" in one_line(caught.value) and "--classpath" in str(caught.value)


# -- --classpath ------------------------------------------------------------------------------


def test_classpath_entries_holding_the_sources_classes_are_measured_the_rest_is_classpath(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root, "src/main/java/org/example/interval/Interval.java", INTERVAL)
    # What a build would have left: production classes compiled for Java 11, and a test-classes folder.
    subprocess.run(["javac", "--release", "11", "-d", str(root / "out/main"),
                    str(root / "src/main/java/org/example/interval/Interval.java")], check=True, capture_output=True)
    write(root, "out/test/org/example/interval/Helper.class", "not needed to be valid: only its path is read")
    entries = ["out/test", str(JAVA_LIB / "hamcrest.jar"), str(JAVA_LIB / "junit-jupiter-api.jar"), "out/main",
               str(JAVA_LIB / "junit-jupiter-params.jar")]

    build = resolve_build(root, classpath=os.pathsep.join(entries), cache=tmp_path / "cache")

    assert build.classes == (root / "out/main",)
    # JUnit's own jars are left to the launcher covgen runs tests with; hamcrest is the project's.
    assert build.classpath == (root / "out/test", (JAVA_LIB / "hamcrest.jar").resolve())
    assert build.libraries == ("junit-jupiter", "junit-jupiter-params", "hamcrest")
    assert build.release == 11
    assert build.how == "--classpath: 5 entries"
    assert not (tmp_path / "cache").exists(), "--classpath is not cached: there is nothing to compute"


def test_classpath_errors_name_the_entry_and_what_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root, "src/main/java/org/example/interval/Interval.java", INTERVAL)
    (root / "lib").mkdir()
    with pytest.raises(UsageError) as missing:
        resolve_build(root, classpath=f"lib{os.pathsep}target/classes")
    assert "--classpath entry target/classes does not exist" in one_line(missing.value)
    with pytest.raises(UsageError) as unrelated:
        resolve_build(root, classpath=f"lib{os.pathsep}{JAVA_LIB / 'hamcrest.jar'}")
    assert "org/example/interval/Interval.class" in one_line(unrelated.value)


def test_classpath_without_sources_takes_the_first_folder_for_the_classes(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    (root / "classes").mkdir(parents=True)
    build = resolve_build(root, classpath=f"{JAVA_LIB / 'hamcrest.jar'}{os.pathsep}classes")
    assert build.classes == (root / "classes",) and build.classpath == ((JAVA_LIB / "hamcrest.jar").resolve(),)


# -- Gradle (a stand-in gradlew) --------------------------------------------------------------

FAKE_GRADLEW = """\
#!/bin/sh
# Stands in for Gradle: records how it was called, compiles the main classes as the task's
# dependsOn would, and prints what covgen's init script prints (after some -q-proof noise).
capture=CAPTURE
printf '%s\\n' "$@" > "$capture/args"
pwd > "$capture/cwd"
printf '%s\\n' "$JAVA_HOME" > "$capture/java_home"
previous=""
for argument in "$@"; do
  [ "$previous" = "--init-script" ] && cp "$argument" "$capture/init.gradle"
  previous="$argument"
done
mkdir -p build/classes/java/main build/classes/java/test
javac --release 11 -d build/classes/java/main $(find src/main/java -name '*.java') || exit 1
echo "Starting a Gradle Daemon (subsequent builds will be faster)"
echo "covgen-build classes $PWD/build/classes/java/main"
echo "covgen-build classpath $PWD/build/classes/java/main"
echo "covgen-build classpath $PWD/build/resources/main"
echo "covgen-build classpath $PWD/build/classes/java/test"
echo "covgen-build classpath /usr/share/java/hamcrest-2.2.jar"
echo "covgen-build classpath /usr/share/java/junit-jupiter-api.jar"
echo "covgen-build source $PWD/src/main/java"
echo "covgen-build source $PWD/src/main/resources"
echo "covgen-build test-source $PWD/src/test/java"
"""

FAILING_GRADLEW = """\
#!/bin/sh
echo "FAILURE: Build failed with an exception." >&2
echo "" >&2
echo "* What went wrong:" >&2
echo "Execution failed for task ':compileTestJava'." >&2
echo "> Could not resolve all files for configuration ':testCompileClasspath'." >&2
exit 1
"""


def gradle_project(tmp_path: Path, script: str) -> tuple[Path, Path]:
    root = tmp_path / "gradle-project"
    capture = tmp_path / "capture"
    capture.mkdir()
    write(root, "build.gradle", "plugins {\n    id 'java-library'\n}\n")
    write(root, "src/main/java/org/example/interval/Interval.java", INTERVAL)
    gradlew = write(root, "gradlew", script.replace("CAPTURE", str(capture)))
    gradlew.chmod(gradlew.stat().st_mode | stat.S_IXUSR)
    return root, capture


def test_gradle_runs_the_wrapper_offline_with_the_init_script_in_a_copy(tmp_path: Path, toolchain: JavaToolchain) -> None:
    root, capture = gradle_project(tmp_path, FAKE_GRADLEW)
    before = snapshot(root)
    cache = tmp_path / "cache"

    build = resolve_build(root, cache=cache, toolchain=toolchain)

    args = (capture / "args").read_text().split("\n")
    assert args[:3] == ["--offline", "-q", "--init-script"] and args[4] == "covgenBuildInfo"
    assert (capture / "init.gradle").read_text() == GRADLE_INIT_SCRIPT
    assert (capture / "java_home").read_text().strip() == str(toolchain.java_home)
    copy = Path((capture / "cwd").read_text().strip())
    assert copy != root and snapshot(root) == before, "Gradle writes build/: it must run in a copy"
    (classes,) = build.classes
    assert classes.is_relative_to(cache) and class_names(classes) == {"org/example/interval/Interval.class"}
    # The main output is measured, not repeated on the classpath; the missing resources folder
    # and JUnit's jar are dropped.
    assert build.classpath == (classes.parent / "test", Path("/usr/share/java/hamcrest-2.2.jar"))
    assert build.source_roots == ("src/main/java",) and build.test_source_root == "src/test/java"
    assert build.libraries == ("junit-jupiter", "hamcrest") and build.release == 11
    assert build.how == "gradle (offline, built in a copy): 3 entries"
    assert resolve_build(root, cache=cache, toolchain=toolchain).how.endswith("(cached)")


def test_gradle_failure_is_one_line_with_gradles_reason(tmp_path: Path, toolchain: JavaToolchain) -> None:
    root, _ = gradle_project(tmp_path, FAILING_GRADLEW)
    with pytest.raises(BuildError) as caught:
        resolve_build(root, cache=tmp_path / "cache", toolchain=toolchain)
    text = one_line(caught.value)
    assert "Execution failed for task ':compileTestJava'." in text and "--classpath" in text


def test_the_init_script_prints_the_test_runtime_classpath_after_compiling_the_tests() -> None:
    for needed in ("dependsOn 'testClasses'", "sets.test.runtimeClasspath.each", "sets.main.output.classesDirs.each",
                   "plugins.withId('java')", "tasks.register('covgenBuildInfo')"):
        assert needed in GRADLE_INIT_SCRIPT


# -- the agent and the launcher ---------------------------------------------------------------


def runtime_jar(folder: Path) -> Path:
    """Debian's agent as Maven Central ships it: the agent jar itself, named org.jacoco.agent-VERSION-runtime.jar."""
    folder.mkdir(parents=True)
    path = folder / f"org.jacoco.agent-{folder.name}-runtime.jar"
    with zipfile.ZipFile(JAVA_LIB / "org.jacoco.agent.jar") as bundle:
        path.write_bytes(bundle.read("jacocoagent.jar"))
    return path


def test_agent_and_launcher_explicit_then_maven_repository_then_debian(tmp_path: Path) -> None:
    repo = tmp_path / "m2"
    assert find_jacoco_agent(maven_repo=repo) == (JAVA_LIB / "org.jacoco.agent.jar").resolve()
    assert find_junit_launcher(maven_repo=repo) == (JAVA_LIB / "junit-platform-console-standalone.jar").resolve()

    agents = repo / "org/jacoco/org.jacoco.agent"
    runtime_jar(agents / "0.8.6")
    newest = runtime_jar(agents / "0.8.11")
    launchers = repo / "org/junit/platform/junit-platform-console-standalone"
    (launchers / "1.9.3").mkdir(parents=True)
    launcher = launchers / "1.9.3" / "junit-platform-console-standalone-1.9.3.jar"
    shutil.copy(JAVA_LIB / "junit-platform-console-standalone.jar", launcher)
    assert find_jacoco_agent(maven_repo=repo) == newest  # 0.8.11 is newer than 0.8.6
    assert find_junit_launcher(maven_repo=repo) == launcher

    explicit = runtime_jar(tmp_path / "mine" / "0.8.6")
    assert find_jacoco_agent(explicit, maven_repo=repo) == explicit
    with pytest.raises(UsageError) as not_a_jar:
        find_junit_launcher(tmp_path / "m2", maven_repo=repo)
    assert f"--junit-launcher {tmp_path / 'm2'}: not a jar file" == one_line(not_a_jar.value)


def test_a_missing_agent_or_launcher_names_the_package_and_the_flag(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as agent:
        find_jacoco_agent(maven_repo=tmp_path, java_lib=tmp_path)
    assert "apt-get install libjacoco-java, or pass --jacoco-agent PATH" in one_line(agent.value)
    with pytest.raises(SandboxError) as launcher:
        find_junit_launcher(maven_repo=tmp_path, java_lib=tmp_path)
    assert "apt-get install junit5, or pass --junit-launcher PATH" in one_line(launcher.value)


@pytest.mark.e2e
def test_the_toolchain_runs_a_maven_style_agent_passed_explicitly(tmp_path: Path) -> None:
    agent = runtime_jar(tmp_path / "0.8.6")
    tools = java_toolchain(cache=tmp_path / "cache", jacoco_agent=agent)
    assert tools.agent_version.startswith("0.8.6") and tools.agent.read_bytes() == agent.read_bytes()
    assert tools.agent_limit >= 55  # Java 11 at least: the probe ran the agent


# -- Maven: the folders a pom sets, and when the project's own output is used (a stand-in mvnw) --

FAKE_MVNW = """\
#!/bin/sh
# Stands in for the Maven wrapper: records its arguments and folder, compiles when asked to,
# and writes the classpath file dependency:build-classpath writes.
printf '%s\\n' "$PWD" "$@" >> CAPTURE
for argument in "$@"; do
  case "$argument" in
    test-compile) javac --release 11 -d out/classes $(find src/java -name '*.java') || exit 1 ;;
    -Dmdep.outputFile=*) printf '%s' "/usr/share/java/hamcrest.jar:/usr/share/java/junit-jupiter-api.jar" \
                           > "${argument#-Dmdep.outputFile=}" ;;
  esac
done
"""

CUSTOM_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.example</groupId>
  <artifactId>interval</artifactId>
  <version>1.0</version>
  <build>
    <directory>out</directory>
    <sourceDirectory>${project.basedir}/src/java</sourceDirectory>
    <testSourceDirectory>test/java</testSourceDirectory>
    <testOutputDirectory>${project.build.directory}/tests</testOutputDirectory>
  </build>
</project>
"""


def test_maven_reads_the_poms_folders_and_uses_fresh_output_as_it_is(tmp_path: Path, toolchain: JavaToolchain) -> None:
    root = tmp_path / "interval"
    capture = tmp_path / "mvnw-calls"
    write(root, "pom.xml", CUSTOM_POM)
    source = write(root, "src/java/org/example/interval/Interval.java", INTERVAL)
    write(root, "test/java/org/example/interval/IntervalTest.java", INTERVAL_TEST)
    write(root, "mvnw", FAKE_MVNW.replace("CAPTURE", str(capture))).chmod(0o755)
    subprocess.run(["javac", "--release", "11", "-d", str(root / "out/classes"), str(source)], check=True, capture_output=True)
    write(root, "out/tests/org/example/interval/IntervalTest.class", "compiled by the user's build")
    for file in [root / "pom.xml", source, root / "test/java/org/example/interval/IntervalTest.java"]:
        os.utime(file, (1_600_000_000, 1_600_000_000))  # older than what the build wrote from them
    cache = tmp_path / "cache"

    build = resolve_build(root, cache=cache, toolchain=toolchain)

    folder, *args = capture.read_text().splitlines()
    assert folder == str(root) and args[:2] == ["-o", "-B"] and "dependency:build-classpath" in args
    assert "test-compile" not in args, "fresh output is used, not rebuilt"
    assert build.classes == (root / "out/classes",)
    assert build.classpath == (root / "out/tests", (JAVA_LIB / "hamcrest.jar"))
    assert build.source_roots == ("src/java",) and build.test_source_root == "test/java"
    assert build.how == "maven (offline, the project's own out/classes): 3 entries" and build.release == 11

    capture.unlink()
    source.touch()  # edited since the user's last build: covgen builds a copy
    before = snapshot(root)
    rebuilt = resolve_build(root, cache=cache, toolchain=toolchain)
    folder, *args = capture.read_text().splitlines()
    assert Path(folder).is_relative_to(cache) and "test-compile" in args and snapshot(root) == before
    (classes,) = rebuilt.classes
    assert classes.is_relative_to(cache) and class_names(classes) == {"org/example/interval/Interval.class"}
    assert rebuilt.how == "maven (offline, built in a copy): 2 entries"  # the copy has no compiled tests


def test_maven_modules_and_unreadable_poms_are_one_line_errors(tmp_path: Path, toolchain: JavaToolchain) -> None:
    modules = write(tmp_path / "multi", "pom.xml", "<project><modules><module>core</module></modules></project>")
    with pytest.raises(BuildError) as multi:
        resolve_build(modules.parent, cache=tmp_path / "cache", toolchain=toolchain)
    assert "multi-module" in one_line(multi.value) and "--classpath" in str(multi.value)
    broken = write(tmp_path / "broken", "pom.xml", "<project><build>")
    with pytest.raises(BuildError) as unreadable:
        resolve_build(broken.parent, cache=tmp_path / "cache", toolchain=toolchain)
    assert str(broken) in one_line(unreadable.value) and "--classpath" in str(unreadable.value)


# -- Maven (real, offline) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def maven_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local repository Maven may write to, whose artifacts link to Debian's (read-only) repository."""
    repo = tmp_path_factory.mktemp("maven-repo")
    for source in DEBIAN_MAVEN_REPO.rglob("*"):
        target = repo / source.relative_to(DEBIAN_MAVEN_REPO)
        if source.is_dir() and not source.is_symlink():
            target.mkdir(exist_ok=True)
        else:
            target.symlink_to(source)
    return repo


def maven_project(tmp_path: Path, repo: Path, name: str = "roman") -> Path:
    root = tmp_path / name
    shutil.copytree(SAMPLE, root)
    # Where a team keeps its Maven flags: here, the local repository the offline build reads.
    write(root, ".mvn/maven.config", f"-Dmaven.repo.local={repo}\n")
    return root


PARSE_TEST = """\
package org.example.roman;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RomanParseCovgenTest {
    @ParameterizedTest
    @ValueSource(strings = {"", "IIII"})
    void refusesNonStandardNumerals(String numeral) {
        assertThrows(IllegalArgumentException.class, () -> Roman.parse(numeral));
    }

    @Test
    void seesTheProjectsTestClasses() {
        assertNotNull(new RomanTest());
    }
}
"""


def run_candidate(root: Path, build: JavaBuild, toolchain: JavaToolchain, source: str) -> JavaRun:
    async def go() -> JavaRun:
        with Workspace(root) as workspace:
            runner = JavaRunner(workspace, classes=build.classes, classpath=build.classpath, toolchain=toolchain,
                                release=build.release)
            return await runner.run([JavaCandidate("parse", source)])

    return asyncio.run(go())


@pytest.mark.e2e
def test_maven_builds_offline_in_a_copy_then_uses_the_projects_own_fresh_target(
        tmp_path: Path, maven_repo: Path, toolchain: JavaToolchain) -> None:
    root = maven_project(tmp_path, maven_repo)
    before = snapshot(root)
    cache = tmp_path / "cache"

    built = resolve_build(root, cache=cache, toolchain=toolchain)

    assert snapshot(root) == before, "Maven writes target/: it must build in a copy"
    assert built.how == "maven (offline, built in a copy): 3 entries"
    (classes,) = built.classes
    assert classes.is_relative_to(cache) and class_names(classes) == {"org/example/roman/Roman.class"}
    test_classes = classes.parent / "test-classes"
    assert built.classpath[0] == test_classes and class_names(test_classes) == {"org/example/roman/RomanTest.class"}
    # junit-jupiter-params' own dependency stays; JUnit's jars are left to the launcher.
    assert [path.name for path in built.classpath[1:]] == ["univocity-parsers-debian.jar"]
    assert built.libraries == ("junit-jupiter", "junit-jupiter-params")
    assert built.release == 11  # the pom's <release>11</release>, read from the class files
    assert built.source_roots == ("src/main/java",) and built.test_source_root == "src/test/java"

    # What the runner is given runs a parameterized candidate that also uses the project's own test class.
    run = run_candidate(root, built, toolchain, PARSE_TEST)
    assert not run.failures
    assert sorted(o.outcome for o in run.outcomes.values()) == ["passed"] * 3
    assert {line for o in run.outcomes.values() for line in o.lines.get("org/example/roman/Roman.java", ())} >= {30, 41}

    # The user's CI has built the project since: its target/ is newer than the sources, and is used as it is.
    shutil.copytree(classes.parent, root / "target")
    built_by_ci = snapshot(root)
    fresh = resolve_build(root, cache=tmp_path / "cache-2", toolchain=toolchain)
    assert snapshot(root) == built_by_ci, "resolving the libraries writes nothing into the tree"
    assert fresh.classes == (root / "target/classes",)
    assert fresh.classpath[0] == root / "target/test-classes" and fresh.classpath[1:] == built.classpath[1:]
    assert fresh.how == "maven (offline, the project's own target/classes): 3 entries"


@pytest.mark.e2e
def test_maven_that_cannot_resolve_offline_gives_mavens_error_and_the_classpath_flag(
        tmp_path: Path, maven_repo: Path, toolchain: JavaToolchain) -> None:
    root = maven_project(tmp_path, maven_repo, "needs-assertj")
    pom = root / "pom.xml"
    pom.write_text(pom.read_text().replace("<dependencies>", "<dependencies>\n    <dependency>\n"
                                           "      <groupId>org.assertj</groupId>\n      <artifactId>assertj-core</artifactId>\n"
                                           "      <version>3.24.2</version>\n      <scope>test</scope>\n    </dependency>", 1))
    with pytest.raises(BuildError) as caught:
        resolve_build(root, cache=tmp_path / "cache", toolchain=toolchain)
    text = one_line(caught.value)
    assert text.startswith("mvn -o cannot build the project offline: Failed to execute goal on project roman: "
                           "Could not resolve dependencies")
    assert "org.assertj:assertj-core:jar:3.24.2 has not been downloaded" in text
    assert "[ERROR]" not in text and "[Help 1]" not in text and "\x1b" not in text
    assert text.endswith("pass the test classpath with --classpath CP")
