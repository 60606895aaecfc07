"""The Java side's tools: the JDK, the JUnit Platform, the JaCoCo agent and covgen's JVM helpers.

Found once per process and checked before any candidate runs: a missing package is one line
saying which to install, and class files the agent cannot instrument are refused with the fix
instead of reported as zero coverage. covgen's helpers (``covgen/runners/java/``) are compiled
here on first use, and the agent's reach is probed once; both are cached per JDK, agent and
helper source, so a later run pays neither.

The agent's reach is measured, not looked up: Debian's JaCoCo 0.8.6 is built against a newer
ASM than upstream's and instruments Java 17 class files that upstream 0.8.6 refuses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import SandboxError, UsageError

__all__ = ["JavaToolchain", "java_toolchain", "check_class_versions", "newest_class_file", "find_jacoco_agent",
           "find_junit_launcher", "HELPER_SOURCES", "CLASS_VERSION_OFFSET"]

#: Debian's folder of Java libraries (packages junit5 and libjacoco-java).
JAVA_LIB = Path("/usr/share/java")
#: Where Maven keeps what it downloaded (``mvn`` users have the agent and the launcher here).
MAVEN_REPO = Path("~/.m2/repository")
_AGENT_GLOB = ("org/jacoco/org.jacoco.agent", "org.jacoco.agent-*-runtime.jar")
_LAUNCHER_GLOB = ("org/junit/platform/junit-platform-console-standalone", "junit-platform-console-standalone-*.jar")
HELPER_SOURCES = Path(__file__).with_name("java")
#: A class file's major version minus this is the Java release it was compiled for (61 → 17).
CLASS_VERSION_OFFSET = 44
_OLDEST_PROBED = 52  # Java 8: the oldest release javac 17 and later still compiles for
_ANALYSIS_JARS = ("org.jacoco.core.jar", "asm.jar", "asm-commons.jar", "asm-tree.jar")


@dataclass(frozen=True, slots=True)
class JavaToolchain:
    """Everything a Java wave needs, found and checked."""

    java: Path
    javac: Path
    java_home: Path
    #: The JDK's own class-file major version (61 for Java 17): nothing newer loads.
    class_version: int
    #: The JUnit Platform (launcher, Jupiter engine and API) for compiling and running tests.
    junit: tuple[Path, ...]
    #: The agent itself (Debian ships it inside ``org.jacoco.agent.jar``; extracted into the cache).
    agent: Path
    agent_version: str
    #: The newest class-file major version the agent instruments on this JDK, probed.
    agent_limit: int
    #: org.jacoco.core and its ASM: the per-test analysis in the test JVM, in a loader of its own.
    analysis: tuple[Path, ...]
    #: covgen's compiled helpers (``covgen.jvm.*``).
    helpers: Path

    @property
    def release(self) -> int:
        return self.class_version - CLASS_VERSION_OFFSET


@functools.cache
def java_toolchain(java_home: Path | None = None, java_lib: Path = JAVA_LIB, cache: Path | None = None, *,
                   jacoco_agent: Path | None = None, junit_launcher: Path | None = None) -> JavaToolchain:
    """Find the JDK (`java_home`, else ``$JAVA_HOME``, else ``javac`` on PATH) and the libraries in `java_lib`.

    `jacoco_agent` and `junit_launcher` (``--jacoco-agent``, ``--junit-launcher``) win over the
    ones found in the local Maven repository and in `java_lib`.
    """
    home = _find_java_home(java_home)
    java, javac = home / "bin" / "java", home / "bin" / "javac"
    junit = (find_junit_launcher(junit_launcher, java_lib=java_lib),)
    analysis = tuple(_library(java_lib, name, "libjacoco-java") for name in _ANALYSIS_JARS)
    agent_bundle = find_jacoco_agent(jacoco_agent, java_lib=java_lib)
    version = _run([str(java), "-version"]).stderr
    sources = sorted(HELPER_SOURCES.rglob("*.java"))
    key = hashlib.sha256()
    jars = (f"{jar}:{jar.stat().st_size}:{jar.stat().st_mtime_ns}" for jar in (*junit, *analysis, agent_bundle))
    for part in (version, str(java), *jars):
        key.update(part.encode() + b"\0")
    for source in sources:
        key.update(source.read_bytes())
    folder = (cache or _default_cache()) / key.hexdigest()[:24]
    if not (folder / "toolchain.json").exists():
        try:
            _build(folder, java, javac, junit, analysis, agent_bundle, sources)
        except OSError as err:
            raise SandboxError(f"cannot write covgen's Java cache in {folder.parent}: {err}; "
                               "point XDG_CACHE_HOME at a writable folder", slug="java-cache") from err
    facts = json.loads((folder / "toolchain.json").read_text())
    return JavaToolchain(
        java=java, javac=javac, java_home=home, class_version=int(facts["class_version"]), junit=junit,
        agent=folder / "jacocoagent.jar", agent_version=str(facts["agent_version"]), agent_limit=int(facts["agent_limit"]),
        analysis=analysis, helpers=folder / "helpers",
    )


def find_jacoco_agent(explicit: Path | None = None, *, maven_repo: Path = MAVEN_REPO, java_lib: Path = JAVA_LIB) -> Path:
    """The JaCoCo agent: `explicit`, else the newest in the local Maven repository, else Debian's.

    Maven's ``org.jacoco.agent-*-runtime.jar`` is the agent itself; Debian's ``org.jacoco.agent.jar``
    holds it as ``jacocoagent.jar`` (extracted when the toolchain is built). Either may be passed.
    """
    return _find_jar(explicit, "--jacoco-agent", maven_repo, _AGENT_GLOB, java_lib / "org.jacoco.agent.jar",
                     "libjacoco-java", "the JaCoCo agent (jacocoagent.jar)")


def find_junit_launcher(explicit: Path | None = None, *, maven_repo: Path = MAVEN_REPO, java_lib: Path = JAVA_LIB) -> Path:
    """The JUnit Platform console launcher: `explicit`, else the newest in the local Maven repository, else Debian's."""
    return _find_jar(explicit, "--junit-launcher", maven_repo, _LAUNCHER_GLOB,
                     java_lib / "junit-platform-console-standalone.jar", "junit5",
                     "the JUnit Platform console launcher (junit-platform-console-standalone.jar)")


def _find_jar(explicit: Path | None, flag: str, maven_repo: Path, pattern: tuple[str, str], debian: Path, package: str,
              what: str) -> Path:
    if explicit is not None:
        if not explicit.is_file() or not zipfile.is_zipfile(explicit):
            raise UsageError(f"{flag} {explicit}: not a jar file", slug="java-missing")
        return explicit.resolve()
    folder, name = pattern
    found = sorted((maven_repo.expanduser() / folder).glob(f"*/{name}"), key=lambda path: _version_key(path.parent.name))
    if found:
        return found[-1].resolve()
    if debian.is_file():
        return debian.resolve()
    raise SandboxError(f"{what} was not found in {maven_repo / folder} nor as {debian}: "
                       f"apt-get install {package}, or pass {flag} PATH", slug="java-missing")


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    """``0.8.11`` sorts after ``0.8.6``: numbers compare as numbers."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.-]", version))


def newest_class_file(roots: Sequence[Path]) -> tuple[int, str] | None:
    """The highest class-file major version under the folders and jars in `roots`, and a class that has it."""
    newest: tuple[int, str] | None = None
    for name, major in _class_versions(roots):
        if newest is None or major > newest[0]:
            newest = (major, name)
    return newest


def check_class_versions(roots: Sequence[Path], toolchain: JavaToolchain) -> None:
    """Refuse class files this JDK cannot load or the agent cannot instrument, naming the fix.

    Left alone, the agent logs an error per class and runs it uninstrumented: every test would
    seem to cover nothing.
    """
    newest = newest_class_file(roots)
    if newest is None:
        return
    major, name = newest
    release = major - CLASS_VERSION_OFFSET
    if major > toolchain.class_version:
        raise SandboxError(
            f"{name} is compiled for Java {release} (class file version {major}), newer than this JDK "
            f"(Java {toolchain.release}, {toolchain.java_home}): run covgen with a JDK {release} or later, "
            f"or compile the project with --release {toolchain.release}", slug="java-class-version")
    if major > toolchain.agent_limit:
        limit = toolchain.agent_limit - CLASS_VERSION_OFFSET
        raise SandboxError(
            f"{name} is compiled for Java {release} (class file version {major}); the JaCoCo agent "
            f"{toolchain.agent_version} instruments class files up to Java {limit} here and would report no "
            f"coverage for it: compile the project with --release 11 (any release up to {limit}), "
            f"or use a JaCoCo agent that supports Java {release}", slug="java-class-version")


def _class_versions(roots: Sequence[Path]) -> Iterator[tuple[str, int]]:
    """(class name, major version) of every class file under the folders and jars in `roots`."""
    for root in roots:
        if root.is_dir():
            for path in root.rglob("*.class"):
                with path.open("rb") as stream:
                    head = stream.read(8)
                if len(head) == 8 and head[:4] == b"\xca\xfe\xba\xbe":
                    yield str(path.relative_to(root)), int.from_bytes(head[6:8], "big")
        elif root.is_file() and zipfile.is_zipfile(root):
            with zipfile.ZipFile(root) as jar:
                for entry in jar.namelist():
                    # Multi-release jars keep newer variants under META-INF/versions for newer JVMs.
                    if entry.endswith(".class") and not entry.startswith("META-INF/"):
                        with jar.open(entry) as stream:
                            head = stream.read(8)
                        if len(head) == 8 and head[:4] == b"\xca\xfe\xba\xbe":
                            yield f"{root.name}!{entry}", int.from_bytes(head[6:8], "big")


def _find_java_home(java_home: Path | None) -> Path:
    if java_home is None and os.environ.get("JAVA_HOME"):
        java_home = Path(os.environ["JAVA_HOME"])
    if java_home is None:
        javac = shutil.which("javac")
        if javac is None:
            raise SandboxError("javac was not found: install a JDK (apt-get install default-jdk-headless) or set JAVA_HOME",
                               slug="java-missing")
        java_home = Path(javac).resolve().parent.parent
    java_home = java_home.resolve()
    for tool in ("java", "javac"):
        if not os.access(java_home / "bin" / tool, os.X_OK):
            raise SandboxError(f"{java_home / 'bin' / tool} is missing: {java_home} is not a JDK "
                               "(apt-get install default-jdk-headless)", slug="java-missing")
    return java_home


def _library(folder: Path, name: str, package: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise SandboxError(f"{path} is missing: apt-get install {package}", slug="java-missing")
    return path.resolve()


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "covgen" / "java"


def _build(folder: Path, java: Path, javac: Path, junit: Sequence[Path], analysis: Sequence[Path], agent_bundle: Path,
           sources: Sequence[Path]) -> None:
    """Compile the helpers, extract the agent and probe its reach, into `folder` (all or nothing)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=folder.parent))
    try:
        agent = work / "jacocoagent.jar"
        _extract_agent(agent_bundle, agent)
        helpers = work / "helpers"
        classpath = os.pathsep.join(map(str, [*junit, agent, *analysis]))
        compiled = _run([str(javac), "-nowarn", "-encoding", "utf-8", "-d", str(helpers), "-cp", classpath,
                         *map(str, sources)])
        if compiled.returncode != 0:
            raise SandboxError(f"covgen's Java helpers do not compile with {javac}: {_last_line(compiled.stderr)}")
        class_version = _class_version_of(helpers)
        limit, agent_version = _probe_agent(work, java, javac, agent, helpers, class_version)
        shutil.rmtree(work / "probe")
        (work / "toolchain.json").write_text(json.dumps(
            {"class_version": class_version, "agent_limit": limit, "agent_version": agent_version}))
        try:
            work.rename(folder)
        except OSError:
            if not (folder / "toolchain.json").exists():  # another covgen built it meanwhile: use theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_agent(source: Path, agent: Path) -> None:
    """Copy the agent to `agent`: Debian's bundle holds it as ``jacocoagent.jar``; Maven's runtime jar is it."""
    try:
        with zipfile.ZipFile(source) as jar:
            names = set(jar.namelist())
            if "jacocoagent.jar" in names:
                agent.write_bytes(jar.read("jacocoagent.jar"))
                return
            manifest = jar.read("META-INF/MANIFEST.MF").decode("utf-8", "replace") if "META-INF/MANIFEST.MF" in names else ""
    except (OSError, zipfile.BadZipFile) as err:
        raise SandboxError(f"{source} is not a readable jar ({err}): reinstall libjacoco-java or pass --jacoco-agent PATH",
                           slug="java-missing") from err
    if "Premain-Class:" not in manifest:
        raise SandboxError(f"{source} is not a JaCoCo agent (no Premain-Class, no jacocoagent.jar inside): "
                           "pass --jacoco-agent PATH to jacocoagent.jar, or apt-get install libjacoco-java", slug="java-missing")
    shutil.copyfile(source, agent)


def _class_version_of(helpers: Path) -> int:
    return max(major for _, major in _class_versions([helpers]))


def _probe_agent(work: Path, java: Path, javac: Path, agent: Path, helpers: Path, newest: int) -> tuple[int, str]:
    """The newest class-file version the agent instruments on this JDK: one JVM loads one class per version."""
    probe = work / "probe"
    sources = probe / "src"
    sources.mkdir(parents=True)
    versions = range(_OLDEST_PROBED, newest + 1)
    names = [f"CovgenProbe{v}" for v in versions]
    for name in names:
        (sources / f"{name}.java").write_text(f"public class {name} {{ static int touched = 1; }}\n")
    classes = probe / "classes"
    compiled = _run([str(javac), "-nowarn", "--release", str(_OLDEST_PROBED - CLASS_VERSION_OFFSET), "-d", str(classes),
                     *(str(sources / f"{name}.java") for name in names)])
    if compiled.returncode != 0:
        raise SandboxError(f"{javac} cannot compile for Java 8 to probe the JaCoCo agent: {_last_line(compiled.stderr)}")
    for version, name in zip(versions, names):
        path = classes / f"{name}.class"
        data = bytearray(path.read_bytes())
        data[6:8] = version.to_bytes(2, "big")  # the same bytes stand for any newer release
        path.write_bytes(bytes(data))
    result = _run([str(java), f"-javaagent:{agent}=output=none,includes=CovgenProbe*", "-cp", str(helpers),
                   "covgen.jvm.CovgenProbe", str(classes), *names])
    lines = result.stdout.split()
    if result.returncode != 0 or "agent" not in lines:
        raise SandboxError(f"the JaCoCo agent ({agent.name}) does not start on this JDK ({java}): "
                           f"{_last_line(result.stderr or result.stdout)}; use a JaCoCo agent built for this Java release",
                           slug="java-agent")
    instrumented = [v for v, name in zip(versions, names) if name in lines]
    if not instrumented:
        raise SandboxError(f"the JaCoCo agent ({agent.name}) instruments no class on this JDK ({java}): "
                           f"{_last_line(result.stderr)}; use a JaCoCo agent built for this Java release", slug="java-agent")
    return max(instrumented), lines[lines.index("agent") + 1]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run one of covgen's own JDK steps (trusted code only: no candidate is involved)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd="/", check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SandboxError(f"{argv[0]} failed: {err}", slug="java-missing") from err


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
