"""Rules over Prometheus's API answers, the bcrypt filter, and the CLI's authenticated requests."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from ansible_collections.hpcansible.hpc.plugins.filter.bcrypt_hash import bcrypt_hash
from ansible_collections.hpcansible.hpc.plugins.module_utils.prometheus_api import (
    duration_seconds,
    parse_time,
    scrape_after_load_timeout_s,
    scraped_since,
)
from hpcansible.errors import UserError
from hpcansible.prometheus_http import api_json, credentials, login_hint


def test_prometheus_times_with_nanoseconds_parse() -> None:
    moment = parse_time("2026-12-01T21:44:22.857123456Z")
    assert moment is not None and moment.microsecond == 857123
    assert parse_time("0001-01-01T00:00:00Z") is None  # never scraped
    assert parse_time("2026-12-01T21:44:22.857") == parse_time("2026-12-01T21:44:22.857+00:00")


def test_scraped_since_needs_every_target_after_the_moment() -> None:
    targets = [
        {"lastScrape": "2026-12-01T21:45:01.5Z"},
        {"lastScrape": "2026-12-01T21:45:03.000000001Z"},
    ]
    assert scraped_since(targets, "2026-12-01T21:45:00Z")
    assert not scraped_since(targets, "2026-12-01T21:45:02Z")
    assert not scraped_since([{"lastScrape": "0001-01-01T00:00:00Z"}], "2026-12-01T21:45:00Z")
    assert not scraped_since([], "2026-12-01T21:45:00Z")


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200), (15, 15)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 s", "s5", "1x"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


def test_the_wait_after_the_load_is_two_scrape_intervals_and_5_s() -> None:
    assert scrape_after_load_timeout_s("5s") == 15
    assert scrape_after_load_timeout_s("1m") == 125
    assert scrape_after_load_timeout_s(0.5) == 6


def test_bcrypt_hash_verifies_and_salts() -> None:
    first, second = bcrypt_hash("s3cret", 4), bcrypt_hash("s3cret", 4)
    assert first != second and first.startswith("$2b$04$")
    assert bcrypt.checkpw(b"s3cret", first.encode())


class AuthHandler(http.server.BaseHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(b"hpcansible:pw").decode()

    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == self.expected
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(json.dumps({"status": "success", "ok": ok}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), AuthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_requests_carry_the_session_password(prometheus_url: str, tmp_path: Path) -> None:
    password_file = tmp_path / "prometheus.password"
    password_file.write_text("pw\n")
    record = {
        "id": "s",
        "prometheus": {
            "url": prometheus_url,
            "auth": {"username": "hpcansible", "password_file": str(password_file)},
        },
    }
    assert credentials(record) == ("hpcansible", "pw")
    assert api_json(record, "/api/v1/query")["ok"] is True
    assert "hpcansible" in login_hint(record) and str(password_file) in login_hint(record)


def test_an_unreadable_password_is_one_line(tmp_path: Path) -> None:
    record = {"id": "s", "prometheus": {"auth": {"password_file": str(tmp_path / "none")}}}
    with pytest.raises(UserError, match="cannot read the Prometheus password"):
        credentials(record)
