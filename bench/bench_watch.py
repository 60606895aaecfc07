"""What it costs per test to know which project files a test changed: inotify vs a tree scan.

    python bench/bench_watch.py

covgen's probe runs inside the sandbox's pytest process and must name the project files each
test changed (such a test is UNSAFE). The baseline is the straightforward way, a scan of
(size, mtime) of every file after each test (covgen's fallback where inotify is missing). The
figure is the cost per test for trees of growing size, with one file changed per "test".
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "covgen" / "runners"))

import covgen_probe  # noqa: E402

TESTS = 200


def make_tree(root: Path, files: int) -> None:
    if root.exists():
        shutil.rmtree(root)
    per_folder = 20
    for index in range(files):
        folder = root / f"pkg{index // (per_folder * 25)}" / f"sub{index // per_folder}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{index % per_folder}.py").write_text("x = 1\n")


def per_test_seconds(watcher_type: type, root: Path, target: Path) -> tuple[float, float]:
    started = time.perf_counter()
    watcher = watcher_type(str(root))
    setup = time.perf_counter() - started
    started = time.perf_counter()
    for number in range(TESTS):
        target.write_text(f"x = {number}\n")
        assert watcher.changed(), "the change was not seen"
    return setup, (time.perf_counter() - started) / TESTS


def main() -> None:
    work = HERE / ".work" / "watch"
    print(f"{TESTS} tests, each changing one file; cost per test to name what it changed")
    print(f"{'files':>7}  {'scan (baseline)':>16}  {'inotify':>10}  {'inotify setup':>14}  ratio")
    for files in (1_000, 10_000, 50_000):
        root = work / f"tree-{files}"
        make_tree(root, files)
        target = root / "pkg0" / "sub0" / "m0.py"
        _, scan = per_test_seconds(covgen_probe._TreeScan, root, target)
        setup, inotify = per_test_seconds(covgen_probe._Inotify, root, target)
        print(f"{files:>7}  {scan * 1000:>13.2f} ms  {inotify * 1000:>7.3f} ms  {setup * 1000:>11.1f} ms  {inotify / scan:.4f}× the scan")


if __name__ == "__main__":
    main()
