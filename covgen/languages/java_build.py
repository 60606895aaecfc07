"""Find a Java project's compiled classes and its test classpath: ``--classpath``, Maven, Gradle, or javac alone.

The first that applies wins:

1. ``--classpath CP`` (any build): the entries holding compiled classes of the project's sources
   (``src/main/java``, or ``--source-root``) are what is measured; the rest is the classpath.
   When no source is found there, the first folder entry is taken for the classes.
2. ``--source-root DIR``, or a project with no build file: javac compiles the sources alone, for
   the newest release both the JDK and the JaCoCo agent handle. A dependency-free project needs
   no build at all; one that does not compile alone is told to pass ``--classpath``. Its tests
   (``src/test/java``) are compiled against JUnit too, and left out if they need more.
3. ``pom.xml``: Maven, offline.
4. ``build.gradle[.kts]`` / ``settings.gradle[.kts]``: Gradle, offline, through the project's
   wrapper if it has one, with an init script that prints the source sets.

covgen writes nothing into the user's tree but its own test files, and Maven and Gradle write
their output there. So: when the project's ``target/classes`` (and ``target/test-classes``,
if it has tests) are newer than every source and ``pom.xml``, they are what the user's CI
built the report from and are used as they are (Maven only resolves the libraries, which
writes nothing in the tree). Otherwise, and always for Gradle, the project is copied into
covgen's cache and built there. Every resolution but ``--classpath`` is cached, keyed by the
project's path, its build files' bytes, its files' paths and mtimes, and the JDK.

The release the classes are compiled for is read from their class files, not from the build:
that is what the build really did, whatever its configuration says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lxml import etree

from covgen.defaults import JAVA_SOURCE_ROOT, JAVA_TEST_SOURCE_ROOT
from covgen.errors import BuildError, UsageError
from covgen.runners.java_toolchain import CLASS_VERSION_OFFSET, JavaToolchain, java_toolchain, newest_class_file

__all__ = ["JavaBuild", "resolve_build", "GRADLE_INIT_SCRIPT"]

#: Seconds a build may take (a first Maven or Gradle run of a large project is slow).
_BUILD_TIMEOUT = 900
_VCS = frozenset({".git", ".hg", ".svn", ".idea", "node_modules"})
_GRADLE_FILES = ("build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts")
#: Libraries a generated test may use when the project has them, and a class that shows each is there.
_LIBRARIES = {
    "junit-jupiter-params": "org/junit/jupiter/params/ParameterizedTest.class",
    "assertj": "org/assertj/core/api/Assertions.class",
    "hamcrest": "org/hamcrest/Matcher.class",
    "mockito": "org/mockito/Mockito.class",
}
#: What the JUnit Platform console launcher already holds: jars of only these are left out of the
#: classpath, so that no second, perhaps older, copy of JUnit shadows the launcher's.
_JUNIT_PACKAGES = ("org/junit/jupiter/", "org/junit/platform/", "org/opentest4j/", "org/apiguardian/")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_JAVAC_ERROR = re.compile(r"^(?P<file>.+?\.java):(?P<line>\d+): error: (?P<message>.+)$", re.MULTILINE)
_MARK = "covgen-build "

#: Registers ``covgenBuildInfo`` on the root project: it builds the test classes and prints one
#: ``covgen-build KIND PATH`` line per entry, which :func:`_parse_gradle` reads.
GRADLE_INIT_SCRIPT = """\
// Written by covgen (a temporary init script): prints where this build puts its classes.
rootProject {
    plugins.withId('java') {
        tasks.register('covgenBuildInfo') {
            dependsOn 'testClasses'
            doLast {
                def sets = project.sourceSets
                sets.main.output.classesDirs.each { println "covgen-build classes ${it}" }
                sets.test.runtimeClasspath.each { println "covgen-build classpath ${it}" }
                sets.main.java.srcDirs.each { println "covgen-build source ${it}" }
                sets.test.java.srcDirs.each { println "covgen-build test-source ${it}" }
            }
        }
    }
}
"""


@dataclass(frozen=True, slots=True)
class JavaBuild:
    """What running tests against a Java project takes, and where it came from."""

    #: Compiled production classes (folders or jars): what JaCoCo measures.
    classes: tuple[Path, ...]
    #: The rest of the test runtime classpath (libraries, the project's test classes), without JUnit itself.
    classpath: tuple[Path, ...]
    #: Root-relative folders of the production sources, such as ``src/main/java``.
    source_roots: tuple[str, ...]
    #: Root-relative folder of the tests.
    test_source_root: str
    #: Test libraries a generated test may use: ``junit-jupiter`` and those of ``_LIBRARIES`` present.
    libraries: tuple[str, ...]
    #: One line for the run summary: how the classpath was found.
    how: str
    #: The Java release the classes are compiled for (from their class files), when there are any.
    release: int | None


@dataclass(frozen=True, slots=True)
class _Found:
    """A resolution before its entries are sorted out: what :func:`_assemble` turns into a JavaBuild."""

    classes: tuple[Path, ...]
    entries: tuple[Path, ...]
    source_roots: tuple[str, ...]
    test_source_root: str
    how: str


def resolve_build(root: Path, *, classpath: str | None = None, source_root: str | None = None,
                  cache: Path | None = None, toolchain: JavaToolchain | None = None) -> JavaBuild:
    """Find the classes to measure and the classpath tests need, by ``--classpath``, javac, Maven or Gradle."""
    root = root.resolve()
    if classpath is not None:
        return _assemble(_from_classpath(root, classpath, source_root or JAVA_SOURCE_ROOT))
    tools = toolchain or java_toolchain()
    folder = cache or _default_cache()
    if source_root is None and (root / "pom.xml").is_file():
        return _assemble(_maven(root, tools, folder))
    if source_root is None and any((root / name).is_file() for name in _GRADLE_FILES):
        return _assemble(_gradle(root, tools, folder))
    return _assemble(_javac(root, source_root or JAVA_SOURCE_ROOT, tools, folder))


# -- --classpath ------------------------------------------------------------------------------


def _from_classpath(root: Path, text: str, source_root: str) -> _Found:
    entries: list[Path] = []
    for item in (part.strip() for part in text.split(os.pathsep)):
        if not item:
            continue
        path = (root / item).resolve()
        if not path.exists():
            raise UsageError(f"--classpath entry {item} does not exist (relative entries are read from {root})",
                             slug="java-classpath")
        entries.append(path)
    sources = root / source_root
    expected = {str(file.relative_to(sources).with_suffix(".class")).replace(os.sep, "/")
                for file in sources.rglob("*.java")} if sources.is_dir() else set()
    if expected:
        classes = [entry for entry in entries if _holds_any(entry, expected)]
        if not classes:
            raise UsageError(f"no --classpath entry holds the compiled classes of {source_root} (such as "
                             f"{min(expected)}): add the folder your build compiles them into", slug="java-classpath")
    else:
        classes = [entry for entry in entries if entry.is_dir()][:1]
        if not classes:
            raise UsageError(f"no Java sources under {source_root} and no folder in --classpath to take for the "
                             "project's classes: pass --source-root DIR", slug="java-classpath")
    rest = tuple(entry for entry in entries if entry not in classes)
    return _Found(tuple(classes), rest, (source_root,), JAVA_TEST_SOURCE_ROOT, f"--classpath: {len(entries)} entries")


def _holds_any(entry: Path, names: set[str]) -> bool:
    if entry.is_dir():
        return any((entry / name).is_file() for name in names)
    return bool(names & _jar_names(entry))


# -- javac alone ------------------------------------------------------------------------------


def _javac(root: Path, source_root: str, tools: JavaToolchain, cache: Path) -> _Found:
    """Compile `source_root` with javac alone, for a release both the JDK and the agent handle."""
    folder = root / source_root
    sources = sorted(folder.rglob("*.java")) if folder.is_dir() else []
    if not sources:
        raise BuildError(f"no Java sources under {source_root} and no pom.xml or Gradle build in {root}: "
                         "pass --source-root DIR or --classpath CP", slug="java-classpath")
    test_folder = root / JAVA_TEST_SOURCE_ROOT
    tests = sorted(test_folder.rglob("*.java")) if test_folder.is_dir() else []
    release = min(tools.agent_limit, tools.class_version) - CLASS_VERSION_OFFSET
    key = _key("javac", root, tools, [str(release).encode()], _stamps(root, [*sources, *tests]))

    def build(work: Path) -> _Found:
        classes, test_classes = work / "classes", work / "test-classes"
        error = _compile(tools, release, sources, classes, [], work / "sources.txt", root)
        if error:
            raise BuildError(f"javac cannot compile {source_root} alone: {error}; "
                             "pass the project's classes and libraries with --classpath CP", slug="java-build")
        how = f"javac --release {release}: {len(sources)} sources"
        # The existing tests run beside the candidates of their class; a test that needs a
        # library javac does not have only costs its own classes.
        error = _compile(tools, release, tests, test_classes, [classes, *tools.junit], work / "tests.txt", root) if tests else ""
        if tests:
            how += f", existing tests left out ({error})" if error else f", {len(tests)} test sources"
        entries = (test_classes,) if tests and not error else ()
        return _Found((classes,), entries, (source_root,), JAVA_TEST_SOURCE_ROOT, how)

    return _cached(cache, key, build)


def _compile(tools: JavaToolchain, release: int, sources: Sequence[Path], target: Path, classpath: Sequence[Path],
             arguments: Path, root: Path) -> str:
    """javac `sources` into `target`; the first error, root-relative, or "" when they compile."""
    # An argument file: a large project's paths would overflow a command line.
    arguments.write_text("".join(_quoted(source) + "\n" for source in sources), encoding="utf-8")
    result = _run([str(tools.javac), "--release", str(release), "-g", "-nowarn", "-proc:none", "-encoding", "utf-8",
                   "-d", str(target), "-cp", os.pathsep.join(map(str, classpath)), f"@{arguments}"], cwd=root, tools=tools)
    return "" if result.returncode == 0 else _javac_error(result.stdout + result.stderr, root)


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _javac_error(output: str, root: Path) -> str:
    match = _JAVAC_ERROR.search(output)
    if match is None:
        return _last_line(output)
    file = Path(match["file"])
    shown = file.relative_to(root) if file.is_relative_to(root) else file
    return f"{shown}:{match['line']}: {match['message']}"


# -- Maven ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pom:
    """The folders a ``pom.xml`` sets (Maven's defaults where it sets none), root-relative."""

    sources: str
    tests: str
    #: Where the build writes (``target``): never copied, never part of the cache key.
    output: str
    classes: str
    test_classes: str
    modules: bool


def _read_pom(pom: Path) -> _Pom:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        project = etree.fromstring(pom.read_bytes(), parser)
    except (OSError, etree.XMLSyntaxError) as err:
        raise BuildError(f"{pom} cannot be read: {err}; pass --classpath CP", slug="java-build") from err
    build = {etree.QName(child).localname: (child.text or "").strip()
             for node in project if isinstance(node.tag, str) and etree.QName(node).localname == "build"
             for child in node if isinstance(child.tag, str)}
    modules = any(isinstance(node.tag, str) and etree.QName(node).localname == "modules" and len(node) for node in project)
    target = _pom_path(build.get("directory"), "target", {})
    known = {"project.build.directory": target}
    return _Pom(
        sources=_pom_path(build.get("sourceDirectory"), "src/main/java", known),
        tests=_pom_path(build.get("testSourceDirectory"), "src/test/java", known),
        output=target,
        classes=_pom_path(build.get("outputDirectory"), f"{target}/classes", known),
        test_classes=_pom_path(build.get("testOutputDirectory"), f"{target}/test-classes", known),
        modules=modules,
    )


def _pom_path(value: str | None, default: str, known: dict[str, str]) -> str:
    """A folder the pom sets, root-relative; the default when it uses a property covgen does not know."""
    if not value:
        return default
    for name in ("project.basedir", "basedir"):
        value = value.replace("${" + name + "}/", "").replace("${" + name + "}", ".")
    for name, known_value in known.items():
        value = value.replace("${" + name + "}", known_value)
    if "${" in value:
        return default
    return value if value.startswith("/") else value.rstrip("/")


def _maven(root: Path, tools: JavaToolchain, cache: Path) -> _Found:
    pom = _read_pom(root / "pom.xml")
    if pom.modules:
        raise BuildError("multi-module Maven builds are not resolved by covgen yet: pass the module's classes and "
                         "test classpath with --classpath CP", slug="java-build")
    output = root / pom.output
    files = list(_project_files(root, output))
    build_files = [(str(file.relative_to(root)).encode(), file.read_bytes()) for file in files
                   if file.name == "pom.xml" or file.parent.name == ".mvn"]
    parts = [part for pair in build_files for part in pair]
    tests_exist = any(file.suffix == ".java" for file in _under(root / pom.tests))
    if _fresh(root, pom, tests_exist):
        def libraries(work: Path) -> _Found:
            entries = _run_maven(root, [], work / "classpath.txt", tools)
            return _Found((root / pom.classes,), (root / pom.test_classes, *entries), (pom.sources,), pom.tests,
                          f"maven (offline, the project's own {pom.classes}): {{n}} entries")

        return _cached(cache, _key("maven-target", root, tools, parts, []), libraries)

    def build(work: Path) -> _Found:
        project = _copy_project(root, work / "project", output)
        entries = _run_maven(project, ["test-compile"], work / "classpath.txt", tools)
        return _Found((project / pom.classes,), (project / pom.test_classes, *entries), (pom.sources,), pom.tests,
                      "maven (offline, built in a copy): {n} entries")

    return _cached(cache, _key("maven-copy", root, tools, parts, _stamps(root, files)), build)


def _fresh(root: Path, pom: _Pom, tests_exist: bool) -> bool:
    """Whether the project's own classes are newer than every source and the pom: what its CI built."""
    pairs = [(pom.sources, pom.classes)] + ([(pom.tests, pom.test_classes)] if tests_exist else [])
    inputs = [(root / "pom.xml").stat().st_mtime_ns]
    for sources, _ in pairs:
        inputs += [file.stat().st_mtime_ns for file in _under(root / sources)]
    for _, classes in pairs:
        compiled = [file.stat().st_mtime_ns for file in _under(root / classes) if file.suffix == ".class"]
        if not compiled or min(compiled) < max(inputs):
            return False
    return True


def _run_maven(project: Path, goals: list[str], output: Path, tools: JavaToolchain) -> list[Path]:
    """Run the goals and ``dependency:build-classpath`` offline; the test classpath's libraries."""
    wrapper = project / "mvnw"
    command = [str(wrapper)] if os.access(wrapper, os.X_OK) else [_tool("mvn", "maven")]
    result = _run([*command, "-o", "-B", "-q", "-Dstyle.color=never", *goals, "dependency:build-classpath",
                   f"-Dmdep.outputFile={output}", "-Dmdep.includeScope=test"], cwd=project, tools=tools)
    if result.returncode != 0 or not output.is_file():
        error = _maven_error(result.stdout + result.stderr).replace(f"{project}{os.sep}", "")
        raise BuildError(f"mvn -o cannot build the project offline: {error}; {_advice(error)}", slug="java-build")
    return [Path(entry) for entry in output.read_text(encoding="utf-8").strip().split(os.pathsep) if entry]


def _maven_error(output: str) -> str:
    """Maven's first real ``[ERROR]`` line, without the colours and the ``-> [Help 1]`` tail."""
    for line in _ANSI.sub("", output).splitlines():
        if line.startswith("[ERROR]"):
            text = line[len("[ERROR]"):].strip().removesuffix("-> [Help 1]").strip()
            if text and text != "COMPILATION ERROR :":
                return text
    return _last_line(_ANSI.sub("", output))


# -- Gradle -----------------------------------------------------------------------------------


def _gradle(root: Path, tools: JavaToolchain, cache: Path) -> _Found:
    files = list(_project_files(root))
    build_files = [(str(file.relative_to(root)).encode(), file.read_bytes()) for file in files
                   if file.name.endswith((".gradle", ".gradle.kts", "gradle.properties", ".versions.toml"))]
    parts = [GRADLE_INIT_SCRIPT.encode(), *(part for pair in build_files for part in pair)]

    def build(work: Path) -> _Found:
        project = _copy_project(root, work / "project")
        script = work / "covgen-init.gradle"
        script.write_text(GRADLE_INIT_SCRIPT, encoding="utf-8")
        wrapper = project / "gradlew"
        command = ([str(wrapper)] if os.access(wrapper, os.X_OK) else ["sh", str(wrapper)]) if wrapper.is_file() \
            else [_tool("gradle", "gradle")]
        result = _run([*command, "--offline", "-q", "--init-script", str(script), "covgenBuildInfo"], cwd=project, tools=tools)
        if result.returncode != 0:
            error = _gradle_error(result.stdout + result.stderr).replace(f"{project}{os.sep}", "")
            raise BuildError(f"gradle --offline cannot build the project: {error}; {_advice(error)}", slug="java-build")
        return _parse_gradle(result.stdout, project)

    return _cached(cache, _key("gradle", root, tools, parts, _stamps(root, files)), build)


def _parse_gradle(stdout: str, project: Path) -> _Found:
    """Read the ``covgen-build KIND PATH`` lines of ``covgenBuildInfo``; sources become root-relative."""
    found: dict[str, list[Path]] = {"classes": [], "classpath": [], "source": [], "test-source": []}
    for line in stdout.splitlines():
        kind, _, path = line.removeprefix(_MARK).partition(" ")
        if line.startswith(_MARK) and kind in found and path:
            found[kind].append(Path(path))
    if not found["classes"]:
        raise BuildError("gradle printed no main source set: is the java plugin applied to the root project? "
                         "Pass the test classpath with --classpath CP", slug="java-build")

    def relative(paths: list[Path], default: str) -> list[str]:
        inside = [str(path.relative_to(project)) for path in paths if path.is_relative_to(project)]
        present = [path for path in inside if (project / path).is_dir()]
        return present or inside[:1] or [default]

    return _Found(tuple(found["classes"]), tuple(found["classpath"]), tuple(relative(found["source"], JAVA_SOURCE_ROOT)),
                  relative(found["test-source"], JAVA_TEST_SOURCE_ROOT)[0], "gradle (offline, built in a copy): {n} entries")


def _gradle_error(output: str) -> str:
    """The line after Gradle's ``* What went wrong:``, else its last line."""
    lines = [line.strip() for line in output.splitlines()]
    if "* What went wrong:" in lines:
        following = [line for line in lines[lines.index("* What went wrong:") + 1:] if line]
        if following:
            return following[0]
    return _last_line(output)


# -- shared -----------------------------------------------------------------------------------


def _advice(error: str) -> str:
    """What to do about a failed build: a library missing offline can be fetched once; anything else, --classpath."""
    fetch = "build it once online (to fill the local repository), or " if re.search(r"offline|resolve", error) else ""
    return f"{fetch}pass the test classpath with --classpath CP"


def _assemble(found: _Found) -> JavaBuild:
    """Drop missing entries and JUnit's own jars, find the libraries and the release."""
    classes = tuple(dict.fromkeys(path for path in found.classes if path.exists()))
    rest = tuple(dict.fromkeys(path for path in found.entries if path.exists() and path not in classes))
    present = [name for name, marker in _LIBRARIES.items() if any(_holds_any(path, {marker}) for path in (*classes, *rest))]
    classpath = tuple(path for path in rest if not _is_junit(path))
    newest = newest_class_file(classes)
    return JavaBuild(
        classes=classes, classpath=classpath, source_roots=found.source_roots, test_source_root=found.test_source_root,
        libraries=("junit-jupiter", *present), how=found.how.replace("{n}", str(len(classes) + len(classpath))),
        release=newest[0] - CLASS_VERSION_OFFSET if newest else None,
    )


def _is_junit(path: Path) -> bool:
    classes = [name for name in _jar_names(path) if name.endswith(".class") and "/" in name and not name.startswith("META-INF/")]
    return bool(classes) and all(name.startswith(_JUNIT_PACKAGES) for name in classes)


def _jar_names(path: Path) -> frozenset[str]:
    if not path.is_file():
        return frozenset()
    try:
        with zipfile.ZipFile(path) as jar:
            return frozenset(jar.namelist())
    except (OSError, zipfile.BadZipFile):
        return frozenset()


def _cached(cache: Path, key: str, build: Callable[[Path], _Found]) -> _Found:
    """The resolution stored under `key`, else `build` it in a fresh folder that then becomes the entry.

    Paths inside the entry are stored relative to it, so the folder can be renamed into place
    after the build (all or nothing: a failed build leaves no entry).
    """
    folder = cache / key
    record = folder / "build.json"
    if record.is_file():
        found = _load(record, folder)
        if found is not None:
            return replace(found, how=found.how + " (cached)")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache)).resolve()
    except OSError as err:
        raise BuildError(f"cannot write covgen's Java build cache in {cache}: {err}; point XDG_CACHE_HOME at a "
                         "writable folder", slug="java-cache") from err
    try:
        found = build(work)
        (work / "build.json").write_text(json.dumps(_dump(found, work)), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)  # an entry whose paths are gone
        try:
            work.rename(folder)
        except OSError:
            if not record.is_file():  # another covgen stored it meanwhile: theirs is as good
                raise
        loaded = _load(record, folder)
        if loaded is None:
            raise BuildError(f"the build's entries under {folder} vanished after the build", slug="java-cache")
        return loaded
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dump(found: _Found, work: Path) -> dict[str, object]:
    def store(path: Path) -> str:
        return "@/" + str(path.relative_to(work)) if path.is_relative_to(work) else str(path)

    return {"classes": [store(p) for p in found.classes], "entries": [store(p) for p in found.entries],
            "source_roots": list(found.source_roots), "test_source_root": found.test_source_root, "how": found.how}


def _load(record: Path, folder: Path) -> _Found | None:
    """The stored resolution, or None when it is unreadable or a library it names is gone."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))

        def load(text: str) -> Path:
            return folder / text[2:] if text.startswith("@/") else Path(text)

        found = _Found(tuple(map(load, data["classes"])), tuple(map(load, data["entries"])),
                       tuple(data["source_roots"]), str(data["test_source_root"]), str(data["how"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # A project without tests has no test classes, which is fine; vanished classes or libraries are not.
    needed = [*found.classes, *(path for path in found.entries if path.suffix == ".jar")]
    return found if all(path.exists() for path in needed) else None


def _key(kind: str, root: Path, tools: JavaToolchain, parts: Iterable[bytes], stamps: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in (kind.encode(), str(root).encode(), str(tools.java_home).encode(), str(tools.class_version).encode(),
                 *parts, *(stamp.encode() for stamp in stamps)):
        digest.update(len(part).to_bytes(8, "big") + part)
    return f"{kind}-{digest.hexdigest()[:24]}"


def _stamps(root: Path, files: Iterable[Path]) -> Iterator[str]:
    for file in files:
        info = file.stat()
        yield f"{file.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}"


def _skipped(folder: Path, name: str, output: Path | None = None) -> bool:
    """Version control, and build output (`output`, or beside its build file): neither is an input of the build."""
    if name in _VCS or folder / name == output:
        return True
    if name == "target":
        return (folder / "pom.xml").is_file()
    if name in ("build", ".gradle"):
        return any((folder / gradle).is_file() for gradle in _GRADLE_FILES)
    return False


def _project_files(root: Path, output: Path | None = None) -> Iterator[Path]:
    """The project's files, sorted, without version control and build output."""
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(name for name in dirs if not _skipped(here, name, output))
        yield from (here / name for name in sorted(names))


def _under(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else iter(())


def _copy_project(root: Path, target: Path, output: Path | None = None) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if _skipped(Path(folder), name, output)}

    shutil.copytree(root, target, symlinks=True, ignore=ignore)
    return target


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BuildError(f"{name} was not found: apt-get install {package}, or pass the test classpath with --classpath CP",
                         slug="java-build")
    return found


def _run(argv: Sequence[str], *, cwd: Path, tools: JavaToolchain) -> subprocess.CompletedProcess[str]:
    """Run a build step of the user's own project (their build, not a candidate) with covgen's JDK."""
    env = {**os.environ, "JAVA_HOME": str(tools.java_home)}
    try:
        return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, errors="replace",
                              timeout=_BUILD_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as err:
        raise BuildError(f"{Path(argv[0]).name} took more than {_BUILD_TIMEOUT} s; pass --classpath CP",
                         slug="java-build") from err
    except OSError as err:
        raise BuildError(f"{argv[0]} cannot be run: {err}; pass --classpath CP", slug="java-build") from err


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "covgen" / "java-build"
