"""Place accepted tests in the repo: one covgen-owned file per target module, never anyone else's.

Tests are placed with libcst, not pasted: imports are merged, helpers and fixtures shared by
several candidates are kept once, and names that clash are renamed inside their own candidate
before it joins the file. Only the accepted tests of a candidate are kept. Files are written
atomically (a temporary file renamed over the target), so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import libcst as cst

from covgen.errors import CovgenError
from covgen.model import Candidate, Gap, TestVerdict

__all__ = ["AcceptedTest", "MARKER", "test_path_for", "module_name", "render_files", "write_files", "owned_by_covgen"]

#: First line of every file covgen writes; covgen only ever changes files that start with it.
MARKER = "# covgen: generated tests"


@dataclass(frozen=True, slots=True)
class AcceptedTest:
    verdict: TestVerdict
    candidate: Candidate
    gap: Gap


def module_name(path: str, import_roots: Sequence[str] = ("src",)) -> str:
    """``src/pkg/mod.py`` → ``pkg.mod`` (the name tests import it by)."""
    relative = path
    for root in import_roots:
        if relative.startswith(root.rstrip("/") + "/"):
            relative = relative[len(root.rstrip("/")) + 1 :]
            break
    module = relative.removesuffix(".py").replace("/", ".")
    return module.removesuffix(".__init__")


def test_path_for(gap_path: str, test_dir: str = "tests/covgen") -> str:
    return f"{test_dir.rstrip('/')}/test_{module_name(gap_path).replace('.', '_')}_covgen.py"


def owned_by_covgen(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as stream:
            return stream.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False


#: (candidate id, test name in the candidate) → node id of that test in the written file.
NodeIds = dict[tuple[str, str], str]


def render_files(
    accepted: Sequence[AcceptedTest],
    root: Path,
    *,
    test_dir: str = "tests/covgen",
    provenance: str = "",
) -> tuple[dict[str, str], NodeIds]:
    """Build the text of every test file to write, merged with covgen files already there.

    Also return where each accepted test landed, since clashing names are renamed.
    """
    by_file: dict[str, list[AcceptedTest]] = {}
    for test in accepted:
        by_file.setdefault(test_path_for(test.gap.path, test_dir), []).append(test)
    contents: dict[str, str] = {}
    names: NodeIds = {}
    for path, tests in sorted(by_file.items()):
        contents[path] = _render_one(root / path, path, tests, provenance, names)
    return contents, names


def write_files(root: Path, contents: Mapping[str, str]) -> list[str]:
    """Write `contents` (root-relative path → text) atomically; refuse files covgen did not write."""
    for relative in contents:
        target = root / relative
        if target.exists() and not owned_by_covgen(target):
            raise CovgenError(f"{relative} exists and was not written by covgen; not touching it", slug="not-ours")
    written = []
    for relative, text in contents.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(relative)
    return written


def _render_one(target: Path, relative: str, tests: Sequence[AcceptedTest], provenance: str, names: NodeIds) -> str:
    imports: list[str] = []
    body: list[str] = []
    used: dict[str, str] = {}
    header_targets: list[str] = []
    if target.exists() and owned_by_covgen(target):
        text = target.read_text(encoding="utf-8")
        header_targets = [line.rstrip() for line in text.splitlines() if line.startswith("#   ")]
        _merge_module(cst.parse_module(text), None, imports, body, used, {}, "")
    by_candidate: dict[str, list[AcceptedTest]] = {}
    for test in tests:
        by_candidate.setdefault(test.candidate.id, []).append(test)
    for group in by_candidate.values():
        keep = {t.verdict.test_name for t in group}
        landed: dict[str, str] = {}
        _merge_module(cst.parse_module(group[0].candidate.source), keep, imports, body, used, landed, relative)
        for name, nodeid in landed.items():
            names[(group[0].candidate.id, name)] = nodeid
    by_gap: dict[str, list[AcceptedTest]] = {}
    for test in tests:
        by_gap.setdefault(test.gap.qualname, []).append(test)
    for qualname, gap_tests in by_gap.items():
        lines = sorted({line for t in gap_tests for line in t.verdict.gained_lines})
        arcs = {arc for t in gap_tests for arc in t.verdict.gained_arcs}
        branches = f", {len(arcs)} branches" if arcs else ""
        count = f" by {len(gap_tests)} tests" if len(gap_tests) > 1 else ""
        header_targets.append(f"#   {qualname}: +{len(lines)} lines{branches}{count} ({_lines(lines)})")
    target_path = tests[0].gap.path
    header = [
        f"{MARKER} for {target_path}. Keep this line: covgen only adds to files that start with it.",
        "# Each test below passed repeatedly in a sandbox and reached lines no other test reached:",
        *dict.fromkeys(header_targets),
    ]
    if provenance:
        header.append(f"# {provenance}")
    return "\n".join(header) + "\n" + "\n".join(_ordered_imports(imports)) + "\n\n\n" + "\n\n\n".join(body) + "\n"


_FROM_IMPORT = re.compile(r"^from ([\w.]+) import ([\w, ]+)$")


def _ordered_imports(imports: Sequence[str]) -> list[str]:
    """``__future__`` first, then ``import x``, then ``from x import a, b`` merged per module."""
    merged: dict[str, list[str]] = {}
    plain: list[str] = []
    for line in imports:
        match = _FROM_IMPORT.match(line)
        if match is None:
            plain.append(line)
            continue
        names = merged.setdefault(match.group(1), [])
        names.extend(n.strip() for n in match.group(2).split(",") if n.strip() and n.strip() not in names)
    futures = [f"from __future__ import {', '.join(sorted(merged.pop('__future__')))}"] if "__future__" in merged else []
    froms = [f"from {module} import {', '.join(sorted(names))}" for module, names in sorted(merged.items())]
    return futures + sorted(dict.fromkeys(plain)) + froms


def _merge_module(
    module: cst.Module,
    keep: set[str] | None,
    imports: list[str],
    body: list[str],
    used: dict[str, str],
    landed: dict[str, str],
    relative: str,
) -> None:
    """Add `module`'s imports, helpers and (kept) tests, renaming what clashes with `used`.

    `landed` receives, for each kept test, its node id in the file at `relative`.
    """
    renames: dict[str, str] = {}
    statements: list[cst.BaseStatement] = []
    for statement in module.body:
        if _is_import(statement):
            code = module.code_for_node(statement).strip()
            if code not in imports:
                imports.append(code)
            continue
        kept: cst.BaseStatement | None = _keep_tests(statement, keep)
        if kept is None:
            continue
        name = _defined_name(kept)
        code = module.code_for_node(kept).strip()
        if name is not None and name in used:
            if used[name] == code:
                continue  # the same helper or fixture twice: keep one
            fresh = _fresh_name(name, used)
            renames[name] = fresh
        if name is not None:
            used[renames.get(name, name)] = code
        statements.append(kept)
        if keep is not None and name is not None:
            final = renames.get(name, name)
            for test in keep:
                if test == name:
                    landed[test] = f"{relative}::{final}"
                elif test.startswith(name + "::"):
                    landed[test] = f"{relative}::{final}::{test.split('::', 1)[1]}"
    transformer = _Renamer(renames)
    for kept_statement in statements:
        renamed = cast(cst.CSTNode, kept_statement.visit(transformer)) if renames else kept_statement
        body.append(module.code_for_node(renamed).strip())


def _keep_tests(statement: cst.BaseStatement, keep: set[str] | None) -> cst.BaseStatement | None:
    if keep is None:
        return statement
    if isinstance(statement, cst.FunctionDef) and statement.name.value.startswith("test"):
        return statement if statement.name.value in keep else None
    if isinstance(statement, cst.ClassDef) and statement.name.value.startswith("Test"):
        prefix = statement.name.value + "::"
        wanted = {name[len(prefix):] for name in keep if name.startswith(prefix)}
        if not wanted:
            return None
        members = [
            member for member in statement.body.body
            if not (isinstance(member, cst.FunctionDef) and member.name.value.startswith("test") and member.name.value not in wanted)
        ]
        return statement.with_changes(body=statement.body.with_changes(body=members))
    return statement


def _is_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _defined_name(statement: cst.BaseStatement) -> str | None:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return statement.name.value
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, (cst.Assign, cst.AnnAssign)):
            target = small.targets[0].target if isinstance(small, cst.Assign) else small.target
            if isinstance(target, cst.Name):
                return target.value
    return None


def _fresh_name(name: str, used: Mapping[str, str]) -> str:
    number = 2
    while f"{name}_{number}" in used:
        number += 1
    return f"{name}_{number}"


class _Renamer(cst.CSTTransformer):
    def __init__(self, renames: Mapping[str, str]) -> None:
        super().__init__()
        self.renames = renames

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        fresh = self.renames.get(original_node.value)
        return updated_node.with_changes(value=fresh) if fresh else updated_node


def _lines(lines: Sequence[int]) -> str:
    if not lines:
        return "branches only"
    shown = ", ".join(map(str, lines[:8]))
    return f"lines {shown}{' …' if len(lines) > 8 else ''}"
