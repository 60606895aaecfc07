"""Greedy selection: the fewest tests that keep every line and branch the accepted ones gained."""

from covgen import model
from covgen.model import Verdict
from covgen.validate import select


# TestVerdict is used through its module: a name starting with "Test" would be collected.
def accepted(candidate: str, gap: str, name: str, lines: tuple[int, ...], arcs: tuple[tuple[int, int], ...] = ()) -> model.TestVerdict:
    return model.TestVerdict(candidate, gap, name, Verdict.ACCEPTED, gained_lines=lines, gained_arcs=arcs)


def test_keeps_a_minimal_set_per_gap_and_marks_the_rest_redundant() -> None:
    wide = accepted("c1", "a.py::f", "test_wide", (3, 4, 5))
    narrow = accepted("c2", "a.py::f", "test_narrow", (4,))
    branch = accepted("c3", "a.py::f", "test_branch", (4,), ((4, 6),))
    # The same line numbers in another function's gap are that gap's own gain.
    other = accepted("c4", "a.py::g", "test_other", (3, 4, 5))
    failed = model.TestVerdict("c5", "a.py::f", "test_bad", Verdict.FAILED, "assert 1 == 2")

    result = {v.candidate_id: v for v in select([narrow, failed, wide, other, branch])}

    assert result["c1"].verdict is Verdict.ACCEPTED
    assert result["c3"].verdict is Verdict.ACCEPTED  # the only one to take the 4 → 6 branch
    assert result["c4"].verdict is Verdict.ACCEPTED
    assert result["c2"].verdict is Verdict.REDUNDANT
    assert result["c5"] == failed
    assert len(result) == 5


def test_between_equal_gains_the_shorter_test_name_wins() -> None:
    long = accepted("c1", "a.py::f", "test_value_is_doubled_when_positive", (3,))
    short = accepted("c2", "a.py::f", "test_doubles", (3,))
    kept = [v.candidate_id for v in select([long, short]) if v.verdict is Verdict.ACCEPTED]
    assert kept == ["c2"]
