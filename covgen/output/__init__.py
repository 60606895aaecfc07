"""Renderers for what covgen found: a console table, and versioned JSON other tools read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OUTPUT_KINDS", "write_atomically"]

#: What ``--output kind:path`` can write, for ``run`` and ``gate`` alike (``covgen.output.targets``).
OUTPUT_KINDS = ("json", "markdown", "annotations", "sarif", "junit")


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temporary file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
