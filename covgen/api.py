"""The library entry points that ``covgen run`` (and the coming pytest plugin and gate) call.

The CLI only parses flags and prints; what a run does lives here, once: read the reports (or
measure the suite), scope to a diff, find the gaps, say which of them this version can fill,
and run the pipeline with the engine the settings ask for.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from covgen.languages import pack_for
from covgen.model import CoverageReport, Gap

if TYPE_CHECKING:
    from covgen.config import Settings
    from covgen.pipeline import Progress, RunSummary
    from covgen.shard import Shard, ShardInfo

__all__ = ["RunPlan", "plan_run", "run"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run will work on: the report, the gaps it can fill, and what it had to say."""

    report: CoverageReport
    gaps: tuple[Gap, ...]
    warnings: tuple[str, ...]
    #: Set when the run is one shard of several: which, and what it owns.
    shard: ShardInfo | None = None


def plan_run(
    root: Path, settings: Settings, *, reports: Sequence[Path] = (), test_cmd: str | None = None, diff_ref: str | None = None,
    shard: Shard | None = None,
) -> RunPlan:
    """Read `reports` (or run `test_cmd` under coverage), scope to `diff_ref`, find the gaps, keep `shard`'s."""
    from covgen.adapters import read_reports
    from covgen.gaps import find_gaps

    if test_cmd:
        from covgen.measure import measure_suite

        report = measure_suite(root, test_cmd, python_of(settings))
    else:
        report = read_reports(reports, fmt=settings.format, root=root, source_roots=source_roots_of(settings))
    changed = None
    if diff_ref is not None:
        from covgen.diffscope import changed_lines

        changed = changed_lines(root, diff_ref)
    search = find_gaps(
        report, root.resolve(), include=settings.include, exclude=settings.exclude, min_lines=settings.min_lines,
        max_gaps=settings.max_gaps, changed=changed,
    )
    fillable = tuple(gap for gap in search.gaps if _fillable(gap) and gap.origin == "source")
    warnings = (*report.warnings, *search.warnings, *_left_out(search.gaps, fillable))
    if shard is None:
        return RunPlan(report, fillable, warnings)
    from covgen.shard import select

    mine, info = select(report, fillable, shard, root, settings.test_dir)
    return RunPlan(report, mine, warnings, info)


async def run(
    root: Path, plan: RunPlan, settings: Settings, *, record: Path | None = None, replay: Path | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Open the engine the settings name and run the pipeline over the plan's gaps.

    A report with gaps in two languages (a repository with Python and Java) is run one language
    after the other, each with its own runner and engines, and summed into one summary.
    """
    by_language: dict[str, list[Gap]] = {}
    for gap in plan.gaps:
        pack = pack_for(gap.path)
        by_language.setdefault(pack.name if pack is not None else "", []).append(gap)
    if len(by_language) <= 1:
        summary = await _run_language(root, plan.report, plan.gaps, settings, record=record, replay=replay, progress=progress)
    else:
        from covgen.merge import combine

        summary = combine([await _run_language(root, plan.report, tuple(gaps), settings, record=record, replay=replay, progress=progress)
                           for gaps in by_language.values()])
    return summary if plan.shard is None else replace(summary, shard=plan.shard)


async def _run_language(
    root: Path, report: CoverageReport, gaps: Sequence[Gap], settings: Settings, *, record: Path | None, replay: Path | None,
    progress: Progress | None,
) -> RunSummary:
    from covgen.engines.factory import open_engine
    from covgen.pipeline import RunOptions, run_pipeline

    python = python_of(settings)
    engines, reason = await open_engine(
        settings.engine, model_url=settings.model_url, model=settings.model, concurrency=settings.concurrency,
        candidates=settings.candidates, temperature=settings.temperature, seed=settings.seed,
        max_tokens=settings.max_tokens, structured=settings.structured, wait_for_model=settings.wait_for_model,
        request_timeout=settings.request_timeout, record=record, replay=replay,
        audit_log=(root / settings.audit_log) if settings.audit_log else None,
        explore_seconds=settings.explore_seconds, explore_attempts=settings.explore_attempts, python=python, root=root.resolve(), screen=settings.screen,
    )
    options = RunOptions(
        root=root.resolve(), test_dir=settings.test_dir, python=python, runs=settings.runs,
        max_attempts=settings.max_attempts, test_timeout=settings.test_timeout, budget_seconds=settings.budget_seconds,
        concurrency=settings.concurrency, sandbox=settings.sandbox, screen=settings.screen,
        classpath=settings.classpath, source_root=settings.source_root,
        jacoco_agent=Path(settings.jacoco_agent) if settings.jacoco_agent else None,
        junit_launcher=Path(settings.junit_launcher) if settings.junit_launcher else None,
    )
    if progress is None:
        return await run_pipeline(report, gaps, engines, options, engine_reason=reason)
    return await run_pipeline(report, gaps, engines, options, engine_reason=reason, progress=progress)


def source_roots_of(settings: Settings) -> tuple[str, ...]:
    """Where report paths resolve: a Java --source-root first."""
    return (settings.source_root, *settings.source_roots) if settings.source_root else settings.source_roots


def python_of(settings: Settings) -> str:
    """The project's interpreter: the configured one, else covgen's own."""
    return settings.python or sys.executable


def _fillable(gap: Gap) -> bool:
    pack = pack_for(gap.path)
    return pack is not None and not pack.not_yet


def _left_out(gaps: Sequence[Gap], fillable: Sequence[Gap]) -> list[str]:
    """Say what the run will not work on, instead of dropping it silently."""
    kept = set(fillable)
    counts: dict[str, int] = {}
    for gap in gaps:
        if gap not in kept:
            pack = pack_for(gap.path)
            why = (f"{pack.name} gaps: {pack.not_yet}" if pack is not None and pack.not_yet
                   else f"gaps in {gap.path.rsplit('.', 1)[-1]} files: no language pack for them" if pack is None
                   else "gaps whose source covgen could not parse (known from the report only)")
            counts[why] = counts.get(why, 0) + 1
    return [f"{count} {why}; `covgen gaps` lists them" for why, count in counts.items()]
