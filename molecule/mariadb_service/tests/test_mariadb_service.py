"""MariaDB is bound to its node, with its data in the session, behind passwords that stayed
harmless strings; its exporter reports the database up."""

import os
import subprocess

from conftest import http_get, listening, mode, node_address

PASSWORD = "x'\"\\; rm -rf ~ $(touch /tmp/hpcansible-molecule-pwned)"


def mariadb(node: str, password: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mariadb", f"--host={node}", "--port=3306", "--protocol=TCP", "--user=bench",
         "--connect-timeout=3", "--batch", "--skip-column-names", f"--execute={sql}", "bench"],
        env={**os.environ, "MYSQL_PWD": password},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_listens_on_the_node_address_only(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:3306" in listening(node)
    assert "0.0.0.0:3306" not in listening(node)
    assert "*:3306" not in listening(node)


def test_answers_with_the_password_only(session):
    node = session["jobs"]["service"]["node"]
    done = mariadb(node, PASSWORD, "SELECT DATABASE()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bench"
    refused = mariadb(node, "wrong", "SELECT 1")
    assert refused.returncode != 0
    assert "Access denied" in refused.stderr


def test_password_never_ran_as_a_command(host):
    assert not host.file("/tmp/hpcansible-molecule-pwned").exists


def test_secrets_and_data_are_private(host, session):
    session_dir = session["jobs"]["service"]["script"].rsplit("/jobs/", 1)[0]
    folder = f"{session_dir}/service/mariadb"
    assert mode(host, folder) == 0o700
    for name in ("password", "root-password", "exporter-password", "init.sql", "client.cnf",
                 "exporter.cnf", "server.cnf"):  # fmt: skip
        assert mode(host, f"{folder}/{name}") == 0o600, name


def test_mysqld_exporter_reports_the_database_up(session):
    node = session["jobs"]["service"]["node"]
    metrics = http_get(f"http://{node}:9104/metrics")
    assert "\nmysql_up 1" in metrics
