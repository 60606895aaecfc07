"""One settings model, layered: defaults < ``[tool.covgen]`` in pyproject.toml < ``COVGEN_*`` < flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from covgen import defaults
from covgen.errors import ConfigError

__all__ = ["Settings", "load_settings"]

ReportFormat = Literal["lcov", "cobertura", "jacoco", "coveragepy"]


class Settings(BaseModel):
    """Everything a covgen command can be told; each field is also a ``[tool.covgen]`` key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Report format; sniffed from content when unset.
    format: ReportFormat | None = None
    #: Glob patterns on repo-relative paths: only matching files are searched for gaps.
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_gaps: int | None = Field(default=None, ge=1)
    min_lines: int = Field(default=1, ge=0)
    #: Where JaCoCo's ``package/File.java`` is looked for, relative to the root.
    source_roots: tuple[str, ...] = ("src/main/java", "src")

    # --- covgen run -------------------------------------------------------------------------
    engine: Literal["auto", "llm", "explore", "hybrid", "replay", "vllm"] = "auto"
    #: The vLLM server's OpenAI-compatible base URL (several: comma-separated); unset means "no model configured".
    model_url: str | None = None
    model: str | None = None
    concurrency: int = Field(default=defaults.CONCURRENCY, ge=1)
    candidates: int = Field(default=4, ge=1, le=32)
    max_attempts: int = Field(default=defaults.MAX_ATTEMPTS, ge=1)
    runs: int = Field(default=defaults.RUNS, ge=1)
    test_timeout: float = Field(default=defaults.TEST_TIMEOUT, gt=0)
    temperature: float = Field(default=0.7, ge=0)
    seed: int | None = 0
    max_tokens: int = Field(default=2048, ge=64)
    structured: bool = False
    wait_for_model: float = Field(default=60.0, ge=0)
    #: Seconds one request to the model server may go unanswered before it counts as failed.
    request_timeout: float = Field(default=300.0, gt=0)
    budget_seconds: float | None = Field(default=None, gt=0)
    explore_seconds: float = Field(default=defaults.EXPLORE_SECONDS, gt=0)
    #: Calls per gap for the model-free engine instead of seconds: the same tests on any machine.
    explore_attempts: int | None = Field(default=None, ge=1)
    test_dir: str = defaults.TEST_DIR
    python: str | None = None
    sandbox: Literal["auto", "strict"] = "auto"
    #: strict: candidates may reach only the allowlist (README "What a generated test may do");
    #: permissive: covgen's older denylist.
    screen: Literal["strict", "permissive"] = "strict"
    #: Java: the test classpath (compiled classes + test libraries), else found from the build.
    classpath: str | None = None
    #: Java: the production sources' folder when not src/main/java (also where report paths resolve).
    source_root: str | None = None
    #: Java: the JaCoCo agent jar and the JUnit Platform console launcher, else found where the
    #: build or the OS keeps them (the local Maven repository, /usr/share/java).
    jacoco_agent: str | None = None
    junit_launcher: str | None = None
    #: Append-only JSONL of model requests and answers (redacted), relative to the root.
    audit_log: str | None = ".covgen/requests.jsonl"

    @field_validator("model_url", mode="before")
    @classmethod
    def _join_urls(cls, value: Any) -> Any:
        # Several servers: --model-url repeated, or COVGEN_MODEL_URL comma-separated; one text either way.
        if isinstance(value, (list, tuple)):
            return ",".join(str(part) for part in value)
        return value

    @field_validator("include", "exclude", "source_roots", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        # Env vars and flags spell lists as comma-separated text.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


_ENV_PREFIX = "COVGEN_"
#: Settings naming places in the project. From pyproject.toml (or by default) they must stay
#: inside it: the file is in the repository, which a pull request can change. Flags and COVGEN_*
#: variables come from whoever runs covgen (a CI job definition is as trusted as its command
#: line) and may point anywhere. ``python`` is checked as spelt, not resolved: a virtualenv's
#: interpreter is a symlink to one outside the project by design.
_PROJECT_PATHS = ("audit_log", "test_dir", "source_roots", "source_root", "python")


def load_settings(
    root: Path, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None, *,
    ini: Mapping[str, tuple[Any, str]] | None = None, flag_prefix: str = "--",
) -> Settings:
    """Build settings for a project at `root`; a bad value names its key and where it came from.

    `ini` holds (value, where it was set) pairs layered between ``[tool.covgen]`` and ``COVGEN_*``:
    the pytest plugin's ini options. `flag_prefix` spells the flags in messages (the plugin's are
    ``--ai-…``).
    """
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        for key, value in _read_table(pyproject).items():
            name = key.replace("-", "_")
            if name not in Settings.model_fields:
                raise ConfigError(f"{pyproject}: [tool.covgen] has unknown key {key!r}", slug="unknown-key")
            values[name] = value
            origin[name] = f"{pyproject} [tool.covgen] {key}"
    for name, (value, where) in (ini or {}).items():
        values[name] = value
        origin[name] = where
    environment = os.environ if env is None else env
    for name in Settings.model_fields:
        variable = _ENV_PREFIX + name.upper()
        if variable in environment:
            values[name] = environment[variable]
            origin[name] = f"environment variable {variable}"
    for name, value in (flags or {}).items():
        if value is not None and value != ():
            values[name] = value
            origin[name] = f"{flag_prefix}{name.replace('_', '-')}"
    try:
        settings = Settings(**values)
    except ValidationError as err:
        problem = err.errors()[0]
        key = str(problem["loc"][0]) if problem["loc"] else "?"
        raise ConfigError(f"{origin.get(key, key)}: {problem['msg']}", slug="bad-value") from err
    return _kept_inside(settings, root, origin, pyproject)


def _kept_inside(settings: Settings, root: Path, origin: dict[str, str], pyproject: Path) -> Settings:
    """Refuse project paths from pyproject.toml (or defaults) that leave the project."""
    from covgen.sources import outside_root

    for name in _PROJECT_PATHS:
        where = origin.get(name, f"default {name}")
        if where.startswith(("--", "environment variable")):
            continue
        value = getattr(settings, name)
        for path in value if isinstance(value, tuple) else (value,):
            escape = None if path is None else outside_root(root, path, follow_symlinks=name != "python")
            if escape is not None:
                raise ConfigError(
                    f"{where}: {path!r} {escape}; paths from pyproject.toml and defaults stay inside the project "
                    f"(a command-line flag or {_ENV_PREFIX}{name.upper()} may point elsewhere)", slug="outside-root",
                )
    if settings.python is not None and origin.get("python", "").startswith(str(pyproject)):
        # Relative to the project, like every other path in its pyproject.toml.
        return settings.model_copy(update={"python": str(root.absolute() / settings.python)})
    return settings


def _read_table(pyproject: Path) -> dict[str, Any]:
    try:
        with pyproject.open("rb") as stream:
            document = tomllib.load(stream)
    except (tomllib.TOMLDecodeError, OSError) as err:
        raise ConfigError(f"{pyproject}: cannot read ({err})", slug="bad-toml") from err
    table = document.get("tool", {}).get("covgen", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.covgen] must be a table", slug="bad-value")
    return table
