"""Requests to a session's Prometheus, with the session's credentials (DESIGN.md section 7).

Prometheus answers only with basic auth: the user is in session.json (`prometheus.auth`), the
password in a 0600 file beside it. Every command that talks to it (status, stop, report,
compare, prometheus ID) goes through here.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.sessions import collection_module_utils


def credentials(record: dict[str, Any]) -> tuple[str, str] | None:
    """(user, password) of the session's Prometheus, or None when it has no auth."""
    auth = record.get("prometheus", {}).get("auth") or {}
    password_file = auth.get("password_file")
    if not password_file:
        return None
    try:
        password = Path(password_file).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise UserError(
            f"session {record.get('id')}: cannot read the Prometheus password "
            f"{password_file} ({error.strerror or error})"
        ) from None
    return str(auth.get("username") or "hpcansible"), password


def auth_header(login: tuple[str, str] | None) -> dict[str, str]:
    if login is None:
        return {}
    token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request(
    url: str,
    login: tuple[str, str] | None,
    *,
    method: str = "GET",
    data: bytes | None = None,
    timeout: float = 5,
) -> bytes:
    """The body of an answer; urllib's errors (OSError, HTTPError) pass through."""
    req = urllib.request.Request(url, data=data, method=method, headers=auth_header(login))
    # A session's TLS certificate is its own, usually self-signed: the password is the check.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    with urllib.request.urlopen(req, timeout=timeout, context=context) as response:
        return response.read()


def api_json(record: dict[str, Any], path: str, timeout: float = 5) -> Any:
    """GET <prometheus.url><path> as JSON, with the session's credentials."""
    url = record.get("prometheus", {}).get("url")
    if not url:
        raise UserError(f"session {record.get('id')}: Prometheus has not started")
    return json.loads(request(url + path, credentials(record), timeout=timeout))


def login_hint(record: dict[str, Any]) -> str:
    """How the user logs in to the browser page the tunnel opens."""
    auth = record.get("prometheus", {}).get("auth") or {}
    if not auth.get("password_file"):
        return "no login (this Prometheus has no password)"
    return f"log in as {auth.get('username', 'hpcansible')}, password: cat {auth['password_file']}"


def wait_for_scrape_after(
    record: dict[str, Any], moment: str, scrape_interval_s: float, poll_s: float = 0.25
) -> bool:
    """Until every target of the session's Prometheus was scraped at or after `moment` (the
    load's end), as `stop` waits too: the rules and the bound are module_utils/prometheus_api.py's
    scraped_since and scrape_after_load_timeout_s. False when that did not happen in time or
    Prometheus did not answer."""
    rules = collection_module_utils("prometheus_api")
    deadline = time.monotonic() + rules.scrape_after_load_timeout_s(scrape_interval_s)
    while True:
        try:
            targets = api_json(record, "/api/v1/targets?state=active")["data"]["activeTargets"]
            if rules.scraped_since(targets, moment):
                return True
        except (OSError, ValueError, KeyError, TypeError, UserError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
