"""Test runners: run candidate tests in the sandbox and report per-test outcomes and coverage."""
