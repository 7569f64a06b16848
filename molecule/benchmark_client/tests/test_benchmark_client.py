"""The client job runs on another node than the service and exposes its metrics."""

from conftest import http_get, mode


def test_client_avoids_the_service_node(session):
    assert session["jobs"]["client"]["node"] != session["jobs"]["service"]["node"]


def test_metrics_endpoint_answers_with_the_session_label(session):
    metrics = http_get(session["client"]["metrics_url"])
    assert session["id"] in metrics


def test_config_is_private(host, session):
    assert mode(host, session["client"]["config"]) == 0o600
