import covgen

EXPECTED = [
    "BranchCount", "CodeUnit", "ConfigError", "CovgenError", "CoverageReport", "FileCoverage", "Gap",
    "GapSearch", "GitError", "ReportError", "ReportMethod", "SourceError", "UsageError", "__version__",
    "find_gaps", "read_report", "read_reports",
]


def test_public_names_are_exactly_the_reviewed_ones() -> None:
    assert covgen.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(covgen, name) is not None


def test_every_error_is_a_covgen_error_with_a_slug() -> None:
    for name in ("ConfigError", "ReportError", "SourceError", "UsageError", "GitError"):
        error = getattr(covgen, name)("x")
        assert isinstance(error, covgen.CovgenError) and error.slug and error.exit_code == 2
