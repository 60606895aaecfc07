"""JUnit XML, which every CI system shows natively: the gate's thresholds, or a run's verdicts."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from covgen.gate import GateResult
from covgen.pipeline import RunSummary

__all__ = ["gate_junit", "run_junit"]

#: Verdicts that say "nothing wrong, just not needed": shown as skipped rather than failed.
_NOT_NEEDED = frozenset({"REDUNDANT", "NO_GAIN"})
#: Characters XML 1.0 cannot hold at all (a traceback's ANSI colours, a NUL): ElementTree would
#: write them and every JUnit reader would refuse the file.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def gate_junit(result: GateResult) -> str:
    """One testcase per threshold the user set."""
    suite = ET.Element("testsuite", name="covgen gate")
    for threshold in result.thresholds:
        case = ET.SubElement(suite, "testcase", classname="covgen.gate", name=threshold.name)
        if not threshold.passed:
            actual = "nothing to measure" if threshold.actual is None else f"{threshold.actual}%"
            failure = ET.SubElement(case, "failure", type="threshold", message=f"{threshold.name}: {actual} < {threshold.required:g}%")
            text = _uncovered_text(result)
            failure.text = _clean(text) if text else None
    return _document(suite)


def run_junit(summary: RunSummary) -> str:
    """One testcase per candidate test: kept ones pass, the others fail (or are skipped when they
    were merely not needed) with their verdict and why."""
    suite = ET.Element("testsuite", name="covgen run")
    for gap in summary.gaps:
        for test in gap.accepted_tests:
            ET.SubElement(suite, "testcase", classname=_clean(gap.gap_id), name=_clean(test))
        for rejected in gap.rejected:
            name = rejected.test or f"{rejected.candidate_id} (module)"
            case = ET.SubElement(suite, "testcase", classname=_clean(gap.gap_id), name=_clean(name))
            first = rejected.message.strip().splitlines()[0] if rejected.message.strip() else rejected.verdict
            element = ET.SubElement(case, "skipped" if rejected.verdict in _NOT_NEEDED else "failure",
                                    type=rejected.verdict, message=_clean(f"{rejected.verdict}: {first}"))
            element.text = _clean(rejected.message)
    return _document(suite)


def _uncovered_text(result: GateResult) -> str | None:
    if result.diff is None or not result.diff.files:
        return None
    from covgen.output.gatereport import describe_lines

    return "\n".join(f"{f.path} {m.name}: {describe_lines(m.uncovered_lines)}" for f in result.diff.files for m in f.methods if m.uncovered_lines)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _document(suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("errors", "0")
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
