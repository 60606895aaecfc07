"""GitHub workflow commands (``::warning file=…,line=…::…``) that put findings beside the code.

GitHub shows at most 10 warning annotations per step, so the most important come first and a
notice says how many more there are. (Not named ``annotations``: the package's
``from __future__ import annotations`` would shadow that name.)
"""

from __future__ import annotations

from dataclasses import dataclass

from covgen.gate import GateResult, line_ranges
from covgen.output.gatereport import describe_branch
from covgen.pipeline import RunSummary

__all__ = ["SHOWN", "Annotation", "gate_annotations", "run_annotations", "render"]

#: GitHub's per-step limit on warning annotations.
SHOWN = 10


@dataclass(frozen=True, slots=True)
class Annotation:
    path: str
    title: str
    message: str
    line: int | None = None
    end_line: int | None = None


def gate_annotations(result: GateResult) -> list[Annotation]:
    """One per run of consecutive uncovered changed lines and per missed changed branch, the
    methods that leave the most untested first."""
    if result.diff is None:
        return []
    methods = sorted(((file.path, method) for file in result.diff.files for method in file.methods), key=lambda pm: -pm[1].weight)
    out = []
    for path, method in methods:
        for start, end in line_ranges(method.uncovered_lines):
            span = f"line {start}" if start == end else f"lines {start}-{end}"
            out.append(Annotation(path, "Uncovered changed lines", f"{method.name}: {span} changed and no test runs them", start, end))
        for branch in method.missed_branches:
            if branch.line in method.uncovered_lines:
                continue  # a line that never ran took none of its branches: its line annotation says so
            out.append(Annotation(path, "Missed changed branch", f"{method.name}: branch on {describe_branch(branch)}", branch.line, branch.line))
    return out


def run_annotations(summary: RunSummary) -> list[Annotation]:
    """Suspected problems first (candidates that changed project files or broke the project's
    tests), then the gaps left without a test; the run knows their files, not their lines."""
    suspected = [Annotation(g.gap_id.split("::", 1)[0], f"covgen candidate {r.verdict}", f"{r.test or r.candidate_id}: {r.message}")
                 for g in summary.gaps for r in g.rejected if r.verdict in ("UNSAFE", "POLLUTING")]
    unfilled = [Annotation(g.gap_id.split("::", 1)[0], "No test kept", f"{g.gap_id.split('::', 1)[-1]}: {g.outcome}: {g.reason}")
                for g in summary.gaps if not g.accepted_tests]
    return suspected + unfilled


def render(annotations: list[Annotation]) -> str:
    lines = []
    for a in annotations[:SHOWN]:
        properties = [f"file={_property(a.path)}"]
        if a.line is not None:
            properties.append(f"line={a.line}")
        if a.end_line is not None and a.end_line != a.line:
            properties.append(f"endLine={a.end_line}")
        properties.append(f"title={_property(a.title)}")
        lines.append(f"::warning {','.join(properties)}::{_data(a.message)}")
    if len(annotations) > SHOWN:
        lines.append(f"::notice::{_data(f'{len(annotations) - SHOWN} more finding(s) not annotated (GitHub shows {SHOWN} per step); see the Markdown or JSON output')}")
    return "".join(f"{line}\n" for line in lines)


def _data(text: str) -> str:
    # GitHub's toolkit (command.ts escapeData): % first, so an escape is never escaped twice.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
