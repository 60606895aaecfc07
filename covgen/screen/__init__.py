"""Static screen: decide, before it ever runs, whether a candidate test may run at all.

Candidates are code from a model that may be hostile. The default screen is an allowlist
(:mod:`covgen.screen.strict`, rules in :mod:`covgen.screen.policy`): a test may import the
project's own modules, pytest's assertion helpers and a list of pure standard-library modules,
write files only below ``tmp_path``, and touch no interpreter internals; anything else is
``UNSAFE`` with the rule that refused it. ``--screen permissive`` keeps covgen's earlier
denylist instead. Either way the sandbox limits what running code can touch, and a test that
changes a project file is ``UNSAFE`` at run time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from covgen.screen.permissive import permissive_reason
from covgen.screen.strict import strict_reason

__all__ = ["Screen", "ScreenMode", "SCREEN_MODES", "unsafe_reason", "project_modules"]

ScreenMode = Literal["strict", "permissive"]
SCREEN_MODES: tuple[ScreenMode, ...] = ("strict", "permissive")


def unsafe_reason(source: str, project_modules: frozenset[str] = frozenset(), *, mode: ScreenMode = "strict") -> str | None:
    """Say why `source` must not run, or None; `project_modules` are the project's top-level import names."""
    if mode == "permissive":
        return permissive_reason(source)
    return strict_reason(source, project_modules)


@dataclass(frozen=True, slots=True)
class Screen:
    """A screen bound to one project: its mode and the top-level names the project's modules import by."""

    mode: ScreenMode = "strict"
    project_modules: frozenset[str] = frozenset()

    def reason(self, source: str) -> str | None:
        return unsafe_reason(source, self.project_modules, mode=self.mode)


def project_modules(root: Path, extra: Iterable[str] = ()) -> frozenset[str]:
    """Top-level import names of the project at `root`: packages and modules in the root and ``src/``.

    `extra` adds dotted module names known to be the project's (the targets), by their first part.
    """
    names = {name.split(".")[0] for name in extra}
    for base in (root, root / "src"):
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            stem = entry.name.removesuffix(".py")
            if not stem.isidentifier():
                continue
            if entry.is_file() and entry.name.endswith(".py"):
                names.add(stem)
            elif entry.is_dir() and (Path(entry.path) / "__init__.py").is_file():
                names.add(entry.name)
    return frozenset(names)
