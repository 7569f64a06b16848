"""Fixtures for the scenarios' testinfra checks: the scenario's session and its nodes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    scenario = os.environ["MOLECULE_SCENARIO_NAME"]
    path = Path.home() / "hpcansible" / "sessions" / f"molecule_{scenario}" / "session.json"
    return json.loads(path.read_text())


def node_address(node: str) -> str:
    return socket.gethostbyname(node)


def listening(node: str) -> set[str]:
    """Listening TCP sockets (address:port) inside the node's network namespace."""
    output = subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{node}", "ss", "-ltnH"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[3] for line in output.splitlines() if line.strip()}


def http_get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def mode(host: Any, path: str) -> int:
    return host.file(path).mode
