"""One settings model, layered: defaults < ``covgen.toml`` or ``[tool.covgen]`` < ``COVGEN_*`` < flags.

Each setting is described once, in `SETTINGS` (its help and the commands that take it as a flag);
the README's configuration table is rendered from it (:func:`config_table`) and a test holds the
table, the click commands and the plugin's options to it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from covgen import defaults
from covgen.errors import ConfigError

__all__ = ["Settings", "load_settings", "SETTINGS", "FLAG_ONLY", "SettingDoc", "config_table"]

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

    # --- covgen gate ------------------------------------------------------------------------
    #: Fail when total line coverage is below this percentage.
    fail_under: float | None = Field(default=None, ge=0, le=100)
    #: Fail when coverage of the changed lines is below this percentage (needs --diff).
    diff_fail_under: float | None = Field(default=None, ge=0, le=100)
    every_changed_line: bool = False
    #: Generate tests for the changed methods with uncovered changed lines first, then gate.
    fill: bool = False

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


@dataclass(frozen=True, slots=True)
class SettingDoc:
    """What the configuration table says about one setting beyond its type and default."""

    help: str
    #: Commands taking it as a flag: ``gaps``, ``run``, ``doctor`` (``--NAME``) and ``pytest`` (``--ai-NAME``).
    #: Every command reads every setting from the file and the environment; a flag is where it is spelt out.
    commands: tuple[str, ...]


_RUN = ("run",)
#: Every setting, once. A new command option is one line here (or in `FLAG_ONLY`); the README's
#: table and the test that holds the CLI to it follow.
SETTINGS: dict[str, SettingDoc] = {
    "format": SettingDoc("report format; sniffed from content when unset", ("gaps", "gate")),
    "include": SettingDoc("only files matching these globs (repo-relative)", ("gaps", "run")),
    "exclude": SettingDoc("skip files matching these globs", ("gaps", "run")),
    "max_gaps": SettingDoc("target (or show) at most N gaps", ("gaps", "run", "gate", "pytest")),
    "min_lines": SettingDoc("skip methods with fewer uncovered lines", ("gaps", "run")),
    "source_roots": SettingDoc("where a JaCoCo report's `package/File.java` is looked for", ("gaps", "run")),
    "fail_under": SettingDoc("gate: fail when total line coverage is below this percentage", ("gate",)),
    "diff_fail_under": SettingDoc("gate: fail when coverage of the changed lines is below this percentage", ("gate",)),
    "every_changed_line": SettingDoc("gate: fail while any changed executable line is uncovered", ("gate",)),
    "fill": SettingDoc("gate: first write tests for the changed methods with uncovered changed lines", ("gate",)),
    "engine": SettingDoc("candidate generator", ("run", "gate", "doctor", "pytest")),
    "model_url": SettingDoc("vLLM OpenAI-compatible base URL (several: comma-separated, or the flag repeated); unset: no model configured", ("run", "gate", "doctor", "pytest")),
    "model": SettingDoc("served model name; unset: the first of `/v1/models`", ("run", "gate", "doctor", "pytest")),
    "concurrency": SettingDoc("requests in flight at once", _RUN),
    "candidates": SettingDoc("candidates per request (vLLM's `n`)", _RUN),
    "max_attempts": SettingDoc("attempts per gap, the first plus repairs", _RUN),
    "runs": SettingDoc("runs every accepted test must pass", _RUN),
    "test_timeout": SettingDoc("seconds one candidate test may take", _RUN),
    "temperature": SettingDoc("sampling temperature", _RUN),
    "seed": SettingDoc("sampling seed", _RUN),
    "max_tokens": SettingDoc("max completion tokens per answer", _RUN),
    "structured": SettingDoc("ask for JSON-schema structured output", _RUN),
    "wait_for_model": SettingDoc("seconds to wait for the model server to come up", _RUN),
    "request_timeout": SettingDoc("seconds one model request may go unanswered", _RUN),
    "budget_seconds": SettingDoc("stop asking the engine after this many seconds; what was proven is kept", ("run", "gate", "pytest")),
    "explore_seconds": SettingDoc("exploration budget per gap for the model-free engine", ("run", "gate")),
    "explore_attempts": SettingDoc("budget per gap in calls instead of seconds (the same tests on any machine)", ("run", "gate")),
    "test_dir": SettingDoc("where generated Python tests go (Java: beside the package under src/test/java)", ("run", "gate", "pytest")),
    "python": SettingDoc("the project's interpreter; unset: covgen's own", ("run", "gate", "doctor")),
    "sandbox": SettingDoc("strict: refuse to run without filesystem and network isolation", ("run", "gate", "doctor")),
    "screen": SettingDoc("strict: candidates may reach only covgen's allowlist; permissive: the older denylist", _RUN),
    "classpath": SettingDoc("Java: compiled classes and test libraries; unset: from Maven, Gradle or javac", ("run", "gate", "doctor")),
    "source_root": SettingDoc("Java: the production sources' folder; unset: src/main/java", ("run", "gate", "doctor")),
    "jacoco_agent": SettingDoc("Java: the JaCoCo agent jar; unset: the local Maven repository, else /usr/share/java",
                               ("run", "gate", "doctor")),
    "junit_launcher": SettingDoc("Java: junit-platform-console-standalone; unset: as for `jacoco_agent`", ("run", "gate", "doctor")),
    "audit_log": SettingDoc("append-only JSONL of model requests and answers (redacted), relative to the root", _RUN),
}
#: Options that are not settings: they name this invocation's inputs and outputs, not how the
#: project is handled, so a file or an environment variable setting them would surprise.
FLAG_ONLY: dict[str, str] = {
    "--root": "the project itself: every other setting is read from it",
    "--report": "this invocation's input",
    "--test-cmd": "this invocation's input",
    "--diff": "a git ref of this invocation",
    "--dry-run": "a one-off look, never a standing choice",
    "--output": "this invocation's output files",
    "--json": "this invocation's output format",
    "--record": "this invocation's recording",
    "--replay": "this invocation's recording",
    "--shard": "this CI job's share of the gaps, set per job (also env COVGEN_SHARD)",
    "--ai-fill-gaps": "a pytest switch (ini key `ai_fill_gaps`), not a covgen setting",
    "--ai-fill-gaps-strict": "a pytest switch (ini key `ai_fill_gaps_strict`)",
    "--ai-fill-gaps-with-failures": "a pytest switch (ini key `ai_fill_gaps_with_failures`)",
}


def flag_of(name: str, command: str) -> str:
    """How `command` spells setting `name` as a flag."""
    return ("--ai-" if command == "pytest" else "--") + name.replace("_", "-")


def config_table() -> str:
    """The README's configuration table, rendered from `Settings` and `SETTINGS`."""
    rows = ["| key | environment | flags | type | default | meaning |", "|---|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        doc = SETTINGS[name]
        flags = "<br>".join(
            f"`{flag}` ({', '.join(c for c in doc.commands if flag_of(name, c) == flag)})"
            for flag in dict.fromkeys(flag_of(name, c) for c in doc.commands)
        )
        rows.append(f"| `{name}` | `{_ENV_PREFIX}{name.upper()}` | {flags} | {_type_name(field.annotation)} "
                    f"| {_default_text(field.default)} | {doc.help} |")
    return "\n".join(rows) + "\n"


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, types.UnionType):
        return " ".join(_type_name(arg) for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{arg}`" for arg in get_args(annotation))
    if get_origin(annotation) is tuple:
        return "list of str"
    return str(getattr(annotation, "__name__", annotation))


def _default_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        return ", ".join(f"`{item}`" for item in value) or "—"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


_ENV_PREFIX = "COVGEN_"
#: Settings naming places in the project. From covgen.toml or pyproject.toml (or by default) they
#: must stay inside it: the file is in the repository, which a pull request can change. Flags and COVGEN_*
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
    for key, (value, where) in _read_files(root).items():
        values[key] = value
        origin[key] = where
    for name, (value, where) in (ini or {}).items():
        values[name] = value
        origin[name] = where
    environment = os.environ if env is None else env
    for variable in environment:
        if variable.startswith(_ENV_PREFIX) and variable not in _OTHER_VARIABLES and variable.isupper():
            _known(variable[len(_ENV_PREFIX):].lower(), f"environment variable {variable}", _ENV_PREFIX, upper=True)
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
    return _kept_inside(settings, root, origin)


def _kept_inside(settings: Settings, root: Path, origin: dict[str, str]) -> Settings:
    """Refuse project paths from the project's files (or defaults) that leave the project."""
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
                    f"{where}: {path!r} {escape}; paths from the project's files and defaults stay inside the project "
                    f"(a command-line flag or {_ENV_PREFIX}{name.upper()} may point elsewhere)", slug="outside-root",
                )
    files = (str(root / "pyproject.toml"), str(root / _STANDALONE))
    if settings.python is not None and origin.get("python", "").startswith(files):
        # Relative to the project, like every other path in its configuration file.
        return settings.model_copy(update={"python": str(root.absolute() / settings.python)})
    return settings


def _read_files(root: Path) -> dict[str, tuple[Any, str]]:
    """The settings of ``covgen.toml`` (top-level keys) or ``[tool.covgen]``: name → (value, where).

    Both at once is refused rather than merged: which file a key came from would be one more
    thing to look up, and a stale table left behind would silently lose or win.
    """
    pyproject = root / "pyproject.toml"
    standalone = root / _STANDALONE
    table = _read_table(pyproject, ("tool", "covgen")) if pyproject.is_file() else {}
    own = _read_table(standalone, ()) if standalone.is_file() else {}
    if table and own:
        raise ConfigError(f"{standalone} and {pyproject} [tool.covgen] both set covgen settings: keep one", slug="two-files")
    where, keys = (str(standalone), own) if own else (f"{pyproject} [tool.covgen]", table)
    found = {}
    for key, value in keys.items():
        name = _known(key.replace("-", "_"), f"{where}: key {key!r}", "", dashed="-" in key)
        found[name] = (value, f"{where} {key}")
    return found


#: ``COVGEN_*`` variables that are not settings: secrets, debugging, covgen's own markers, the
#: compose file's and the image script's inputs (exported in the same shell). Any other
#: ``COVGEN_*`` is a misspelt setting and stops covgen.
_OTHER_VARIABLES = frozenset(_ENV_PREFIX + name for name in (
    "API_KEY", "DEBUG", "PROBE_OUT", "PROBE_TIMEOUT", "PROBE_CONTEXTS", "PROBE_WATCH", "REGENERATE_GOLDEN",
    "PROJECT", "REPORT", "UID", "GID", "DEBIAN_MIRROR", "SHARD",
))
_STANDALONE = "covgen.toml"


def _known(name: str, where: str, prefix: str, *, upper: bool = False, dashed: bool = False) -> str:
    """`name` if it is a setting, else a ConfigError naming it, where it was and the nearest setting."""
    if name in Settings.model_fields:
        return name
    near = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
    hint = ""
    if near:
        spelt = prefix + (near[0].upper() if upper else near[0].replace("_", "-") if dashed else near[0])
        hint = f"; did you mean {spelt!r}?"
    raise ConfigError(f"{where} is not a covgen setting{hint} (the README's configuration table lists them)",
                      slug="unknown-key")


def _read_table(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            document: Any = tomllib.load(stream)
    except (tomllib.TOMLDecodeError, OSError) as err:
        raise ConfigError(f"{path}: cannot read ({err})", slug="bad-toml") from err
    for key in keys:
        document = document.get(key, {}) if isinstance(document, dict) else None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: [{'.'.join(keys)}] must be a table", slug="bad-value")
    return document
