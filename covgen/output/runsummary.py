"""What ``covgen run`` reports: console text, the ``covgen.run`` JSON document, Markdown for a PR.

JSON version history — bump on any change a consumer could notice:
  1: engine, sandbox, verdict counts, coverage before/after, tokens, seconds, per-gap outcomes
     (each gap's ``rejected`` list, ``outcome``, ``reason`` and ``notes`` were added later; consumers that
     ignore unknown keys see no change).
     Also added later: ``files`` (per file, the line numbers and arcs counted covered beyond the
     report, before and after) and, for ``--shard I/N`` runs and ``covgen merge``, ``shard``.
"""

from __future__ import annotations

from typing import Any, TextIO

from covgen.errors import UsageError
from covgen.pipeline import FileGain, GapOutcome, Rejection, RunSummary
from covgen.shard import ShardInfo

__all__ = ["SCHEMA", "summary_document", "summary_from_document", "summary_markdown", "summary_lines", "print_summary"]

SCHEMA = "covgen.run/1"


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def summary_document(summary: RunSummary) -> dict[str, Any]:
    tokens = summary.prompt_tokens + summary.completion_tokens
    return {
        "schema": SCHEMA,
        "engine": summary.engine,
        "engine_reason": summary.engine_reason,
        "sandbox": summary.sandbox,
        "gaps_targeted": summary.gaps_targeted,
        "candidates": summary.candidates,
        "verdicts": summary.verdicts,
        "accepted_tests": summary.accepted,
        "files_written": list(summary.files_written),
        "coverage": {
            kind: {
                "before": {"covered": before[0], "total": before[1], "percent": _percent(*before)},
                "after": {"covered": after[0], "total": after[1], "percent": _percent(*after)},
            }
            for kind, before, after in (
                ("lines", summary.lines_before, summary.lines_after),
                ("branches", summary.branches_before, summary.branches_after),
            )
        },
        "tokens": {"prompt": summary.prompt_tokens, "completion": summary.completion_tokens, "cached_prompt": summary.cached_tokens},
        "seconds": summary.seconds,
        "per_accepted_test": {
            "seconds": round(summary.seconds.get("total", 0.0) / summary.accepted, 2) if summary.accepted else None,
            "tokens": round(tokens / summary.accepted) if summary.accepted else None,
        },
        "gaps": [
            {"id": g.gap_id, "accepted_tests": list(g.accepted_tests), "gained_lines": list(g.gained_lines),
             "gained_branches": g.gained_branches, "verdicts": g.verdicts, "outcome": g.outcome, "reason": g.reason, "notes": list(g.notes),
             "rejected": [{"candidate": r.candidate_id, "test": r.test, "verdict": r.verdict, "message": r.message} for r in g.rejected]}
            for g in summary.gaps
        ],
        "warnings": list(summary.warnings),
        "files": [
            {"path": f.path, "lines_before": list(f.lines_before), "lines_after": list(f.lines_after),
             "branches_before": [list(arc) for arc in f.arcs_before], "branches_after": [list(arc) for arc in f.arcs_after]}
            for f in summary.files
        ],
        **({} if summary.shard is None else {"shard": _shard_document(summary.shard)}),
    }


def _shard_document(shard: ShardInfo) -> dict[str, Any]:
    return {"index": shard.index, "count": shard.count, "gaps": list(shard.gaps), "test_files": list(shard.test_files),
            "plan": shard.plan, "commit": shard.commit, "planned_gaps": shard.planned}


def summary_from_document(document: Any, name: str) -> RunSummary:
    """Read back a ``covgen.run/1`` document (a shard's result); UsageError naming `name` if it is not one."""
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise UsageError(f"{name}: not a {SCHEMA} result (write one with covgen run --output json:PATH)", slug="bad-result")
    try:
        coverage = document["coverage"]
        shard = document.get("shard")

        def pair(kind: str, when: str) -> tuple[int, int]:
            return int(coverage[kind][when]["covered"]), int(coverage[kind][when]["total"])

        return RunSummary(
            engine=str(document["engine"]), engine_reason=str(document["engine_reason"]), sandbox=str(document["sandbox"]),
            gaps_targeted=int(document["gaps_targeted"]), candidates=int(document["candidates"]),
            verdicts={str(k): int(v) for k, v in document["verdicts"].items()}, accepted=int(document["accepted_tests"]),
            files_written=tuple(map(str, document["files_written"])),
            lines_before=pair("lines", "before"), lines_after=pair("lines", "after"),
            branches_before=pair("branches", "before"), branches_after=pair("branches", "after"),
            prompt_tokens=int(document["tokens"]["prompt"]), completion_tokens=int(document["tokens"]["completion"]),
            cached_tokens=int(document["tokens"]["cached_prompt"]),
            seconds={str(k): float(v) for k, v in document["seconds"].items()},
            gaps=tuple(
                GapOutcome(str(g["id"]), tuple(g["accepted_tests"]), tuple(g["gained_lines"]), int(g["gained_branches"]),
                           dict(g["verdicts"]), tuple(Rejection(r["candidate"], r["test"], r["verdict"], r["message"]) for r in g["rejected"]),
                           str(g["outcome"]), str(g["reason"]), tuple(g["notes"]))
                for g in document["gaps"]
            ),
            warnings=tuple(map(str, document["warnings"])),
            files=tuple(
                FileGain(str(f["path"]), tuple(f["lines_before"]), tuple(f["lines_after"]),
                         tuple((int(a), int(b)) for a, b in f["branches_before"]), tuple((int(a), int(b)) for a, b in f["branches_after"]))
                for f in document.get("files", [])
            ),
            shard=None if shard is None else ShardInfo(
                index=None if shard["index"] is None else int(shard["index"]), count=int(shard["count"]),
                gaps=tuple(map(str, shard["gaps"])), test_files=tuple(map(str, shard["test_files"])), plan=str(shard["plan"]),
                commit=None if shard["commit"] is None else str(shard["commit"]), planned=int(shard["planned_gaps"]),
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UsageError(f"{name}: not a complete {SCHEMA} result ({type(err).__name__}: {err})", slug="bad-result") from err


def _lines(summary: RunSummary) -> list[str]:
    document = summary_document(summary)
    lines = document["coverage"]["lines"]
    branches = document["coverage"]["branches"]
    verdicts = ", ".join(f"{name} {count}" for name, count in summary.verdicts.items() if count)
    per_test = document["per_accepted_test"]
    out = [
        f"engine: {summary.engine}" + (f" ({summary.engine_reason})" if summary.engine_reason else ""),
        f"sandbox: {summary.sandbox}",
        f"gaps targeted: {summary.gaps_targeted}; candidate tests: {summary.candidates}",
        f"verdicts: {verdicts or 'none'}",
        f"tests accepted: {summary.accepted}" + (f" in {', '.join(summary.files_written)}" if summary.files_written else ""),
        f"lines: {lines['before']['covered']}/{lines['before']['total']} ({lines['before']['percent']}%) → "
        f"{lines['after']['covered']}/{lines['after']['total']} ({lines['after']['percent']}%)",
        f"branches: {branches['before']['covered']}/{branches['before']['total']} → {branches['after']['covered']}/{branches['after']['total']}",
        f"tokens: {summary.prompt_tokens} prompt ({summary.cached_tokens} cached) + {summary.completion_tokens} completion",
        "seconds: " + ", ".join(f"{stage} {value:g}" for stage, value in summary.seconds.items()),
    ]
    if summary.accepted:
        out.append(f"per accepted test: {per_test['seconds']} s, {per_test['tokens']} tokens")
    if summary.shard is not None:
        shard = summary.shard
        which = f"{shard.index}/{shard.count}" if shard.index is not None else f"all {shard.count} merged"
        out.insert(0, f"shard: {which}: {len(shard.gaps)} of {shard.planned} gap(s), {len(shard.test_files)} test file(s)")
    return out


#: Gaps without a test that the console names; the JSON and Markdown summaries name them all.
_CONSOLE_UNFILLED = 10


def _unfilled(summary: RunSummary) -> list[str]:
    empty = [g for g in summary.gaps if not g.accepted_tests]
    lines = [f"no test for {g.gap_id}: {g.outcome}: {g.reason}" for g in empty[:_CONSOLE_UNFILLED]]
    if len(empty) > _CONSOLE_UNFILLED:
        lines.append(f"no test for {len(empty) - _CONSOLE_UNFILLED} more gap(s): see --output json or markdown")
    return lines


def summary_lines(summary: RunSummary) -> list[str]:
    """The console summary, one line each without the ``covgen:`` prefix (the pytest plugin's section)."""
    return [*_lines(summary), *_unfilled(summary), *(f"warning: {warning}" for warning in summary.warnings)]


def print_summary(summary: RunSummary, stream: TextIO) -> None:
    for line in summary_lines(summary):
        stream.write(f"covgen: {line}\n")


#: Rows of the "not kept" table in Markdown; a PR comment has to stay readable.
_MARKDOWN_REJECTIONS = 50


def summary_markdown(summary: RunSummary) -> str:
    rows = ["## covgen", "", *[f"- {line}" for line in _lines(summary)], "", "| gap | accepted tests | lines gained | branches gained |", "|---|---|---|---|"]
    for gap in summary.gaps:
        if gap.accepted_tests:
            rows.append(f"| `{gap.gap_id}` | {', '.join(f'`{t}`' for t in gap.accepted_tests)} | {len(gap.gained_lines)} | {gap.gained_branches} |")
    empty = [gap for gap in summary.gaps if not gap.accepted_tests]
    if empty:
        rows += ["", f"<details><summary>{len(empty)} gaps without a test</summary>", "", "| gap | outcome | why |", "|---|---|---|"]
        rows += [f"| `{gap.gap_id}` | {gap.outcome} | {_cell(gap.reason)} |" for gap in empty[:_MARKDOWN_REJECTIONS]]
        if len(empty) > _MARKDOWN_REJECTIONS:
            rows.append(f"| … | {len(empty) - _MARKDOWN_REJECTIONS} more in the JSON summary | |")
        rows += ["", "</details>"]
    rejected = [(gap.gap_id, r) for gap in summary.gaps for r in gap.rejected]
    if rejected:
        rows += ["", f"<details><summary>{len(rejected)} candidate tests not kept</summary>", "",
                 "| gap | test | verdict | why |", "|---|---|---|---|"]
        for gap_id, r in rejected[:_MARKDOWN_REJECTIONS]:
            rows.append(f"| `{gap_id}` | {f'`{r.test}`' if r.test else '(module)'} | {r.verdict} | {_cell(r.message)} |")
        if len(rejected) > _MARKDOWN_REJECTIONS:
            rows.append(f"| … | {len(rejected) - _MARKDOWN_REJECTIONS} more in the JSON summary | | |")
        rows += ["", "</details>"]
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")
