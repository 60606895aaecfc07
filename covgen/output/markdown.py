"""Markdown for a PR comment or ``$GITHUB_STEP_SUMMARY``, within the size GitHub accepts."""

from __future__ import annotations

from covgen.gate import GateResult
from covgen.output.gatereport import describe_branch, describe_lines, summary_lines

__all__ = ["LIMIT_BYTES", "cap", "gate_markdown"]

#: GitHub refuses a step summary over 1 MiB (and a comment over 65536 characters).
LIMIT_BYTES = 1024 * 1024
_CUT_NOTE = "\n\n> **Cut here:** this summary reached 1 MiB, GitHub's limit; the full list is in `--output json:PATH`.\n"


def cap(text: str, limit: int = LIMIT_BYTES) -> str:
    """Return `text`, or as many whole lines of it as fit in `limit` UTF-8 bytes with a note saying so."""
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(_CUT_NOTE.encode("utf-8"))
    kept: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        size += len(line.encode("utf-8"))
        if size > room:
            break
        kept.append(line)
    return "".join(kept).rstrip("\n") + _CUT_NOTE


def gate_markdown(result: GateResult) -> str:
    status = "passed" if result.passed else "FAILED"
    rows = [f"## covgen gate: {status}" if result.thresholds else "## covgen gate", ""]
    filled = result.filled
    if filled is not None:
        rows += [f"- filled: {filled.tests_accepted} test(s) kept for {filled.gaps_targeted} changed method(s)"
                 + (f" in {', '.join(f'`{p}`' for p in filled.files_written)}" if filled.files_written else ""),
                 f"- before the fill: {summary_lines(filled.before)[-1]}", f"- after the fill: {filled.remeasured}"]
    rows += [f"- {line}" for line in summary_lines(result)]
    if result.thresholds:
        rows += ["", "| threshold | required | actual | |", "|---|---|---|---|"]
        for t in result.thresholds:
            actual = "—" if t.actual is None else f"{t.actual}%"
            rows.append(f"| {t.name} | {t.required:g}% | {actual} | {'✅' if t.passed else '❌'} |")
    if result.diff is not None and result.diff.files:
        rows += ["", f"### {result.diff.uncovered_lines} uncovered changed line(s)", "", "| file | method | lines | missed branches |", "|---|---|---|---|"]
        for file in result.diff.files:
            shown = f"`{file.path}`" + (f" (from `{file.renamed_from}`)" if file.renamed_from else "")
            for method in file.methods:
                branches = "<br>".join(_cell(describe_branch(b)) for b in method.missed_branches)
                rows.append(f"| {shown} | `{_cell(method.name)}` | {describe_lines(method.uncovered_lines)} | {branches} |")
    if result.warnings:
        rows += ["", *[f"> {_cell(w)}" for w in result.warnings]]
    return cap("\n".join(rows) + "\n")


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")
