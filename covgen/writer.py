"""Place accepted tests in the repo: one covgen-owned file per target module, never anyone else's.

Tests are placed with libcst, not pasted: imports are merged, helpers and fixtures shared by
several candidates are kept once, and a test the file already holds — accepted for another gap
of this run, or written by an earlier run — is not written again. Names that clash are renamed
inside their own candidate before it joins the file: the definition and the references that
really resolve to it (libcst's scope analysis), never an attribute, a keyword argument or a
local that shadows it. Only the accepted tests of a candidate are kept. Files are written
atomically (a temporary file renamed over the target), so a crash never leaves half a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst
from libcst.metadata import Assignment, MetadataWrapper, ScopeProvider

from covgen import defaults
from covgen.errors import CovgenError
from covgen.output import write_atomically
from covgen.model import Candidate, Gap, TestVerdict, Verdict

__all__ = [
    "AcceptedTest", "JAVA_MARKER", "MARKER", "Rendered", "covgen_files", "module_name", "owned_by_covgen", "render_files", "test_path_for",
    "write_files",
]

#: First line of every file covgen writes; covgen only ever changes files that start with it.
MARKER = "# covgen: generated tests"
#: The same marker in a Java file (covgen.languages.java_writer).
JAVA_MARKER = "// covgen: generated tests"
_EXPLANATION = "# Each test below passed repeatedly in a sandbox and reached lines no other test reached:"
#: Header lines naming a target and what it gained start with this.
_TARGET = "#   "


@dataclass(frozen=True, slots=True)
class AcceptedTest:
    verdict: TestVerdict
    candidate: Candidate
    gap: Gap


#: (candidate id, test name in the candidate) — how a verdict names its test.
TestKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The test files to write, and where each accepted test is in them."""

    #: Root-relative path → new text, for the files this run adds at least one test to.
    contents: dict[str, str]
    #: Each accepted test → its node id in its file. The same test accepted for two gaps (a
    #: test of ``titleize`` also covers ``humanize``) is written once: both keys share one id.
    node_ids: dict[TestKey, str]
    #: The accepted tests their file already held before this run → that file.
    already_written: dict[TestKey, str]

    @property
    def tests_added(self) -> int:
        """How many test functions this run adds: each once, however many gaps or parameter cases it covers."""
        return len({_function_id(n) for key, n in self.node_ids.items() if key not in self.already_written})

    def mark_already_written(self, verdicts: Sequence[TestVerdict]) -> list[TestVerdict]:
        """Accepted tests their file already held become REDUNDANT: writing them again adds nothing."""
        return [
            replace(v, verdict=Verdict.REDUNDANT, message=f"already in {self.already_written[(v.candidate_id, v.test_name)]}")
            if v.verdict is Verdict.ACCEPTED and (v.candidate_id, v.test_name) in self.already_written else v
            for v in verdicts
        ]


def module_name(path: str, import_roots: Sequence[str] = ("src",)) -> str:
    """``src/pkg/mod.py`` → ``pkg.mod`` (the name tests import it by)."""
    relative = path
    for root in import_roots:
        if relative.startswith(root.rstrip("/") + "/"):
            relative = relative[len(root.rstrip("/")) + 1 :]
            break
    module = relative.removesuffix(".py").replace("/", ".")
    return module.removesuffix(".__init__")


def test_path_for(gap_path: str, test_dir: str = defaults.TEST_DIR) -> str:
    return f"{test_dir.rstrip('/')}/test_{module_name(gap_path).replace('.', '_')}_covgen.py"


def owned_by_covgen(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as stream:
            return stream.readline().startswith((MARKER, JAVA_MARKER))
    except (OSError, UnicodeDecodeError):
        return False


def covgen_files(root: Path, test_dir: str = defaults.TEST_DIR) -> list[str]:
    """Root-relative paths of the test files covgen wrote under `test_dir` on earlier runs."""
    directory = root / test_dir
    if not directory.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in directory.glob("test_*.py") if owned_by_covgen(p))


def render_files(
    accepted: Sequence[AcceptedTest],
    root: Path,
    *,
    test_dir: str = defaults.TEST_DIR,
    provenance: str = "",
) -> Rendered:
    """Build the text of every test file to write, merged with covgen files already there."""
    by_file: dict[str, list[AcceptedTest]] = {}
    for test in accepted:
        by_file.setdefault(test_path_for(test.gap.path, test_dir), []).append(test)
    contents: dict[str, str] = {}
    node_ids: dict[TestKey, str] = {}
    already: dict[TestKey, str] = {}
    for relative, tests in sorted(by_file.items()):
        file = _File(relative)
        if owned_by_covgen(root / relative):
            file.absorb_earlier((root / relative).read_text(encoding="utf-8"))
        by_candidate: dict[str, list[AcceptedTest]] = {}
        for test in tests:
            by_candidate.setdefault(test.candidate.id, []).append(test)
        new: list[tuple[AcceptedTest, str]] = []
        for group in by_candidate.values():
            landed = file.add(group[0].candidate.source, {t.verdict.test_name for t in group})
            for test in group:
                key = (test.candidate.id, test.verdict.test_name)
                if test.verdict.test_name not in landed:
                    continue  # not found at the top of its module: the confirming run reports it as not run
                node_ids[key] = landed[test.verdict.test_name]
                if _function_id(node_ids[key]) in file.earlier:
                    already[key] = relative
                else:
                    new.append((test, node_ids[key]))
        if new:
            contents[relative] = file.text(new[0][0].gap.path, _gains(new), provenance)
    return Rendered(contents, node_ids, already)


def write_files(root: Path, contents: Mapping[str, str]) -> list[str]:
    """Write `contents` (root-relative path → text) atomically; refuse files covgen did not write."""
    for relative in contents:
        target = root / relative
        if target.exists() and not owned_by_covgen(target):
            raise CovgenError(f"{relative} exists and was not written by covgen; not touching it", slug="not-ours")
    written = []
    for relative, text in contents.items():
        write_atomically(root / relative, text)
        written.append(relative)
    return written


def _gains(tests: Sequence[tuple[AcceptedTest, str]]) -> list[str]:
    """One header line per gap: what the tests written now (test, node id) gained."""
    by_gap: dict[str, list[tuple[AcceptedTest, str]]] = {}
    for test, nodeid in tests:
        by_gap.setdefault(test.gap.qualname, []).append((test, nodeid))
    lines = []
    for qualname, gap_tests in by_gap.items():
        gained = sorted({line for t, _ in gap_tests for line in t.verdict.gained_lines})
        arcs = {arc for t, _ in gap_tests for arc in t.verdict.gained_arcs}
        branches = f", {len(arcs)} branches" if arcs else ""
        written = len({nodeid for _, nodeid in gap_tests})  # the same test twice is one test
        count = f" by {written} tests" if written > 1 else ""
        lines.append(f"{_TARGET}{qualname}: +{len(gained)} lines{branches}{count} ({_lines(gained)})")
    return lines


class _File:
    """One covgen test file being assembled: its header, imports and top-level statements."""

    def __init__(self, relative: str) -> None:
        self.relative = relative
        self.targets: list[str] = []
        self.provenance: list[str] = []
        self.imports: list[str] = []
        self.body: list[str] = []
        #: Module-level name → the code defining it (leading comments left out).
        self.defined: dict[str, str] = {}
        #: Names the file's imports bind: a definition of one of them must be renamed too.
        self.imported: set[str] = set()
        #: A test's code with its own name left out → the name it has in the file.
        self.tests: dict[str, str] = {}
        #: Node ids of the test functions the file held before this run.
        self.earlier: set[str] = set()

    def absorb_earlier(self, text: str) -> None:
        """Take in a file an earlier run wrote, as it is: its header lines and every statement."""
        for line in text.splitlines()[1:]:
            if not line.startswith("#"):
                break
            if line.startswith(_TARGET):
                self.targets.append(line.rstrip())
            elif line.rstrip() != _EXPLANATION:
                self.provenance.append(line.rstrip())
        module = cst.parse_module(text)
        for statement in module.body:
            if _is_import(statement):
                self._add_import(module, statement)
                continue
            self._append(module, statement)
            name = _defined_name(statement)
            if name is not None and _is_test(statement):
                self.earlier.update(f"{self.relative}::{name}{rest}" for rest in _test_suffixes(statement))

    def add(self, source: str, keep: set[str]) -> dict[str, str]:
        """Merge a candidate's imports, helpers and kept tests; return each kept test's node id."""
        module = cst.parse_module(source)
        kept = [s for s in (s if _is_import(s) else _keep_tests(s, keep) for s in module.body) if s is not None]
        module = module.with_changes(body=kept)
        renamed = _rename(module, self._renames(module))
        landed: dict[str, str] = {}
        for original, statement in zip(module.body, renamed.body):
            if _is_import(statement):
                self._add_import(renamed, statement)
                continue
            name = _defined_name(statement)
            if _is_test(statement) and _test_key(statement) in self.tests:
                name = self.tests[_test_key(statement)]  # the same test is there already: point at it
            elif name is not None and self.defined.get(name) == _code(statement):
                pass  # the same helper or fixture twice: keep one
            elif name is None and renamed.code_for_node(statement).strip() in self.body:
                continue
            else:
                self._append(renamed, statement)
            first = _defined_name(original)
            if first is None or name is None:
                continue
            for test in keep:
                if _top_name(test) == first:
                    landed[test] = f"{self.relative}::{name}{test[len(first):]}"
        return landed

    def text(self, target_path: str, gains: Sequence[str], provenance: str) -> str:
        header = [
            f"{MARKER} for {target_path}. Keep this line: covgen only adds to files that start with it.",
            _EXPLANATION,
            *dict.fromkeys([*self.targets, *gains]),
            *dict.fromkeys([*self.provenance, *([f"# {provenance}"] if provenance else [])]),
        ]
        return "\n".join(header) + "\n" + "\n".join(_ordered_imports(self.imports)) + "\n\n\n" + "\n\n\n".join(self.body) + "\n"

    def _renames(self, module: cst.Module) -> dict[str, str]:
        """Which of the candidate's definitions clash with the file's, and their fresh names.

        Renaming one definition changes the code of those using it, which may then clash in
        turn (a helper calling a renamed helper is no longer the file's helper): repeat until
        nothing more clashes.
        """
        taken = set(self.defined) | self.imported | _all_names(module)
        renames: dict[str, str] = {}
        while True:
            current = _rename(module, renames)
            fresh: dict[str, str] = {}
            for original, statement in zip(module.body, current.body):
                name = _defined_name(original)
                if name is None or name in renames or (name not in self.defined and name not in self.imported):
                    continue
                if _is_test(statement) and _test_key(statement) in self.tests:
                    continue
                if self.defined.get(name) == _code(statement):
                    continue
                fresh[name] = _fresh_name(name, taken)
                taken.add(fresh[name])
            if not fresh:
                return renames
            renames.update(fresh)

    def _add_import(self, module: cst.Module, statement: cst.BaseStatement) -> None:
        code = module.code_for_node(statement).strip()
        if code not in self.imports:
            self.imports.append(code)
        assert isinstance(statement, cst.SimpleStatementLine)  # _is_import said so
        for small in statement.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    if isinstance(bound, cst.Name):
                        self.imported.add(bound.value)
                    elif isinstance(bound, cst.Attribute):  # ``import a.b`` binds ``a``
                        self.imported.add(cst.Module([]).code_for_node(bound).split(".")[0])

    def _append(self, module: cst.Module, statement: cst.BaseStatement) -> None:
        self.body.append(module.code_for_node(statement).strip())
        name = _defined_name(statement)
        if name is None:
            return
        self.defined[name] = _code(statement)
        if _is_test(statement):
            self.tests.setdefault(_test_key(statement), name)


def _keep_tests(statement: cst.BaseStatement, keep: set[str]) -> cst.BaseStatement | None:
    """`statement` with only the kept tests (helpers stay); None when nothing of it is kept."""
    wanted_top = {_top_name(name) for name in keep}
    if isinstance(statement, cst.FunctionDef) and statement.name.value.startswith("test"):
        return statement if statement.name.value in wanted_top else None
    if isinstance(statement, cst.ClassDef) and statement.name.value.startswith("Test"):
        prefix = statement.name.value + "::"
        wanted = {_top_name(name[len(prefix):]) for name in keep if name.startswith(prefix)}
        if not wanted:
            return None
        members = [
            member for member in statement.body.body
            if not (isinstance(member, cst.FunctionDef) and member.name.value.startswith("test") and member.name.value not in wanted)
        ]
        return statement.with_changes(body=statement.body.with_changes(body=members))
    return statement


def _function_id(nodeid: str) -> str:
    """``f.py::test_c[1-2]`` (a parametrized case) → ``f.py::test_c``, the function that holds it."""
    return nodeid.split("[", 1)[0]


def _top_name(test: str) -> str:
    """``TestA::test_b`` → ``TestA``; ``test_c[1-2]`` (a parametrized case) → ``test_c``."""
    return test.split("::")[0].split("[")[0]


def _test_suffixes(statement: cst.BaseStatement) -> list[str]:
    """What follows the top-level name in the node ids of a test statement's tests."""
    if isinstance(statement, cst.ClassDef):
        return [f"::{m.name.value}" for m in statement.body.body if isinstance(m, cst.FunctionDef) and m.name.value.startswith("test")]
    return [""]


def _is_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _is_test(statement: cst.BaseStatement) -> bool:
    return (isinstance(statement, cst.FunctionDef) and statement.name.value.startswith("test")) or (
        isinstance(statement, cst.ClassDef) and statement.name.value.startswith("Test")
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


def _code(statement: cst.BaseStatement) -> str:
    """A statement's code without the comments and blank lines before it, for comparing."""
    return cst.Module([]).code_for_node(statement.with_changes(leading_lines=())).strip()


def _test_key(statement: cst.BaseStatement) -> str:
    """A test's code with its own name left out: the same test under another name is no new test."""
    assert isinstance(statement, (cst.FunctionDef, cst.ClassDef))
    return _code(statement.with_changes(name=cst.Name("_")))


def _fresh_name(name: str, taken: set[str]) -> str:
    number = 2
    while f"{name}_{number}" in taken:
        number += 1
    return f"{name}_{number}"


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _all_names(module: cst.Module) -> set[str]:
    """Every name the module spells anywhere: a fresh name must not be captured by any of them."""
    visitor = _Names()
    module.visit(visitor)
    return visitor.names


def _rename(module: cst.Module, renames: Mapping[str, str]) -> cst.Module:
    """Rename module-level definitions and exactly the references that resolve to them.

    Attribute names (``obj.label``), keyword arguments (``label=1``) and locals that shadow the
    name are different bindings and stay. A renamed fixture is requested by parameter name, so
    the parameters of tests and fixtures that request it (and their uses) are renamed with it.
    """
    if not renames:
        return module
    wrapper = MetadataWrapper(module)
    scopes = wrapper.resolve(ScopeProvider)
    top = scopes[wrapper.module]
    assert top is not None
    targets: dict[int, str] = {}
    fixtures: dict[str, str] = {}
    for name, fresh in renames.items():
        for assignment in top.assignments[name]:
            if not isinstance(assignment, Assignment):
                continue
            node = assignment.node
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                targets[id(node.name)] = fresh
                if isinstance(node, cst.FunctionDef) and _is_fixture(node):
                    fixtures[name] = fresh
            elif isinstance(node, cst.Name):
                targets[id(node)] = fresh
            targets.update((id(access.node), fresh) for access in assignment.references if isinstance(access.node, cst.Name))
    if fixtures:
        for function in _functions(wrapper.module):
            if not (function.name.value.startswith("test") or _is_fixture(function)):
                continue
            for param in _params(function):
                fresh_param = fixtures.get(param.name.value)
                scope = scopes.get(param)
                if fresh_param is None or scope is None:
                    continue
                targets[id(param.name)] = fresh_param
                for assignment in scope.assignments[param.name.value]:
                    if isinstance(assignment, Assignment) and assignment.node is param:
                        targets.update((id(a.node), fresh_param) for a in assignment.references if isinstance(a.node, cst.Name))
    renamed = wrapper.module.visit(_Renamer(targets))
    assert isinstance(renamed, cst.Module)
    return renamed


class _Renamer(cst.CSTTransformer):
    """Give the Name nodes picked by scope analysis (by identity) their new value."""

    def __init__(self, targets: Mapping[int, str]) -> None:
        super().__init__()
        self.targets = targets

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        fresh = self.targets.get(id(original_node))
        return updated_node.with_changes(value=fresh) if fresh else updated_node


class _Functions(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.found.append(node)


def _functions(module: cst.Module) -> list[cst.FunctionDef]:
    visitor = _Functions()
    module.visit(visitor)
    return visitor.found


def _params(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _is_fixture(function: cst.FunctionDef) -> bool:
    """``@pytest.fixture``, ``@fixture``, ``@pytest.fixture(...)``, ``@pytest_asyncio.fixture``."""
    for decorator in function.decorators:
        expression = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
        if (isinstance(expression, cst.Name) and expression.value == "fixture") or (
            isinstance(expression, cst.Attribute) and expression.attr.value == "fixture"
        ):
            return True
    return False


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


def _lines(lines: Sequence[int]) -> str:
    if not lines:
        return "branches only"
    shown = ", ".join(map(str, lines[:8]))
    return f"lines {shown}{' …' if len(lines) > 8 else ''}"
