"""Validating a wave of JUnit 5 candidates: covgen's Java runner vs one javac and one JVM per candidate.

    python bench/bench_validate_java.py [--candidates 20]

Candidates are real JUnit 5 test classes for the Java fixture (fixtures/java, its main classes
compiled with --release 11): two tests each, passing ones that reach new lines and some whose
assertion is wrong. Both sides decide, for every candidate, whether its tests pass and which
lines it covers:

* covgen — ``JavaRunner.run``: one javac for the wave, one JVM on the JUnit Platform under the
  JaCoCo agent with covgen's launcher, per-test outcomes and per-test covered lines (analysed in
  that JVM after each test);
* the peers' approach — per candidate: javac, the JUnit console launcher under the JaCoCo agent
  writing an .exec file, and a report from it (org.jacoco.report's XML, as fixtures/produce.py
  makes it), read for covered lines.

Both sides run every process in the same sandbox with the same JVM options, so the ratio is the
design's (one JVM for the wave), not the flags'. It prints both times (covgen's: the median of
three runs), the ratio and whether the two sides agree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "fixtures"))

import produce  # noqa: E402  (fixtures/produce.py: the JaCoCo report generator)

from covgen.runners.java_runner import _JVM_ENV, _JVM_OPTIONS, JavaCandidate, JavaRun, JavaRunner  # noqa: E402
from covgen.runners.java_sources import declared_types  # noqa: E402
from covgen.runners.java_toolchain import JavaToolchain, java_toolchain  # noqa: E402
from covgen.sandbox import SandboxPolicy, Workspace, probe  # noqa: E402

FIXTURE = REPO / "fixtures" / "java"
#: (package, test body); {n} varies per candidate. The last template's assertion is wrong.
TEMPLATES = [
    ("com.example.money", "Money[] parts = new Money({n}, Currency.EUR).allocate(3);\n        assertEquals(3, parts.length);"),
    ("com.example.money", 'assertEquals("{n} JPY", new Money({n}, Currency.JPY).toString());'),
    ("com.example.money", "assertEquals(new Money(2 * {n}, Currency.USD), new Money({n}, Currency.USD).times(2));"),
    ("com.example.money", 'assertEquals(-({n} * 100 + 50), new Money("-{n}.5", Currency.EUR).minor());'),
    ("com.example.money", 'assertEquals(Currency.KWD, Currency.parse(" kwd "));\n'
                          '        assertThrows(IllegalArgumentException.class, () -> Currency.parse(" "));'),
    ("com.example.text", 'assertEquals("AB", Slugs.initials("ann  bell {n}").substring(0, 2));'),
    ("com.example.text", 'assertEquals("ab\\u2026", Slugs.truncate("abcdef{n}", 3));'),
    ("com.example.geo", "assertEquals({n} * 2.0 + {n}, Shapes.totalArea(new Shapes.Rect({n}, 2), Shapes.ofArea({n})), 1e-9);"),
    ("com.example.geo", "assertEquals({n} + 1.0, Shapes.largestFirst(java.util.List.of(Shapes.square(1), "
                        "Shapes.ofArea({n} + 1))).get(0).area(), 1e-9);"),
    ("com.example.money", 'assertEquals("{n}.00 EUR", new Money({n}, Currency.EUR).toString());'),
]


def make_candidates(count: int) -> list[JavaCandidate]:
    candidates = []
    for index in range(count):
        package, body = TEMPLATES[index % len(TEMPLATES)]
        n = index // len(TEMPLATES) + 3
        name = f"Candidate{index:03d}Test"
        source = (f"package {package};\n\nimport static org.junit.jupiter.api.Assertions.*;\n\nimport org.junit.jupiter.api.Test;\n\n"
                  f"class {name} {{\n    @Test\n    void first() {{\n        {body.format(n=n)}\n    }}\n\n"
                  f"    @Test\n    void second() {{\n        {body.format(n=n + 1)}\n    }}\n}}\n")
        candidates.append(JavaCandidate(f"c{index:03d}", source))
    return candidates


def covgen_side(classes: Path, candidates: list[JavaCandidate], toolchain: JavaToolchain) -> tuple[float, JavaRun]:
    async def run() -> JavaRun:
        with Workspace(FIXTURE) as workspace:
            runner = JavaRunner(workspace, classes=[classes], toolchain=toolchain)
            return await runner.run(candidates)

    started = time.perf_counter()
    result = asyncio.run(run())
    return time.perf_counter() - started, result


def peer_side(classes: Path, candidates: list[JavaCandidate], toolchain: JavaToolchain,
              report_tool: Path) -> tuple[float, dict[str, tuple[bool, dict[str, set[int]]]]]:
    """One javac, one JVM with the agent and one report per candidate, one after another."""

    async def run() -> dict[str, tuple[bool, dict[str, set[int]]]]:
        results: dict[str, tuple[bool, dict[str, set[int]]]] = {}
        policy = SandboxPolicy(wall_seconds=120, memory_bytes=4 << 30)
        with Workspace(FIXTURE) as workspace:
            tools = workspace.covgen_folder(".peer-tools")
            shutil.copy(toolchain.agent, tools / "jacocoagent.jar")
            shutil.copytree(report_tool, tools / "reportgen")
            shutil.copytree(classes, tools / "classes")
            main_classes = tools / "classes"
            sources = workspace.path / "src" / "main" / "java"
            jvm = ["-Xmx512m", *_JVM_OPTIONS]
            for candidate in candidates:
                work = workspace.scratch(f"peer-{candidate.id}")
                package, types = declared_types(candidate.source)
                source = work / "src" / Path(*package.split(".")) / f"{types[0][0]}.java"
                source.parent.mkdir(parents=True)
                source.write_text(candidate.source)
                test_classes = work / "classes"
                javac = await workspace.run_tool(
                    [str(toolchain.javac), *(f"-J{o}" for o in jvm), "-proc:none", "-g", "-nowarn", "-d", str(test_classes),
                     "-cp", os.pathsep.join(map(str, [main_classes, *toolchain.junit])), str(source)], policy=policy, env=_JVM_ENV)
                if javac.returncode != 0:
                    results[candidate.id] = (False, {})
                    continue
                exec_file = work / "jacoco.exec"
                tests = await workspace.run_tool(
                    [str(toolchain.java), *jvm, f"-javaagent:{tools / 'jacocoagent.jar'}=destfile={exec_file},includes=com.example.*",
                     "-jar", str(toolchain.junit[0]), "--disable-banner", "--details=none",
                     "--class-path", os.pathsep.join(map(str, [main_classes, test_classes])),
                     "--select-class", f"{package}.{types[0][0]}", "--reports-dir", str(work / "junit")], policy=policy, env=_JVM_ENV)
                report = work / "jacoco.xml"
                await workspace.run_tool(
                    [str(toolchain.java), *jvm, "-cp", os.pathsep.join(map(str, [tools / "reportgen", *produce.JACOCO_JARS])),
                     "ReportGen", str(exec_file), str(main_classes), str(sources), str(report), str(work / "jacoco.csv")],
                    policy=policy, env=_JVM_ENV)
                results[candidate.id] = (tests.returncode == 0, _covered(report))
        return results

    started = time.perf_counter()
    found = asyncio.run(run())
    return time.perf_counter() - started, found


def _covered(report: Path) -> dict[str, set[int]]:
    """Lines with a covered instruction per package/Source.java, from a JaCoCo XML report."""
    covered: dict[str, set[int]] = {}
    if not report.exists():
        return covered
    for package in ET.parse(report).getroot().iter("package"):
        for source in package.findall("sourcefile"):
            lines = {int(line.get("nr", "0")) for line in source.findall("line") if int(line.get("ci", "0")) > 0}
            if lines:
                covered[f"{package.get('name')}/{source.get('name')}"] = lines
    return covered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-java-"))
    try:
        classes = work / "classes"
        subprocess.run(["javac", "--release", "11", "-g", "-d", str(classes),
                        *map(str, sorted((FIXTURE / "src" / "main" / "java").rglob("*.java")))], check=True)
        toolchain = java_toolchain()  # built once (helpers compiled, agent probed), cached: not timed
        report_tool = produce.report_generator(work)
        candidates = make_candidates(args.candidates)
        print(f"{len(candidates)} candidates (2 tests each), sandbox: {probe().describe()}, {os.cpu_count()} cores")
        # covgen's side is short, so a moment of load on this shared machine skews one run: median of three.
        timings = [covgen_side(classes, candidates, toolchain) for _ in range(3)]
        ours, run = sorted(timings, key=lambda timing: timing[0])[1]
        theirs, peers = peer_side(classes, candidates, toolchain, report_tool)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed = {c.id for c in candidates if c.id not in run.failures and all(o.outcome == "passed" for o in run.tests_of(c.id))}
    print(f"covgen runner (1 javac, 1 JVM, per-test coverage): {ours:6.2f} s  (median of "
          f"{', '.join(f'{seconds:.2f}' for seconds, _ in timings)}; {run.compilations} javac, {run.processes} JVM, "
          f"{len(run.outcomes)} tests, {len(passed)} candidates pass)")
    print(f"one javac + one JVM with the agent + a report per candidate: {theirs:6.2f} s  → covgen is {theirs / ours:5.1f}× faster")
    peers_passed = {cid for cid, (ok, _) in peers.items() if ok}
    ours_lines = {c.id: _union(o.lines for o in run.tests_of(c.id)) for c in candidates}
    same = sum(ours_lines[cid] == lines for cid, (_, lines) in peers.items())
    subset = all(all(numbers <= peers[cid][1].get(path, set()) for path, numbers in ours_lines[cid].items()) for cid in peers)
    missing = _union({path: numbers - ours_lines[cid].get(path, set()) for path, numbers in lines.items()}
                     for cid, (_, lines) in peers.items())
    total_peers = _union(lines for _, lines in peers.values())
    print(f"both sides agree on which candidates pass: {passed == peers_passed}; on the wave's covered lines: "
          f"{ {p: set(n) for p, n in run.lines.items()} == total_peers}")
    print(f"per candidate: {same}/{len(candidates)} identical line sets; covgen's within the peers' for all: {subset}; "
          f"lines only the peers give some candidate: { {p: sorted(n) for p, n in missing.items() if n} }")
    print("(one JVM runs a class's static initialiser once: covgen counts it for the first test that loads the class)")


def _union(parts: object) -> dict[str, set[int]]:
    merged: dict[str, set[int]] = {}
    for part in parts:  # type: ignore[attr-defined]
        for path, numbers in part.items():
            merged.setdefault(path, set()).update(numbers)
    return merged


if __name__ == "__main__":
    main()
