"""Run untrusted code (candidate tests, the project under exploration) in a sandbox that holds.

The layers, each probed once and reported by :meth:`SandboxLayers.describe`:

* **bubblewrap** (``bwrap``): a new mount namespace in which only the system's read-only
  directories, the interpreter's own directories (read-only) and the throwaway workspace
  (writable) exist. The user's tree, ``$HOME``, ``/run``, ``/tmp`` and every host socket are simply
  not there. New PID, IPC, UTS and network namespaces: every descendant dies with the sandbox
  (``--die-with-parent``; a PID namespace ends when its first process does), and the only
  network is a loopback nothing listens on.
* **resource limits** through util-linux ``prlimit``: CPU, address space, file size, open files
  and the number of processes. The kernel never applies the process-count limit to uid 0, so
  when covgen runs as root (containers, CI) the sandboxed command is started as an unprivileged
  uid of this covgen process's own inside the sandbox (``setpriv``), in a workspace handed to it.
* **always**: a throwaway copy of the project, its own session and process group (killed whole),
  closed stdin, a scrubbed environment, and output read through bounded buffers.

Where bubblewrap is missing or the kernel forbids namespaces, covgen falls back to the old
layers (``unshare -rn`` for the network) and the summary says in plain words what is missing;
``--sandbox strict`` refuses to run then.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import SandboxError

__all__ = [
    "SandboxPolicy", "SandboxLayers", "ProcessResult", "probe", "run_sandboxed", "Workspace", "scrubbed_env",
    "interpreter", "Interpreter", "hand_over", "BACKGROUND",
]

#: Output kept from a sandboxed process, per stream; tracebacks past this are noise for a repair prompt.
_OUTPUT_CAP = 256 * 1024
#: Never copied into a workspace: VCS data, environments, caches, build output, covgen's own state.
_NOT_COPIED = (".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
               ".pytest_cache", ".mypy_cache", ".ruff_cache", ".covgen", "*.egg-info", ".coverage", ".coverage.*",
               "build", "dist", "target")
#: System directories every sandbox sees, read-only. Nothing here is the user's.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The few files and folders of /etc that interpreters and JVMs read; not shadow, ssh, sudoers, …
_ETC_ALLOWED = ("localtime", "timezone", "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "ld.so.cache",
                "ld.so.conf", "ld.so.conf.d", "alternatives", "java-17-openjdk", "java-21-openjdk", "ssl",
                "ca-certificates", "mime.types", "protocols", "services", "os-release", "fonts")

#: The nice value of runs nothing waits on but the end of the run (the reruns of tests that
#: already passed): on a busy machine the runs that decide whether a gap needs a repair — and so
#: keep the model server fed — get the cores first.
BACKGROUND = 10


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """Limits for one sandboxed process."""

    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_size_bytes: int = 256 << 20
    open_files: int = 1024
    #: Processes (and threads) the sandboxed command may have at once.
    processes: int = 256
    #: ``auto`` uses every layer this machine has; ``strict`` refuses to run without filesystem and
    #: network isolation; ``allow`` keeps the network (the project's own trusted suite, ``--test-cmd``).
    network: str = "auto"
    #: Added to the process's nice value: work nothing waits on yields the cores to work that gates
    #: a model request (see :data:`BACKGROUND`).
    niceness: int = 0


@dataclass(frozen=True, slots=True)
class SandboxLayers:
    """Which isolation layers work on this machine."""

    #: bubblewrap runs: only the workspace is writable; the user's tree, $HOME and host sockets are invisible.
    filesystem_isolated: bool
    #: A PID namespace: nothing the candidate starts outlives the sandbox.
    processes_isolated: bool
    network_isolated: bool
    resource_limits: bool
    #: The process-count limit is enforced (not for uid 0 unless covgen can switch to an unprivileged uid).
    process_limit: bool
    #: Why bubblewrap is not used, when it is not.
    bwrap_problem: str = ""

    def describe(self) -> str:
        if self.filesystem_isolated:
            layers = ["bubblewrap (filesystem: only the workspace writable, your tree and $HOME invisible; "
                      "PID and IPC namespaces)", "network off", "throwaway copy", "scrubbed env"]
        else:
            layers = [f"filesystem NOT isolated ({self.bwrap_problem})", "throwaway copy", "process group", "scrubbed env",
                      "network off" if self.network_isolated else "network ON (user namespaces unavailable)"]
        if not self.resource_limits:
            layers.append("no rlimits (prlimit missing)")
        elif self.process_limit:
            layers.append("rlimits incl. process count")
        else:
            layers.append("rlimits, process count NOT limited")
        return ", ".join(layers)

    def missing(self) -> list[str]:
        """The layers ``--sandbox strict`` insists on that this machine lacks."""
        problems = []
        if not self.filesystem_isolated:
            problems.append(f"filesystem isolation ({self.bwrap_problem})")
        if not self.network_isolated:
            problems.append("network isolation")
        return problems


@dataclass(frozen=True, slots=True)
class ProcessResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


def _running_as_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def probe() -> SandboxLayers:
    """Find out once which layers work here (a container or AppArmor may forbid namespaces)."""
    resource_limits = shutil.which("prlimit") is not None
    bwrap_problem = ""
    if shutil.which("bwrap") is None:
        bwrap_problem = "bubblewrap is not installed: apt-get install bubblewrap"
    else:
        try:
            check = subprocess.run(
                _bwrap_prefix(SandboxPolicy(), writable=(), readable=(), cwd=Path("/")) + ["true"],
                capture_output=True, timeout=20,
            )
            if check.returncode != 0:
                bwrap_problem = "bwrap cannot create namespaces here: " + (
                    check.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        except (OSError, subprocess.TimeoutExpired) as err:
            bwrap_problem = f"bwrap failed: {err}"
    if not bwrap_problem:
        return SandboxLayers(True, True, True, resource_limits, resource_limits)
    network = False
    if shutil.which("unshare"):
        try:
            network = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            network = False
    return SandboxLayers(False, False, network, resource_limits, resource_limits and not _running_as_root(), bwrap_problem)


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A Python interpreter as it describes itself: where it lives and where it imports from."""

    #: Its real executable (``sys.executable``), not a shim or a symlink that needs more of the disk.
    executable: str
    prefixes: tuple[Path, ...]
    search_path: tuple[Path, ...]


@functools.cache
def interpreter(python: str) -> Interpreter:
    """Ask `python` (outside any sandbox: it is the user's, not a candidate's) where it lives."""
    import json

    script = ("import sys, json; "
              "print(json.dumps([sys.executable, [sys.prefix, sys.base_prefix, sys.exec_prefix], sys.path]))")
    executable = shutil.which(python) or python
    try:
        answer = subprocess.run([executable, "-c", script], capture_output=True, text=True, timeout=60,
                                env=scrubbed_env(Path(tempfile.gettempdir())), cwd="/")
        real, prefixes, search = json.loads(answer.stdout)
        executable = str(real) or executable
    except (OSError, subprocess.TimeoutExpired, ValueError, TypeError):
        prefixes, search = [], []

    def existing(paths: list[Path]) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(path.resolve() for path in paths if path.exists()))

    return Interpreter(
        executable,
        existing([Path(executable).resolve().parent, Path(executable).parent, *map(Path, prefixes)]),
        existing([Path(entry) for entry in search if entry]),
    )


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
        # The sandbox's uid has no passwd entry: who-am-I lookups (getpass) read these instead.
        "USER": "covgen-sandbox",
        "LOGNAME": "covgen-sandbox",
        # covgen's pytest plugin fills no gaps in a run of covgen's own (an ai_fill_gaps ini would
        # recurse), and is not even loaded: an editable install of covgen lives outside what the
        # sandbox shows, and an entry point that cannot import stops pytest before any test.
        "COVGEN_SANDBOX": "1",
        "PYTEST_ADDOPTS": "-p no:covgen.pytest_plugin",
    }
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    env.update(extra or {})
    return env


def _bwrap_prefix(policy: SandboxPolicy, *, writable: Sequence[Path], readable: Sequence[Path], cwd: Path,
                  read_only: Sequence[Path] = ()) -> list[str]:
    command = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try", "--hostname", "covgen-sandbox"]
    # As root, bwrap needs no user namespace, and one would map no uid but 0 (so no switch away from it).
    if not _running_as_root():
        command.append("--unshare-user")
    if policy.network != "allow":
        command.append("--unshare-net")
    for directory in _SYSTEM_DIRS:
        if os.path.islink(directory):
            command += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            command += ["--ro-bind", directory, directory]
    # Made here, not by bwrap as a missing parent (0700): the sandbox's user (not root, when covgen
    # runs as root) must pass through /etc to read what is bound below it (a JVM's configuration).
    command += ["--perms", "0755", "--dir", "/etc"]
    identity = dict(zip(("passwd", "group"), _identity_files())) if _running_as_root() else {}
    for name in _ETC_ALLOWED:
        if name in identity:
            command += ["--ro-bind", str(identity[name]), f"/etc/{name}"]
        elif os.path.exists(f"/etc/{name}"):
            command += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    command += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/"), Path("/tmp")}
    for option, paths in (("--ro-bind", _outermost(readable)), ("--bind", list(writable))):
        for path in paths:
            # bwrap makes missing parents private (0700): the sandbox's user could not pass them.
            for parent in reversed(path.parents):
                if parent not in made and not any(parent.is_relative_to(system) for system in _SYSTEM_DIRS):
                    command += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            command += [option, str(path), str(path)]
    for path in read_only:  # folders inside a writable one that the sandbox may read but not change
        command += ["--ro-bind", str(path), str(path)]
    command += ["--chdir", str(cwd)]
    if _running_as_root():
        # Only a non-root uid is held to the process-count limit; the sandbox may switch to its
        # own uid and nothing more (bwrap drops every other capability).
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", *_session_niceness(policy.niceness),
                    "setpriv", f"--reuid={sandbox_uid()}", f"--regid={sandbox_uid()}", "--clear-groups", "--inh-caps=-all"]
    else:
        command += ["--", *_session_niceness(policy.niceness)]
    return command


def _session_niceness(niceness: int) -> list[str]:
    """A command prefix that gives the sandbox's session (its own, so a candidate cannot inject
    keystrokes into covgen's terminal) the nice value `niceness`.

    With the kernel's autogroup scheduling (Debian's default) the cores are shared between
    sessions first, so a process's own nice value means nothing against another sandbox; the
    session's does. Best effort, and only a priority: a kernel without autogroups has no such
    file (the process's own nice value counts there); not as root, the kernel takes one such
    write per 100 ms, so of sandboxes started together some may keep their session's priority,
    and the sandboxed code may set it back to 0 (never below). Reruns judged by a run at normal
    priority (covgen.validate) do not depend on it.
    """
    if not niceness:
        return []
    return ["/bin/sh", "-c", f'echo {int(niceness)} > /proc/self/autogroup 2>/dev/null; exec "$@"', "sh"]


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """Drop paths inside others in the list: one bind of the outer folder serves both."""
    ordered = sorted({path.resolve() for path in paths if path.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path == outer or path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return kept


def _wrap(
    argv: Sequence[str], policy: SandboxPolicy, layers: SandboxLayers, *, writable: Sequence[Path],
    readable: Sequence[Path], read_only: Sequence[Path], cwd: Path,
) -> list[str]:
    if policy.network == "strict" and layers.missing():
        raise SandboxError("--sandbox strict: this machine lacks " + " and ".join(layers.missing()))
    command = list(argv)
    if policy.niceness:
        command = ["nice", "-n", str(policy.niceness), "--", *command]
    if layers.resource_limits:
        limits = [f"--cpu={policy.cpu_seconds}", f"--as={policy.memory_bytes}", f"--fsize={policy.file_size_bytes}",
                  f"--nofile={policy.open_files}"]
        if layers.process_limit:
            limits.append(f"--nproc={policy.processes}")
        command = ["prlimit", *limits, "--", *command]
    if layers.filesystem_isolated:
        return _bwrap_prefix(policy, writable=writable, readable=readable, read_only=read_only, cwd=cwd) + command
    if policy.network != "allow" and layers.network_isolated:
        command = ["unshare", "-rn", "--", *command]
    return [*_session_niceness(policy.niceness), *command]


async def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    policy: SandboxPolicy,
    layers: SandboxLayers | None = None,
    stalled: Callable[[], bool] | None = None,
    writable: Sequence[Path] | None = None,
    readable: Sequence[Path] = (),
    read_only: Sequence[Path] = (),
) -> ProcessResult:
    """Run `argv` in the sandbox under `policy`; kill all of it on timeout or when `stalled()`.

    Only `writable` (default: `cwd`) can be written, except the folders in it named by
    `read_only`; only these, `readable` and the system's directories exist inside. `stalled`,
    polled twice a second, lets a caller that can see
    progress (a results file) end a process that hangs long before the wall-clock limit.
    """
    command = _wrap(argv, policy, layers or probe(), writable=[cwd] if writable is None else writable,
                    readable=readable, read_only=read_only, cwd=cwd)
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
    except OSError as err:
        raise SandboxError(f"cannot start {argv[0]}: {err}") from err
    assert process.stdout is not None and process.stderr is not None
    readers = [asyncio.ensure_future(_tail(process.stdout)), asyncio.ensure_future(_tail(process.stderr))]
    waiter = asyncio.ensure_future(process.wait())
    timed_out = False
    try:
        deadline = started + policy.wall_seconds
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=min(0.5, max(deadline - time.monotonic(), 0)))
            if waiter.done():
                break
            if time.monotonic() >= deadline or (stalled is not None and stalled()):
                timed_out = True
                break
    finally:
        # Whatever the candidate forked must not outlive it (bubblewrap's PID namespace sees to
        # that; without it, the process group is what there is).
        _kill_group(process.pid)
        try:
            waiter.cancel()
            try:
                # A fresh wait, not `waiter`: asyncio.run's shutdown cancels every task, `waiter`
                # too, and an unreaped child is reported on a closed loop later.
                await asyncio.wait_for(process.wait(), timeout=5)
            except asyncio.TimeoutError:
                pass
            # A child that escaped the group (no PID namespace) may hold the pipes open: give the
            # readers a moment, then stop reading rather than wait for it.
            done, pending = await asyncio.wait(readers, timeout=1.0)
            for reader in pending:
                reader.cancel()
        finally:
            # Close the pipes now, even when a second cancel cut the wait short: the object may be
            # collected after the loop is closed, and closing it then fails. asyncio's Process
            # has no public close; its transport does.
            transport = getattr(process, "_transport", None)
            if transport is not None:
                transport.close()
    stdout, stderr = (reader.result() if reader in done and not reader.cancelled() else b"" for reader in readers)
    return ProcessResult(
        returncode=process.returncode if process.returncode is not None else -9,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """Read a stream to its end, keeping only its last ``_OUTPUT_CAP`` bytes in memory."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        kept += chunk
        if len(kept) > 2 * _OUTPUT_CAP:
            del kept[: len(kept) - _OUTPUT_CAP]
    return bytes(kept[-_OUTPUT_CAP:])


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Workspace:
    """A throwaway copy of the project: candidates run here, never in the user's tree.

    Its folder holds ``project`` (the copy), ``home`` (HOME and TMPDIR) and ``state`` (results,
    coverage data); all three, and nothing else of this machine's writable places, are writable
    inside the sandbox.
    """

    def __init__(self, root: Path) -> None:
        self.source_root = root.resolve()
        # Root's, 0700 when covgen runs as root: only what is inside it is handed to the
        # sandbox's user, and no process of that uid outside the sandbox can get in.
        self._outer = Path(tempfile.mkdtemp(prefix="covgen-"))
        self._tmp = self._outer / "workspace"
        self._tmp.mkdir()
        self.path = self._tmp / "project"
        self.home = self._tmp / "home"
        self.state = self._tmp / "state"
        self.home.mkdir()
        self.state.mkdir()
        #: Folders inside the workspace that sandboxed code may read but never change.
        self.read_only: list[Path] = []
        try:
            shutil.copytree(self.source_root, self.path, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
            hand_over(self._tmp)
        except (OSError, shutil.Error) as err:
            self.close()
            raise SandboxError(f"cannot copy {self.source_root} into a sandbox workspace: {err}") from err

    @property
    def writable(self) -> tuple[Path, ...]:
        return (self._tmp,)

    async def run(
        self, python: str, args: Sequence[str], *, policy: SandboxPolicy, env: Mapping[str, str] | None = None,
        layers: SandboxLayers | None = None, stalled: Callable[[], bool] | None = None,
    ) -> ProcessResult:
        """Run the project's interpreter `python` with `args` in this copy, in the sandbox.

        The sandbox sees the copy (writable but for covgen's folders), the interpreter's own
        folders and the system; the environment is scrubbed, with `env` added.
        """
        return await run_sandboxed(
            [interpreter(python).executable, *args], cwd=self.path, env=scrubbed_env(self.home, env), policy=policy,
            layers=layers, stalled=stalled, writable=self.writable, readable=self.readable(python), read_only=self.read_only,
        )

    async def run_tool(
        self, argv: Sequence[str], *, policy: SandboxPolicy, env: Mapping[str, str] | None = None,
        readable: Sequence[Path] = (), layers: SandboxLayers | None = None, stalled: Callable[[], bool] | None = None,
    ) -> ProcessResult:
        """Run an executable other than the project's interpreter (``javac``, ``java``) in this copy, in the sandbox.

        The sandbox sees what :meth:`run` gives it, with `readable` (jars, class folders, a JDK
        outside ``/usr``) in place of the interpreter's folders; the system's directories hold
        the JDK. A `readable` path that is the user's tree, $HOME, or inside the tree or above
        either is refused: it would hand the candidate what the copy exists to hide.
        """
        shielded = [self.source_root, Path.home().resolve()]
        for path in (Path(entry).resolve() for entry in readable):
            if path.is_relative_to(self.source_root) or any(guarded.is_relative_to(path) for guarded in shielded):
                raise SandboxError(f"{path} would expose your tree or home folder to sandboxed code; "
                                   "copy it into the workspace instead")
        return await run_sandboxed(
            argv, cwd=self.path, env=scrubbed_env(self.home, env), policy=policy, layers=layers, stalled=stalled,
            writable=self.writable, readable=readable, read_only=self.read_only,
        )

    def in_users_tree(self, folder: str, python: str) -> bool:
        """Whether `folder` (where sandboxed code imported a module from) is the user's real tree."""
        path = Path(folder)
        if not path.is_relative_to(self.source_root):
            return False
        # The project's own virtualenv may live in its tree; covgen lets the sandbox read it.
        return not any(path.is_relative_to(prefix) for prefix in self.readable(python))

    def scratch(self, name: str) -> Path:
        """A folder in the workspace's state that sandboxed code may write (results, data)."""
        folder = self.state / name
        if not folder.exists():
            folder.mkdir()
            hand_over(folder)
        return folder

    def covgen_folder(self, relative: str) -> Path:
        """A folder in the copy that only covgen writes (candidates): read-only inside the sandbox."""
        folder = self.path / relative
        folder.mkdir(parents=True, exist_ok=True)
        if folder not in self.read_only:
            self.read_only.append(folder)
        return folder

    def readable(self, python: str) -> tuple[Path, ...]:
        """What a sandbox running `python` must see besides the system: the interpreter's folders.

        Never the user's tree (an editable install or a ``.pth`` pointing there is left out, so
        imports find the copy), nor $HOME or any folder above either; the interpreter's own prefix
        is kept even inside the project (a ``.venv``), read-only.
        """
        found = interpreter(python)
        prefixes, search = found.prefixes, found.search_path
        shielded = [self.source_root, Path.home().resolve()]

        def exposes(path: Path, *, prefix: bool) -> bool:
            if any(guarded == path or guarded.is_relative_to(path) for guarded in shielded):
                return True  # the folder itself, or one above it
            return not prefix and path.is_relative_to(self.source_root)

        kept = [path for path in prefixes if not exposes(path, prefix=True)]
        kept += [path for path in search if not exposes(path, prefix=False)
                 and not any(path.is_relative_to(prefix) for prefix in kept)]
        return tuple(kept)

    def close(self) -> None:
        shutil.rmtree(self._outer, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def sandbox_uid() -> int:
    """The unprivileged uid (and gid) sandboxed commands run as when covgen runs as root.

    One of this covgen process's own, not ``nobody``: the kernel keeps one process count per
    uid, so covgen runs side by side on one machine (shard jobs, CI jobs in containers on one
    host) sharing a user would share one limit — a fork bomb in one, or a few JVMs' threads,
    would starve the others' sandboxes. Drawn from 10⁹…2·10⁹ (below 2³¹) and drawn again while
    it names a user or group here (NSS: local files and directory services alike) or falls in a
    subordinate id range (/etc/subuid, /etc/subgid). Should a directory service still hand it out
    later, the workspace's top folder stays root's: nothing outside the sandbox reaches inside.
    """
    ranges = _subordinate_ranges()
    while True:
        uid = 1_000_000_000 + secrets.randbelow(1_000_000_000)
        if any(start <= uid < start + count for start, count in ranges) or _names_someone(uid):
            continue
        return uid


def _names_someone(uid: int) -> bool:
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


def _subordinate_ranges() -> list[tuple[int, int]]:
    ranges = []
    for table in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(table).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                ranges.append((int(parts[1]), int(parts[2])))
    return ranges


@functools.cache
def _identity_files() -> tuple[Path, Path]:
    """/etc/passwd and /etc/group as the sandbox sees them: this machine's, plus the sandbox's
    user, so who-am-I lookups (Python's pwd, a JVM's user.name and user.home) answer as they
    did for ``nobody``. Kept in a folder only root can enter, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="covgen-identity-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    uid = sandbox_uid()
    files = []
    for name, line in (("passwd", f"covgen-sandbox:x:{uid}:{uid}:covgen sandbox:/nonexistent:/usr/sbin/nologin"),
                       ("group", f"covgen-sandbox:x:{uid}:")):
        try:
            text = Path("/etc", name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        target = folder / name
        target.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n", encoding="utf-8")
        target.chmod(0o644)
        files.append(target)
    return files[0], files[1]


def hand_over(top: Path) -> None:
    """Give `top` and everything below it to the user sandboxed commands run as (root only)."""
    if not _running_as_root() or not probe().filesystem_isolated:
        return
    uid = sandbox_uid()
    os.chown(top, uid, uid, follow_symlinks=False)
    for directory, subdirs, files in os.walk(top):
        for name in (*subdirs, *files):
            os.chown(os.path.join(directory, name), uid, uid, follow_symlinks=False)
