"""Reading a coverage.py data file: what a run covered in all, and what each context covered.

Both readers of per-test coverage (the funnel's runs, the clean run) go through here, so both
read it the fast way: one query per measured file says which contexts reached it, and only
those (context, file) pairs are read — not every test against every measured file, which for a
few hundred tests over a few dozen files is thousands of SQLite queries.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunCoverage", "read_coverage"]

Lines = dict[str, frozenset[int]]
Arcs = dict[str, frozenset[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class RunCoverage:
    """Lines and arcs per root-relative path: the whole run's, and per context asked for."""

    total_lines: Lines
    total_arcs: Arcs
    #: Context → path → lines (a context that reached nothing has no entry).
    lines: dict[str, Lines] = field(default_factory=dict)
    arcs: dict[str, Arcs] = field(default_factory=dict)


def read_coverage(data_file: Path, root: Path, contexts: Collection[str] = ()) -> RunCoverage:
    """Read `data_file` (measured files under `root`); per context only for `contexts`."""
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    resolved = root.resolve()
    files = {measured: Path(measured).resolve().relative_to(resolved).as_posix() for measured in sorted(data.measured_files())}
    covered = RunCoverage({relative: frozenset(data.lines(measured) or ()) for measured, relative in files.items()},
                         {relative: frozenset(data.arcs(measured) or ()) for measured, relative in files.items()})
    if not contexts:
        return covered
    wanted = set(contexts)
    branch = data.has_arcs()
    for measured, relative in files.items():
        data.set_query_contexts(None)
        reached = set().union(*data.contexts_by_lineno(measured).values()) & wanted
        for context in sorted(reached):
            data.set_query_context(context)
            if branch:
                arcs = frozenset(data.arcs(measured) or ())
                covered.arcs.setdefault(context, {})[relative] = arcs
                # What data.lines() would answer, without asking again.
                covered.lines.setdefault(context, {})[relative] = frozenset(n for arc in arcs for n in arc if n > 0)
            else:
                covered.lines.setdefault(context, {})[relative] = frozenset(data.lines(measured) or ())
    return covered
