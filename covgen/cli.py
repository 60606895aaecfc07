"""The ``covgen`` command: thin click commands over library functions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from covgen.errors import CovgenError

__all__ = ["main", "cli"]

EXIT_OK = 0
EXIT_THRESHOLD = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3


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
    as_json: bool,
) -> None:
    """List the methods that REPORTS (lcov, Cobertura, JaCoCo, coverage.py JSON) say tests never reach."""
    from covgen.adapters import read_reports
    from covgen.config import load_settings
    from covgen.gaps import find_gaps

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint="--root")
    settings = load_settings(
        root,
        {"format": report_format, "include": include, "exclude": exclude, "max_gaps": max_gaps, "min_lines": min_lines},
    )
    report = read_reports(reports, fmt=settings.format, root=root, source_roots=settings.source_roots)
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure covgen foresees becomes one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="covgen", standalone_mode=False)
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
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
