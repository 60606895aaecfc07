"""One config table: the README's is the one the code renders, and every option is in it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from conftest import REPO
from covgen import pytest_plugin
from covgen.cli import cli
from covgen.config import FLAG_ONLY, SETTINGS, Settings, config_table, flag_of, load_settings
from covgen.errors import ConfigError


def test_readme_table_is_the_rendered_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- config-table:[^\n]*-->\n(.*?)<!-- /config-table -->", readme, re.S)
    assert found is not None, "README lost its config-table markers"
    assert found.group(1) == config_table(), "regenerate the README table from covgen.config.config_table()"


def _flags() -> dict[str, set[str]]:
    """Every long option of every command: the click commands, and the plugin as ``pytest``."""
    commands: dict[str, set[str]] = {}
    for name, command in cli.commands.items():
        commands[name] = {opt for param in command.params if isinstance(param, click.Option)
                          for opt in param.opts if opt.startswith("--") and opt != "--help"}
    commands["pytest"] = {"--" + name.replace("_", "-") for name in pytest_plugin._SWITCHES} | {
        flag_of(name, "pytest") for name in pytest_plugin._SETTINGS}
    return commands


def test_every_option_is_a_setting_or_flag_only() -> None:
    every = _flags()
    assert {"gaps", "run", "doctor", "pytest"} <= every.keys()
    for command, flags in every.items():
        settings = {flag_of(name, command): name for name, doc in SETTINGS.items() if command in doc.commands}
        for flag in flags:
            assert flag in settings or flag in FLAG_ONLY, (
                f"covgen {command} {flag} is in no row of the config table: add it to covgen.config.SETTINGS "
                "(or FLAG_ONLY with a reason)")
        for flag, name in settings.items():
            assert flag in flags, f"SETTINGS says {command} takes {flag} ({name}), and it does not"


def test_every_setting_is_described_and_has_a_flag() -> None:
    assert SETTINGS.keys() == Settings.model_fields.keys()
    assert all(doc.commands and doc.help for doc in SETTINGS.values())


def test_flag_only_options_are_not_settings() -> None:
    assert not {flag.removeprefix("--").replace("-", "_") for flag in FLAG_ONLY} & Settings.model_fields.keys()


def test_covgen_toml_is_read_and_layered_under_env_and_flags(tmp_path: Path) -> None:
    (tmp_path / "covgen.toml").write_text('max-gaps = 5\nengine = "explore"\nmin_lines = 3\n')
    settings = load_settings(tmp_path, {"min_lines": 9}, env={"COVGEN_ENGINE": "llm"})
    assert (settings.max_gaps, settings.engine, settings.min_lines) == (5, "llm", 9)


def test_covgen_toml_and_pyproject_table_at_once_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "covgen.toml").write_text("max_gaps = 5\n")
    (tmp_path / "pyproject.toml").write_text("[tool.covgen]\nmax_gaps = 6\n")
    with pytest.raises(ConfigError, match="both set covgen settings: keep one"):
        load_settings(tmp_path, env={})


def test_a_pyproject_without_a_covgen_table_leaves_covgen_toml_alone(tmp_path: Path) -> None:
    (tmp_path / "covgen.toml").write_text("max_gaps = 5\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert load_settings(tmp_path, env={}).max_gaps == 5


@pytest.mark.parametrize(("file", "text", "where", "nearest"), [
    ("pyproject.toml", "[tool.covgen]\nmax-gap = 3\n", "pyproject.toml [tool.covgen]: key 'max-gap'", "'max-gaps'"),
    ("covgen.toml", "test_dirs = 'x'\n", "covgen.toml: key 'test_dirs'", "'test_dir'"),
])
def test_unknown_key_names_it_the_file_and_the_nearest(tmp_path: Path, file: str, text: str, where: str,
                                                       nearest: str) -> None:
    (tmp_path / file).write_text(text)
    with pytest.raises(ConfigError, match="not a covgen setting") as caught:
        load_settings(tmp_path, env={})
    assert f"{tmp_path / where}" in str(caught.value)
    assert f"did you mean {nearest}?" in str(caught.value)


def test_unknown_environment_variable_names_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable COVGEN_MODEL_UR is not a covgen setting; "
                                          "did you mean 'COVGEN_MODEL_URL'"):
        load_settings(tmp_path, env={"COVGEN_MODEL_UR": "http://x"})
    # Not settings, and not errors: the API key, debugging, the compose file's inputs.
    assert load_settings(tmp_path, env={"COVGEN_API_KEY": "k", "COVGEN_DEBUG": "1", "COVGEN_UID": "1000"}).engine == "auto"


def test_unknown_key_through_the_cli_is_one_line_and_exit_2(tmp_path: Path, covgen) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "covgen.toml").write_text("sandboxx = 'strict'\n")
    result = covgen("doctor", "--root", tmp_path)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"covgen: error: {tmp_path / 'covgen.toml'}: key 'sandboxx' is not a covgen setting; did you mean 'sandbox'? "
        "(the README's configuration table lists them)"]


def test_covgen_toml_paths_stay_inside_the_project_like_pyproject_ones(tmp_path: Path) -> None:
    (tmp_path / "covgen.toml").write_text('test_dir = "../elsewhere"\npython = ".venv/bin/python"\n')
    with pytest.raises(ConfigError, match=r"covgen.toml test_dir: '../elsewhere'"):
        load_settings(tmp_path, env={})
    (tmp_path / "covgen.toml").write_text('python = ".venv/bin/python"\n')
    assert load_settings(tmp_path, env={}).python == str(tmp_path.absolute() / ".venv/bin/python")
