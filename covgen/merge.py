"""Combine the ``covgen.run/1`` results of ``covgen run --shard I/N`` jobs into one summary.

The shards must be one whole: the same plan (report, gaps before the split, test dir) and
commit, each index 1..N exactly once, and no gap or test file owned twice. Totals are added;
coverage is combined per file from line numbers, not counts — a test one shard wrote may
cover lines in a file another shard owns, and counting those twice would overstate the gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from covgen.errors import UsageError
from covgen.pipeline import FileGain, RunSummary
from covgen.shard import ShardInfo

__all__ = ["merge_summaries", "combine"]


def merge_summaries(results: Sequence[tuple[str, RunSummary]]) -> RunSummary:
    """One summary for all shards in `results` (name, summary); UsageError naming what does not fit."""
    if not results:
        raise UsageError("covgen merge: give the shards' JSON results", slug="no-results")
    shards = [(name, _shard_of(name, summary)) for name, summary in results]
    _check_whole(shards)
    _check_disjoint(shards)
    first_name, first = results[0]
    for name, summary in results[1:]:
        if _base(summary) != _base(first):
            raise UsageError(f"{name} and {first_name} start from different coverage; not shards of one run", slug="shard-mismatch")
    info = shards[0][1]
    return replace(combine([summary for _, summary in results]), shard=ShardInfo(
        index=None, count=info.count, gaps=tuple(sorted(g for _, shard in shards for g in shard.gaps)),
        test_files=tuple(sorted(f for _, shard in shards for f in shard.test_files)), plan=info.plan, commit=info.commit,
        planned=info.planned,
    ))


def combine(summaries: Sequence[RunSummary]) -> RunSummary:
    """One summary of runs over disjoint gaps of one report (shards, or one run per language):
    totals added, coverage united per file from line numbers."""
    lines_base, branches_base = _base(summaries[0])
    files = _united(summaries)
    verdicts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for summary in summaries:
        for key, count in summary.verdicts.items():
            verdicts[key] = verdicts.get(key, 0) + count
        for key, value in summary.seconds.items():
            seconds[key] = round(seconds.get(key, 0.0) + value, 2)
    # The single run orders its gaps by file; each file is in one part, so a stable sort by
    # file puts the parts' gaps back in that order.
    gaps = sorted((gap for summary in summaries for gap in summary.gaps), key=lambda gap: gap.gap_id.partition("::")[0])
    return RunSummary(
        engine=_distinct(s.engine for s in summaries), engine_reason=_distinct(s.engine_reason for s in summaries if s.engine_reason),
        sandbox=_distinct(s.sandbox for s in summaries), gaps_targeted=sum(s.gaps_targeted for s in summaries),
        candidates=sum(s.candidates for s in summaries), verdicts=verdicts, accepted=sum(s.accepted for s in summaries),
        files_written=tuple(sorted(path for s in summaries for path in s.files_written)),
        lines_before=(lines_base[0] + sum(len(f.lines_before) for f in files), lines_base[1]),
        lines_after=(lines_base[0] + sum(len(f.lines_after) for f in files), lines_base[1]),
        branches_before=(branches_base[0] + sum(len(f.arcs_before) for f in files), branches_base[1]),
        branches_after=(branches_base[0] + sum(len(f.arcs_after) for f in files), branches_base[1]),
        prompt_tokens=sum(s.prompt_tokens for s in summaries), completion_tokens=sum(s.completion_tokens for s in summaries),
        cached_tokens=sum(s.cached_tokens for s in summaries), seconds=seconds, gaps=tuple(gaps),
        warnings=tuple(dict.fromkeys(w for s in summaries for w in s.warnings)), files=files,
    )


def _shard_of(name: str, summary: RunSummary) -> ShardInfo:
    if summary.shard is None:
        raise UsageError(f"{name}: not the result of a sharded run (run covgen run --shard I/N --output json:PATH)", slug="not-a-shard")
    if summary.shard.index is None:
        raise UsageError(f"{name}: already a merged result; merge the shards' own results", slug="not-a-shard")
    return summary.shard


def _check_whole(shards: list[tuple[str, ShardInfo]]) -> None:
    """Same plan, same commit, same N, and every index once."""
    first_name, first = shards[0]
    seen: dict[int, str] = {}
    for name, shard in shards:
        index = shard.index or 0  # never 0: _shard_of refused merged results
        if shard.count != first.count:
            raise UsageError(f"{name} is shard {shard.index}/{shard.count} but {first_name} is one of {first.count}", slug="shard-mismatch")
        if shard.commit != first.commit:
            raise UsageError(f"{name} was run on commit {shard.commit or '(none)'}, {first_name} on {first.commit or '(none)'}",
                             slug="shard-mismatch")
        if shard.plan != first.plan:
            raise UsageError(f"{name} and {first_name} were planned from different reports or settings "
                             f"(plan {shard.plan[:12]} vs {first.plan[:12]}); every shard needs the same report and flags",
                             slug="shard-mismatch")
        if index in seen:
            raise UsageError(f"shard {index}/{shard.count} given twice: {seen[index]} and {name}", slug="shard-duplicate")
        seen[index] = name
    missing = [str(index) for index in range(1, first.count + 1) if index not in seen]
    if missing:
        raise UsageError(f"shard {', '.join(f'{i}/{first.count}' for i in missing)} missing (given: "
                         f"{', '.join(f'{i}/{first.count} {seen[i]}' for i in sorted(seen))})", slug="shard-missing")


def _check_disjoint(shards: list[tuple[str, ShardInfo]]) -> None:
    """No gap and no test file in two shards: they would be filled, or written, twice."""
    gap_owner: dict[str, str] = {}
    file_owner: dict[str, str] = {}
    for name, shard in shards:
        for gap in shard.gaps:
            if gap in gap_owner:
                raise UsageError(f"gap {gap} is in both {gap_owner[gap]} and {name}", slug="shard-overlap")
            gap_owner[gap] = name
        for path in shard.test_files:
            if path in file_owner:
                raise UsageError(f"{path} is written by both {file_owner[path]} and {name}", slug="shard-overlap")
            file_owner[path] = name


def _base(summary: RunSummary) -> tuple[tuple[int, int], tuple[int, int]]:
    """The report's own coverage: the totals before, less what covgen's earlier files added."""
    lines = summary.lines_before[0] - sum(len(f.lines_before) for f in summary.files)
    branches = summary.branches_before[0] - sum(len(f.arcs_before) for f in summary.files)
    return (lines, summary.lines_before[1]), (branches, summary.branches_before[1])


def _united(summaries: Sequence[RunSummary]) -> tuple[FileGain, ...]:
    lines_before: dict[str, set[int]] = {}
    lines_after: dict[str, set[int]] = {}
    arcs_before: dict[str, set[tuple[int, int]]] = {}
    arcs_after: dict[str, set[tuple[int, int]]] = {}
    for summary in summaries:
        for gain in summary.files:
            lines_before.setdefault(gain.path, set()).update(gain.lines_before)
            lines_after.setdefault(gain.path, set()).update(gain.lines_after)
            arcs_before.setdefault(gain.path, set()).update(gain.arcs_before)
            arcs_after.setdefault(gain.path, set()).update(gain.arcs_after)
    return tuple(
        FileGain(path, tuple(sorted(lines_before[path])), tuple(sorted(lines_after[path])), tuple(sorted(arcs_before[path])),
                 tuple(sorted(arcs_after[path])))
        for path in sorted(lines_after)
    )


def _distinct(values: Iterable[str]) -> str:
    return "; ".join(dict.fromkeys(values))
