"""Write ``--output kind:path,…`` for ``covgen run`` and ``covgen gate``: one renderer per kind."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from covgen.gate import GateResult
from covgen.output import write_atomically
from covgen.pipeline import RunSummary

__all__ = ["STDOUT", "write_gate_outputs", "write_run_outputs"]

#: ``annotations:-`` writes to stdout, where GitHub reads workflow commands.
STDOUT = Path("-")


def write_gate_outputs(targets: Sequence[tuple[str, Path]], result: GateResult) -> None:
    from covgen.output import annotate, junit, markdown, sarif
    from covgen.output.gatereport import gate_document

    renderers: dict[str, Callable[[GateResult], str]] = {
        "json": lambda r: json.dumps(gate_document(r), indent=2) + "\n",
        "markdown": markdown.gate_markdown,
        "annotations": lambda r: annotate.render(annotate.gate_annotations(r)),
        "sarif": sarif.gate_sarif,
        "junit": junit.gate_junit,
    }
    for kind, path in targets:
        _write(path, renderers[kind](result))


def write_run_outputs(targets: Sequence[tuple[str, Path]], summary: RunSummary) -> None:
    from covgen.output import annotate, junit, markdown, sarif
    from covgen.output.runsummary import summary_document, summary_markdown

    renderers: dict[str, Callable[[RunSummary], str]] = {
        "json": lambda s: json.dumps(summary_document(s), indent=2) + "\n",
        "markdown": lambda s: markdown.cap(summary_markdown(s)),
        "annotations": lambda s: annotate.render(annotate.run_annotations(s)),
        "sarif": sarif.run_sarif,
        "junit": junit.run_junit,
    }
    for kind, path in targets:
        _write(path, renderers[kind](summary))


def _write(path: Path, text: str) -> None:
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomically(path, text)
