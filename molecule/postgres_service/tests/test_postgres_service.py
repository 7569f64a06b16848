"""Postgres is bound to its node, in its own cluster in the session, behind a password that
stayed a harmless string; its exporter reports the database up."""

import os
import subprocess

from conftest import http_get, listening, mode, node_address

PASSWORD = 'x;"q"&$(touch${IFS}/tmp/hpcansible-molecule-pwned)'


def psql(node: str, password: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", f"host={node} port=5432 user=bench dbname=bench connect_timeout=3", "-tAXc", sql],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        check=False,
    )


def test_listens_on_the_node_address_only(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:5432" in listening(node)
    assert "0.0.0.0:5432" not in listening(node)


def test_answers_with_the_password_only(session):
    node = session["jobs"]["service"]["node"]
    done = psql(node, PASSWORD, "SELECT current_database()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bench"
    refused = psql(node, "wrong", "SELECT 1")
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr


def test_password_never_ran_as_a_command(host):
    assert not host.file("/tmp/hpcansible-molecule-pwned").exists


def test_secrets_and_data_are_private(host, session):
    session_dir = session["jobs"]["service"]["script"].rsplit("/jobs/", 1)[0]
    folder = f"{session_dir}/service/postgres"
    assert mode(host, folder) == 0o700
    assert mode(host, f"{folder}/data") == 0o700
    for name in ("password", "pg_hba.conf"):
        assert mode(host, f"{folder}/{name}") == 0o600, name


def test_password_is_not_on_a_command_line_in_the_job_or_its_log(host, session):
    node = session["jobs"]["service"]["node"]
    job = subprocess.run(
        ["scontrol", "show", "job", str(session["jobs"]["service"]["job_id"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hpcansible-molecule-pwned" not in job
    commands = host.run("ps -eo args").stdout
    assert "hpcansible-molecule-pwned" not in commands
    log = host.file(session["jobs"]["service"]["log"]).content_string
    assert "hpcansible-molecule-pwned" not in log
    assert f"on {node}" in log


def test_postgres_exporter_reports_the_database_up(session):
    node = session["jobs"]["service"]["node"]
    metrics = http_get(f"http://{node}:9187/metrics")
    assert "\npg_up 1" in metrics
