"""Context for a prompt: what a model needs to know about the code around one gap.

Pieces are ordered from most shared (the same for every gap of a file) to least, and rendered
byte-for-byte the same each time, so vLLM's prefix cache serves a file's later gaps. Each piece
has a priority; under a token budget the lowest go first, and the focal method never goes.
All text passes through :func:`covgen.redact.redact` first.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from covgen.model import CodeUnit, Gap
from covgen.project import ProjectFacts
from covgen.redact import redact
from covgen.writer import module_name

__all__ = ["ContextPiece", "PromptContext", "build_context", "focal_lines", "redacted_context"]

_SAMPLE_LINES = 60


@dataclass(frozen=True, slots=True)
class ContextPiece:
    title: str
    text: str
    #: Dropped lowest first when the prompt is over budget.
    priority: int


@dataclass(frozen=True, slots=True)
class PromptContext:
    module: str
    path: str
    qualname: str
    pieces: tuple[ContextPiece, ...]
    focal: str
    goal: str

    def without_lowest(self) -> PromptContext | None:
        """The same context minus its least important piece, or None when nothing is left to drop."""
        if not self.pieces:
            return None
        lowest = min(self.pieces, key=lambda piece: piece.priority)
        return PromptContext(self.module, self.path, self.qualname, tuple(p for p in self.pieces if p is not lowest), self.focal, self.goal)


def build_context(gap: Gap, source: str, units: Sequence[CodeUnit], facts: ProjectFacts) -> PromptContext:
    module = module_name(gap.path)
    lines = source.splitlines()
    unit = gap.unit
    pieces: list[ContextPiece] = [
        ContextPiece("Module", f"`{module}` (file {gap.path}). Tests import from it, e.g. `from {module} import ...`.", 9),
    ]
    imports = unit.imports if unit is not None else ()
    if imports:
        pieces.append(ContextPiece("Its imports", "\n".join(imports), 5))
    if facts.fixtures:
        pieces.append(ContextPiece("Fixtures from conftest.py you may use", "\n".join(f"{f.signature}  # {f.path}" for f in facts.fixtures), 2))
    sample = _test_sample(module, facts)
    if sample:
        pieces.append(ContextPiece("An existing test of this module (follow its style)", sample, 1))
    if unit is not None and unit.class_name:
        skeleton = _class_skeleton(unit.class_name, units, lines, unit)
        if skeleton:
            pieces.append(ContextPiece(f"Class {unit.class_name} (outline)", skeleton, 4))
    callees = _callee_signatures(gap, units, lines)
    if callees:
        pieces.append(ContextPiece("Functions it calls in this module", callees, 3))
    return redacted_context(gap, module, pieces, focal_lines(gap, lines), _goal(gap, module))


def redacted_context(gap: Gap, module: str, pieces: Sequence[ContextPiece], focal: str, goal: str) -> PromptContext:
    """The context every prompt family builds, with every piece and the focal code through
    :func:`covgen.redact.redact`: one place, so no family can forget it."""
    return PromptContext(
        module=module, path=gap.path, qualname=gap.qualname,
        pieces=tuple(ContextPiece(p.title, redact(p.text), p.priority) for p in pieces),
        focal=redact(focal), goal=goal,
    )


def focal_lines(gap: Gap, lines: Sequence[str], *, comment: str = "#") -> str:
    """The gap's lines, numbered, with what is not covered marked in a `comment` of the file's language."""
    uncovered = set(gap.uncovered_lines)
    partial = {b.line: b for b in gap.missed_branches}
    rendered = []
    for number in range(gap.start_line, min(gap.end_line, len(lines)) + 1):
        text = lines[number - 1]
        mark = ""
        if number in uncovered:
            mark = f"  {comment} <- NOT COVERED"
        elif number in partial:
            branch = partial[number]
            mark = f"  {comment} <- BRANCH: {branch.missed} of {branch.total} outcomes never taken"
        rendered.append(f"{number:>5}  {text}{mark}")
    return "\n".join(rendered)


def _goal(gap: Gap, module: str) -> str:
    owner, _, name = gap.qualname.rpartition(".")
    importable = owner.split(".")[0] if owner else name
    targets = []
    if gap.uncovered_lines:
        targets.append(f"lines {', '.join(map(str, gap.uncovered_lines))}")
    if gap.missed_branches:
        targets.append(f"the untaken branches on lines {', '.join(str(b.line) for b in gap.missed_branches)}")
    return (
        f"Write pytest tests that make `{gap.qualname}` run {' and '.join(targets)}. "
        f"Import with `from {module} import {importable}`."
    )


def _class_skeleton(class_name: str, units: Sequence[CodeUnit], lines: Sequence[str], focal: CodeUnit) -> str:
    members = [u for u in units if u.class_name == class_name and u.qualname.rsplit(".", 1)[0] == focal.qualname.rsplit(".", 1)[0]]
    out = [f"class {class_name}:"]
    for member in members:
        if member.kind == "constructor":
            body = "\n".join(lines[member.start_line - 1 : member.end_line])
            out.append(body)
        else:
            out.append("    " + member.signature.replace("\n", "\n    ") + ": ...")
    return "\n".join(out) if len(out) > 1 else ""


def _callee_signatures(gap: Gap, units: Sequence[CodeUnit], lines: Sequence[str]) -> str:
    excerpt = "\n".join(lines[gap.start_line - 1 : gap.end_line])
    try:
        tree = ast.parse(textwrap.dedent(excerpt))
    except SyntaxError:
        return ""
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                called.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
    signatures = {
        f"{unit.qualname}: {unit.signature.splitlines()[-1]}"
        for unit in units
        if unit.name in called and unit.qualname != gap.qualname
    }
    return "\n".join(sorted(signatures))


def _test_sample(module: str, facts: ProjectFacts) -> str:
    tests = facts.tests_of(module)
    if not tests:
        return ""
    text = facts.test_files[tests[0]]
    return f"# {tests[0]}\n" + "\n".join(text.splitlines()[:_SAMPLE_LINES])

