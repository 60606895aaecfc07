"""Parse speed and memory of covgen's report readers on large synthetic reports.

    python bench/bench_parse.py [--scale 1.0]

Generates (under bench/.work/, git-ignored) a Cobertura XML and a JaCoCo XML of ≥ 100 MB and an
lcov tracefile of ≥ 50 MB at scale 1.0, then measures, each in a fresh process so peak RSS is
the reader's own:

* covgen  — ``covgen.read_report`` (the whole reader: streaming, merging, path resolution);
* bare    — a bare lxml ``iterparse`` pass over the same XML that only frees elements
            (the floor for any streaming XML reader); for lcov, a bare line loop with split;
* diff-cover — its readers as its CLI uses them (``xml.etree`` DOM + per-file queries; lcov parse).

Each figure is the median of three runs. It prints each time as a ratio to the baseline it names, and covgen's peak RSS on the full-size
and a quarter-size report, to show memory does not grow with the report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"


# --- generation -------------------------------------------------------------------------------

def _lines_for(rng: random.Random, count: int) -> list[tuple[int, int, int]]:
    """(line number, hits, branch outcomes covered of 2 or -1 for no branch)."""
    out = []
    number = 1
    for _ in range(count):
        number += rng.choice((1, 1, 1, 2, 3))
        hits = 0 if rng.random() < 0.3 else rng.randint(1, 10**6)
        branch = rng.choice((0, 1, 2)) if rng.random() < 0.1 else -1
        out.append((number, hits, branch))
    return out


def _files_in_packages(files: int, repeat: int) -> Iterator[tuple[int, bool, bool]]:
    """(file index, a package opens here, a previous one closes first): 50 files a package, `repeat` times over."""
    for sequence in range(files * repeat):
        yield sequence % files, sequence % 50 == 0, sequence > 0


def generate_cobertura(path: Path, files: int, lines_per_file: int, repeat: int = 1) -> None:
    with path.open("w") as out:
        out.write('<?xml version="1.0" ?>\n<coverage version="7.6" line-rate="0.7" branch-rate="0.5">\n')
        out.write("\t<sources>\n\t\t<source>/ci/build/project</source>\n\t</sources>\n\t<packages>\n")
        for index, opens_package, closes_one in _files_in_packages(files, repeat):
            if opens_package:
                if closes_one:
                    out.write("\t\t\t</classes>\n\t\t</package>\n")
                out.write(f'\t\t<package name="pkg{index // 50}" line-rate="0.7" branch-rate="0.5">\n\t\t\t<classes>\n')
            rng = random.Random(index)
            name = f"pkg{index // 50}/module_{index}.py"
            chunk = [f'\t\t\t\t<class name="module_{index}.py" filename="{name}" line-rate="0.7" branch-rate="0.5">\n\t\t\t\t\t<methods/>\n\t\t\t\t\t<lines>\n']
            for number, hits, branch in _lines_for(rng, lines_per_file):
                if branch < 0:
                    chunk.append(f'\t\t\t\t\t\t<line number="{number}" hits="{hits}"/>\n')
                else:
                    chunk.append(f'\t\t\t\t\t\t<line number="{number}" hits="{hits}" branch="true" condition-coverage="{branch * 50}% ({branch}/2)" missing-branches="{number + 1}"/>\n')
            chunk.append("\t\t\t\t\t</lines>\n\t\t\t\t</class>\n")
            out.write("".join(chunk))
        out.write("\t\t\t</classes>\n\t\t</package>\n\t</packages>\n</coverage>\n")


def generate_jacoco(path: Path, files: int, lines_per_file: int, repeat: int = 1) -> None:
    with path.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd"><report name="bench"><sessioninfo id="ci" start="1" dump="2"/>')
        for index, opens_package, closes_one in _files_in_packages(files, repeat):
            if opens_package:
                if closes_one:
                    out.write("</package>")
                out.write(f'<package name="com/acme/p{index // 50}">')
            rng = random.Random(index)
            lines = _lines_for(rng, lines_per_file)
            chunk = [f'<class name="com/acme/p{index // 50}/C{index}" sourcefilename="C{index}.java">']
            for method in range(0, len(lines), 10):
                chunk.append(f'<method name="m{method}" desc="(ILjava/lang/String;)V" line="{lines[method][0]}"><counter type="INSTRUCTION" missed="3" covered="7"/><counter type="LINE" missed="1" covered="9"/><counter type="METHOD" missed="0" covered="1"/></method>')
            chunk.append(f'</class><sourcefile name="C{index}.java">')
            for number, hits, branch in lines:
                covered = 0 if hits == 0 else rng.randint(1, 9)
                mb, cb = (2 - branch, branch) if branch >= 0 else (0, 0)
                chunk.append(f'<line nr="{number}" mi="{rng.randint(0, 3) if covered == 0 else 0}" ci="{covered}" mb="{mb}" cb="{cb}"/>')
            chunk.append('<counter type="LINE" missed="1" covered="1"/></sourcefile>')
            out.write("".join(chunk))
        out.write('</package><counter type="LINE" missed="1" covered="1"/></report>')


def generate_lcov(path: Path, files: int, lines_per_file: int, repeat: int = 1) -> None:
    with path.open("w") as out:
        for sequence in range(files * repeat):
            index = sequence % files
            rng = random.Random(index)
            chunk = ["TN:\n", f"SF:/ci/build/project/src/module_{index}.c\n"]
            lines = _lines_for(rng, lines_per_file)
            for method in range(0, len(lines), 10):
                chunk.append(f"FN:{lines[method][0]},f{method}\nFNDA:{lines[method][1]},f{method}\n")
            for number, hits, branch in lines:
                if branch >= 0:
                    chunk.append(f"BRDA:{number},0,0,{'1' if branch >= 1 else '0'}\nBRDA:{number},0,1,{'1' if branch == 2 else '-'}\n")
                chunk.append(f"DA:{number},{hits}\n")
            chunk.append(f"LF:{len(lines)}\nLH:0\nend_of_record\n")
            out.write("".join(chunk))


# --- measurement (each in its own process) -----------------------------------------------------

def measure(kind: str, path: str, fmt: str) -> dict[str, float]:
    started = time.perf_counter()
    if kind == "covgen":
        from covgen import read_report

        report = read_report(path, fmt=fmt, root=WORK)
        items = sum(len(f.covered_lines) + len(f.uncovered_lines) for f in report.files)
    elif kind == "bare":
        items = _bare(path, fmt)
    elif kind == "diffcover":
        items = _diff_cover(path, fmt)
    else:
        raise SystemExit(f"unknown measurement {kind}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "items": items}


def _bare(path: str, fmt: str) -> int:
    if fmt == "lcov":
        count = 0
        with open(path) as stream:
            for line in stream:
                if line.startswith("DA:"):
                    line[3:].split(",")
                    count += 1
        return count
    from lxml import etree

    count = 0
    for _event, element in etree.iterparse(path, events=("end",), resolve_entities=False, load_dtd=False, no_network=True):
        count += element.tag == "line"
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count


def _diff_cover(path: str, fmt: str) -> int:
    from diff_cover.git_path import GitPathTool
    from diff_cover.violationsreporters.violations_reporter import LcovCoverageReporter, XmlCoverageReporter

    GitPathTool.set_cwd(WORK)
    if fmt == "lcov":
        return sum(len(lines) for lines in LcovCoverageReporter.parse(path).values())
    import xml.etree.ElementTree as ET

    root = ET.parse(path)
    XmlCoverageReporter([root], src_roots=["/ci/build/project"])
    return sum(1 for _ in root.iter("line"))


def generate_atomically(generate, path: Path, *args: int) -> None:  # type: ignore[no-untyped-def]
    """Write to a side file and rename: an interrupted run never leaves a truncated report."""
    partial = path.with_name(path.name + ".part")
    generate(partial, *args)
    partial.replace(path)


def run_measure(kind: str, path: Path, fmt: str, repeat: int = 3) -> dict[str, float]:
    """Median of `repeat` fresh-process runs: this machine's timings wander by ±20 %."""
    runs = [_measure_once(kind, path, fmt) for _ in range(repeat)]
    failed = [run for run in runs if "error" in run]
    if failed:
        return failed[0]
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def _measure_once(kind: str, path: Path, fmt: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--file", str(path), "--format", fmt],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}  # type: ignore[dict-item]
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--measure")
    parser.add_argument("--file")
    parser.add_argument("--format")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.file, args.format)))
        return
    work = WORK / f"scale-{args.scale:g}"  # generated once per scale, then reused
    work.mkdir(parents=True, exist_ok=True)
    have_diff_cover = subprocess.run([sys.executable, "-c", "import diff_cover"], capture_output=True).returncode == 0
    plans = [
        ("cobertura", generate_cobertura, "cobertura.xml", 2000, 1150),
        ("jacoco", generate_jacoco, "jacoco.xml", 2000, 1250),
        ("lcov", generate_lcov, "lcov.info", 4000, 1050),
    ]
    print(f"{'format':<10} {'size':>7} {'covgen':>8}  {'baseline':<28} {'base':>7} {'ratio':>6}")
    memory_rows = []
    for fmt, generate, name, files, per_file in plans:
        full = work / name
        count = max(1, int(files * args.scale))
        if not full.exists():
            generate_atomically(generate, full, count, per_file)
        size_mb = full.stat().st_size / 1e6
        ours = run_measure("covgen", full, fmt)
        baselines = [("bare lxml iterparse" if fmt != "lcov" else "bare line loop (split DA)", run_measure("bare", full, fmt))]
        if have_diff_cover:
            # diff-cover must load the whole DOM before it can answer anything, then scans it once
            # per source file (which does not finish in reasonable time at this size): its DOM
            # load alone is a generous floor for it.
            label = "diff-cover lcov parse" if fmt == "lcov" else "diff-cover DOM load (floor)"
            baselines.append((label, run_measure("diffcover", full, fmt)))
        for label, base in baselines:
            if "error" in base or "error" in ours:
                print(f"{fmt:<10} {size_mb:>5.0f}MB {label}: error: {base.get('error') or ours.get('error')}")
                continue
            print(
                f"{fmt:<10} {size_mb:>5.0f}MB {ours['seconds']:>7.2f}s  {label:<28} {base['seconds']:>6.2f}s "
                f"{ours['seconds'] / base['seconds']:>5.2f}×" + (f"   (its RSS {base['peak_rss_mb']:.0f} MB)" if "diff-cover" in label else "")
            )
        # Memory: the same files written once and four times over (readers merge repeats), so
        # the result is identical and only the report's size changes.
        once, four = work / f"mem1-{name}", work / f"mem4-{name}"
        memory_files = max(1, count // 4)
        if not four.exists():
            generate_atomically(generate, once, memory_files, per_file)
            generate_atomically(generate, four, memory_files, per_file, 4)
        one_run, four_run = run_measure("covgen", once, fmt), run_measure("covgen", four, fmt)
        memory_rows.append(
            f"{fmt:<10} {once.stat().st_size / 1e6:>5.0f}MB → {four.stat().st_size / 1e6:>5.0f}MB: "
            f"peak RSS {one_run['peak_rss_mb']:.0f} MB → {four_run['peak_rss_mb']:.0f} MB "
            f"({four_run['peak_rss_mb'] / one_run['peak_rss_mb']:.2f}× for 4× the report; full-size report above: {ours['peak_rss_mb']:.0f} MB)"
        )
    print("\nmemory, same result from a report 4× larger (covgen):")
    for row in memory_rows:
        print(row)


if __name__ == "__main__":
    main()
