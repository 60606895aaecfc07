"""A Java project as ``covgen run`` meets it: its build, its tools, its own tests.

The pack (:class:`covgen.languages.JavaPack`) asks here for the runner of a run: the build is
resolved (:mod:`covgen.languages.java_build`: ``--classpath``, Maven, Gradle, or the sources
compiled), the toolchain found and checked, and a :class:`~covgen.runners.java_tests.JavaTestRunner`
made over both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covgen.pipeline import RunOptions
    from covgen.runners.java_tests import JavaTestRunner
    from covgen.sandbox import SandboxLayers, Workspace

__all__ = ["existing_java_tests", "java_runner"]

_SKIP = {".git", ".hg", ".svn", "target", "build", "out", "node_modules", ".gradle", ".idea"}


def existing_java_tests(root: Path, module: str) -> list[str]:
    """The user's test classes of `module` (``com.acme.Money``), by the conventions of Maven,
    Gradle and Surefire: ``MoneyTest``, ``MoneyTests``, ``TestMoney``, ``MoneyIT`` in the same
    package under a ``src/test/java``-like folder. covgen's own ``*CovgenTest`` are not the user's."""
    package, _, simple = module.rpartition(".")
    names = {f"{simple}Test.java", f"{simple}Tests.java", f"Test{simple}.java", f"{simple}IT.java"}
    package_path = package.replace(".", "/")
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP and not d.startswith("."))
        for name in sorted(names.intersection(files)):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if "/test/" in f"/{relative}" and relative.rsplit("/", 1)[0].endswith(package_path) and not path.is_symlink():
                found.append(relative)
    return found


def java_runner(workspace: Workspace, options: RunOptions, layers: SandboxLayers | None) -> JavaTestRunner:
    from covgen.languages.java_build import resolve_build
    from covgen.runners.java_tests import JavaTestRunner
    from covgen.runners.java_toolchain import java_toolchain
    from covgen.sandbox import SandboxPolicy

    toolchain = java_toolchain(jacoco_agent=options.jacoco_agent, junit_launcher=options.junit_launcher)
    build = resolve_build(options.root, classpath=options.classpath, source_root=options.source_root, toolchain=toolchain)
    return JavaTestRunner(
        workspace, classes=build.classes, classpath=build.classpath, source_roots=build.source_roots, toolchain=toolchain,
        policy=SandboxPolicy(network=options.sandbox), test_timeout=options.test_timeout, layers=layers, release=build.release,
    )
