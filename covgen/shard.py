"""Split a run's gaps into N shards for N CI jobs: deterministic, balanced, one test file per shard.

Every job computes the same split on its own, from the same report, with nothing shared but the
command line: so the split depends only on the gaps (sorted, ties broken by sha256 of a name),
never on dict or set order or Python's per-process hash seed. All gaps whose tests land in the
same test file go to the same shard, so two jobs never write the same file; shards are then
balanced by an estimate of each gap's cost (largest first onto the least loaded shard).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import UsageError
from covgen.languages import pack_for
from covgen.model import CoverageReport, Gap

__all__ = ["Shard", "ShardInfo", "gap_cost", "parse_shard", "plan_fingerprint", "select", "split", "shard_key"]

#: What one gap costs beyond its lines: a model request and a validation wave slot whatever its
#: size, so a shard of many one-line gaps is not counted as nearly free.
GAP_OVERHEAD = 4

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """What a sharded run (or a merge of shards) worked on, so `covgen merge` can check the set."""

    #: 1-based; None for a merged result.
    index: int | None
    count: int
    #: Ids of the gaps this shard owned (all of them, for a merged result).
    gaps: tuple[str, ...]
    #: Test files this shard may write: no other shard writes them.
    test_files: tuple[str, ...]
    #: sha256 of the whole plan (report, gaps before the split, test dir): equal in every shard.
    plan: str
    #: The checkout's git commit, when it is a git checkout.
    commit: str | None
    #: Gaps in the whole plan, before the split.
    planned: int


def parse_shard(text: str) -> Shard:
    """Read ``I/N`` (1 ≤ I ≤ N), or raise UsageError saying what is wrong in one line."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise UsageError(f"--shard {text!r}: use I/N, e.g. 2/3 for the second of three shards", slug="bad-shard")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: I must be between 1 and N (N ≥ 1)", slug="bad-shard")
    return Shard(index, count)


def gap_cost(gap: Gap) -> int:
    """Estimated work for one gap: its uncovered lines and missed branch outcomes, plus a fixed part."""
    return len(gap.uncovered_lines) + sum(branch.missed for branch in gap.missed_branches) + GAP_OVERHEAD


def shard_key(gap: Gap, test_dir: str) -> str:
    """The file a test for `gap` is written to: the unit no two shards may share."""
    pack = pack_for(gap.path)
    return pack.test_path(gap.path, test_dir) if pack is not None else gap.path


def split(gaps: Sequence[Gap], count: int, test_dir: str) -> tuple[tuple[Gap, ...], ...]:
    """All `count` shards of `gaps`, in shard order; each shard's gaps in file and line order."""
    groups: dict[str, list[Gap]] = {}
    for gap in gaps:
        groups.setdefault(shard_key(gap, test_dir), []).append(gap)
    cost = {name: sum(gap_cost(gap) for gap in members) for name, members in groups.items()}
    # Largest first onto the least loaded shard (LPT): within 4/3 of the best split. Equal costs
    # are ordered by a hash of the name rather than the name, so neighbouring files spread out.
    order = sorted(groups, key=lambda name: (-cost[name], hashlib.sha256(name.encode()).hexdigest(), name))
    loads = [0] * count
    owned: list[list[Gap]] = [[] for _ in range(count)]
    for name in order:
        lightest = min(range(count), key=lambda shard: (loads[shard], shard))
        loads[lightest] += cost[name]
        owned[lightest].extend(groups[name])
    return tuple(tuple(sorted(members, key=lambda g: (g.path, g.start_line, g.qualname))) for members in owned)


def select(report: CoverageReport, gaps: Sequence[Gap], shard: Shard, root: Path, test_dir: str) -> tuple[tuple[Gap, ...], ShardInfo]:
    """The gaps `shard` owns, and what its summary says about it."""
    mine = split(gaps, shard.count, test_dir)[shard.index - 1]
    info = ShardInfo(
        index=shard.index, count=shard.count, gaps=tuple(gap.id for gap in mine),
        test_files=tuple(sorted({shard_key(gap, test_dir) for gap in mine})),
        plan=plan_fingerprint(report, gaps, test_dir), commit=git_commit(root), planned=len(gaps),
    )
    return mine, info


def plan_fingerprint(report: CoverageReport, gaps: Sequence[Gap], test_dir: str) -> str:
    """sha256 of what every shard must agree on: the report's coverage, the gaps, the test dir."""
    document = {
        "files": sorted(
            [f.path, list(f.covered_lines), list(f.uncovered_lines), [[b.line, b.covered, b.total] for b in f.branches]]
            for f in report.files
        ),
        "gaps": sorted([g.id, list(g.uncovered_lines), [list(arc) for arc in g.missing_arcs]] for g in gaps),
        "test_dir": test_dir,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def git_commit(root: Path) -> str | None:
    """HEAD of the checkout at `root`, or None when it is not a git checkout (or git is missing)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
