"""covgen: close coverage gaps with tests that are proven, not guessed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from covgen.adapters import read_report, read_reports
from covgen.errors import ConfigError, CovgenError, GitError, ReportError, SourceError, UsageError
from covgen.gaps import GapSearch, find_gaps
from covgen.model import BranchCount, CodeUnit, CoverageReport, FileCoverage, Gap, ReportMethod

try:
    __version__ = version("covgen")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

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
