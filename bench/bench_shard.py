"""One CI job vs three: `covgen run` over a few hundred gaps, whole and as `--shard I/3`, then `covgen merge`.

    python bench/bench_shard.py [--gaps 300] [--modules 60] [--no-alone] [--python project|own]

Each job talks to its own replica of the simulated continuous-batching vLLM server from
bench_generate.py (one replica per shard: what `--model-url` pointing at a replica per CI job,
or a load balancer over replicas, gives). No model runs and nothing here measures a model's
quality: the answers are scripted. The project runs in an environment of its own with pytest and
coverage.py only (bench/project_env.py), as in a project's CI job.

Three measurements, side by side in one run:

* N = 1: one job, all gaps, one replica (the baseline);
* N = 3 concurrent: three shard jobs at once on this machine, each against its own replica — a
  CI matrix, except that here the three jobs share this machine's cores;
* N = 3 alone (unless --no-alone): each shard job run by itself, one after the other — what a
  CI matrix gives when every job has a runner of its own, as CI runners do.

For each job it prints wall time, the time its replica was busy (first request to last answer;
the server's side) and the sandbox's time in use (wall seconds with a validation wave running;
the machine's side); then the ratio of the baseline's wall time to the slowest shard job's. The merge is checked: the merged
result must hold every gap once, and the same accepted tests and final coverage as the N = 1 run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

from bench_generate import CAPACITY, PREFILL, ContinuousBatching, make_project  # noqa: E402
from project_env import add_python_option, describe, project_python  # noqa: E402
from support.vllm_stub import StubServer, StubState  # noqa: E402


@dataclass
class Job:
    name: str
    wall: float
    server_busy: float
    #: The replica's time at full throughput for the tokens it was asked for: the server's floor.
    server_bound: float
    requests: int
    summary: dict[str, Any]


def start(root: Path, report: Path, url: str, out: Path, shard: str | None, concurrency: int, python: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "covgen", "run", "--python", python, "--root", str(root), "--report", str(report), "--engine", "llm", "--model-url", url,
            "--candidates", "4", "--concurrency", str(concurrency), "--output", f"json:{out}"]
    if shard:
        args += ["--shard", shard]
    # stderr to a file: a pipe nobody reads until the end would fill up with progress lines and block the job.
    with (out.parent / f"{out.stem}.stderr").open("wb") as stderr:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)


def run_jobs(work: Path, base: Path, report: Path, script: dict[str, list[list[str]]], shards: list[str | None],
             concurrency: int, python: str) -> list[Job]:
    """Run one covgen job per entry of `shards` at once, each in its own copy against its own replica."""
    replicas = [ContinuousBatching() for _ in shards]
    states = [StubState(script=script, delay=replica.delay) for replica in replicas]
    servers = [StubServer(state).__enter__() for state in states]
    try:
        processes = []
        for i, shard in enumerate(shards):
            root = work / f"job{i}"
            if root.exists():
                shutil.rmtree(root)
            shutil.copytree(base, root)
            processes.append((time.perf_counter(), start(root, report, servers[i].url, work / f"job{i}.json", shard, concurrency, python)))
        jobs: list[Job] = []
        waited: dict[int, float] = {}
        while len(waited) < len(processes):
            # Whichever job ends first: its own end time, not the time the bench got round to it.
            pid, status = os.waitpid(-1, 0)
            waited[pid] = time.perf_counter()
            if os.waitstatus_to_exitcode(status) != 0:
                index = next(i for i, (_, p) in enumerate(processes) if p.pid == pid)
                raise SystemExit(f"covgen failed: {(work / f'job{index}.stderr').read_text()[-2000:]}")
        for i, ((started, process), shard) in enumerate(zip(processes, shards)):
            ended = waited[process.pid]
            process.returncode = 0  # reaped above
            replica = replicas[i]
            busy = replica.last_answer - (replica.first_request or replica.last_answer)
            bound = replica.completion_tokens / CAPACITY + replica.uncached_prompt_tokens / PREFILL
            jobs.append(Job(shard or "all", ended - started, busy, bound, len(states[i].requests),
                            json.loads((work / f"job{i}.json").read_text())))
        return jobs
    finally:
        for replica in replicas:
            replica.stop = True
        for server in servers:
            server.__exit__()


def show(title: str, jobs: list[Job]) -> None:
    print(title)
    for job in jobs:
        seconds = job.summary["seconds"]
        print(f"  job {job.name:>4}: {job.summary['gaps_targeted']:4d} gaps, {job.requests:4d} requests, wall {job.wall:6.1f} s · "
              f"replica busy {job.server_busy:6.1f} s (bound {job.server_bound:5.1f} s) · sandbox in use {seconds.get('sandbox (in use)', 0):6.1f} s · "
              f"{job.summary['accepted_tests']} tests accepted")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gaps", type=int, default=300)
    parser.add_argument("--modules", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-alone", action="store_true", help="skip running each shard job by itself")
    add_python_option(parser)
    args = parser.parse_args()
    python = project_python(args.python)
    work = HERE / ".work" / "shard"
    base = work / "base" / "project"
    script, report = make_project(base, args.gaps, args.modules)
    print(f"{args.gaps} gaps in {args.modules} modules; one simulated replica per job; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start; {describe(python)}")

    (whole,) = run_jobs(work, base, report, script, [None], args.concurrency, python)
    show("N = 1 (baseline):", [whole])
    concurrent = run_jobs(work, base, report, script, ["1/3", "2/3", "3/3"], args.concurrency, python)
    show("N = 3, three jobs at once on this machine:", concurrent)
    for i, job in enumerate(concurrent):
        (work / f"shard{i + 1}.json").write_text(json.dumps(job.summary))
    alone: list[Job] = []
    if not args.no_alone:
        for shard in ("1/3", "2/3", "3/3"):
            alone += run_jobs(work, base, report, script, [shard], args.concurrency, python)
        show("N = 3, each job alone (a runner of its own):", alone)

    merged_path = work / "merged.json"
    merge = subprocess.run([sys.executable, "-m", "covgen", "merge", *(str(work / f"shard{i}.json") for i in (1, 2, 3)),
                            "--output", f"json:{merged_path}"], capture_output=True, text=True)
    if merge.returncode != 0:
        raise SystemExit(merge.stderr)
    merged = json.loads(merged_path.read_text())
    base_doc = whole.summary
    owned = [gap for job in concurrent for gap in job.summary["shard"]["gaps"]]
    assert len(owned) == len(set(owned)) == base_doc["gaps_targeted"] == merged["gaps_targeted"], "gaps lost or doubled in the merge"
    assert merged["accepted_tests"] == base_doc["accepted_tests"], (merged["accepted_tests"], base_doc["accepted_tests"])
    assert merged["coverage"] == base_doc["coverage"], (merged["coverage"], base_doc["coverage"])
    assert sorted(merged["files_written"]) == sorted(base_doc["files_written"])
    print(f"merge: {merged['gaps_targeted']} gaps, {merged['accepted_tests']} tests accepted, lines "
          f"{merged['coverage']['lines']['before']['covered']} → {merged['coverage']['lines']['after']['covered']}: "
          "the same as the N = 1 run (nothing lost, nothing doubled)")

    slowest = max(job.wall for job in concurrent)
    print(f"wall time per job, N = 1 / slowest of N = 3 at once on this machine: {whole.wall:.1f} / {slowest:.1f} s "
          f"= {whole.wall / slowest:.2f}× less")
    if alone:
        slowest_alone = max(job.wall for job in alone)
        print(f"wall time per job, N = 1 / slowest of N = 3 each alone:            {whole.wall:.1f} / {slowest_alone:.1f} s "
              f"= {whole.wall / slowest_alone:.2f}× less")
    busy = max(job.server_busy for job in concurrent)
    sandbox = max(job.summary["seconds"].get("sandbox (in use)", 0.0) for job in concurrent)
    print(f"server side: replica busy {whole.server_busy:.1f} s for N = 1, at most {busy:.1f} s per replica for N = 3 at once "
          f"({whole.server_busy / max(busy, 1e-9):.2f}× less)")
    print(f"machine side: sandbox in use {whole.summary['seconds'].get('sandbox (in use)', 0.0):.1f} s for N = 1, at most "
          f"{sandbox:.1f} s per job for N = 3 at once; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
