"""The one exception tree covgen raises; nothing else should reach the user.

* CovgenError          base; ``slug`` names the problem for docs and JSON output
  - UsageError         bad flags or arguments                       (exit 2)
  - ConfigError        bad ``[tool.covgen]`` or ``COVGEN_*`` value    (exit 2)
  - ReportError        a coverage report covgen cannot read          (exit 2)
  - SourceError        a source file that cannot be analysed         (a warning, not fatal)
  - GitError           ``--diff`` could not ask git                  (exit 2)
  - SandboxError       candidates cannot be run safely here          (exit 2)
  - BuildError         a Java project's classes and classpath cannot be found (exit 2)
  - BackendError       the model server is unreachable or failing    (exit 3)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CovgenError",
    "UsageError",
    "ConfigError",
    "ReportError",
    "SourceError",
    "GitError",
    "SandboxError",
    "BuildError",
    "BackendError",
    "CovgenWarning",
]


class CovgenError(Exception):
    """Base of every error covgen raises on purpose."""

    exit_code: ClassVar[int] = 2
    default_slug: ClassVar[str] = "error"

    def __init__(self, message: str, *, slug: str | None = None) -> None:
        super().__init__(message)
        self.slug = slug or self.default_slug


class UsageError(CovgenError):
    default_slug = "usage"


class ConfigError(CovgenError):
    default_slug = "config"


class ReportError(CovgenError):
    default_slug = "bad-report"


class SourceError(CovgenError):
    default_slug = "bad-source"


class GitError(CovgenError):
    default_slug = "git"


class SandboxError(CovgenError):
    default_slug = "sandbox"


class BuildError(CovgenError):
    """The build tool or javac failed: the message names its first error and ``--classpath`` as the way out."""

    default_slug = "java-build"


class BackendError(CovgenError):
    """The model server did not answer, or answered with errors after retries.

    ``fatal`` is False for a refusal of one request (HTTP 4xx: a prompt too long for the
    context): that gap is skipped and the run goes on.
    """

    exit_code = 3
    default_slug = "backend"

    def __init__(self, message: str, *, slug: str | None = None, fatal: bool = True) -> None:
        super().__init__(message, slug=slug)
        self.fatal = fatal


class CovgenWarning(UserWarning):
    """A recoverable problem: covgen says so and goes on."""
