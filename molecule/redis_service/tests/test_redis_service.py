"""Redis is bound to its node, protected by a password that stayed a harmless string."""

import redis
from conftest import http_get, listening, mode, node_address

PASSWORD = "x; rm -rf ~ $(touch /tmp/hpcansible-molecule-pwned)"


def test_listens_on_the_node_address_only(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:6379" in listening(node)
    assert "0.0.0.0:6379" not in listening(node)


def test_answers_ping_with_the_password_only(session):
    node = session["jobs"]["service"]["node"]
    assert redis.Redis(host=node, port=6379, password=PASSWORD, socket_timeout=3).ping()
    try:
        redis.Redis(host=node, port=6379, socket_timeout=3).get("x")
    except redis.exceptions.AuthenticationError:
        pass
    else:
        raise AssertionError("Redis answered without the password")


def test_password_never_ran_as_a_command(host):
    assert not host.file("/tmp/hpcansible-molecule-pwned").exists


def test_config_with_the_password_is_private(host, session):
    session_dir = session["jobs"]["service"]["script"].rsplit("/jobs/", 1)[0]
    assert mode(host, f"{session_dir}/service/redis/redis.conf") == 0o600


def test_process_exporter_measures_redis(session):
    node = session["jobs"]["service"]["node"]
    metrics = http_get(f"http://{node}:9256/metrics")
    assert 'groupname="redis-server"' in metrics
