"""Coverage gained without a model: covgen's explore engine vs Pynguin, side by side, at several budgets.

    python bench/bench_explore.py [--budgets 5,20,60] [--only NAME]

Targets: one module each of six PyPI packages nobody here wrote, downloaded by the bench as
source (not vendored). The baseline is a small subset of each project's own tests. Both tools get
the same modules and the same search budget per module: Pynguin ``--maximum-search-time BUDGET``
(installed by the bench in its own virtualenv, since it pins pytest < 9); covgen ``--engine
explore`` with the budget split evenly over the module's gaps (``--explore-seconds BUDGET/GAPS``;
a gap stops early once covered or plateaued). Neither tool's start-up, analysis or validation is
part of the budget; the wall time of each run is printed. Coverage after is measured the same way
for both: the baseline tests plus the generated tests under coverage.py, statements of the module.
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
    package: str        # PyPI distribution
    version: str
    src: str            # import root inside the sdist ("." or "src")
    module: str         # dotted module under test
    baseline: tuple[str, ...]  # pytest arguments selecting the baseline subset

    @property
    def project(self) -> Path:
        return WORK / f"{self.package}-{self.version}"

    @property
    def path(self) -> str:
        prefix = "" if self.src == "." else self.src + "/"
        as_dir = self.project / self.src / self.module.replace(".", "/")
        return prefix + self.module.replace(".", "/") + ("/__init__.py" if as_dir.is_dir() else ".py")


SUBJECTS = (
    Subject("dateutil.relativedelta", "python-dateutil", "2.9.0.post0", "src", "dateutil.relativedelta",
            ("tests/test_relativedelta.py", "-k", "testNextMonth or testLastDayOfFebruary")),
    Subject("sqlparse.formatter", "sqlparse", "0.5.3", ".", "sqlparse.formatter", ("tests/test_format.py", "-k", "TestFormat and keywordcase")),
    Subject("toolz.itertoolz", "toolz", "1.0.0", ".", "toolz.itertoolz", ("toolz/tests/test_itertoolz.py", "-k", "groupby or partition")),
    Subject("packaging.version", "packaging", "24.2", "src", "packaging.version", ("tests/test_version.py", "-k", "test_valid_versions")),
    Subject("isodate.isoduration", "isodate", "0.7.2", "src", "isodate.isoduration", ("tests/test_date.py",)),
    Subject("inflection", "inflection", "0.5.1", ".", "inflection", ("test_inflection.py", "-k", "camelize or underscore")),
)


def download(subject: Subject) -> None:
    if subject.project.exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(WORK),
                    f"{subject.package}=={subject.version}"], check=True, capture_output=True)
    stem = f"{subject.package}-{subject.version}"
    archive = next(WORK.glob(f"{stem.replace('-', '_', 1)}.tar.gz"), None) or next(WORK.glob(f"{stem}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(WORK, filter="data")


def copy_project(subject: Subject, label: str) -> Path:
    target = WORK / "runs" / f"{subject.name}-{label}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(subject.project, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".tox"))
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


@dataclass(frozen=True)
class Outcome:
    seconds: float
    covered: int
    tests: int
    #: The tool itself failed (not: found nothing); such a module is left out of the paired totals.
    failed: bool = False


def run_covgen(subject: Subject, budget: float, baseline: Path) -> Outcome:
    root = copy_project(subject, f"covgen-{budget:g}")
    report = root / "baseline.json"
    shutil.copy(baseline, report)  # the same baseline run for every budget and both tools
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's covgen, not an installed one
    gaps = subprocess.run([sys.executable, "-m", "covgen", "gaps", str(report), "--root", str(root), "--json", "--include", subject.path],
                          capture_output=True, text=True, check=True, env=env)
    count = max(1, len(json.loads(gaps.stdout)["gaps"]))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "covgen", "run", "--root", str(root), "--report", str(report), "--engine", "explore",
         "--include", subject.path, "--explore-seconds", f"{budget / count:.3f}", "--python", sys.executable],
        capture_output=True, text=True, env=env,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(f"  covgen failed on {subject.name}: {result.stderr.strip()[-300:]}")
    written = sorted((root / "tests" / "covgen").glob("test_*.py")) if (root / "tests" / "covgen").exists() else []
    covered, _ = measure(subject, root, [str(p.relative_to(root)) for p in written], root / "after.json")
    return Outcome(seconds, covered, sum(p.read_text().count("\ndef test_") for p in written), failed=result.returncode != 0)


def run_pynguin(subject: Subject, budget: float) -> Outcome:
    root = copy_project(subject, f"pynguin-{budget:g}")
    output = root / "pynguin_tests"
    env = {**os.environ, "PYNGUIN_DANGER_AWARE": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        [str(VENV / "bin" / "pynguin"), "--project-path", str(root / subject.src), "--module-name", subject.module,
         "--output-path", str(output), "--maximum-search-time", str(int(budget)), "-v"],
        capture_output=True, text=True, env=env, cwd=root,
    )
    seconds = time.perf_counter() - started
    # Pynguin names its file after the module (test_parsing.py), which can clash with the
    # project's own test of the same name under pytest's default import mode.
    for written in list(output.glob("test_*.py")) if output.exists() else []:
        written.rename(written.with_name("test_pynguin_" + written.name[len("test_"):]))
    generated = sorted(output.glob("test_*.py")) if output.exists() else []
    if not generated:
        print(f"  pynguin wrote no tests for {subject.name} (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-300:]}")
    covered, _ = measure(subject, root, [str(p.relative_to(root)) for p in generated], root / "after.json")
    return Outcome(seconds, covered, sum(p.read_text().count("\ndef test_") for p in generated), failed=not generated and result.returncode != 0)


#: Pynguin imports the module under test in its own virtualenv, so the subjects' dependencies go there too.
PYNGUIN_REQUIREMENTS = ("pynguin==0.48.0", "six>=1.5")  # six: python-dateutil's one dependency


def ensure_pynguin() -> None:
    if not (VENV / "bin" / "pynguin").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PYNGUIN_REQUIREMENTS], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", default="5,20,60", help="search seconds per module for each tool, comma-separated")
    parser.add_argument("--only", action="append", help="run only these subjects (repeatable)")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    subjects = [s for s in SUBJECTS if not args.only or s.name in args.only]
    ensure_pynguin()
    print("coverage = statements of the module covered by the baseline tests + the generated tests; budget = search seconds per module;")
    print("! = the tool failed on that module (its row counts in 'all modules' only)")
    print(f"{'module':<24} {'budget':>6} {'baseline':>9} {'covgen':>11} {'tests':>5} {'wall':>6} {'pynguin':>11} {'tests':>5} {'wall':>6}")
    rows: list[tuple[Subject, float, int, Outcome, Outcome]] = []
    for subject in subjects:
        download(subject)
        base_root = copy_project(subject, "baseline")
        baseline = base_root / "baseline.json"
        before, total = measure(subject, base_root, [], baseline)
        for budget in budgets:
            mine = run_covgen(subject, budget, baseline)
            theirs = run_pynguin(subject, budget)
            rows.append((subject, budget, before, mine, theirs))
            print(f"{subject.name:<24} {budget:>5g}s {before:>4}/{total:<4} {_cell(mine, before)} {_cell(theirs, before)}", flush=True)
    for budget in budgets:
        at = [(before, mine, theirs) for _, b, before, mine, theirs in rows if b == budget]
        paired = [(before, mine, theirs) for before, mine, theirs in at if not mine.failed and not theirs.failed]
        for label, chosen in (("all modules", at), (f"{len(paired)} modules both tools ran on", paired)):
            mine_gain = sum(m.covered - b for b, m, _ in chosen)
            their_gain = sum(t.covered - b for b, _, t in chosen)
            ratio = f"{mine_gain / their_gain:.2f}×" if their_gain else "n/a"
            print(f"budget {budget:>3g} s, {label}: covgen +{mine_gain} statements in {sum(m.seconds for _, m, _ in chosen):.0f} s wall; "
                  f"pynguin +{their_gain} in {sum(t.seconds for _, _, t in chosen):.0f} s wall → covgen's gain is {ratio} Pynguin's")


def _cell(outcome: Outcome, before: int) -> str:
    mark = "!" if outcome.failed else " "
    return f"{outcome.covered:>4} (+{outcome.covered - before:>3}){mark}{outcome.tests:>4} {outcome.seconds:>5.0f}s"


if __name__ == "__main__":
    main()
