"""Map the paths a report spells to repo-relative, ``/``-separated paths under the root."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PathResolver", "Resolved", "language_of"]

_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:/")
#: Folders that never hold the sources a report is about; skipped when indexing Java files.
_SKIP_DIRS = frozenset({".git", "target", "build", "out", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


@dataclass(frozen=True, slots=True)
class Resolved:
    path: str
    exists: bool


def language_of(path: str) -> str:
    if path.endswith((".py", ".pyw")):
        return "python"
    if path.endswith(".java"):
        return "java"
    return "other"


class PathResolver:
    """Resolve report paths against one project root, caching what it learns."""

    def __init__(self, root: Path, source_roots: Sequence[str] = ("src/main/java", "src")) -> None:
        self.root = root.resolve()
        self.source_roots = tuple(source_roots)
        self._java_index: dict[str, str] | None = None
        #: Prefixes stripped from paths of another machine → how many files they matched.
        self.mapped: dict[str, int] = {}

    def resolve(self, raw: str, bases: Iterable[str] = ()) -> Resolved:
        """Find `raw` (absolute, or relative to one of `bases` or to the root) under the root."""
        spelt = raw.replace("\\", "/")
        candidates: list[Path] = []
        if spelt.startswith("/") or _WINDOWS_ABSOLUTE.match(spelt):
            candidates.append(Path(spelt))
        else:
            for base in bases:
                base_path = Path(base.replace("\\", "/"))
                candidates.append(base_path / spelt if base_path.is_absolute() else self.root / base_path / spelt)
            candidates.append(self.root / spelt)
        for candidate in candidates:
            if candidate.is_file():
                return Resolved(self._relative(candidate), True)
        # A report written on another machine (CI in /builds/x, Windows) names files under a
        # root we do not have; its tail usually still names the file in this checkout. A
        # Cobertura <source> from there is part of the path too (`src/` of src/pkg/mod.py).
        spellings = [spelt, *(f"{base.replace(chr(92), '/').rstrip('/')}/{spelt}" for base in bases if not spelt.startswith("/"))]
        for spelling in spellings:
            parts = [part for part in spelling.split("/") if part]
            for start in range(1, len(parts)):
                if ".." in parts[start:]:
                    continue  # a tail that climbs out is not a file of this checkout
                tail = "/".join(parts[start:])
                if (self.root / tail).is_file():
                    prefix = "/" * spelling.startswith("/") + "/".join(parts[:start]) + "/"
                    self.mapped[prefix] = self.mapped.get(prefix, 0) + 1
                    return Resolved(tail, True)
        return Resolved(self._relative(candidates[0]) if candidates else spelt, False)

    def mapping_notes(self) -> list[str]:
        """Say which foreign prefixes were stripped, so a user sees how paths were matched."""
        return [f"report paths under {prefix} ({count} file(s)) were read as paths under the root {self.root}"
                for prefix, count in sorted(self.mapped.items())]

    def resolve_java(self, package: str, source_file: str) -> Resolved:
        """Find JaCoCo's ``package/SourceFile.java`` under the project's source roots."""
        relative = f"{package}/{source_file}" if package else source_file
        for source_root in (*self.source_roots, "."):
            candidate = self.root / source_root / relative
            if candidate.is_file():
                return Resolved(self._relative(candidate), True)
        found = self._index_java().get(relative)
        if found is not None:
            return Resolved(found, True)
        return Resolved(f"{self.source_roots[0]}/{relative}" if self.source_roots else relative, False)

    def _relative(self, path: Path) -> str:
        absolute = Path(os.path.normpath(path if path.is_absolute() else self.root / path))
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return absolute.as_posix()

    def _index_java(self) -> dict[str, str]:
        """Index every ``.java`` file by its package-relative tails, once per run."""
        if self._java_index is None:
            index: dict[str, str] = {}
            for directory, subdirs, files in os.walk(self.root):
                subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
                for name in files:
                    if name.endswith(".java"):
                        relative = (Path(directory) / name).relative_to(self.root).as_posix()
                        parts = relative.split("/")
                        for start in range(len(parts)):
                            index.setdefault("/".join(parts[start:]), relative)
            self._java_index = index
        return self._java_index
