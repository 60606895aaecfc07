"""End-to-end `covgen run --engine llm` for 200 gaps against a simulated vLLM server.

    python bench/bench_generate.py [--gaps 200] [--python project|own]

The server is tests/support/vllm_stub.py (real HTTP on 127.0.0.1) with a continuous-batching
timing model, so what is measured is covgen's ability to keep a GPU server busy — not any
model's quality (no model runs here):

* decode: every running sequence advances at min(PER_SEQUENCE, CAPACITY / running) tokens/s —
  one request at a time leaves most of the server idle;
* prefill: prompt tokens not served from the prefix cache cost PREFILL tokens/s of the whole
  server's time, first come first served, and decoding waits meanwhile (the stub simulates the
  cache in 16-token blocks and reports cached tokens in ``usage``);
* the capacity bound is the time the server needs at full throughput for the tokens it was
  actually asked for: Σ completion tokens / CAPACITY + Σ uncached prompt tokens / PREFILL.

Each of the gaps (a synthetic package of 200 small functions, no tests) gets scripted answers:
a passing test on the first try for most, a wrong assertion first and a fix on repair for every
fifth. It prints covgen's wall time as a ratio to the bound, and the prefix-cache hit rate. The
package runs in an environment of its own with pytest and coverage.py only (bench/project_env.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from project_env import add_python_option, describe, project_python  # noqa: E402
from support.function_package import write_function_package  # noqa: E402
from support.vllm_stub import StubServer, StubState  # noqa: E402

PER_SEQUENCE = 50.0     # tokens/s one sequence decodes at when the batch is small
CAPACITY = 2000.0       # tokens/s the whole server decodes at most
PREFILL = 20000.0       # prompt tokens/s
MODULES = 20


class ContinuousBatching:
    """A server step loop: prefill first (it stalls decoding), then all running sequences share
    the decode capacity, each capped per sequence. Its best case is exactly the capacity bound."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prefilling: list[list[float]] = []   # [uncached tokens left], first come first served
        self.running: dict[int, list[float]] = {}
        self.events: dict[int, threading.Event] = {}
        self.next_id = 0
        self.completion_tokens = 0
        self.uncached_prompt_tokens = 0
        self.first_request: float | None = None
        self.last_answer = 0.0
        self.stop = False
        threading.Thread(target=self._tick, daemon=True).start()

    def delay(self, uncached_prompt: int, completion: int, n: int) -> None:
        done = threading.Event()
        with self.lock:
            self.uncached_prompt_tokens += uncached_prompt
            self.completion_tokens += completion
            ident = self.next_id
            self.next_id += 1
            if self.first_request is None:
                self.first_request = time.perf_counter()
            self.prefilling.append([float(uncached_prompt), ident])
            self.running[ident] = [completion / n] * n
            self.events[ident] = done
        done.wait()
        with self.lock:
            self.last_answer = max(self.last_answer, time.perf_counter())

    def _tick(self) -> None:
        last = time.monotonic()
        while not self.stop:
            time.sleep(0.005)
            # Advance by the time that really passed: a sleep overshoots under load, and counting
            # it as 5 ms would make the simulated server slower than its stated capacity.
            now = time.monotonic()
            step, last = now - last, now
            with self.lock:
                while self.prefilling and step > 0:
                    job = self.prefilling[0]
                    spent = min(step, job[0] / PREFILL)
                    job[0] -= spent * PREFILL
                    step -= spent
                    if job[0] <= 1e-9:
                        self.prefilling.pop(0)
                waiting = {int(job[1]) for job in self.prefilling}
                decoding = [ident for ident in self.running if ident not in waiting]
                sequences = sum(len(self.running[ident]) for ident in decoding)
                if not sequences or step <= 0:
                    continue
                rate = min(PER_SEQUENCE, CAPACITY / sequences)
                for ident in decoding:
                    remaining = [r - rate * step for r in self.running[ident]]
                    remaining = [r for r in remaining if r > 0]
                    if remaining:
                        self.running[ident] = remaining
                    else:
                        del self.running[ident]
                        self.events.pop(ident).set()


def make_project(root: Path, gaps: int, modules: int = MODULES) -> tuple[dict[str, list[list[str]]], Path]:
    if root.exists():
        shutil.rmtree(root)
    script: dict[str, list[list[str]]] = {}
    sources: dict[int, list[str]] = {}
    per_module = gaps // modules
    for m in range(modules):
        functions = []
        for f in range(per_module):
            name = f"score_{m}_{f}"
            limit = (m * 7 + f) % 13
            functions.append(
                f"def {name}(x: int) -> int:\n"
                f"    \"\"\"Score x against the threshold {limit}.\"\"\"\n"
                f"    if x > {limit}:\n        return x * {f + 2}\n    return -x\n"
            )
            good = (
                f"Here are tests for {name}; they cover both branches.\n\n```python\n"
                f"from pkg.mod{m} import {name}\n\n\n"
                f"def test_{name}_above_threshold_multiplies():\n"
                f"    # values above the threshold {limit} are multiplied by {f + 2}\n"
                f"    assert {name}({limit + 1}) == {(limit + 1) * (f + 2)}\n\n\n"
                f"def test_{name}_at_or_below_threshold_negates():\n"
                f"    # values at the threshold are negated, not multiplied\n"
                f"    assert {name}({limit}) == {-limit}\n"
                f"```\n"
            )
            # Both assertions off by one: nothing passes, so the gap needs a repair turn.
            wrong = good.replace(f"== {-limit}\n", f"== {-limit - 1}\n").replace(
                f"== {(limit + 1) * (f + 2)}\n", f"== {(limit + 1) * (f + 2) + 1}\n")
            script[name] = [[wrong], [good]] if f % 5 == 0 else [[good]]
        sources[m] = functions
    report = write_function_package(root, sources)
    return script, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gaps", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    add_python_option(parser)
    args = parser.parse_args()
    python = project_python(args.python)
    work = HERE / ".work" / "generate"
    root = work / "project"
    script, report = make_project(root, args.gaps)
    simulator = ContinuousBatching()
    state = StubState(script=script, delay=simulator.delay)
    summary_path = work / "summary.json"
    with StubServer(state) as server:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "covgen", "run", "--python", python, "--root", str(root), "--report", str(report), "--engine", "llm",
             "--model-url", server.url, "--candidates", "4", "--concurrency", str(args.concurrency), "--max-gaps", str(args.gaps),
             "--output", f"json:{summary_path}"],
            capture_output=True, text=True,
        )
        wall = time.perf_counter() - started
    simulator.stop = True
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    summary = json.loads(summary_path.read_text())
    bound = simulator.completion_tokens / CAPACITY + simulator.uncached_prompt_tokens / PREFILL
    prompt = summary["tokens"]["prompt"]
    cached = summary["tokens"]["cached_prompt"]
    print(describe(python))
    print(f"server model: {PER_SEQUENCE:g} tok/s per sequence, {CAPACITY:g} tok/s total decode, {PREFILL:g} tok/s prefill")
    print(f"{summary['gaps_targeted']} gaps, {len(state.requests)} requests, {summary['accepted_tests']} tests accepted, "
          f"lines {summary['coverage']['lines']['before']['covered']} → {summary['coverage']['lines']['after']['covered']}")
    print(f"capacity bound (completion {simulator.completion_tokens} tok / {CAPACITY:g} + uncached prompt "
          f"{simulator.uncached_prompt_tokens} tok / {PREFILL:g}): {bound:.1f} s")
    print(f"covgen end to end: {wall:.1f} s  → {wall / bound:.2f}× the capacity bound")
    first = (simulator.first_request or started) - started
    print(f"  before the first request {first:.1f} s · first request to last answer {simulator.last_answer - started - first:.1f} s · "
          f"after the last answer {started + wall - simulator.last_answer:.1f} s")
    print(f"prefix-cache hit rate: {cached}/{prompt} prompt tokens = {100 * cached / max(prompt, 1):.1f}%")


if __name__ == "__main__":
    main()
