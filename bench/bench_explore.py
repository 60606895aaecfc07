"""Coverage gained without a model: covgen's explore engine vs Pynguin, side by side.

    python bench/bench_explore.py [--budget 60]

Targets: the Python fixture's three modules, and one module each of three PyPI packages the
bench downloads as source (inflection, isodate, humanize; not vendored). The baseline is a
subset of each project's own tests. Both tools get the same modules and the same time budget
per module: Pynguin ``--maximum-search-time BUDGET`` (installed by the bench in its own
virtualenv, since it pins pytest < 9); covgen ``--engine explore`` with the budget split over the
module's gaps (it stops a gap early once covered or plateaued). Coverage after is measured the
same way for both: the baseline tests plus the generated tests under coverage.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "explore"
VENV = HERE / ".work" / "pynguin-venv"


@dataclass(frozen=True)
class Subject:
    name: str
    project: Path
    src: str            # import root inside the project ("." or "src")
    module: str         # dotted module under test
    baseline: tuple[str, ...]  # pytest arguments selecting the baseline subset

    @property
    def path(self) -> str:
        prefix = "" if self.src == "." else self.src + "/"
        return prefix + self.module.replace(".", "/") + (".py" if not (self.project / self.src / self.module.replace(".", "/")).is_dir() else "/__init__.py")


def download(package: str, version: str) -> Path:
    target = WORK / f"{package}-{version}"
    if not target.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(WORK), f"{package}=={version}"],
                       check=True, capture_output=True)
        archive = next(WORK.glob(f"{package.replace('-', '_')}-{version}.tar.gz"), None) or next(WORK.glob(f"{package}-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(WORK, filter="data")
    return target


def subjects() -> list[Subject]:
    fixture = REPO / "fixtures" / "python"
    out = [Subject(f"fixture {m}", fixture, ".", f"inventory.{m}", ("tests",)) for m in ("parsing", "dates", "items")]
    out.append(Subject("inflection", download("inflection", "0.5.1"), ".", "inflection", ("test_inflection.py", "-k", "camelize or underscore")))
    out.append(Subject("isodate.isoduration", download("isodate", "0.7.2"), "src", "isodate.isoduration", ("tests/test_date.py",)))
    out.append(Subject("humanize.number", download("humanize", "4.17.0"), "src", "humanize.number", ("tests/test_number.py", "-k", "ordinal")))
    return out


def copy_project(subject: Subject, label: str) -> Path:
    target = WORK / "runs" / f"{subject.name.replace(' ', '_')}-{label}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(subject.project, target, ignore=shutil.ignore_patterns("__pycache__", "reports", ".pytest_cache"))
    return target


def measure(subject: Subject, root: Path, extra_tests: list[str], out: Path) -> tuple[int, int]:
    """Covered and total statements of the module: baseline tests (+ generated ones) under coverage."""
    env = {**os.environ, "PYTHONPATH": str(root / subject.src), "COVERAGE_FILE": str(out.with_suffix(".data"))}
    # A private rcfile: a project's own [tool.coverage.run] source would override --include.
    rcfile = out.with_suffix(".rc")
    rcfile.write_text(f"[run]\nbranch = True\ninclude =\n    {root / subject.path}\n")
    pytest = [sys.executable, "-m", "coverage", "run", "--append", f"--rcfile={rcfile}", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    out.with_suffix(".data").unlink(missing_ok=True)
    subprocess.run([*pytest, *subject.baseline], cwd=root, env=env, capture_output=True, text=True)
    if extra_tests:
        # Separately: the baseline's -k selection must not deselect the generated tests, and a
        # generated module that fails to import must not stop the others running.
        subprocess.run([*pytest, "--continue-on-collection-errors", *extra_tests], cwd=root, env=env, capture_output=True, text=True)
    # Import the module once in every measurement: its import-time lines (defs, constants)
    # then count for neither tool, and a module no baseline test imports still has data.
    importer = out.with_suffix(".import.py")
    importer.write_text(f"import {subject.module}\n")
    subprocess.run([sys.executable, "-m", "coverage", "run", "--append", f"--rcfile={rcfile}", str(importer)],
                   cwd=root, env=env, capture_output=True, check=True)
    subprocess.run([sys.executable, "-m", "coverage", "json", f"--rcfile={rcfile}", "-o", str(out)], cwd=root, env=env, capture_output=True, check=True)
    summary = json.loads(out.read_text())["totals"]
    return summary["covered_lines"], summary["num_statements"]


def run_covgen(subject: Subject, budget: float) -> tuple[float, tuple[int, int], tuple[int, int]]:
    root = copy_project(subject, "covgen")
    baseline_report = root / "baseline.json"
    before = measure(subject, root, [], baseline_report)
    gaps = subprocess.run([sys.executable, "-m", "covgen", "gaps", str(baseline_report), "--root", str(root), "--json", "--include", subject.path],
                          capture_output=True, text=True, check=True)
    count = max(1, len(json.loads(gaps.stdout)["gaps"]))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(baseline_report), "--engine", "explore",
         "--include", subject.path, "--explore-seconds", f"{max(1.0, budget / count):.1f}", "--python", sys.executable],
        capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(f"  covgen failed on {subject.name}: {result.stderr.strip()[-300:]}")
    generated = [str(p.relative_to(root)) for p in (root / "tests" / "covgen").glob("test_*.py")] if (root / "tests" / "covgen").exists() else []
    after = measure(subject, root, generated, root / "after.json")
    return seconds, before, after


def run_pynguin(subject: Subject, budget: float) -> tuple[float, tuple[int, int], tuple[int, int]]:
    root = copy_project(subject, "pynguin")
    before = measure(subject, root, [], root / "baseline.json")
    output = root / "pynguin_tests"
    env = {**os.environ, "PYNGUIN_DANGER_AWARE": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        [str(VENV / "bin" / "pynguin"), "--project-path", str(root / subject.src), "--module-name", subject.module,
         "--output-path", str(output), "--maximum-search-time", str(int(budget)), "-v"],
        capture_output=True, text=True, env=env, cwd=root,
    )
    seconds = time.perf_counter() - started
    # Pynguin names its file after the module (test_parsing.py), which clashes with the
    # project's own test of the same name under pytest's default import mode.
    for written in list(output.glob("test_*.py")) if output.exists() else []:
        written.rename(written.with_name("test_pynguin_" + written.name[len("test_"):]))
    generated = [str(p.relative_to(root)) for p in output.glob("test_*.py")] if output.exists() else []
    if not generated:
        print(f"  pynguin wrote no tests for {subject.name} (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-300:]}")
    after = measure(subject, root, generated, root / "after.json")
    return seconds, before, after


def ensure_pynguin() -> None:
    if not (VENV / "bin" / "pynguin").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "pynguin==0.48.0"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per module for each tool")
    args = parser.parse_args()
    ensure_pynguin()
    print(f"budget per module: {args.budget:g} s for each tool; coverage = statements of the module, baseline tests + generated tests")
    print(f"{'module':<24} {'baseline':>9} {'covgen':>16} {'time':>7} {'pynguin':>16} {'time':>7}  gain ratio  time ratio")
    totals = {"covgen_gain": 0, "pynguin_gain": 0, "covgen_s": 0.0, "pynguin_s": 0.0}
    for subject in subjects():
        c_seconds, c_before, c_after = run_covgen(subject, args.budget)
        p_seconds, p_before, p_after = run_pynguin(subject, args.budget)
        c_gain, p_gain = c_after[0] - c_before[0], p_after[0] - p_before[0]
        totals["covgen_gain"] += c_gain
        totals["pynguin_gain"] += p_gain
        totals["covgen_s"] += c_seconds
        totals["pynguin_s"] += p_seconds
        ratio = f"{c_gain / p_gain:5.2f}×" if p_gain else "   n/a"
        print(f"{subject.name:<24} {c_before[0]:>4}/{c_before[1]:<4} {c_after[0]:>5} (+{c_gain:>3}) {c_seconds:>6.0f}s {p_after[0]:>5} (+{p_gain:>3}) {p_seconds:>6.0f}s"
              f"  {ratio}      {c_seconds / p_seconds:5.2f}×")
    gain_ratio = totals["covgen_gain"] / totals["pynguin_gain"] if totals["pynguin_gain"] else float("inf")
    print(f"total: covgen +{totals['covgen_gain']} statements in {totals['covgen_s']:.0f} s; pynguin +{totals['pynguin_gain']} in {totals['pynguin_s']:.0f} s "
          f"→ covgen gains {gain_ratio:.2f}× Pynguin's in {totals['covgen_s'] / totals['pynguin_s']:.2f}× its time")


if __name__ == "__main__":
    main()
