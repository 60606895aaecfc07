"""Validating 100 candidate tests: covgen's funnel vs one pytest process per candidate.

    python bench/bench_validate.py [--candidates 100]

Candidates are real test modules for the Python fixture (fixtures/python): passing tests that
add coverage, passing tests that add nothing, and failing tests, in the proportions a model
typically produces. Both sides decide, for every candidate, whether it passes three runs and
which uncovered lines it reaches:

* covgen — ``Validator.validate``: the whole funnel (static screen; one pytest process for all
  candidates with per-test coverage contexts; two reruns of the survivors, the last in a fresh
  process beside the module's existing tests);
* the peers' approach — ``python -m coverage run --branch -m pytest --count=3 CANDIDATE`` and a
  coverage JSON report, one process per candidate (cover-agent runs these one at a time; CoverUp
  runs them concurrently, here with as many workers as cores).

It prints both times and the ratio, and checks the two agree on which candidates pass with a gain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from covgen import find_gaps, read_report  # noqa: E402
from covgen.model import Candidate, Verdict  # noqa: E402
from covgen.runners.pytest_runner import PytestRunner  # noqa: E402
from covgen.sandbox import SandboxLayers, Workspace, probe  # noqa: E402
from covgen.validate import Validator  # noqa: E402

TEMPLATES = [
    # (gap qualname, test body) — the module imports are added per target file.
    ("quarter", "assert quarter(date(2024, {m}, 1)) == '2024-Q{q}'"),
    ("is_weekend", "assert is_weekend(date(2024, 6, {d})) is {w}"),
    ("parse_duration", "assert parse_duration('P{n}D') == timedelta(days={n})"),
    ("add_business_days", "assert add_business_days(date(2024, 6, 7), {n}) >= date(2024, 6, 7)"),
    ("parse_bool", "assert parse_bool('{yes}') is True"),
    ("Stock.remove", "s = Stock()\n    s.add(Item('x', 100), {n})\n    assert s.remove('x', 1) == {n} - 1"),
    ("parse_sku", "assert str(parse_sku('abc-00{n}{n}')) == 'ABC-00{n}{n}'"),  # already covered: NO_GAIN
    ("quarter", "assert quarter(date(2024, {m}, 1)) == '2024-Q9'"),  # wrong: FAILED
]
HEADER = "from datetime import date, timedelta\nfrom inventory.dates import quarter, is_weekend, parse_duration, add_business_days\n" \
         "from inventory.parsing import parse_bool, parse_sku\nfrom inventory.items import Item, Stock\n\n\n"


def make_candidates(count: int, gaps: dict[str, str]) -> list[Candidate]:
    candidates = []
    for index in range(count):
        qualname, body = TEMPLATES[index % len(TEMPLATES)]
        k = index // len(TEMPLATES)
        month = (k % 12) + 1
        text = body.format(m=month, q=(month - 1) // 3 + 1, d=8 + k % 2, w=True, n=(k % 7) + 1, yes=["yes", "y", "on", "1", "true"][k % 5])
        source = HEADER + f"def test_candidate_{index}():\n    {text}\n"
        candidates.append(Candidate(f"c{index:04d}", gaps[qualname], "bench", 1, source))
    return candidates


def covgen_side(project: Path, candidates: list[Candidate], gaps: dict, layers: SandboxLayers) -> tuple[float, set[str]]:
    async def run() -> list:
        with Workspace(project) as workspace:
            runner = PytestRunner(workspace, test_timeout=10, layers=layers)
            validator = Validator(runner, gaps, runs=3, existing_tests={g.path: ["tests/test_items.py", "tests/test_parsing.py"] for g in gaps.values()})
            return await validator.validate(candidates)

    started = time.perf_counter()
    verdicts = asyncio.run(run())
    seconds = time.perf_counter() - started
    return seconds, {v.candidate_id for v in verdicts if v.verdict is Verdict.ACCEPTED}


def peer_side(project: Path, candidates: list[Candidate], gaps: dict, workers: int) -> tuple[float, set[str]]:
    work = HERE / ".work" / "validate-peers"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(project, work, ignore=shutil.ignore_patterns("reports", "__pycache__"))

    def one(candidate: Candidate) -> str | None:
        path = work / "tests" / f"test_peer_{candidate.id}.py"
        path.write_text(candidate.source)
        env = {**os.environ, "COVERAGE_FILE": str(work / f".coverage.{candidate.id}")}
        run = subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-p", "repeat", "--count=3", "-x", str(path)], cwd=work, env=env, capture_output=True, text=True)
        report = work / f"{candidate.id}.json"
        subprocess.run([sys.executable, "-m", "coverage", "json", "-o", str(report)], cwd=work, env=env, capture_output=True)
        if run.returncode != 0 or not report.exists():
            return None
        gap = gaps[candidate.gap_id]
        executed = set(json.loads(report.read_text())["files"].get(gap.path, {}).get("executed_lines", ()))
        return candidate.id if executed & set(gap.uncovered_lines) else None

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = {cid for cid in pool.map(one, candidates) if cid}
    return time.perf_counter() - started, passed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args()
    project = REPO / "fixtures" / "python"
    report = read_report(project / "reports" / "coverage.json", root=project)
    gaps = {g.qualname: g for g in find_gaps(report, project).gaps}
    by_id = {g.id: g for g in gaps.values()}
    candidates = make_candidates(args.candidates, {q: g.id for q, g in gaps.items()})
    layers = probe()
    print(f"{len(candidates)} candidates, sandbox: {layers.describe()}, {os.cpu_count()} cores")
    ours, accepted = covgen_side(project, candidates, by_id, layers)
    # The same funnel with no namespaces at all (process group and rlimits only): what isolation costs.
    lighter = SandboxLayers(False, False, False, layers.resource_limits, False, "off for comparison")
    unisolated, _ = covgen_side(project, candidates, by_id, lighter)
    serial, serial_ok = peer_side(project, candidates, by_id, workers=1)
    parallel, parallel_ok = peer_side(project, candidates, by_id, workers=os.cpu_count() or 2)
    print(f"covgen funnel (1 batch, 3 runs, per-test coverage): {ours:7.2f} s, {len(accepted)} pass with a gain")
    print(f"the same funnel without namespaces (no bwrap, no unshare): {unisolated:7.2f} s  → isolation costs {ours / unisolated:5.2f}×")
    print(f"one pytest --count=3 process per candidate, serial:  {serial:7.2f} s  → covgen is {serial / ours:5.1f}× faster")
    print(f"one pytest --count=3 process per candidate, {os.cpu_count()} workers: {parallel:7.2f} s  → covgen is {parallel / ours:5.1f}× faster")
    # covgen's "pass with a gain" is before REDUNDANT selection; the peer side has no selection.
    agree = accepted == serial_ok == parallel_ok
    print(f"both sides agree on which candidates pass with a gain: {agree}")


if __name__ == "__main__":
    main()
