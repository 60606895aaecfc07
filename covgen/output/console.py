"""Human-readable output: rich tables on a terminal, plain aligned text in CI logs."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table

from covgen.gaps import GapSearch
from covgen.model import CoverageReport

__all__ = ["print_gaps"]


def print_gaps(report: CoverageReport, search: GapSearch, stream: TextIO) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 160)
    measured = sum(len(f.covered_lines) + len(f.uncovered_lines) for f in report.files)
    covered = sum(len(f.covered_lines) for f in report.files)
    percent = f"{100 * covered / measured:.1f}%" if measured else "n/a"
    console.print(f"{report.format} report: {len(report.files)} files, {covered}/{measured} lines covered ({percent})")
    if not search.gaps:
        console.print("No uncovered methods.")
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("method")
    table.add_column("lines", justify="right")
    table.add_column("uncovered", justify="right")
    table.add_column("branches missed", justify="right")
    table.add_column("covered", justify="right")
    for rank, gap in enumerate(search.gaps, start=1):
        table.add_row(
            str(rank),
            f"{gap.path}::{gap.qualname}" + ("" if gap.is_public else " (private)"),
            f"{gap.start_line}-{gap.end_line}",
            str(len(gap.uncovered_lines)),
            str(sum(b.missed for b in gap.missed_branches)),
            f"{100 * gap.coverage_ratio:.0f}%",
        )
    console.print(table)
    shown = f"{len(search.gaps)} of {search.total}" if search.total > len(search.gaps) else str(search.total)
    console.print(f"{shown} uncovered methods")
