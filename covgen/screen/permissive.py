"""The permissive screen (``--screen permissive``): covgen's earlier denylist, kept for teams that want it.

It refuses candidates that spawn processes, open sockets, delete or rename files, load native
code, disarm the per-test alarm or evaluate strings, as far as it can see them by name. A
denylist is bypassed by aliasing (``run = os.system``), ``vars(os)``, ``sys.modules`` and the
like; the strict allowlist screen is the default for that reason.
"""

from __future__ import annotations

import ast

__all__ = ["permissive_reason"]

_FORBIDDEN_MODULES = frozenset({
    "subprocess", "socket", "ctypes", "cffi", "multiprocessing", "pty", "signal", "ftplib", "smtplib",
    "telnetlib", "requests", "httpx", "urllib3", "aiohttp", "asyncssh", "paramiko", "webbrowser", "_thread",
})
_FORBIDDEN_PREFIXES = ("urllib.request", "http.client", "concurrent.futures.process", "xmlrpc")
_FORBIDDEN_CALLS = frozenset({
    "os.system", "os.popen", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.remove", "os.unlink",
    "os.rmdir", "os.removedirs", "os.rename", "os.renames", "os.replace", "os.chmod", "os.chown",
    "os.truncate", "os._exit", "os.setuid", "os.setgid", "os.putenv", "os.unsetenv",
    "shutil.rmtree", "shutil.move", "shutil.chown", "shutil.disk_usage",
    "eval", "exec", "compile", "__import__", "breakpoint", "input",
    "importlib.import_module", "importlib.__import__",
})
_FORBIDDEN_CALL_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "os.wait")
#: Method names that destroy files whatever the receiver (pathlib, py.path, custom wrappers).
_FORBIDDEN_METHODS = frozenset({"unlink", "rmdir", "rmtree", "chmod", "chown", "symlink_to", "hardlink_to"})


def permissive_reason(source: str) -> str | None:
    """Say why `source` must not run, or None when the denylist finds nothing."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # the funnel reports syntax errors itself
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if reason := _module_reason(alias.name):
                    return reason
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if reason := _module_reason(node.module):
                return reason
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if reason := _module_reason(full) or _call_reason(full):
                    return reason
                aliases[alias.asname or alias.name] = full
        elif isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name and (reason := _call_reason(name)):
                return reason
            if isinstance(node.func, ast.Attribute) and node.func.attr in _FORBIDDEN_METHODS:
                return f"calls .{node.func.attr}(), which deletes or re-permissions files"
    return None


def _module_reason(module: str) -> str | None:
    root = module.split(".")[0]
    if root in _FORBIDDEN_MODULES or module.startswith(_FORBIDDEN_PREFIXES):
        return f"imports {module} (processes, network, signals or native code)"
    return None


def _call_reason(name: str) -> str | None:
    if name in _FORBIDDEN_CALLS or name.startswith(_FORBIDDEN_CALL_PREFIXES):
        return f"calls {name}()"
    return None


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))
