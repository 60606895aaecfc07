"""The ``covgen`` command: thin click commands over library functions."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from covgen.errors import CovgenError

if TYPE_CHECKING:  # the CLI imports nothing heavy until a command runs
    from covgen.config import Settings
    from covgen.diffscope import DiffChanges
    from covgen.gate import GateResult, Thresholds
    from covgen.model import CoverageReport, Gap
    from covgen.pipeline import RunSummary

__all__ = ["main", "cli"]

T = TypeVar("T")

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
#: A bug in covgen, not in what it was given: distinct from a usage error, so CI can tell.
EXIT_INTERNAL = 4

_OUTPUT_HELP = "Also write KIND:PATH, KIND one of json, markdown, annotations, sarif, junit; PATH - is stdout (comma-separated)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="covgen")
def cli() -> None:
    """Close coverage gaps with tests that are proven, not guessed."""


@cli.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "report_format", type=click.Choice(["lcov", "cobertura", "jacoco", "coveragepy"]), help="Report format (default: sniffed from content).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Project root that report paths are relative to.")
@click.option("--diff", "diff_ref", metavar="REF", help="Only methods with lines changed since the merge base with REF.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching GLOB (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable).")
@click.option("--max-gaps", type=int, help="Show at most N gaps.")
@click.option("--min-lines", type=int, help="Skip methods with fewer than N uncovered lines (default 1).")
@click.option("--source-roots", metavar="DIR[,DIR]", help="Where a JaCoCo report's package/File.java is looked for (default src/main/java,src).")
@click.option("--json", "as_json", is_flag=True, help="Print the covgen.gaps/1 JSON object.")
def gaps(
    reports: tuple[Path, ...],
    report_format: str | None,
    root: Path,
    diff_ref: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    max_gaps: int | None,
    min_lines: int | None,
    source_roots: str | None,
    as_json: bool,
) -> None:
    """List the methods that REPORTS (lcov, Cobertura, JaCoCo, coverage.py JSON) say tests never reach."""
    from covgen.adapters import read_reports
    from covgen.api import source_roots_of
    from covgen.config import load_settings
    from covgen.gaps import find_gaps

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint="--root")
    settings = load_settings(
        root,
        {"format": report_format, "include": include, "exclude": exclude, "max_gaps": max_gaps, "min_lines": min_lines,
         "source_roots": source_roots},
    )
    report = read_reports(reports, fmt=settings.format, root=root, source_roots=source_roots_of(settings))
    changed = None
    if diff_ref is not None:
        from covgen.diffscope import changed_lines

        changed = changed_lines(root, diff_ref)
    search = find_gaps(
        report,
        root.resolve(),
        include=settings.include,
        exclude=settings.exclude,
        min_lines=settings.min_lines,
        max_gaps=settings.max_gaps,
        changed=changed,
    )
    for warning in (*report.warnings, *search.warnings):
        click.echo(f"covgen: warning: {warning}", err=True)
    if as_json:
        from covgen.output.gapsjson import gaps_document

        click.echo(json.dumps(gaps_document(report, search), indent=2))
    else:
        from covgen.output.console import print_gaps

        print_gaps(report, search, sys.stdout)


def _java_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags that find a Java project's classes and tools, for every command that runs Java tests."""
    for option in reversed((
        click.option("--classpath", metavar="CP", help="Java: compiled classes and test libraries (default: from Maven, Gradle, or the sources compiled)."),
        click.option("--source-root", metavar="DIR", help="Java: the production sources' folder (default src/main/java)."),
        click.option("--jacoco-agent", metavar="JAR", help="Java: the JaCoCo agent (default: the local Maven repository, else /usr/share/java)."),
        click.option("--junit-launcher", metavar="JAR", help="Java: junit-platform-console-standalone (default: as for --jacoco-agent)."),
    )):
        command = option(command)
    return command


@cli.command()
@click.option("--report", "reports", multiple=True, type=click.Path(path_type=Path), help="Coverage report(s) to start from (repeatable).")
@click.option("--test-cmd", help='Run this test command under coverage first instead of reading a report, e.g. "pytest -q".')
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Project root.")
@click.option("--engine", type=click.Choice(["auto", "llm", "explore", "hybrid", "replay", "vllm"]), help="Candidate generator (default auto).")
@click.option("--model-url", multiple=True,
              help="vLLM OpenAI-compatible base URL; repeat for several servers (env COVGEN_MODEL_URL, comma-separated).")
@click.option("--model", envvar="COVGEN_MODEL", help="Served model name (env COVGEN_MODEL; default: ask /v1/models).")
@click.option("--max-gaps", type=int, help="Target at most N gaps.")
@click.option("--diff", "diff_ref", metavar="REF", help="Only methods changed since the merge base with REF.")
@click.option("--include", multiple=True, metavar="GLOB")
@click.option("--exclude", multiple=True, metavar="GLOB")
@click.option("--min-lines", type=int)
@click.option("--source-roots", metavar="DIR[,DIR]", help="Where a JaCoCo report's package/File.java is looked for (default src/main/java,src).")
@click.option("--budget-seconds", type=float,
              help="Stop asking the engine after this many seconds (answers still in flight are dropped); what was proven is kept.")
@click.option("--dry-run", is_flag=True, help="Show the gaps and the prompts; call nothing, run nothing, write nothing.")
@click.option("--shard", "shard_text", metavar="I/N", envvar="COVGEN_SHARD",
              help="Work on shard I of N (1-based): one CI job's share of the gaps; combine results with covgen merge (env COVGEN_SHARD).")
@click.option("--output", "outputs", metavar="KIND:PATH[,…]", help=_OUTPUT_HELP)
@click.option("--python", "python_path", help="Interpreter of the project's environment (default: covgen's own).")
@click.option("--concurrency", type=int, help="Requests in flight at once (default 32).")
@click.option("--candidates", type=int, help="Candidates per request, vLLM's n (default 4).")
@click.option("--max-attempts", type=int, help="Attempts per gap, the first plus repairs (default 2).")
@click.option("--runs", type=int, help="Runs every accepted test must pass (default 3).")
@click.option("--test-timeout", type=float, help="Seconds one candidate test may take (default 10).")
@click.option("--temperature", type=float)
@click.option("--seed", type=int)
@click.option("--max-tokens", type=int, help="Max completion tokens per answer (default 2048).")
@click.option("--structured", is_flag=True, default=None, help="Ask for JSON-schema structured output.")
@click.option("--wait-for-model", type=float, help="Seconds to wait for the server to come up (default 60).")
@click.option("--request-timeout", type=float, help="Seconds one model request may go unanswered (default 300).")
@click.option("--explore-seconds", type=float, help="Exploration budget per gap for the model-free engine (default 5).")
@click.option("--explore-attempts", type=int,
              help="Budget per gap in calls instead of seconds: the same tests however fast the machine is.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), help="Record model answers to this JSONL file.")
@click.option("--replay", type=click.Path(dir_okay=False, path_type=Path), help="Replay answers recorded with --record.")
@click.option("--test-dir", help="Where generated tests go (default: tests/covgen for Python; beside the package under src/test/java for Java).")
@click.option("--sandbox", type=click.Choice(["auto", "strict"]), help="strict: refuse to run without filesystem and network isolation (bubblewrap).")
@click.option("--screen", type=click.Choice(["strict", "permissive"]),
              help="strict (default): candidates may reach only covgen's allowlist; permissive: the older denylist.")
@click.option("--audit-log", metavar="PATH", help="Append-only JSONL of model requests and answers (default .covgen/requests.jsonl).")
@_java_options
def run(reports: tuple[Path, ...], test_cmd: str | None, root: Path, diff_ref: str | None, dry_run: bool,
        outputs: str | None, record: Path | None, replay: Path | None, python_path: str | None, shard_text: str | None,
        **flags: object) -> None:
    """Generate tests for uncovered methods and keep only the ones proven to pass and add coverage."""
    from covgen import api
    from covgen.config import load_settings
    from covgen.shard import parse_shard

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint="--root")
    if bool(reports) == bool(test_cmd):
        raise click.UsageError("give either --report PATH or --test-cmd CMD")
    targets = _parse_outputs(outputs)
    shard = parse_shard(shard_text) if shard_text is not None else None
    settings = load_settings(root, {**flags, "python": python_path})
    plan = api.plan_run(root, settings, reports=reports, test_cmd=test_cmd, diff_ref=diff_ref, shard=shard)
    if plan.shard is not None:
        click.echo(f"covgen: shard {shard}: {len(plan.gaps)} of {plan.shard.planned} gap(s)", err=True)
    for warning in plan.warnings:
        click.echo(f"covgen: warning: {warning}", err=True)
    if dry_run:
        _dry_run(root, list(plan.gaps), settings.engine, settings.test_dir)
        return
    from covgen.output.progress import ProgressReporter

    with ProgressReporter() as progress:
        summary = asyncio.run(_until_stopped(api.run(root, plan, settings, record=record, replay=replay, progress=progress)))
    from covgen.output.runsummary import print_summary
    from covgen.output.targets import write_run_outputs

    print_summary(summary, sys.stdout)
    write_run_outputs(targets, summary)


@cli.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Project root.")
@click.option("--format", "report_format", type=click.Choice(["lcov", "cobertura", "jacoco", "coveragepy"]), help="Report format (default: sniffed).")
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PCT", help="Fail when total line coverage is below PCT.")
@click.option("--diff", "diff_ref", metavar="REF", help="Measure the lines changed since the merge base with REF.")
@click.option("--diff-fail-under", type=click.FloatRange(0, 100), metavar="PCT", help="Fail when coverage of the changed lines is below PCT.")
@click.option("--every-changed-line", is_flag=True, default=None, help="Fail while any changed executable line is uncovered.")
@click.option("--fill", is_flag=True, default=None, help="First generate tests for the changed methods with uncovered changed lines, then gate.")
@click.option("--test-cmd", help='With --fill: measure again by running this command under coverage in the sandbox, e.g. "pytest -q".')
@click.option("--engine", type=click.Choice(["auto", "llm", "explore", "hybrid", "replay", "vllm"]), help="With --fill: the engine (default auto).")
@click.option("--model-url", envvar="COVGEN_MODEL_URL", help="With --fill: vLLM OpenAI-compatible base URL (env COVGEN_MODEL_URL).")
@click.option("--model", envvar="COVGEN_MODEL", help="With --fill: served model name (env COVGEN_MODEL).")
@click.option("--max-gaps", type=int, help="With --fill: target at most N methods.")
@click.option("--budget-seconds", type=float, help="With --fill: stop asking the engine after S seconds.")
@click.option("--explore-seconds", type=float, help="With --fill: exploration budget per method for the model-free engine.")
@click.option("--explore-attempts", type=int, help="With --fill: exploration budget per method in calls.")
@click.option("--test-dir", help="With --fill: where generated tests go (default tests/covgen).")
@click.option("--python", "python", help="With --fill: interpreter of the project's environment (default: covgen's own).")
@click.option("--sandbox", type=click.Choice(["auto", "strict"]), help="With --fill: strict refuses to run without bubblewrap's isolation.")
@click.option("--output", "outputs", metavar="KIND:PATH[,…]", help=_OUTPUT_HELP)
@_java_options
def gate(reports: tuple[Path, ...], root: Path, report_format: str | None, diff_ref: str | None, test_cmd: str | None,
         outputs: str | None, **flags: object) -> None:
    """Check total and changed-line coverage of REPORTS against thresholds (exit 1 when one fails)."""
    from covgen.config import load_settings
    from covgen.gate import Thresholds

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint="--root")
    targets = _parse_outputs(outputs)
    # Thresholds are settings: a team keeps them in [tool.covgen]; a flag wins for one run.
    settings = load_settings(root, {"format": report_format, **flags})
    fill = settings.fill
    if (settings.diff_fail_under is not None or settings.every_changed_line or fill) and diff_ref is None:
        raise click.UsageError("--diff-fail-under, --every-changed-line and --fill need --diff REF")
    if test_cmd and not fill:
        raise click.UsageError("--test-cmd measures again after --fill; give --fill too")
    thresholds = Thresholds(settings.fail_under, settings.diff_fail_under, settings.every_changed_line)
    from covgen.adapters import read_reports
    from covgen.api import source_roots_of

    report = read_reports(reports, fmt=settings.format, root=root, source_roots=source_roots_of(settings))
    changes = None
    if diff_ref is not None:
        from covgen.diffscope import diff_changes

        changes = diff_changes(root, diff_ref)
    result = _evaluate(root, settings, report, changes, thresholds)
    if fill and result.diff is not None and result.diff.files:
        result = _fill(root, settings, reports, report, changes, result, thresholds, test_cmd)
    elif fill:
        click.echo("covgen: --fill: every changed line is covered; nothing to fill", err=True)
    from covgen.output.gatereport import print_gate
    from covgen.output.targets import write_gate_outputs

    print_gate(result, sys.stdout)
    write_gate_outputs(targets, result)
    if not result.passed:
        from covgen.errors import GateFailed

        failed = "; ".join(f"{t.name} {t.actual}% < {t.required:g}%" for t in result.thresholds if not t.passed)
        raise GateFailed(f"gate failed: {failed}")


def _evaluate(root: Path, settings: Settings, report: CoverageReport, changes: DiffChanges | None, thresholds: Thresholds) -> GateResult:
    from covgen.gate import evaluate_gate

    result = evaluate_gate(report, root.resolve(), thresholds, changes=changes, include=settings.include, exclude=settings.exclude)
    return replace(result, warnings=(*report.warnings, *result.warnings))


def _fill(root: Path, settings: Settings, reports: tuple[Path, ...], report: CoverageReport, changes: DiffChanges | None,
          before: GateResult, thresholds: Thresholds, test_cmd: str | None) -> GateResult:
    """Generate for the changed methods, measure again, gate again on the same changes.

    The diff is the one read before the fill: the test files covgen writes are not the change
    under review, and counting their own (full) coverage would flatter the diff.
    """
    from covgen import api
    from covgen.gate import Filled
    from covgen.gatefill import plan_fill, remeasure
    from covgen.output.progress import ProgressReporter

    plan = plan_fill(root, settings, reports, before)
    for warning in plan.warnings:
        click.echo(f"covgen: warning: {warning}", err=True)
    if not plan.gaps:
        click.echo("covgen: --fill: no changed method covgen can write tests for; gating as measured", err=True)
        return before
    with ProgressReporter() as progress:
        summary = asyncio.run(_until_stopped(api.run(root, plan, settings, progress=progress)))
    for gap in summary.gaps:
        if gap.accepted_tests:
            click.echo(f"covgen: filled {gap.gap_id}: {', '.join(gap.accepted_tests)} (+{len(gap.gained_lines)} line(s))")
    after, how = remeasure(root, settings, report, summary, test_cmd)
    filled = Filled(len(plan.gaps), summary.accepted, summary.files_written, how, before)
    result = _evaluate(root, settings, after, changes, thresholds)
    return replace(result, filled=filled, warnings=(*result.warnings, *summary.warnings))


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "outputs", metavar="KIND:PATH[,…]", help=_OUTPUT_HELP)
def merge(results: tuple[Path, ...], outputs: str | None) -> None:
    """Combine the covgen.run/1 JSON RESULTS of `covgen run --shard I/N` jobs into one summary."""
    from covgen.errors import UsageError
    from covgen.merge import merge_summaries
    from covgen.output.runsummary import print_summary, summary_from_document
    from covgen.output.targets import write_run_outputs

    targets = _parse_outputs(outputs)
    summaries: list[tuple[str, RunSummary]] = []
    for path in results:
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError) as err:
            raise UsageError(f"{path}: cannot read a JSON result ({type(err).__name__}: {err})", slug="bad-result") from err
        summaries.append((str(path), summary_from_document(document, str(path))))
    summary = merge_summaries(summaries)
    print_summary(summary, sys.stdout)
    write_run_outputs(targets, summary)


@cli.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Project root.")
@click.option("--engine", type=click.Choice(["auto", "llm", "explore", "hybrid", "replay", "vllm"]), help="Candidate generator (default auto).")
@click.option("--model-url", help="vLLM OpenAI-compatible base URL.")
@click.option("--model", help="Served model name (default: the first of /v1/models).")
@click.option("--python", help="Interpreter of the project's environment (default: covgen's own).")
@click.option("--sandbox", type=click.Choice(["auto", "strict"]), help="strict: isolation is required, not advised.")
@click.option("--classpath", metavar="CP", help="Java: compiled classes and test libraries.")
@click.option("--source-root", metavar="DIR", help="Java: the production sources' folder.")
@click.option("--jacoco-agent", metavar="JAR", help="Java: the JaCoCo agent.")
@click.option("--junit-launcher", metavar="JAR", help="Java: junit-platform-console-standalone.")
@click.option("--json", "as_json", is_flag=True, help="Print the covgen.doctor/1 JSON object.")
def doctor(root: Path, as_json: bool, **flags: object) -> int:
    """Check that `covgen run` would work here with these settings, and say what to install or pass if not.

    Exit 0 when it would, 1 when something it needs fails, 2 for bad input.
    """
    from covgen.config import load_settings
    from covgen.doctor import diagnose

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint="--root")
    diagnosis = diagnose(root, load_settings(root, flags))
    click.echo(json.dumps(diagnosis.document(), indent=2) if as_json else diagnosis.text(), nl=as_json)
    return EXIT_OK if diagnosis.ok else EXIT_THRESHOLD


def _dry_run(root: Path, gaps: list[Gap], engine: str, test_dir: str) -> None:
    from covgen.pipeline import build_targets
    from covgen.project import ProjectFacts

    targets, warnings = build_targets(gaps, root.resolve(), ProjectFacts(root, test_dir), with_context=True)
    click.echo(f"covgen: dry run: {len(targets)} gap(s); nothing is called, run or written")
    for target in targets:
        click.echo(f"\n=== {target.gap.id} (lines {target.gap.start_line}-{target.gap.end_line}) ===")
        if engine != "explore" and target.context is not None:
            for message in target.pack.messages_for(target.context):
                click.echo(f"--- {message['role']} ---\n{message['content']}")
    for warning in warnings:
        click.echo(f"covgen: warning: {warning}", err=True)


def _parse_outputs(outputs: str | None) -> list[tuple[str, Path]]:
    """``json:out.json,annotations:-`` → [(kind, path)]; ``-`` is stdout."""
    from covgen.output import OUTPUT_KINDS

    parsed = []
    for item in (outputs or "").split(","):
        if not item.strip():
            continue
        kind, sep, path = item.strip().partition(":")
        if not sep or kind not in OUTPUT_KINDS or not path:
            raise click.BadParameter(f"{item!r}: use KIND:PATH with KIND one of {', '.join(OUTPUT_KINDS)} (PATH - is stdout)",
                                     param_hint="--output")
        parsed.append((kind, Path(path)))
    return parsed


class _Stopped(BaseException):
    """A stop signal (a CI cancel): a BaseException, like KeyboardInterrupt, so that cleanup runs
    (sandboxes killed, workspaces removed) and no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    # A second signal while cleaning up must not cut the cleanup short.
    for handled in _STOP_SIGNALS:
        signal.signal(handled, signal.SIG_IGN)
    raise _Stopped(signum)


#: SIGTERM (a CI cancel) and SIGHUP (a closed terminal) stop covgen the way Ctrl-C does.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def _until_stopped(work: Coroutine[Any, Any, T]) -> T:
    """Await `work`; a stop signal cancels it inside the event loop, so every ``finally`` (kill
    the sandbox, remove the workspace, close connections) runs while the loop still runs."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, _stop)
    # Raised here, not in the handler: a context (the CancelledError's traceback) would keep the
    # run's frames alive past the event loop.
    raise _Stopped(received[0])


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure covgen foresees becomes one line on stderr and an exit code."""
    previous = {signum: signal.signal(signum, _stop) for signum in _STOP_SIGNALS}
    try:
        # A command may return its exit code (doctor: 1 when a check fails).
        code = cli.main(args=argv, prog_name="covgen", standalone_mode=False)
        if isinstance(code, int):
            return code
    except _Stopped as stop:
        click.echo(f"covgen: stopped by {signal.Signals(stop.signum).name}; sandboxes killed, nothing half-written", err=True)
        return 128 + stop.signum
    except CovgenError as err:
        click.echo(f"covgen: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("covgen: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        if os.environ.get("COVGEN_DEBUG"):
            raise
        click.echo(f"covgen: internal error: {type(err).__name__}: {err} (set COVGEN_DEBUG=1 for the traceback)", err=True)
        return EXIT_INTERNAL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK


def console() -> NoReturn:
    """The `covgen` command (and ``python -m covgen``): :func:`main`, then exit with its code."""
    code = main()
    if not (sys.flags.dev_mode or os.environ.get("COVGEN_DEBUG")):
        # Everything covgen writes is written and closed by now (files through `with`, the
        # sandbox's folders by atexit, which still runs). At exit the interpreter would search
        # every object for reference cycles, about 0.2 s per command — a pre-commit gate's
        # latency. Frozen objects in a cycle are then never finalized, so a late warning about
        # one (an asyncio task's unretrieved error) shows only under `-X dev` or COVGEN_DEBUG.
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
