"""Chroma is bound to its node, with its data in the session, and answers only with the
session's token, which stayed a harmless string."""

import urllib.error
import urllib.request

from conftest import listening, mode, node_address

TOKEN = "t0ken-$(touch${IFS}/tmp/hpcansible-molecule-pwned)"
COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def status(url: str, token: str | None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_listens_on_the_node_address_only(session):
    node = session["jobs"]["service"]["node"]
    assert f"{node_address(node)}:8000" in listening(node)
    assert "0.0.0.0:8000" not in listening(node)


def test_answers_with_the_token_only(session):
    url = f"http://{session['jobs']['service']['node']}:8000{COLLECTIONS}"
    assert status(url, TOKEN) == 200
    assert status(url, None) in (401, 403)
    assert status(url, "wrong") in (401, 403)


def test_token_never_ran_as_a_command(host):
    assert not host.file("/tmp/hpcansible-molecule-pwned").exists


def test_token_and_data_are_private(host, session):
    session_dir = session["jobs"]["service"]["script"].rsplit("/jobs/", 1)[0]
    folder = f"{session_dir}/service/chroma"
    assert mode(host, folder) == 0o700
    assert mode(host, f"{folder}/token") == 0o600
    assert mode(host, f"{folder}/data") == 0o700
