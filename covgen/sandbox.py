"""Run untrusted code (candidate tests) with every isolation layer this machine allows.

Always: a throwaway copy of the project, its own process group (killed whole on timeout),
closed stdin, a scrubbed environment (no credentials, a private HOME and TMPDIR), and resource
limits through util-linux ``prlimit`` (CPU, address space, file size, open files). Where the
kernel lets an unprivileged user create namespaces, the network is off too (``unshare -rn``:
only a loopback that nothing listens on). :func:`probe` finds out once and says which layers
are active, so the summary can tell the user.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import SandboxError

__all__ = ["SandboxPolicy", "SandboxLayers", "ProcessResult", "probe", "run_sandboxed", "Workspace", "scrubbed_env"]

#: Output kept from a sandboxed process; tracebacks past this are noise for a repair prompt.
_OUTPUT_CAP = 256 * 1024
#: Never copied into a workspace: VCS data, environments, caches, build output, covgen's own state.
_NOT_COPIED = (".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
               ".pytest_cache", ".mypy_cache", ".ruff_cache", ".covgen", "*.egg-info", ".coverage", ".coverage.*",
               "build", "dist", "target")


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """Limits for one sandboxed process."""

    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_size_bytes: int = 256 << 20
    open_files: int = 1024
    #: ``auto`` isolates the network where possible; ``strict`` refuses to run without it.
    network: str = "auto"


@dataclass(frozen=True, slots=True)
class SandboxLayers:
    """Which isolation layers this machine supports."""

    network_isolated: bool
    resource_limits: bool

    def describe(self) -> str:
        layers = ["throwaway copy", "process group", "scrubbed env"]
        layers.append("rlimits" if self.resource_limits else "no rlimits (prlimit missing)")
        layers.append("network off" if self.network_isolated else "network ON (user namespaces unavailable)")
        return ", ".join(layers)


@dataclass(frozen=True, slots=True)
class ProcessResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


@functools.cache
def probe() -> SandboxLayers:
    """Find out once which layers work here (a container or AppArmor may forbid namespaces)."""
    network = False
    if shutil.which("unshare"):
        try:
            network = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            network = False
    return SandboxLayers(network_isolated=network, resource_limits=shutil.which("prlimit") is not None)


def scrubbed_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with nothing secret in it: no tokens, keys, proxies or cloud credentials."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    env.update(extra or {})
    return env


def _wrap(argv: Sequence[str], policy: SandboxPolicy, layers: SandboxLayers) -> list[str]:
    command = list(argv)
    if layers.resource_limits:
        command = [
            "prlimit", f"--cpu={policy.cpu_seconds}", f"--as={policy.memory_bytes}",
            f"--fsize={policy.file_size_bytes}", f"--nofile={policy.open_files}", "--", *command,
        ]
    if policy.network != "allow":
        if layers.network_isolated:
            command = ["unshare", "-rn", "--", *command]
        elif policy.network == "strict":
            raise SandboxError("--sandbox strict: this machine cannot isolate the network (unshare -rn failed)")
    return command


async def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    policy: SandboxPolicy,
    layers: SandboxLayers | None = None,
    stalled: Callable[[], bool] | None = None,
) -> ProcessResult:
    """Run `argv` in its own process group under `policy`; kill the whole group on timeout.

    `stalled`, polled twice a second, lets a caller that can see progress (a results file)
    end a process that hangs long before the wall-clock limit.
    """
    command = _wrap(argv, policy, layers or probe())
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
    except OSError as err:
        raise SandboxError(f"cannot start {argv[0]}: {err}") from err
    timed_out = False
    communicate = asyncio.ensure_future(process.communicate())
    try:
        deadline = started + policy.wall_seconds
        while not communicate.done():
            await asyncio.wait({communicate}, timeout=min(0.5, max(deadline - time.monotonic(), 0)))
            if communicate.done():
                break
            if time.monotonic() >= deadline or (stalled is not None and stalled()):
                timed_out = True
                _kill_group(process.pid)
                break
        stdout, stderr = await communicate
    finally:
        # Whatever the candidate forked must not outlive it.
        _kill_group(process.pid)
    return ProcessResult(
        returncode=process.returncode if process.returncode is not None else -9,
        stdout=stdout[-_OUTPUT_CAP:].decode("utf-8", "replace"),
        stderr=stderr[-_OUTPUT_CAP:].decode("utf-8", "replace"),
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Workspace:
    """A throwaway copy of the project: candidates run here, never in the user's tree."""

    def __init__(self, root: Path) -> None:
        self.source_root = root.resolve()
        self._tmp = Path(tempfile.mkdtemp(prefix="covgen-"))
        self.path = self._tmp / "project"
        self.home = self._tmp / "home"
        self.state = self._tmp / "state"
        self.home.mkdir()
        self.state.mkdir()
        try:
            shutil.copytree(self.source_root, self.path, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
        except (OSError, shutil.Error) as err:
            self.close()
            raise SandboxError(f"cannot copy {self.source_root} into a sandbox workspace: {err}") from err

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
