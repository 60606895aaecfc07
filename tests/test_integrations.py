"""The CI integrations under integrations/: each parses, validates against its CI system's schema
where one ships on PyPI (check-jsonschema's vendored schemas), and the commands it holds run —
taken from the file, not retyped here — against a copy of a fixture, with covgen's model-free
engine where a model would answer and the CI system's files pointed at temporary ones.

What cannot run here is checked for shape only and named: the `uses:` steps of the GitHub Action
(SARIF and artifact upload), the Action's pip install (asserted to install this checkout, not
run: it would reinstall covgen into the shared interpreter), `mvn`/`gradle` themselves (their
plugins are not reachable offline: the exec command lines run instead), Jenkins' `junit` and
`archiveArtifacts` steps (their patterns are matched against what covgen wrote).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from conftest import FIXTURES, REPO

INTEGRATIONS = REPO / "integrations"
ACTION = INTEGRATIONS / "github" / "action.yml"
GITLAB = INTEGRATIONS / "gitlab" / "covgen.gitlab-ci.yml"
JENKINSFILE = INTEGRATIONS / "jenkins" / "Jenkinsfile"
HOOKS = INTEGRATIONS / "pre-commit" / ".pre-commit-hooks.yaml"
MAVEN = INTEGRATIONS / "maven" / "covgen-profile.xml"
GRADLE = INTEGRATIONS / "gradle" / "covgen.gradle"
POM = "{http://maven.apache.org/POM/4.0.0}"

# The README's gate demo: one line of a method the fixture's tests never run.
CHANGED_FILE = "inventory/items.py"
CHANGE = ("bandwidth must be positive", "no bandwidth")
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # GitHub's `shell: bash`


# --- shared helpers --------------------------------------------------------------------------

def closed_port_url() -> str:
    """A model URL nothing listens on: engine auto falls back to the model-free engine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def ci_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CI shell: `covgen` on PATH is this checkout's covgen."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "covgen"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m covgen "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVGEN_", "GITHUB_", "CI_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(REPO)
    return env


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def python_project(tmp_path: Path) -> Path:
    """The Python fixture in a git repository: its report committed on main, then the demo change."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    changed = root / CHANGED_FILE
    changed.write_text(changed.read_text().replace(*CHANGE))
    return root


def java_project(tmp_path: Path, report_path: str) -> Path:
    """The Java fixture with its JaCoCo report where the build tool writes it."""
    root = tmp_path / "java"
    shutil.copytree(FIXTURES / "java", root)
    (root / report_path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "reports" / "jacoco.xml", root / report_path)
    return root


def check_schema(builtin: str, path: Path) -> None:
    done = subprocess.run(["check-jsonschema", "--builtin-schema", builtin, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def failed_testcases(junit: Path) -> set[str]:
    tree = etree.parse(str(junit))
    return {case.get("name") for case in tree.iter("testcase") if case.find("failure") is not None}


# --- GitHub Action ---------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def substitute(value: str, context: Mapping[str, str]) -> str:
    """Expand `${{ a.b }}` as the runner does, for the plain property lookups the action uses."""
    return EXPRESSION.sub(lambda m: context[m.group(1)], value)


def read_github_output(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT: `k=v` lines and `k<<DELIM … DELIM` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delimiter:
                    break
                body.append(item)
            outputs[key] = "\n".join(body)
        elif line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def test_the_action_validates_against_githubs_action_schema() -> None:
    check_schema("vendor.github-actions", ACTION)
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) >= {"mode", "report", "model-url", "diff-base", "fail-under", "diff-fail-under", "args", "commit-tests"}
    assert action["inputs"]["commit-tests"]["default"] == "false"  # committing is opt-in
    uses = {step["uses"].split("@")[0]: step for step in action["runs"]["steps"] if "uses" in step}
    assert uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"] == "covgen.sarif"
    assert uses["actions/upload-artifact"]["with"]["path"] == "${{ steps.covgen.outputs.files-written }}"
    for step in action["runs"]["steps"]:
        if "run" in step:  # inputs reach scripts through env only: no injection through an input
            assert "${{" not in step["run"], step["name"]


@pytest.mark.e2e
def test_the_action_gates_fills_commits_and_fails_the_job(tmp_path: Path, ci_env: dict[str, str]) -> None:
    """Run the action's shell steps in order, as the runner would, on a pull request's checkout."""
    origin = tmp_path / "origin.git"
    project = python_project(tmp_path)
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "-q", "origin", "main")
    git(project, "checkout", "-q", "-b", "feature")
    git(project, "commit", "-qam", "the change under review")
    git(project, "push", "-q", "origin", "feature")
    git(project, "fetch", "-q", "origin")

    action = yaml.safe_load(ACTION.read_text())
    inputs = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    inputs.update({
        "report": "reports/coverage.xml", "fail-under": "90", "diff-fail-under": "100", "commit-tests": "true",
        "model-url": closed_port_url(), "args": "--fill --engine explore --explore-attempts 50",
    })
    summary, output = tmp_path / "step_summary.md", tmp_path / "github_output"
    summary.touch()
    output.touch()
    context = {f"inputs.{k}": v for k, v in inputs.items()}
    context.update({"github.action_path": str(ACTION.parent), "github.base_ref": "main", "github.head_ref": "feature"})
    env = {**ci_env, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output), "GITHUB_REF_NAME": "3/merge"}

    # The install step runs with a pip that records what it was asked to install.
    recorder_bin = tmp_path / "recorder"
    recorder_bin.mkdir()
    (recorder_bin / "python3").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/pip-args"\n')
    (recorder_bin / "python3").chmod(0o755)

    codes: dict[str, int] = {}
    logs: dict[str, str] = {}
    for step in action["runs"]["steps"]:
        if "run" not in step:
            continue
        for key, value in read_github_output(output).items():
            context[f"steps.covgen.outputs.{key}"] = value
        step_env = {**env, **{k: substitute(str(v), context) for k, v in step.get("env", {}).items()}}
        if step["name"] == "Install covgen":
            step_env["PATH"] = f"{recorder_bin}:{step_env['PATH']}"
        done = subprocess.run([*GITHUB_BASH, "-c", step["run"]], cwd=project, env=step_env, capture_output=True, text=True)
        codes[step["name"]], logs[step["name"]] = done.returncode, done.stdout + done.stderr

    pip_args = (tmp_path / "pip-args").read_text().split("\n")
    assert pip_args[:3] == ["-m", "pip", "install"]
    installed = Path(pip_args[-2]).resolve()
    assert installed == REPO and tomllib.loads((installed / "pyproject.toml").read_text())["project"]["name"] == "covgen"

    assert codes["Run covgen"] == 0, logs["Run covgen"]  # the failure is reported by the last step
    outputs = read_github_output(output)
    assert outputs["exit-code"] == "1"  # the total is below 90 %
    assert outputs["files-written"] == "tests/covgen/test_inventory_items_covgen.py"
    markdown = summary.read_text()
    assert "## covgen gate: FAILED" in markdown and "total lines" in markdown
    result = json.loads((project / "covgen.json").read_text())
    assert result["schema"] == "covgen.gate/1" and result["diff"]["ref"] == "origin/main"
    assert result["filled"]["before"]["diff_lines"]["covered"] == 0 and result["diff"]["lines"]["covered"] == 1
    assert json.loads((project / "covgen.sarif").read_text())["version"] == "2.1.0"
    assert failed_testcases(project / "covgen-junit.xml") == {"total lines"}

    commit = "Commit the written tests to the pull request's branch"
    assert codes[commit] == 0, logs[commit]
    assert git(origin, "log", "-1", "--format=%s", "feature") == "covgen: add proven tests for uncovered code"
    assert git(origin, "show", "--name-only", "--format=", "feature") == "tests/covgen/test_inventory_items_covgen.py"

    assert codes["Fail when covgen failed"] == 1
    assert "::error title=covgen::covgen exited 1" in logs["Fail when covgen failed"]


# --- GitLab CI -------------------------------------------------------------------------------

class _NoteServer(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": json.loads(body)})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 1}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gitlab_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for GitLab's notes API that records what was posted."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_NoteServer,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_gitlab_template_validates_against_the_gitlab_ci_schema() -> None:
    check_schema("vendor.gitlab-ci", GITLAB)
    job = yaml.safe_load(GITLAB.read_text())["covgen-gate"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["artifacts"]["reports"]["junit"] == "covgen-junit.xml"
    assert job["artifacts"]["when"] == "always"


@pytest.mark.e2e
def test_the_gitlab_job_gates_the_merge_request_and_posts_the_note(
        tmp_path: Path, ci_env: dict[str, str], gitlab_api: tuple[str, list[dict[str, Any]]]) -> None:
    project = python_project(tmp_path)
    base = git(project, "rev-parse", "HEAD")
    git(project, "checkout", "-q", "-b", "feature")
    git(project, "commit", "-qam", "the change under review")
    template = yaml.safe_load(GITLAB.read_text())
    job = template["covgen-gate"]
    variables = {name: spec["value"] for name, spec in template["variables"].items()}
    variables.update(job["variables"])
    variables["COVGATE_REPORT"] = "reports/coverage.xml"
    api_url, received = gitlab_api
    env = {**ci_env, **variables, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
           "CI_API_V4_URL": api_url, "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3", "CI_JOB_TOKEN": "job-token"}
    # GitLab runs a job's script lines in one bash that stops at the first failing command.
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", "\n".join(job["script"])], cwd=project, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr  # 0 % of the changed line < the default 80 %
    assert "posted the summary to the merge request (HTTP 201)" in done.stdout
    [note] = received
    assert note["path"] == "/api/v4/projects/7/merge_requests/3/notes"
    assert note["headers"]["job-token"] == "job-token"
    assert note["json"]["body"] == (project / "covgen.md").read_text()
    assert "`Digital.download_minutes`" in note["json"]["body"]
    assert failed_testcases(project / job["artifacts"]["reports"]["junit"]) == {"diff lines"}


# --- Jenkins ---------------------------------------------------------------------------------

def jenkins_stage(text: str, name: str) -> str:
    """The body of `stage('NAME') { … }`, found by matching braces."""
    start = text.index(f"stage('{name}')")
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening + 1:index]
    raise AssertionError(f"stage {name!r} is not closed")


def test_the_jenkinsfile_is_a_declarative_pipeline_with_a_covgen_stage() -> None:
    text = JENKINSFILE.read_text()
    code = re.sub(r"//[^\n]*|'[^'\n]*'", "", text)  # braces in comments and strings do not count
    assert code.count("{") == code.count("}")
    assert text.lstrip().split("\n")[0].startswith("//") and re.search(r"^pipeline \{", text, re.M)
    for block in ("agent", "environment {", "stages {", "post {", "always {"):
        assert block in text
    stage = jenkins_stage(text, "covgen")
    assert "junit " in stage and "archiveArtifacts " in stage
    model_url = re.search(r"COVGEN_MODEL_URL = '([^']*)'", text)
    assert model_url and model_url.group(1).startswith("http://") and "@" not in model_url.group(1)  # no credentials
    assert "credentials(" not in text


@pytest.mark.e2e
def test_the_jenkins_stage_writes_tests_that_its_archive_step_keeps(tmp_path: Path, ci_env: dict[str, str]) -> None:
    text = JENKINSFILE.read_text()
    stage = jenkins_stage(text, "covgen")
    environment = dict(re.findall(r"^\s*(\w+) = '([^']*)'", text[text.index("environment {"):text.index("stages {")], re.M))
    # Python's report (the stage's comment), the model server down, a small budget.
    environment.update({"COVERAGE_REPORT": "reports/coverage.xml", "COVGEN_MODEL_URL": closed_port_url(),
                        "COVGEN_MAX_GAPS": "1", "COVGEN_EXPLORE_ATTEMPTS": "50"})
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "python", project)
    commands = re.findall(r"^\s*sh '([^']*)'", stage, re.M)
    assert [c.split()[:2] for c in commands] == [["covgen", "run"], ["covgen", "gate"]]
    codes = []
    for command in commands:  # Jenkins' sh step: sh -xe
        done = subprocess.run(["sh", "-xe", "-c", command], cwd=project, env={**ci_env, **environment}, capture_output=True, text=True)
        codes.append(done.returncode)
    assert codes == [0, 1]  # the run completed; the fixture's report is below the 80 % gate
    result = json.loads((project / "covgen.json").read_text())
    assert result["engine_reason"].startswith(f"the model endpoint did not answer (model server at {environment['COVGEN_MODEL_URL']}")
    assert result["gaps_targeted"] == 1  # COVGEN_MAX_GAPS reached covgen through the stage's environment
    assert result["accepted_tests"] >= 1 and result["files_written"]
    archived = re.search(r"archiveArtifacts [^\n]*artifacts: '([^']*)'", stage)
    assert archived
    patterns = [p.strip() for p in archived.group(1).split(",")]
    for written in [*result["files_written"], "covgen.md", "covgen.json", "covgen-gate.md"]:
        assert (project / written).is_file()
        assert any(fnmatch.fnmatch(written, p.replace("**", "*")) for p in patterns), written
    for junit in re.findall(r"junit [^\n]*testResults: '([^']*)'", stage):
        assert (project / junit).is_file()
    assert failed_testcases(project / "covgen-gate.xml") == {"total lines"}


# --- pre-commit ------------------------------------------------------------------------------

def test_the_pre_commit_hooks_are_at_the_root_too_and_well_formed() -> None:
    assert (REPO / ".pre-commit-hooks.yaml").read_text() == HOOKS.read_text()  # pre-commit reads the root's
    [hook] = yaml.safe_load(HOOKS.read_text())
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["language"] == "python"  # pre-commit pip-installs this repository for it
    assert hook["pass_filenames"] is False  # the hook's argument is the report, not the staged files
    assert re.search(hook["files"], "inventory/items.py") and re.search(hook["files"], "src/main/java/A.java")
    assert not re.search(hook["files"], "README.md")


@pytest.mark.e2e
def test_the_pre_commit_hook_fails_on_an_uncovered_staged_line(tmp_path: Path, ci_env: dict[str, str]) -> None:
    [hook] = yaml.safe_load(HOOKS.read_text())
    project = python_project(tmp_path)
    git(project, "add", CHANGED_FILE)
    # pre-commit runs `entry` followed by the hook's `args` (here the report, as the README shows).
    done = subprocess.run([*shlex.split(hook["entry"]), "reports/coverage.xml"], cwd=project, env=ci_env,
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Digital.download_minutes: line 67" in done.stdout
    git(project, "commit", "-qm", "covered elsewhere")  # nothing staged any more: nothing to gate
    done = subprocess.run([*shlex.split(hook["entry"]), "reports/coverage.xml"], cwd=project, env=ci_env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- Maven and Gradle ------------------------------------------------------------------------

def maven_executions(properties: Mapping[str, str]) -> list[tuple[str, str, list[str]]]:
    """(phase, id, argv) per exec execution of the profile, `${…}` expanded as Maven would."""
    profile = etree.parse(str(MAVEN)).getroot()
    ns = POM if profile.tag.startswith(POM) else ""
    values = {el.tag.removeprefix(ns): el.text or "" for el in profile.find(f"{ns}properties")}
    values.update(properties)

    def expand(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: expand(values[m.group(1)]), text)

    [plugin] = profile.iter(f"{ns}plugin")
    assert (plugin.findtext(f"{ns}groupId"), plugin.findtext(f"{ns}artifactId")) == ("org.codehaus.mojo", "exec-maven-plugin")
    executions = []
    for execution in plugin.iter(f"{ns}execution"):
        assert [g.text for g in execution.iter(f"{ns}goal")] == ["exec"]
        config = execution.find(f"{ns}configuration")
        argv = [expand(config.findtext(f"{ns}executable") or "")]
        argv += [expand(a.text or "") for a in config.iter(f"{ns}argument")]
        executions.append((execution.findtext(f"{ns}phase") or "", execution.findtext(f"{ns}id") or "", argv))
    return executions


@pytest.mark.e2e
def test_the_maven_profile_runs_covgen_then_the_gate_on_the_jacoco_report(tmp_path: Path, ci_env: dict[str, str]) -> None:
    profile = etree.parse(str(MAVEN)).getroot()
    assert profile.tag.endswith("profile") and profile.findtext("id") == "covgen"  # mvn -Pcovgen
    project = java_project(tmp_path, "target/site/jacoco/jacoco.xml")
    # As `mvn -Pcovgen verify -Dcovgen.failUnder=90 -Dcovgen.modelUrl=…` would set them.
    executions = maven_executions({"project.build.directory": str(project / "target"), "project.basedir": str(project),
                                   "covgen.failUnder": "90", "covgen.modelUrl": closed_port_url()})
    assert [(phase, name) for phase, name, _ in executions] == [("verify", "covgen-run"), ("verify", "covgen-gate")]
    codes = [subprocess.run(argv, cwd=project, env=ci_env, capture_output=True, text=True).returncode for _, _, argv in executions]
    assert codes == [0, 1]
    result = json.loads((project / "target" / "covgen.json").read_text())
    assert result["schema"] == "covgen.run/1" and result["gaps_targeted"] > 0
    assert any("java" in g["id"] for g in result["gaps"])
    assert (project / "target" / "covgen.md").is_file()
    assert failed_testcases(project / "target" / "covgen-gate.xml") == {"total lines"}


def gradle_task(text: str, name: str) -> str:
    match = re.search(rf"tasks\.register\('{name}', Exec\) \{{\n(.*?)\n\}}", text, re.S)
    assert match, name
    return match.group(1)


def gradle_argv(body: str, properties: Mapping[str, str], text: str) -> list[str]:
    """A task's commandLine plus args, with covgenProperty(…)/covgenReport resolved from -P values."""
    def resolve(token: str) -> list[str]:
        token = token.strip()
        call = re.fullmatch(r"covgenProperty\('([^']+)', '([^']*)'\)(\.tokenize\(\))?", token)
        if call:
            value = properties.get(call.group(1), call.group(2))
            return value.split() if call.group(3) else [value]
        if token == "covgenReport":
            default = re.search(r"def covgenReport = (.+)", text)
            assert default
            return resolve(default.group(1))
        assert re.fullmatch(r"'[^']*'", token), token
        return [token[1:-1]]

    command = re.search(r"^\s*commandLine (.+)$", body, re.M)
    assert command
    tokens = re.findall(r"covgenProperty\([^)]*\)(?:\.tokenize\(\))?|'[^']*'|\w+", command.group(1))
    argv = [arg for token in tokens for arg in resolve(token)]
    extra = re.search(r"^\s*args (.+)$", body, re.M)
    return argv + (resolve(extra.group(1)) if extra else [])


def test_the_gradle_script_defines_covgen_tasks_after_the_jacoco_report() -> None:
    text = GRADLE.read_text()
    code = re.sub(r"//[^\n]*|'[^'\n]*'", "", text)
    assert code.count("{") == code.count("}") and code.count("(") == code.count(")")
    report = re.search(r"tasks\.named\('jacocoTestReport'\) \{\n(.*?)\n\}", text, re.S)
    assert report and "dependsOn 'test'" in report.group(1) and "xml.required = true" in report.group(1)
    run, gate = gradle_task(text, "covgenRun"), gradle_task(text, "covgenGate")
    assert "dependsOn 'jacocoTestReport'" in run and "dependsOn 'jacocoTestReport'" in gate
    assert "mustRunAfter 'covgenRun'" in gate


@pytest.mark.e2e
def test_the_gradle_tasks_run_covgen_then_the_gate(tmp_path: Path, ci_env: dict[str, str]) -> None:
    text = GRADLE.read_text()
    project = java_project(tmp_path, "build/reports/jacoco/test/jacocoTestReport.xml")
    properties = {"covgen.modelUrl": closed_port_url(), "covgen.failUnder": "40", "covgen.runArgs": "--max-gaps 2"}
    run = gradle_argv(gradle_task(text, "covgenRun"), properties, text)
    gate = gradle_argv(gradle_task(text, "covgenGate"), properties, text)
    assert run[:4] == ["covgen", "run", "--report", "build/reports/jacoco/test/jacocoTestReport.xml"]
    assert run[-2:] == ["--max-gaps", "2"]
    codes = [subprocess.run(argv, cwd=project, env=ci_env, capture_output=True, text=True).returncode for argv in (run, gate)]
    assert codes == [0, 0]  # the fixture's 44.76 % clears 40 %
    result = json.loads((project / "build" / "covgen.json").read_text())
    assert result["gaps_targeted"] == 2
    assert (project / "build" / "covgen-gate.md").read_text().startswith("## covgen gate: passed")


# --- the README's copy-paste examples --------------------------------------------------------

def readme_blocks(heading: str, language: str) -> list[str]:
    """The LANGUAGE code blocks under `### HEADING` in the README's Integrations section."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Integrations\n"):]
    section = section[:section.index("\n## ", 1)]
    part = section[section.index(f"### {heading}\n"):]
    part = part[:part.find("\n### ", 1)] if "\n### " in part[1:] else part
    return re.findall(rf"```{language}\n(.*?)```", part, re.S)


@pytest.mark.parametrize(("heading", "builtin"), [("GitHub Actions", "vendor.github-workflows"), ("GitLab CI", "vendor.gitlab-ci")])
def test_the_readme_pipelines_validate_against_their_ci_schema(heading: str, builtin: str, tmp_path: Path) -> None:
    [example] = readme_blocks(heading, "yaml")
    pipeline = tmp_path / "pipeline.yml"
    pipeline.write_text(example)
    check_schema(builtin, pipeline)


def test_the_readme_shows_the_files_as_they_are() -> None:
    readme = (REPO / "README.md").read_text()
    for path in (ACTION, GITLAB, JENKINSFILE, MAVEN, GRADLE, HOOKS.parent.parent.parent / ".pre-commit-hooks.yaml"):
        assert f"]({path.relative_to(REPO)})" in readme, path
    jenkinsfile = JENKINSFILE.read_text()
    [stage] = readme_blocks("Jenkins", "groovy")
    for line in stage.splitlines():
        code = re.sub(r"(^|\s+)// .*$", "", line).strip()  # the README's comments are its own
        if code:
            assert code in jenkinsfile, line
    [hooks] = readme_blocks("pre-commit", "yaml")
    [hook] = yaml.safe_load(hooks)["repos"][0]["hooks"]
    assert hook["id"] == yaml.safe_load(HOOKS.read_text())[0]["id"]
