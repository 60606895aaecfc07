"""The sandbox's probe tells which project files a test changed — by inotify, or by a scan."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from covgen.runners import covgen_probe


def project(root: Path) -> Path:
    for relative in ("pkg/__init__.py", "pkg/core.py", "pkg/data/table.csv", "tests/test_core.py", ".git/HEAD"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("original\n")
    return root


def act_like_a_test(root: Path) -> None:
    (root / "pkg/core.py").write_text("edited\n")                 # changed in place
    (root / "pkg/data/table.csv").unlink()                       # deleted
    (root / "pkg/new").mkdir()
    (root / "pkg/new/made.txt").write_text("new\n")               # created inside a new folder
    (root / "pkg/__pycache__").mkdir()
    (root / "pkg/__pycache__/core.cpython-311.pyc").write_bytes(b"\0")  # a cache: not the project's
    (root / ".coverage.host.123").write_text("")                 # coverage's own data
    (root / ".git/HEAD").write_text("moved\n")                   # hidden folder: not watched


WATCHERS = [pytest.param(covgen_probe._TreeScan, id="scan"), pytest.param(covgen_probe._Inotify, id="inotify")]


@pytest.mark.parametrize("watcher_type", WATCHERS)
def test_a_watcher_names_exactly_the_project_files_a_test_changed(tmp_path: Path, watcher_type) -> None:
    root = project(tmp_path / "project")
    watcher = watcher_type(str(root))
    assert watcher.changed() == []
    act_like_a_test(root)
    changed = set(watcher.changed())
    assert {"pkg/core.py", "pkg/data/table.csv", "pkg/new/made.txt"} <= changed
    assert not {p for p in changed if "__pycache__" in p or ".coverage" in p or p.startswith(".git")}
    # The next test starts clean, and what it does inside the new folder is seen too.
    assert watcher.changed() == []
    (root / "pkg/new/made.txt").write_text("again\n")
    assert watcher.changed() == ["pkg/new/made.txt"]


def test_inotify_is_used_on_linux_and_costs_one_read_per_test(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for d in range(100):
        folder = root / f"pkg{d}"
        folder.mkdir(parents=True)
        for f in range(20):
            (folder / f"m{f}.py").write_text("x = 1\n")
    watcher = covgen_probe._open_watcher(str(root))
    assert isinstance(watcher, covgen_probe._Inotify)
    (root / "pkg42/m7.py").write_text("x = 2\n")
    assert watcher.changed() == ["pkg42/m7.py"]
    shutil.rmtree(root / "pkg3")
    assert "pkg3" in watcher.changed()


def test_without_inotify_the_scan_takes_over(tmp_path: Path, monkeypatch) -> None:
    root = project(tmp_path / "project")

    def refuse(self, root: str) -> None:
        raise OSError(28, "no space left for watches")

    monkeypatch.setattr(covgen_probe._Inotify, "__init__", refuse)
    watcher = covgen_probe._open_watcher(str(root))
    assert isinstance(watcher, covgen_probe._TreeScan)
    os.utime(root / "pkg/core.py", ns=(1, 1))
    assert watcher.changed() == ["pkg/core.py"]
