"""Gaps: report × code units → ranked methods, with filters and diff scoping."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from covgen import GitError, find_gaps, read_report
from covgen.diffscope import changed_lines
from covgen.model import BranchCount, CoverageReport, FileCoverage


def _gaps(reports, **options):
    root = reports["root"]
    return find_gaps(read_report(reports["coveragepy"], root=root), root, **options)


def test_fixture_gaps_agree_with_coverage_py_function_regions(python_fixture_reports) -> None:
    """covgen's source-parsed gaps see the same uncovered lines as coverage.py's own regions."""
    root = python_fixture_reports["root"]
    report = read_report(python_fixture_reports["coveragepy"], root=root)
    regions = {
        (f.path, m.name): m.uncovered_lines for f in report.files for m in f.methods if m.uncovered_lines
    }
    gaps = {(g.path, g.qualname): g.uncovered_lines for g in find_gaps(report, root).gaps if g.uncovered_lines}
    assert gaps == regions


def test_ranking_public_first_then_most_uncovered(python_fixture_reports) -> None:
    gaps = _gaps(python_fixture_reports).gaps
    assert gaps[0].id == "inventory/items.py::Stock.remove"
    sizes = [(not g.is_public, -(len(g.uncovered_lines) + sum(b.missed for b in g.missed_branches))) for g in gaps]
    assert sizes == sorted(sizes)
    remove = gaps[0]
    assert remove.signature == "def remove(self, name: str, count: int = 1) -> int"
    assert BranchCount(88, 0, 2) in remove.missed_branches
    # Only its def line ran (at import), and that is not the method's to cover.
    assert remove.coverage_ratio == 0.0 and remove.uncovered_lines[0] == 85


def test_include_exclude_min_lines_and_max_gaps(python_fixture_reports) -> None:
    only_dates = _gaps(python_fixture_reports, include=["inventory/dates.py"]).gaps
    assert {g.path for g in only_dates} == {"inventory/dates.py"}
    no_dates = _gaps(python_fixture_reports, exclude=["*/dates.py"]).gaps
    assert "inventory/dates.py" not in {g.path for g in no_dates}
    big = _gaps(python_fixture_reports, min_lines=5).gaps
    assert big and all(len(g.uncovered_lines) >= 5 for g in big)
    capped = _gaps(python_fixture_reports, max_gaps=3)
    assert len(capped.gaps) == 3 and capped.total > 3


def test_method_missing_only_a_branch_is_a_gap(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    report = CoverageReport(
        "test",
        (FileCoverage("m.py", "python", (1, 2, 3, 4), (), (BranchCount(2, 1, 2),), (BranchCount(2, 1, 2),)),),
    )
    (gap,) = find_gaps(report, tmp_path).gaps
    assert gap.uncovered_lines == () and gap.missed_branches == (BranchCount(2, 1, 2),)
    assert find_gaps(report, tmp_path, min_lines=2).gaps == ()


def test_unparsable_source_is_a_warning_and_falls_back(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    report = CoverageReport("test", (FileCoverage("broken.py", "python", (), (1, 2)),))
    search = find_gaps(report, tmp_path)
    assert search.gaps == ()
    assert any("broken.py: cannot parse Python" in w for w in search.warnings)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, python_fixture_reports) -> Path:
    """A git repo holding the fixture, with a branch that changes one method."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(python_fixture_reports["root"], root, ignore=shutil.ignore_patterns("out", "__pycache__"))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "base", "--allow-empty")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fixture")
    _git(root, "checkout", "-qb", "feature")
    items = root / "inventory" / "items.py"
    items.write_text(items.read_text().replace("raise ValueError(\"bandwidth must be positive\")", "raise ValueError(\"no bandwidth\")"))
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "change")
    (root / "inventory" / "dates.py").write_text((root / "inventory" / "dates.py").read_text() + "\n# touched\n")
    return root


def test_diff_keeps_only_changed_methods(repo: Path, python_fixture_reports) -> None:
    changed = changed_lines(repo, "main")
    assert set(changed) == {"inventory/items.py", "inventory/dates.py"}
    report = read_report(python_fixture_reports["coveragepy"], root=python_fixture_reports["root"])
    gaps = find_gaps(report, repo, changed=changed).gaps
    # dates.py only gained a comment at its end, outside every method.
    assert [g.qualname for g in gaps] == ["Digital.download_minutes"]


def test_diff_with_unknown_ref_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(GitError, match="merge-base"):
        changed_lines(repo, "no-such-branch")
