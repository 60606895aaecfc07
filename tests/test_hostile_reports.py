"""Hostile and broken reports: one clear line, exit 2, nothing read from an entity's target."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SAMPLES


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request, to prove covgen fetches nothing."""
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            requests.append(self.path)
            body = b'<!ENTITY leak "LEAKED">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _assert_one_clear_line(result, name: str, phrase: str) -> None:
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("covgen: error: ") and name in lines[0] and phrase in lines[0]
    assert "Traceback" not in result.err


def test_external_entity_is_refused_and_never_read(covgen, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    hostile = tmp_path / "xxe.xml"
    hostile.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE coverage [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<coverage><sources><source>&xxe;</source></sources><packages><package name="p"><classes>'
        '<class name="a" filename="a.py"><lines><line number="1" hits="1"/></lines></class>'
        "</classes></package></packages></coverage>\n"
    )
    result = covgen("gaps", hostile, "--root", tmp_path, "--json")
    _assert_one_clear_line(result, "xxe.xml", "declares XML entities")
    assert "TOP-SECRET-TOKEN" not in result.out + result.err


def test_parameter_entity_pointing_at_a_server_is_never_fetched(covgen, tmp_path: Path, dtd_server) -> None:
    url, requests = dtd_server
    hostile = tmp_path / "oob.xml"
    hostile.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE report [<!ENTITY % remote SYSTEM "{url}/evil.dtd"> %remote;]>\n<report name="x"/>\n')
    result = covgen("gaps", hostile, "--root", tmp_path)
    _assert_one_clear_line(result, "oob.xml", "declares XML entities")
    assert requests == []


def test_external_dtd_of_a_real_report_is_not_fetched(covgen, tmp_path: Path, dtd_server) -> None:
    url, requests = dtd_server
    report = tmp_path / "jacoco.xml"
    report.write_text(
        (SAMPLES / "jacoco_grouped.xml").read_text().replace('"report.dtd"', f'"{url}/report.dtd"')
    )
    result = covgen("gaps", report, "--root", tmp_path, "--json")
    assert result.code == 0, result.err
    assert result.json()["files"][0]["uncovered_lines"] == [9, 10, 11, 18]
    assert requests == []


def test_entity_expansion_bomb_is_refused_quickly(covgen) -> None:
    started = time.monotonic()
    result = covgen("gaps", SAMPLES / "billion_laughs.xml")
    _assert_one_clear_line(result, "billion_laughs.xml", "declares XML entities")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("sample", "phrase"),
    [
        ("cobertura_truncated.xml", "not well-formed XML"),
        ("undefined_entity.xml", "not well-formed XML"),
        ("garbage.bin", "unknown report format"),
        ("empty.xml", "empty file"),
        ("not_a_report.xml", "unknown report format"),
        ("lcov_truncated.info", "truncated"),
        ("coveragepy_malformed.json", "malformed coverage.py JSON"),
    ],
)
def test_broken_reports_get_one_clear_line(covgen, sample: str, phrase: str) -> None:
    _assert_one_clear_line(covgen("gaps", SAMPLES / sample), sample, phrase)


def test_missing_report_file(covgen, tmp_path: Path) -> None:
    _assert_one_clear_line(covgen("gaps", tmp_path / "nope.xml"), "nope.xml", "no such report file")


@pytest.mark.parametrize("sample", ["cobertura_empty_valid.xml", "lcov_empty_valid.info", "coveragepy_empty_valid.json"])
def test_empty_but_valid_reports_are_zero_files(covgen, sample: str) -> None:
    result = covgen("gaps", SAMPLES / sample, "--json")
    assert result.code == 0
    assert result.json()["files"] == [] and result.json()["gaps"] == []


def test_zero_byte_file_with_explicit_format_is_an_empty_report(covgen) -> None:
    result = covgen("gaps", SAMPLES / "empty.xml", "--format", "lcov", "--json")
    assert result.code == 0 and result.json()["files"] == []


def test_reading_never_writes_next_to_the_report(covgen, tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "jacoco_grouped.xml", tmp_path / "r.xml")
    before = sorted(p.name for p in tmp_path.iterdir())
    covgen("gaps", tmp_path / "r.xml", "--root", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
