"""Prometheus runs on its node's address, is ready, and every target is up."""

import json

from conftest import http_get, listening, mode, node_address


def test_listens_on_the_node_address(session):
    node = session["jobs"]["prometheus"]["node"]
    assert f"{node_address(node)}:9090" in listening(node)


def test_ready_and_targets_up(session):
    url = session["prometheus"]["url"]
    assert "Ready" in http_get(f"{url}/-/ready")
    targets = json.loads(http_get(f"{url}/api/v1/targets"))["data"]["activeTargets"]
    jobs = {target["labels"]["job"]: target["health"] for target in targets}
    assert jobs == {"prometheus": "up", "exporter-cadvisor": "up"}


def test_config_checked_and_readable(host, session):
    assert mode(host, session["prometheus"]["config"]) == 0o600
    assert host.run(f"promtool check config {session['prometheus']['config']}").rc == 0
