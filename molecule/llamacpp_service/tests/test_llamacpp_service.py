"""llama.cpp serves the model on its node's address and completes text for real."""

import json
import urllib.request

from conftest import http_get, listening, node_address


def test_listens_on_the_node_address(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:8000" in listening(node)


def test_lists_and_completes_with_the_model(session):
    endpoint = session["service_endpoint"]
    models = [model["id"] for model in json.loads(http_get(f"{endpoint}/v1/models"))["data"]]
    assert "gemma3-270m" in models
    body = json.dumps(
        {"model": "gemma3-270m", "prompt": "The capital of France is", "max_tokens": 4}
    )
    request = urllib.request.Request(
        f"{endpoint}/v1/completions", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    assert answer["usage"]["completion_tokens"] >= 1
