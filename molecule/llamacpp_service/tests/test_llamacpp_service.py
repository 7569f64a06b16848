"""llama.cpp serves the model on its node's address and completes text for real."""

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import http_get, listening, node_address


def api_key(session: dict[str, Any]) -> str:
    """The session's generated key (the role keeps it 0600 in the session directory)."""
    path = (
        Path.home() / "hpcansible" / "sessions" / session["id"] / "service" / "llamacpp" / "api_key"
    )
    assert path.stat().st_mode & 0o777 == 0o600
    return path.read_text().strip()


def test_listens_on_the_node_address(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:8000" in listening(node)


def test_refuses_a_request_without_the_key(session):
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_get(f"{session['service_endpoint']}/v1/models")
    assert refused.value.code == 401


def test_lists_and_completes_with_the_model(session):
    endpoint = session["service_endpoint"]
    bearer = {"Authorization": f"Bearer {api_key(session)}"}
    models = [
        model["id"]
        for model in json.loads(http_get(f"{endpoint}/v1/models", headers=bearer))["data"]
    ]
    assert "gemma3-270m" in models
    body = json.dumps(
        {"model": "gemma3-270m", "prompt": "The capital of France is", "max_tokens": 4}
    )
    request = urllib.request.Request(
        f"{endpoint}/v1/completions", body.encode(), {"Content-Type": "application/json", **bearer}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    assert answer["usage"]["completion_tokens"] >= 1
