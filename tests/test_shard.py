"""Sharding a run over CI jobs, merging their results, and spreading requests over several servers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from covgen.engines.llm import OpenAICompatBackend
from covgen.engines.pool import BackendPool
from covgen.errors import BackendError, UsageError
from covgen.merge import merge_summaries
from covgen.model import BranchCount, Gap
from covgen.output.runsummary import summary_document, summary_from_document
from covgen.pipeline import FileGain, GapOutcome, RunSummary
from covgen.shard import GAP_OVERHEAD, Shard, ShardInfo, gap_cost, parse_shard, split, shard_key

from support.vllm_stub import StubServer, StubState

REPO = Path(__file__).resolve().parent.parent


def gap(path: str, name: str, lines: int, branches: int = 0, start: int = 1) -> Gap:
    return Gap(path, name, "function", start, start + lines, f"def {name}()", tuple(range(start + 1, start + 1 + lines)),
               tuple(BranchCount(start + 1, 0, 2) for _ in range(branches)), 0.0)


def synthetic(count: int, seed: int = 7) -> list[Gap]:
    rng = random.Random(seed)
    gaps = []
    for i in range(count):
        module = f"pkg/sub{i % 9}/mod{i // 3}.py"
        gaps.append(gap(module, f"f{i}", rng.randint(1, 40), rng.randint(0, 3), start=10 * i))
    return gaps


# --- the split ----------------------------------------------------------------------------------

def test_parse_shard() -> None:
    assert parse_shard("2/3") == Shard(2, 3) and parse_shard(" 1 / 1 ") == Shard(1, 1)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/3", ""):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)


def test_bad_shard_is_exit_2_with_one_line(covgen, tmp_path: Path) -> None:
    result = covgen("run", "--root", tmp_path, "--report", tmp_path / "none.json", "--shard", "4/3")
    assert result.code == 2
    assert result.err.strip().splitlines() == ["covgen: error: --shard '4/3': I must be between 1 and N (N ≥ 1)"]


def test_split_is_a_partition_and_the_same_whatever_the_input_order() -> None:
    gaps = synthetic(300)
    shards = split(gaps, 3, "tests/covgen")
    assert sorted(g.id for shard in shards for g in shard) == sorted(g.id for g in gaps)
    shuffled = gaps[:]
    random.Random(1).shuffle(shuffled)
    assert split(shuffled, 3, "tests/covgen") == shards
    assert split(list(reversed(gaps)), 3, "tests/covgen") == shards


def test_split_is_the_same_in_another_process_with_another_hash_seed() -> None:
    """What a CI job on another machine computes: no dict, set or str-hash order leaks in."""
    code = ("import sys; sys.path.insert(0, 'tests'); from test_shard import synthetic; from covgen.shard import split; "
            "print([[g.id for g in s] for s in split(synthetic(300), 4, 'tests/covgen')])")
    outputs = {
        subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop().replace("'", '"')) == [[g.id for g in s] for s in split(synthetic(300), 4, "tests/covgen")]


def test_gaps_that_share_a_test_file_share_a_shard() -> None:
    # pkg/a/b.py and pkg/a_b.py both write tests/covgen/test_pkg_a_b_covgen.py.
    colliding = [gap("pkg/a/b.py", "f", 3), gap("pkg/a_b.py", "g", 50), gap("pkg/a_b.py", "h", 2, start=80)]
    assert len({shard_key(g, "tests/covgen") for g in colliding}) == 1
    gaps = colliding + synthetic(60)
    for count in (2, 3, 5):
        holders = [i for i, shard in enumerate(split(gaps, count, "tests/covgen")) if set(colliding) & set(shard)]
        assert len(holders) == 1
    for shard in split(synthetic(300), 4, "tests/covgen"):
        files = {shard_key(g, "tests/covgen") for g in shard}
        assert all(shard_key(g, "tests/covgen") not in files for other in split(synthetic(300), 4, "tests/covgen")
                   if other != shard for g in other)


def test_shards_are_balanced_by_cost_not_by_count() -> None:
    gaps = synthetic(300)
    shards = split(gaps, 3, "tests/covgen")
    loads = [sum(gap_cost(g) for g in shard) for shard in shards]
    groups: dict[str, int] = {}
    for g in gaps:
        groups[shard_key(g, "tests/covgen")] = groups.get(shard_key(g, "tests/covgen"), 0) + gap_cost(g)
    # Largest first onto the lightest shard: the spread is at most one file's cost.
    assert max(loads) - min(loads) <= max(groups.values())
    assert max(loads) <= 1.05 * sum(loads) / 3
    # One big file against many small ones: the big one gets a shard to itself.
    big = [gap("big.py", f"b{i}", 40, start=50 * i) for i in range(10)]
    small = [gap(f"s{i}.py", "s", 3) for i in range(40)]
    shards = split(big + small, 2, "tests/covgen")
    by_count = [len(s) for s in shards]
    assert sorted(by_count) == [10, 40]
    assert gap_cost(big[0]) == 40 + GAP_OVERHEAD


def test_more_shards_than_files_leaves_some_empty() -> None:
    shards = split([gap("a.py", "f", 3), gap("b.py", "g", 4)], 4, "tests/covgen")
    assert sorted(len(s) for s in shards) == [0, 0, 1, 1]


# --- merging ------------------------------------------------------------------------------------

def shard_summary(index: int, count: int = 3, *, gaps: tuple[str, ...] = (), files: tuple[FileGain, ...] = (),
                  plan: str = "p" * 64, commit: str | None = "c" * 40, accepted: int = 1) -> RunSummary:
    base_lines, base_branches = 50, 10
    return RunSummary(
        engine="vLLM server", engine_reason="chosen", sandbox="bubblewrap", gaps_targeted=len(gaps), candidates=2 * len(gaps),
        verdicts={"ACCEPTED": accepted, "FAILED": 1}, accepted=accepted,
        files_written=tuple(f"tests/covgen/test_{g.split('.')[0]}_covgen.py" for g in gaps[:1]),
        lines_before=(base_lines + sum(len(f.lines_before) for f in files), 100),
        lines_after=(base_lines + sum(len(f.lines_after) for f in files), 100),
        branches_before=(base_branches + sum(len(f.arcs_before) for f in files), 40),
        branches_after=(base_branches + sum(len(f.arcs_after) for f in files), 40),
        prompt_tokens=100, completion_tokens=50, cached_tokens=10, seconds={"total": 10.0},
        gaps=tuple(GapOutcome(g, (f"test_{g[-1]}",), (1,), 0, {"ACCEPTED": 1}) for g in gaps), files=files,
        shard=ShardInfo(index, count, gaps, tuple(sorted({f"tests/covgen/test_{g.split('.')[0]}_covgen.py" for g in gaps})), plan, commit, 9),
    )


def three() -> list[tuple[str, RunSummary]]:
    return [
        ("s1.json", shard_summary(1, gaps=("a.py::f", "a.py::g"), files=(FileGain("a.py", (3,), (3, 4, 5), (), ((4, 5),)),
                                                                        FileGain("util.py", (), (7, 8), (), ())))),
        ("s2.json", shard_summary(2, gaps=("b.py::h",), files=(FileGain("b.py", (), (9,), (), ((9, 10), (9, 11))),
                                                              FileGain("util.py", (), (8, 9), (), ())))),
        ("s3.json", shard_summary(3, gaps=("c.py::k",), files=())),
    ]


def test_merge_adds_totals_and_unites_coverage_per_file_by_line() -> None:
    merged = merge_summaries(three())
    assert merged.gaps_targeted == 4 and merged.accepted == 3 and merged.verdicts == {"ACCEPTED": 3, "FAILED": 3}
    assert merged.prompt_tokens == 300 and merged.seconds == {"total": 30.0}
    # util.py's line 8 was reached by both shards' tests: counted once (7, 8, 9), not twice.
    assert merged.lines_before == (51, 100) and merged.lines_after == (50 + 3 + 1 + 3, 100)
    assert merged.branches_before == (10, 40) and merged.branches_after == (13, 40)
    assert [g.gap_id for g in merged.gaps] == ["a.py::f", "a.py::g", "b.py::h", "c.py::k"]
    assert merged.shard is not None and merged.shard.index is None and merged.shard.count == 3
    # The same schema, read back the same.
    assert summary_from_document(json.loads(json.dumps(summary_document(merged))), "merged") == merged
    # Order of the arguments does not matter.
    assert merge_summaries(list(reversed(three()))).lines_after == merged.lines_after


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r[:2], r"shard 3/3 missing \(given: 1/3 s1.json, 2/3 s2.json\)"),
    (lambda r: [*r, ("again.json", r[1][1])], "shard 2/3 given twice: s2.json and again.json"),
    (lambda r: [r[0], r[1], ("other.json", replace(r[2][1], shard=replace(r[2][1].shard, plan="q" * 64)))],
     "other.json and s1.json were planned from different reports or settings"),
    (lambda r: [r[0], r[1], ("old.json", replace(r[2][1], shard=replace(r[2][1].shard, commit="d" * 40)))],
     f"old.json was run on commit {'d' * 40}, s1.json on {'c' * 40}"),
    (lambda r: [r[0], r[1], ("four.json", replace(r[2][1], shard=replace(r[2][1].shard, count=4)))],
     "four.json is shard 3/4 but s1.json is one of 3"),
    (lambda r: [r[0], r[1], ("x.json", replace(r[2][1], shard=replace(r[2][1].shard, gaps=("b.py::h",))))],
     "gap b.py::h is in both s2.json and x.json"),
    (lambda r: [r[0], r[1], ("x.json", replace(r[2][1], shard=replace(r[2][1].shard, test_files=("tests/covgen/test_a_covgen.py",))))],
     "tests/covgen/test_a_covgen.py is written by both s1.json and x.json"),
    (lambda r: [r[0], r[1], ("plain.json", replace(r[2][1], shard=None))], "plain.json: not the result of a sharded run"),
    (lambda r: [*r[:2], ("merged.json", merge_summaries(r))], "merged.json: already a merged result"),
])
def test_merge_refuses_what_is_not_one_whole_run(change, message) -> None:
    with pytest.raises(UsageError, match=message):
        merge_summaries(change(three()))


def test_merge_cli_errors_are_one_line(covgen, tmp_path: Path) -> None:
    good = tmp_path / "s1.json"
    good.write_text(json.dumps(summary_document(three()[0][1])))
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "covgen.gaps/1"}))
    for args, expected in [
        ((good,), "shard 2/3, 3/3 missing"),
        ((good, tmp_path / "junk.json"), "junk.json: cannot read a JSON result"),
        ((good, tmp_path / "other.json"), "other.json: not a covgen.run/1 result"),
        ((good, tmp_path / "absent.json"), "absent.json: cannot read a JSON result"),
    ]:
        result = covgen("merge", *args)
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and expected in result.err, result.err


def test_merge_cli_prints_and_writes_one_summary(covgen, tmp_path: Path) -> None:
    paths = []
    for name, summary in three():
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(summary_document(summary)))
    result = covgen("merge", *paths, "--output", f"json:{tmp_path / 'all.json'},markdown:{tmp_path / 'all.md'}")
    assert result.code == 0, result.err
    assert "covgen: shard: all 3 merged: 4 of 9 gap(s), 3 test file(s)" in result.out
    assert json.loads((tmp_path / "all.json").read_text())["coverage"]["lines"]["after"]["covered"] == 57
    assert "shard: all 3 merged" in (tmp_path / "all.md").read_text()


# --- several servers ----------------------------------------------------------------------------

def test_requests_go_to_the_server_with_the_fewest_in_flight() -> None:
    """A slow replica gets fewer requests: the pool sends each to the least busy one, not in turn."""
    import time

    slow, fast = StubState(), StubState()
    slow.delay = lambda *_: time.sleep(0.5)
    fast.delay = lambda *_: time.sleep(0.02)
    with StubServer(slow) as a, StubServer(fast) as b:
        async def scenario() -> list[int]:
            pool = BackendPool([OpenAICompatBackend(a.url, concurrency=8), OpenAICompatBackend(b.url, concurrency=8)],
                               notify=lambda _: None)
            await pool.start(5)
            sem = asyncio.Semaphore(4)

            async def one() -> None:
                async with sem:
                    await pool.chat([{"role": "user", "content": "hi"}], n=1, sampling={})

            await asyncio.gather(*(one() for _ in range(40)))
            await pool.aclose()
            return pool.sent

        sent = asyncio.run(scenario())
    assert sum(sent) == 40 and sent[0] < 10 < sent[1], sent


def test_a_dead_server_is_left_out_and_the_run_fails_only_when_all_are() -> None:
    dead, alive = StubState(die_after=0), StubState()
    notes: list[str] = []
    with StubServer(dead) as a, StubServer(alive) as b:
        async def scenario() -> tuple[list[int], BackendError]:
            pool = BackendPool([OpenAICompatBackend(a.url, attempts=1), OpenAICompatBackend(b.url, attempts=1)], notify=notes.append)
            await pool.start(2)  # the dead one never comes up; the pool goes on with the other
            for _ in range(5):
                result = await pool.chat([{"role": "user", "content": "hi"}], n=1, sampling={})
                assert result.texts
            sent = list(pool.sent)
            alive.die_after = len(alive.requests)
            pool._down_until = [0.0, 0.0]  # both due for another try
            with pytest.raises(BackendError) as failure:
                await pool.chat([{"role": "user", "content": "hi"}], n=1, sampling={})
            await pool.aclose()
            return sent, failure.value

        sent, error = asyncio.run(scenario())
    assert sent == [0, 5]
    assert error.fatal and "all 2 model servers failed a request" in str(error)
    assert any(a.url in note and "trying this one again in 30 s" in note for note in notes)


def test_a_refused_prompt_is_not_sent_to_every_server() -> None:
    small, other = StubState(max_model_len=64), StubState(max_model_len=64)
    with StubServer(small) as a, StubServer(other) as b:
        async def scenario() -> BackendError:
            pool = BackendPool([OpenAICompatBackend(a.url), OpenAICompatBackend(b.url)], notify=lambda _: None)
            await pool.start(5)
            with pytest.raises(BackendError) as refused:
                await pool.chat([{"role": "user", "content": "x" * 2000}], n=1, sampling={})
            await pool.aclose()
            return refused.value

        error = asyncio.run(scenario())
    assert not error.fatal and len(small.requests) + len(other.requests) == 1
