"""Read project files, and only project files: the one way covgen reads source it may send a model.

Coverage reports are CI artifacts anyone opening a pull request can shape, and a checkout can
hold symlinks: a report entry naming ``/home/ci/.ssh/id_rsa.py``, ``../../secrets.py`` or a
symlink to either must never be read, let alone sent. Everything is checked against the real
(symlink-free) root: the path must stay inside it as spelt, must not be a symlink, and must
still be inside it once every directory symlink on the way is resolved.
"""

from __future__ import annotations

import io
import os
import tokenize
from pathlib import Path

from covgen.errors import SourceError

__all__ = ["read_source", "outside_root"]


def outside_root(root: Path, path: str | Path, *, follow_symlinks: bool = True) -> str | None:
    """Say how `path` (root-relative or absolute) leaves `root`, or None when it stays inside."""
    real_root = root.resolve()
    spelt = Path(path)
    full = Path(os.path.normpath(spelt if spelt.is_absolute() else real_root / spelt))
    if not (full.is_relative_to(real_root) or full.is_relative_to(root.absolute())):
        return f"is outside the project root {real_root}"
    if follow_symlinks:
        real = full.resolve()
        if not real.is_relative_to(real_root):
            return f"leads outside the project root {real_root} through a symlink (to {real})"
    return None


def read_source(root: Path, path: str) -> str:
    """Return the text of the project file `path`, or raise SourceError saying why it is not read.

    Python files are decoded as Python decodes them (a PEP 263 ``coding`` line, else UTF-8);
    other files as UTF-8. A symlink is not read even when it points inside the project: the
    report should name the real file (coverage.py does), and its target could change under us.
    """
    escape = outside_root(root, path)
    if escape is not None:
        raise SourceError(f"{path}: {escape}; not read", slug="outside-root")
    full = root.resolve() / path
    if full.is_symlink():
        raise SourceError(f"{path}: is a symlink (to {os.readlink(full)}); covgen reads only regular files", slug="symlink")
    if not full.is_file():
        raise SourceError(f"{path}: source not found", slug="missing")
    try:
        # O_NOFOLLOW: the file checked above is the file read, even if it is swapped for a link.
        descriptor = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as stream:
            data = stream.read()
    except OSError as err:
        raise SourceError(f"{path}: cannot read ({err.strerror or err})", slug="io") from err
    encoding = "utf-8"
    if path.endswith((".py", ".pyw")):
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as err:
            raise SourceError(f"{path}: not valid text ({err.msg})", slug="encoding") from err
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        where = f" at byte {err.start}" if isinstance(err, UnicodeDecodeError) else ""
        raise SourceError(f"{path}: not valid {encoding}{where}", slug="encoding") from err
