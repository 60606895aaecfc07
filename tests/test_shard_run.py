"""`covgen run --shard I/N` and `covgen merge` end to end, and two `--model-url`s of which one dies.

Real CLI processes, real pytest and coverage.py; the model is the scripted local server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.function_package import write_function_package
from support.vllm_stub import StubServer, StubState

pytestmark = pytest.mark.e2e

MODULES = 3
PER_MODULE = 1


def make_project(root: Path) -> tuple[Path, dict[str, list[list[str]]]]:
    """A package of independent small functions with no tests, its coverage.py JSON report, and a script that fills each."""
    script: dict[str, list[list[str]]] = {}
    sources: dict[int, list[str]] = {}
    for m in range(MODULES):
        functions = []
        # Odd modules have one function more: shards of unequal cost.
        for f in range(PER_MODULE + (m % 2)):
            name = f"score_{m}_{f}"
            limit = m * 3 + f
            functions.append(f"def {name}(x: int) -> int:\n    if x > {limit}:\n        return x * {f + 2}\n    return -x\n")
            answer = (f"```python\nfrom pkg.mod{m} import {name}\n\n\ndef test_{name}_multiplies_above_{limit}():\n"
                      f"    assert {name}({limit + 1}) == {(limit + 1) * (f + 2)}\n\n\n"
                      f"def test_{name}_negates_at_{limit}():\n    assert {name}({limit}) == {-limit}\n```\n")
            # Both assertions wrong at first for some gaps: nothing passes, so shards also carry repair turns.
            wrong = answer.replace(f"== {-limit}\n", f"== {-limit - 1}\n").replace(f"== {(limit + 1) * (f + 2)}\n", f"== 0\n")
            script[name] = [[wrong], [answer]] if f == 0 and m % 2 == 0 else [[answer]]
        sources[m] = functions
    report = write_function_package(root, sources)
    return report, script


def covgen(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "covgen", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return err


def run_args(root: Path, report: Path, summary: Path, *urls: str) -> list[str | Path]:
    return ["run", "--root", root, "--report", report, "--engine", "llm", *(a for url in urls for a in ("--model-url", url)),
            "--candidates", "1", "--runs", "1", "--output", f"json:{summary}", "--wait-for-model", "10"]


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """What a user relies on being the same whether the run was sharded or not."""
    return {
        "gaps_targeted": document["gaps_targeted"], "accepted_tests": document["accepted_tests"],
        "files_written": document["files_written"], "coverage": document["coverage"], "files": document["files"],
        "verdicts": document["verdicts"], "candidates": document["candidates"],
        "gaps": [(g["id"], g["accepted_tests"], g["gained_lines"], g["gained_branches"], g["outcome"]) for g in document["gaps"]],
    }


def test_three_shards_merge_into_one_run_whose_server_died_midway(tmp_path: Path) -> None:
    """One covgen run over two servers, one of which dies after two answers, against the same
    gaps in three shard jobs: the same accepted tests and final coverage, and nothing lost."""
    base = tmp_path / "base"
    report, script = make_project(base / "project")
    single, shards = tmp_path / "single", [tmp_path / f"shard{i}" for i in (1, 2, 3)]
    for copy in (single, *shards):
        shutil.copytree(base / "project", copy)
    dying = StubState(script=script, die_after=2)
    with StubServer(StubState(script=script)) as alive, StubServer(dying) as dies, StubServer(StubState(script=script)) as server:
        jobs = [covgen(*run_args(single, report, tmp_path / "single.json"), env={"COVGEN_MODEL_URL": f"{dies.url},{alive.url}"})]
        # COVGEN_SHARD for one job, the flag for the others: CI matrices use either.
        jobs += [covgen(*run_args(root, report, tmp_path / f"shard{i}.json", server.url), *(["--shard", f"{i}/3"] if i != 2 else []),
                        env={"COVGEN_SHARD": "2/3"} if i == 2 else None)
                 for i, root in enumerate(shards, 1)]
        errors = [finish(job) for job in jobs]
        served_alive = len(alive.state.requests)
    whole = json.loads((tmp_path / "single.json").read_text())
    parts = [json.loads((tmp_path / f"shard{i}.json").read_text()) for i in (1, 2, 3)]

    # The run whose server died: every gap got its test, the dropped requests went to the other.
    assert whole["engine"].startswith(f"2 vLLM servers ({dies.url}, {alive.url})")
    assert whole["accepted_tests"] == len(script) * 2 and whole["coverage"]["lines"]["after"]["percent"] == 100.0
    assert all(g["outcome"] == "ACCEPTED" for g in whole["gaps"]) and not whole["warnings"]
    assert len(dying.requests) > 2, "the dying server took requests after it died"
    repairs = sum(1 for answers in script.values() if len(answers) > 1)
    # Each gap's requests (first tries and repairs) were answered once, by one server or the other.
    assert 2 + served_alive == len(script) + repairs
    assert f"model server at {dies.url}" in errors[0] and "sending requests to the other model server(s)" in errors[0]

    # Each shard says which it is and what it owned; together they own every gap once, and no
    # test file is written by two of them.
    assert all(f"covgen: shard {i}/3: " in err for i, err in enumerate(errors[1:], 1))
    assert [(p["shard"]["index"], p["shard"]["count"]) for p in parts] == [(1, 3), (2, 3), (3, 3)]
    owned = [gap for p in parts for gap in p["shard"]["gaps"]]
    assert sorted(owned) == sorted(g["id"] for g in whole["gaps"]) and len(owned) == len(set(owned)) == len(script)
    assert all(p["shard"]["gaps"] and p["shard"]["planned_gaps"] == len(script) for p in parts)
    test_files = [path for p in parts for path in p["shard"]["test_files"]]
    assert len(test_files) == len(set(test_files)) == MODULES
    for root, part in zip(shards, parts):
        assert sorted(str(p.relative_to(root)) for p in (root / "tests" / "covgen").glob("*.py")) == sorted(part["files_written"])

    merged_path = tmp_path / "merged.json"
    merged_run = subprocess.run([sys.executable, "-m", "covgen", "merge", *(tmp_path / f"shard{i}.json" for i in (3, 1, 2)),
                                 "--output", f"json:{merged_path}"], capture_output=True, text=True, timeout=60)
    assert merged_run.returncode == 0, merged_run.stderr
    merged = json.loads(merged_path.read_text())
    assert merged["schema"] == "covgen.run/1" and merged["shard"]["index"] is None and merged["shard"]["count"] == 3
    assert comparable(merged) == comparable(whole)
    assert f"shard: all 3 merged: {len(script)} of {len(script)} gap(s)" in merged_run.stdout
    # The same tests in the same files: the same lines, though not always in the same order (the
    # writer keeps the order tests were accepted in), and the header names the engine's URLs.
    for path in whole["files_written"]:
        (owner,) = [root for root, part in zip(shards, parts) if path in part["files_written"]]
        assert file_lines((owner / path).read_text()) == file_lines((single / path).read_text())


def file_lines(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if not line.startswith("# engine: "))
