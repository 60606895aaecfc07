"""``covgen doctor``: will ``covgen run`` work here, with these settings, and if not, what to do.

Each check is one line: what was found, and for a failure exactly what to install or pass. The
checks run what ``covgen run`` would run (the same backend start, toolchain, build resolution and
sandbox probe), so a green doctor is a run that gets past its set-up.

Which languages are checked is decided from the project's sources, since doctor reads no report:
Java when it has a Maven or Gradle build, sources under ``src/main/java``, or ``--classpath`` /
``--source-root`` is set (what ``covgen run`` can build); Python when it holds ``.py`` files or is
not a Java project.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covgen.errors import CovgenError

if TYPE_CHECKING:
    from covgen.config import Settings
    from covgen.runners.java_toolchain import JavaToolchain
    from covgen.sandbox import SandboxLayers

__all__ = ["Check", "Diagnosis", "diagnose", "SCHEMA"]

SCHEMA = "covgen.doctor/1"
#: How long doctor waits for a configured model endpoint; ``covgen run --engine auto`` waits as long.
_MODEL_WAIT = 3.0
_JAVA_BUILDS = ("pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts")
_SKIP = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "target", "build", "out", ".gradle", ".tox", ".covgen"}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding. ``ok`` with a ``fix`` is advice: ``covgen run`` works, with less than it could."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "FAIL" if not self.ok else "warn" if self.fix else "ok"
        text = f"{status:<4} {self.name}: {self.detail}"
        return f"{text}\n     fix: {self.fix}" if self.fix else text

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether ``covgen run`` would get past its set-up with these settings."""
        return all(check.ok for check in self.checks)

    def document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "ok": self.ok, "checks": [check.document() for check in self.checks]}

    def text(self) -> str:
        return "\n".join(check.line() for check in self.checks) + "\n"


def diagnose(
    root: Path, settings: Settings, *,
    toolchain: Callable[..., JavaToolchain] | None = None,
    layers: Callable[[], SandboxLayers] | None = None,
) -> Diagnosis:
    """Check everything ``covgen run`` needs for the project at `root` under `settings`.

    `toolchain` and `layers` stand in for :func:`~covgen.runners.java_toolchain.java_toolchain`
    and :func:`~covgen.sandbox.probe` (tests pass doubles to reach states this machine is not in).
    """
    from covgen.runners.java_toolchain import java_toolchain
    from covgen.sandbox import probe

    python, java = _languages(root, settings)
    checks = [_model(settings, java)]
    if python:
        checks.append(_python(settings.python or sys.executable))
    if java:
        checks.extend(_java(root, settings, toolchain or java_toolchain))
    checks.append(_sandbox((layers or probe)(), settings.sandbox))
    return Diagnosis(tuple(checks))


def _languages(root: Path, settings: Settings) -> tuple[bool, bool]:
    """(Python, Java): which languages' tools this project needs."""
    from covgen.defaults import JAVA_SOURCE_ROOT

    java = (settings.classpath is not None or settings.source_root is not None
            or any((root / name).is_file() for name in _JAVA_BUILDS)
            or any((root / JAVA_SOURCE_ROOT).rglob("*.java")))
    python = any(path.suffix == ".py" for path in _files(root))
    return python or not java, java


def _files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if name not in _SKIP]
        for name in files:
            yield Path(directory, name)


# -- the model ----------------------------------------------------------------------------------


def _model(settings: Settings, java: bool) -> Check:
    from covgen.engines.llm import DEFAULT_MODEL_URL

    engine = settings.engine
    if engine == "explore":
        return Check("model", True, "not used (--engine explore: the model-free engine, Python only)")
    if engine == "replay":
        return Check("model", True, "not used (--engine replay answers from the file given to --replay)")
    if engine == "vllm":
        if importlib.util.find_spec("vllm") is None:
            return Check("model", False, "--engine vllm runs vLLM in-process, and vllm is not installed",
                         f"{sys.executable} -m pip install vllm (needs a GPU), or pass --model-url to a vLLM server")
        if not settings.model:
            return Check("model", False, "--engine vllm needs the model to load", "pass --model NAME")
        return Check("model", True, f"in-process vLLM with {settings.model}")
    if engine == "auto" and not settings.model_url:
        # covgen run completes, but says each Java gap needs a model: advice, not a failure.
        return Check("model", True, "no endpoint configured: the model-free engine will run (Python only)",
                     "pass --model-url to a vLLM server: Java gaps need a model" if java else "")
    # A configured endpoint that does not answer fails even under --engine auto, which would fall
    # back to the model-free engine: whoever configured a model wants the model (and Java needs it).
    return asyncio.run(_endpoint(settings.model_url or DEFAULT_MODEL_URL, settings))


_ENDPOINT_FIXES = {
    "model-not-served": "pass --model with one of the models it serves (or leave --model out: the first is used)",
    "model-auth": "set COVGEN_API_KEY to the key the server expects",
    "backend": "start the server (`vllm serve MODEL --max-model-len N`) or pass the right --model-url; "
               "--engine explore runs without a model (Python only)",
}


async def _endpoint(url: str, settings: Settings) -> Check:
    from covgen.engines.llm import OpenAICompatBackend

    backend = OpenAICompatBackend(url, model=settings.model, api_key=os.environ.get("COVGEN_API_KEY"),
                                  request_timeout=min(settings.request_timeout, 30.0), attempts=1, notify=lambda _: None)
    try:
        await backend.start(wait_seconds=min(settings.wait_for_model, _MODEL_WAIT))
    except CovgenError as err:
        return Check("model", False, str(err), _ENDPOINT_FIXES.get(err.slug, _ENDPOINT_FIXES["backend"]))
    finally:
        await backend.aclose()
    length = f"context {backend.max_model_len} tokens" if backend.max_model_len else "context length not reported"
    served = ", ".join(backend.served) or "(not listed)"
    return Check("model", True, f"{url} alive ({backend.live_via}); serves {served}; "
                                         f"using {backend.model}, {length}")


# -- Python ---------------------------------------------------------------------------------------

_VERSIONS = "import sys, pytest, coverage; print(sys.version.split()[0], pytest.__version__, coverage.__version__)"


def _python(python: str) -> Check:
    try:
        done = subprocess.run([python, "-c", _VERSIONS], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("python", False, f"{python} cannot run ({err})", "pass --python PATH to the project's interpreter")
    if done.returncode != 0:
        missing = re.search(r"No module named '([^'.]+)", done.stderr)
        if missing:
            return Check("python", False, f"{python} cannot import {missing.group(1)}",
                         f"{python} -m pip install pytest coverage (or pass --python PATH to the interpreter that has them)")
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("python", False, f"{python} failed: {last}", "pass --python PATH to the project's interpreter")
    version, pytest_version, coverage_version = done.stdout.split()
    return Check("python", True, f"{python}: Python {version}, pytest {pytest_version}, coverage.py {coverage_version}")


# -- Java -----------------------------------------------------------------------------------------


def _java(root: Path, settings: Settings, make_toolchain: Callable[..., JavaToolchain]) -> list[Check]:
    from covgen.runners.java_toolchain import CLASS_VERSION_OFFSET, find_jacoco_agent, find_junit_launcher

    agent_flag = Path(settings.jacoco_agent) if settings.jacoco_agent else None
    launcher_flag = Path(settings.junit_launcher) if settings.junit_launcher else None
    checks = [_jdk()]
    for name, find, flag, package, option in (
        ("JUnit launcher", find_junit_launcher, launcher_flag, "junit5", "--junit-launcher"),
        ("JaCoCo agent", find_jacoco_agent, agent_flag, "libjacoco-java", "--jacoco-agent"),
    ):
        try:
            checks.append(Check(name, True, str(find(flag))))
        except CovgenError as err:
            fix = (f"pass {option} the path of an existing jar, or leave it out to use Debian's (apt-get install {package})"
                   if flag is not None else f"apt-get install {package}, or pass {option} JAR")
            checks.append(Check(name, False, str(err), fix))
    if not all(check.ok for check in checks):
        return checks
    try:
        tools = make_toolchain(jacoco_agent=agent_flag, junit_launcher=launcher_flag)
    except CovgenError as err:
        return [*checks, Check("Java toolchain", False, str(err), "install what the message names")]
    limit = tools.agent_limit - CLASS_VERSION_OFFSET
    checks[-1] = Check("JaCoCo agent", True, f"{checks[-1].detail}, version {tools.agent_version}: "
                                             f"instruments class files up to Java {limit} on this JDK")
    return [*checks, _class_files(root, settings, tools)]


def _jdk() -> Check:
    home = os.environ.get("JAVA_HOME")
    javac = str(Path(home, "bin", "javac")) if home else shutil.which("javac")
    fix = "apt-get install default-jdk-headless, or set JAVA_HOME to a JDK"
    if javac is None or not os.access(javac, os.X_OK):
        where = f"JAVA_HOME={home} has no bin/javac" if home else "javac is not on PATH"
        return Check("JDK", False, where, fix)
    try:
        done = subprocess.run([javac, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("JDK", False, f"{javac} cannot run ({err})", fix)
    version = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 0 or not version:
        return Check("JDK", False, f"{javac} -version failed", fix)
    return Check("JDK", True, f"{version[0]} ({Path(javac).resolve().parent.parent})")


def _class_files(root: Path, settings: Settings, tools: JavaToolchain) -> Check:
    """The project's newest class file against what the JDK loads and the agent instruments."""
    from covgen.languages.java_build import resolve_build
    from covgen.runners.java_toolchain import CLASS_VERSION_OFFSET, newest_class_file

    try:
        build = resolve_build(root, classpath=settings.classpath, source_root=settings.source_root, toolchain=tools)
    except CovgenError as err:
        return Check("Java build", False, str(err), "fix the build, or pass --classpath with the compiled classes")
    newest = newest_class_file(build.classes)
    if newest is None:
        return Check("Java build", True, f"{build.how}; no class files to check yet")
    major, name = newest
    release = major - CLASS_VERSION_OFFSET
    limit = tools.agent_limit - CLASS_VERSION_OFFSET
    found = f"{build.how}; newest class file {name} is Java {release} (version {major})"
    if major > tools.class_version:
        return Check("Java build", False, f"{found}, newer than this JDK (Java {tools.release})",
                     f"set JAVA_HOME to a JDK {release} or later, or compile the project with --release {tools.release}")
    if major > tools.agent_limit:
        return Check("Java build", False, f"{found}; the JaCoCo agent {tools.agent_version} instruments up to Java {limit}",
                     f"compile the project with --release {limit} (or lower), or pass --jacoco-agent with a JaCoCo "
                     f"that supports Java {release}")
    return Check("Java build", True, f"{found}; the agent instruments it")


# -- the sandbox ----------------------------------------------------------------------------------


def _sandbox(layers: SandboxLayers, mode: str) -> Check:
    missing = layers.missing()
    fixes = []
    if not layers.filesystem_isolated:
        fixes.append("apt-get install bubblewrap" if "not installed" in layers.bwrap_problem
                     else "allow unprivileged user namespaces for bubblewrap (or run where they are allowed)")
    if not layers.resource_limits:
        fixes.append("apt-get install util-linux (prlimit)")
    fix = "; ".join(fixes)
    if missing and mode == "strict":
        return Check("sandbox", False, f"--sandbox strict needs {', '.join(missing)}", fix)
    return Check("sandbox", True, layers.describe(), fix)
