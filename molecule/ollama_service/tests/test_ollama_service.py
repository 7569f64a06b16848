"""Ollama (the stand-in here) is bound to its node, answers, has the model; cAdvisor beside it."""

import json

from conftest import http_get, listening, node_address


def test_ollama_and_cadvisor_listen_on_the_node_address(session):
    node = session["jobs"]["service"]["node"]
    sockets = listening(node)
    assert f"{node_address(node)}:11434" in sockets
    assert f"{node_address(node)}:8080" in sockets


def test_api_answers_with_the_model_pulled(session):
    endpoint = session["service_endpoint"]
    assert json.loads(http_get(f"{endpoint}/api/version"))["version"]
    names = [model["name"] for model in json.loads(http_get(f"{endpoint}/api/tags"))["models"]]
    assert "gemma3:270m" in names


def test_model_is_on_the_shared_filesystem(host):
    manifest = "/root/hpcansible/ollama/models/manifests/registry.ollama.ai/library/gemma3/270m"
    assert host.file(manifest).exists


def test_cadvisor_sees_the_service_job(session):
    node = session["jobs"]["service"]["node"]
    metrics = http_get(f"http://{node}:8080/metrics")
    assert f'job_{session["jobs"]["service"]["job_id"]}"' in metrics
