"""The embedded default: a model-free engine that explores a method and writes regression tests.

For each gap it runs ``explore_probe.py`` in the sandbox with the project's interpreter: the
probe searches inputs (see its docstring), keeps those that reach new target lines or branches,
minimizes them and records what each did. A second process, with another hash seed, replays
every kept case; only outcomes that match are written, as one pytest test per behaviour that
asserts on values: the returned value, the public state of what came back or of the receiver, or
an exception the project's own code raised. The tests then go through the same funnel as
model-written ones. The budget per gap is seconds, or a number of calls (``--explore-attempts``),
which makes the result independent of the machine's speed.

Other languages plug in as another :class:`Explorer` (the Java one will drive a generated probe
class under the same limits and render JUnit 5).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from covgen import defaults
from covgen.engines import Proposal, Target
from covgen.languages import packs
from covgen.errors import SandboxError
from covgen.sandbox import SandboxPolicy, Workspace
from covgen.screen import Screen, ScreenMode, project_modules

__all__ = ["ExploreEngine", "Explorer", "PythonExplorer", "render_pytest"]

_PROBE = Path(__file__).with_name("explore_probe.py")
_BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)}


class Explorer(Protocol):
    """Language-specific exploration: run a target in the sandbox, return observed cases as tests."""

    async def explore(self, target: Target, workspace: Workspace, seconds: float) -> tuple[str | None, str]:
        """Return (test module source or None, a note for the summary)."""


#: Wall-clock ceiling for a probe bounded by calls rather than seconds (a safety net, not a budget).
_ATTEMPTS_WALL = 600.0


class PythonExplorer:
    def __init__(self, python: str, policy: SandboxPolicy, seed: int = 0, screen: ScreenMode = "strict",
                 max_attempts: int | None = None) -> None:
        self.python = python
        self.policy = policy
        self.seed = seed
        self.screen = screen
        self.max_attempts = max_attempts

    async def explore(self, target: Target, workspace: Workspace, seconds: float) -> tuple[str | None, str]:
        gap = target.gap
        lines = target.source.splitlines()
        source = "\n".join(lines[gap.start_line - 1 : gap.end_line])
        # Constants in the functions it calls unlock its branches too (a parser's keywords).
        called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", source))
        for unit in target.units:
            if unit.name in called and unit.qualname != gap.qualname:
                source += "\n" + "\n".join(lines[unit.start_line - 1 : unit.end_line])
        request = {
            "mode": "explore", "module": target.module, "qualname": gap.qualname, "start": gap.start_line, "end": gap.end_line,
            "lines": list(gap.uncovered_lines), "arcs": [list(arc) for arc in gap.missing_arcs], "seconds": seconds,
            "seed": self.seed, "source": source, "paths": _import_paths(workspace), "max_attempts": self.max_attempts,
        }
        wall = _ATTEMPTS_WALL if self.max_attempts else seconds + 30
        result = await self._probe(workspace, request, wall, hash_seed="0")
        cases = result.get("cases", [])
        note = str(result.get("note") or result.get("error") or "no input reached new lines")
        if not cases:
            return None, note
        # Replay in a fresh process with another hash seed: set order, ids, time and randomness
        # all show up as a different outcome.
        confirmation = await self._probe(workspace, {"mode": "confirm", "cases": cases, "paths": _import_paths(workspace)}, 60, hash_seed="4242")
        outcomes = confirmation.get("outcomes", [])
        stable = [case for case, again in zip(cases, outcomes) if again == case["outcome"]]
        dropped = len(cases) - len(stable)
        if dropped:
            note += f"; {dropped} outcome(s) differed in a second process (time, randomness, ids, hash order), dropped"
        # A case whose check needs a name the screen refuses (a third-party type, say) would make
        # the whole module UNSAFE: check it without that name, or leave it out.
        screen = Screen(self.screen, project_modules(workspace.path, [target.module]))
        if stable and screen.reason(render_pytest(target, stable)) is not None:
            writable = []
            for case in stable:
                for version in (case, _without_import(case)):
                    if version is not None and screen.reason(render_pytest(target, [version])) is None:
                        writable.append(version)
                        break
            note += f", {len(stable) - len(writable)} left out (the screen refuses a name they need)"
            stable = writable
        if not stable:
            return None, note
        return render_pytest(target, stable), note

    async def _probe(self, workspace: Workspace, request: dict[str, Any], wall: float, hash_seed: str) -> dict[str, Any]:
        state = workspace.scratch("explore")
        probe_copy = state / _PROBE.name
        if not probe_copy.exists():  # the sandbox sees the workspace, not covgen's installation
            shutil.copy(_PROBE, probe_copy)
        stamp = f"{os.getpid()}-{time.monotonic_ns()}"
        request_file, result_file = state / f"request-{stamp}.json", state / f"result-{stamp}.json"
        request_file.write_text(json.dumps(request), encoding="utf-8")
        process = await workspace.run(
            self.python, [str(probe_copy), str(request_file), str(result_file)], env={"PYTHONHASHSEED": hash_seed},
            policy=replace(self.policy, wall_seconds=wall),
        )
        try:
            result = dict(json.loads(result_file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            tail = (process.stderr.strip().splitlines() or ["no output"])[-1]
            return {"cases": [], "outcomes": [], "error": f"the probe failed: {tail}" if not process.timed_out else "the probe timed out"}
        escaped = [folder for folder in result.get("folders", ()) if workspace.in_users_tree(str(folder), self.python)]
        if escaped:
            raise SandboxError(
                f"modules were imported from your tree ({escaped[0]}) instead of the sandbox copy — an editable install or a "
                "sys.path edit points there; exploring would run code that can change your files, so covgen stopped"
            )
        return result


class ExploreEngine:
    """Engine over an :class:`Explorer` per language, sharing one sandbox workspace."""

    name = "explore"

    def __init__(
        self, root: Path, *, python: str, seconds_per_gap: float = defaults.EXPLORE_SECONDS, policy: SandboxPolicy = SandboxPolicy(),
        seed: int = 0, screen: ScreenMode = "strict", attempts_per_gap: int | None = None,
    ) -> None:
        self.root = root
        self.seconds_per_gap = seconds_per_gap
        self.attempts_per_gap = attempts_per_gap
        found = {pack.name: pack.explorer(python, policy, seed=seed, screen=screen, max_attempts=attempts_per_gap)
                 for pack in packs() if not pack.not_yet}
        self.explorers: dict[str, Explorer] = {name: explorer for name, explorer in found.items() if explorer is not None}
        self._workspace: Workspace | None = None
        # Exploration is CPU-bound: one probe per core.
        self._slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))

    def describe(self) -> str:
        if self.attempts_per_gap:
            return f"model-free exploration, {self.attempts_per_gap} calls per gap"
        return f"model-free exploration, {self.seconds_per_gap:g} s per gap"

    async def propose(self, target: Target) -> Proposal:
        explorer = self.explorers.get(target.language)
        if explorer is None:
            return Proposal(sources=(), notes=(f"{target.gap.id}: the model-free engine writes {', '.join(sorted(self.explorers))} "
                                               f"tests only; {target.language} gaps need a model server (--model-url)",))
        if self._workspace is None:
            self._workspace = Workspace(self.root)
        started = time.monotonic()
        async with self._slots:
            source, note = await explorer.explore(target, self._workspace, self.seconds_per_gap)
        return Proposal(sources=(source,) if source else (), seconds=time.monotonic() - started, notes=(f"{target.gap.id}: {note}",))

    async def repair(self, target: Target, previous: Proposal, answer_index: int, feedback: str) -> Proposal:
        return Proposal(sources=())  # exploration observes; there is nothing to argue with

    async def aclose(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None


def _without_import(case: dict[str, Any]) -> dict[str, Any] | None:
    """The same case checked without importing its outcome's type: by name, or as any Exception."""
    outcome = case["outcome"]
    if outcome["kind"] == "type":
        return {**case, "outcome": {"kind": "type_name", "type": outcome["type"].rsplit(".", 1)[-1], "module": outcome["module"]}}
    if outcome["kind"] == "raise" and outcome["type"] not in _BUILTIN_EXCEPTIONS:
        return {**case, "outcome": {**outcome, "type": "Exception", "module": "builtins"}}
    return None


def _import_paths(workspace: Workspace) -> list[str]:
    return [str(workspace.path / p) for p in (".", "src") if (workspace.path / p).is_dir()]


def render_pytest(target: Target, cases: list[dict[str, Any]]) -> str:
    """One readable test per observed behaviour, asserting on what the probe saw."""
    imports = {"import pytest"}
    tests: list[str] = []
    used: set[str] = set()
    function = target.gap.qualname.rsplit(".", 1)[-1].strip("_") or "call"
    owner = target.gap.qualname.rsplit(".", 1)[0] if "." in target.gap.qualname else ""
    prefix = _snake(f"{owner}_{function}" if owner else function)
    for case in cases:
        imports.update(case["imports"])
        outcome = case["outcome"]
        body = [*case["setup"]]
        action = case["code"] if case.get("code") is not None else case["statement"]
        if outcome["kind"] == "raise":
            body.append(f"with {_raises(outcome, imports)}:")
            body.append(f"    {action}")
            name = f"raises_{_snake(outcome['type'].rsplit('.', 1)[-1])}"
        else:
            imports.update(outcome["imports"])
            checks = outcome["checks"]
            uses_result = case.get("code") is not None and any(_mentions_result(check[0]) for check in checks)
            line = f"result = {action}" if uses_result else action
            warns = outcome.get("warns") or []
            if warns:
                body.append(f"with pytest.warns({_warning(warns[0], imports)}):")
                line = f"    {line}"
            body.append(line)
            body.extend(_assertion(check) for check in checks)
            name = _name(checks)
        test_name = f"test_{prefix}_{name}"[:70].rstrip("_")
        unique, number = test_name, 2
        while unique in used:
            unique, number = f"{test_name}_{number}", number + 1
        used.add(unique)
        tests.append(f"def {unique}():\n" + "\n".join(f"    {line}" for line in body))
    # A receiver's class or a callee the cases imported but no test names any more (minimized away).
    needed = [i for i in imports if not i.startswith("from ") or re.search(rf"\b{re.escape(i.rsplit(' ', 1)[-1])}\b", "\n".join(tests))]
    ordered = sorted(i for i in needed if i.startswith("import ")) + sorted(i for i in needed if i.startswith("from "))
    return "\n".join(ordered) + "\n\n\n" + "\n\n\n".join(tests) + "\n"


def _raises(outcome: dict[str, Any], imports: set[str]) -> str:
    exception = outcome["type"]  # a nested class is named through its outer one
    if exception not in _BUILTIN_EXCEPTIONS:
        if outcome["module"].startswith("_") or "<" in exception:
            exception = "Exception"
        else:
            imports.add(f"from {outcome['module']} import {exception.split('.')[0]}")
    # Only words the project's own code wrote: CPython's wording changes between versions.
    if not outcome.get("match"):
        return f"pytest.raises({exception})"
    imports.add("import re")
    return f"pytest.raises({exception}, match=re.escape({outcome['match']!r}))"


def _warning(qualified: str, imports: set[str]) -> str:
    module, name = qualified.split(":", 1)
    if module == "builtins":
        return name
    imports.add(f"from {module} import {name.split('.')[0]}")
    return name


def _mentions_result(expression: str) -> bool:
    return re.search(r"\bresult\b", expression) is not None


def _assertion(check: list[str]) -> str:
    """`assert` for one observed value: exact, approximate (floats), or the type when nothing else shows."""
    expression, operator, code = check[0], check[1], check[2]
    if operator == "approx":
        return f"assert {expression} == pytest.approx({code})"
    if operator == "isinstance":
        return f"assert isinstance({expression}, {code})"
    if operator == "typename":
        return f"assert type({expression}).__name__ == {code!r}"
    return f"assert {expression} {operator} {code}"


def _name(checks: list[list[str]]) -> str:
    """The test name's ending, from its first check."""
    if not checks:
        return "runs"
    expression, operator, code = checks[0][0], checks[0][1], checks[0][2]
    if expression == "result":
        if operator in ("isinstance", "typename"):
            return f"returns_{_snake(code.rsplit('.', 1)[-1])}"
        return f"returns_{code.lower() if operator == 'is' else _slug(code)}"
    if expression.startswith("len("):
        expression = expression[4:-1]
        if expression == "result":
            return f"returns_{code}_items"
    if expression.startswith("repr("):
        return f"returns_{_slug(code.strip(chr(39) + chr(34)))}"
    attribute = expression.rsplit(".", 1)[-1]
    return f"{'sets' if expression.startswith('result.') else 'changes'}_{_snake(attribute)}"


def _snake(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).replace(".", "_")).lower().strip("_")


_EMPTY = {"[]": "empty_list", "{}": "empty_dict", "()": "empty_tuple", "''": "empty_string", '""': "empty_string", "set()": "empty_set"}


def _slug(code: str) -> str:
    if code in _EMPTY:
        return _EMPTY[code]
    slug = re.sub(r"[^a-z0-9]+", "_", code.lower()).strip("_")
    return (slug or "value")[:24].rstrip("_") or "value"
