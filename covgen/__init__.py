"""covgen: close coverage gaps with tests that are proven, not guessed.

The public API is the names in ``__all__``. Readers and the gap finder load on first use, so
``covgen --help`` and the pytest plugin pay nothing for lxml or the parsers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from covgen.errors import ConfigError, CovgenError, GitError, ReportError, SourceError, UsageError
from covgen.model import BranchCount, CodeUnit, CoverageReport, FileCoverage, Gap, ReportMethod

if TYPE_CHECKING:
    from covgen.adapters import read_report, read_reports
    from covgen.gaps import GapSearch, find_gaps

__all__ = [
    "BranchCount",
    "CodeUnit",
    "ConfigError",
    "CovgenError",
    "CoverageReport",
    "FileCoverage",
    "Gap",
    "GapSearch",
    "GitError",
    "ReportError",
    "ReportMethod",
    "SourceError",
    "UsageError",
    "__version__",
    "find_gaps",
    "read_report",
    "read_reports",
]

_LAZY = {
    "read_report": "covgen.adapters",
    "read_reports": "covgen.adapters",
    "find_gaps": "covgen.gaps",
    "GapSearch": "covgen.gaps",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("covgen")
        except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
            return "0+unknown"
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'covgen' has no attribute {name!r}")
