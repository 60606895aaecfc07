"""What covgen needs to know about the project around a gap: its tests, fixtures and import names."""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from covgen import defaults

__all__ = ["ProjectFacts"]

_SKIP = frozenset({".git", ".venv", "venv", ".tox", "node_modules", "__pycache__", ".covgen", "build", "dist", ".pytest_cache"})


@dataclass(frozen=True, slots=True)
class Fixture:
    name: str
    signature: str
    path: str


class ProjectFacts:
    """Test files and conftest fixtures under one root, read once per run."""

    def __init__(self, root: Path, covgen_test_dir: str = defaults.TEST_DIR) -> None:
        self.root = root
        self.covgen_test_dir = covgen_test_dir.rstrip("/") + "/"
        #: The test libraries on the project's test classpath (Java: AssertJ, Mockito …), known
        #: once its build is resolved; prompts name only these.
        self.test_libraries: tuple[str, ...] = ()

    @functools.cached_property
    def test_files(self) -> dict[str, str]:
        """Root-relative path → text of every pytest test module (covgen's own excluded)."""
        found: dict[str, str] = {}
        for directory, subdirs, names in os.walk(self.root):
            subdirs[:] = sorted(d for d in subdirs if d not in _SKIP and not d.startswith("."))
            for name in sorted(names):
                if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                    path = Path(directory) / name
                    relative = path.relative_to(self.root).as_posix()
                    # A symlink may lead out of the project; its text would go into prompts.
                    if relative.startswith(self.covgen_test_dir) or path.is_symlink():
                        continue
                    try:
                        found[relative] = path.read_text(encoding="utf-8", errors="replace")
                    except OSError:
                        continue
        return found

    def tests_of(self, module: str) -> list[str]:
        """Test files that import `module` (``import a.b``, ``from a.b import x``, ``from a import b``)."""
        package, _, last = module.rpartition(".")
        needles = [f"import {module}", f"from {module} import"] + ([f"from {package} import {last}"] if package else [])
        return [path for path, text in self.test_files.items() if any(needle in text for needle in needles)]

    @functools.cached_property
    def fixtures(self) -> list[Fixture]:
        """``@pytest.fixture`` functions of every conftest.py, which generated tests may use."""
        found = []
        for path in self._conftests():
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
                ):
                    found.append(Fixture(node.name, f"def {node.name}({ast.unparse(node.args)})", path.relative_to(self.root).as_posix()))
        return found

    def _conftests(self) -> list[Path]:
        # os.walk, unlike Path.rglob before Python 3.13, never follows a symlinked directory out
        # of the project; symlinked files are skipped for the same reason.
        found = []
        for directory, subdirs, names in os.walk(self.root):
            subdirs[:] = sorted(d for d in subdirs if d not in _SKIP and not d.startswith("."))
            path = Path(directory) / "conftest.py"
            if "conftest.py" in names and not path.is_symlink():
                found.append(path)
        return sorted(found)
