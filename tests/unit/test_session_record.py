"""session.json: one schema, one writer (module_utils/session_record.py and its action plugin)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
from ansible_collections.hpcansible.hpc.plugins.action.session_record import plain, stamped
from ansible_collections.hpcansible.hpc.plugins.module_utils import session_record
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_record import (
    SCHEMA,
    merge,
    problems,
    read_record,
    taken_reason,
    tunnel_command,
    update_record,
)
from hpcansible import run as run_command

ROOT = Path(__file__).resolve().parents[2]
TUNNEL = {"login_host": "login", "login_port": 8822, "login_user": "root", "local_port": 9090,
          "remote_host": "node2", "remote_port": 9090}  # fmt: skip


def test_merge_is_recursive_for_mappings_only() -> None:
    base = {"jobs": {"service": {"job_id": "1", "node": "node1"}}, "notes": ["a"]}
    merged = merge(base, {"jobs": {"service": {"state": "RUNNING"}}, "notes": ["b"]})
    assert merged["jobs"]["service"] == {"job_id": "1", "node": "node1", "state": "RUNNING"}
    assert merged["notes"] == ["b"]
    assert base["jobs"]["service"] == {"job_id": "1", "node": "node1"}  # not changed in place


def test_problems_name_unknown_keys_and_wrong_types() -> None:
    assert problems({"id": "s", "jobs": {}, "failed_step": 3}) == []
    assert problems({"idd": "s"}) == ["idd: not in the session.json schema"]
    assert problems({"failed_step": True}) == ["failed_step: expected int, got bool"]
    assert problems({"jobs": []}) == ["jobs: expected object, got list"]


def test_update_writes_atomically_with_mode_0600(tmp_path: Path) -> None:
    update_record(tmp_path, {"id": "s", "status": "starting"})
    record = update_record(tmp_path, {"status": "running"})
    assert record == {"id": "s", "status": "running"} == read_record(tmp_path)
    assert stat.S_IMODE((tmp_path / "session.json").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session.json"]  # no temporary left


def test_update_refuses_what_the_schema_does_not_know(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"typo: not in the session\.json schema"):
        update_record(tmp_path, {"typo": 1})
    assert not (tmp_path / "session.json").exists()


def test_a_taken_id_is_refused_but_a_dry_run_is_not() -> None:
    assert taken_reason({}, "s") is None
    assert taken_reason({"status": "dry-run"}, "s") is None
    reason = taken_reason({"status": "running", "created": "2026-12-01T00:00:00Z"}, "s")
    assert reason and "session s exists already (running" in reason and "\n" not in reason


def test_the_record_fact_carries_no_tags() -> None:
    """The record is a host fact: ansible-core 2.19 encodes and decodes host facts with their
    tags on every task, so a tagged record cost about 10 ms a task (measured, issue 9)."""
    from ansible._internal._datatag._tags import Origin, TrustedAsTemplate

    tagged = TrustedAsTemplate().tag(Origin(path="/session.yml", line_num=3).tag("node2"))
    port = Origin(path="/session.yml", line_num=4).tag(8000)
    value = plain({"jobs": {"service": {"node": tagged, "ports": (1, port)}}, "ok": True})
    assert value == {"jobs": {"service": {"node": "node2", "ports": [1, 8000]}}, "ok": True}
    assert type(value["jobs"]["service"]["node"]) is str
    assert type(value["jobs"]["service"]["ports"][1]) is int


def test_stamps_nest_dotted_keys() -> None:
    assert stamped("steps.3.finished", "T") == {"steps": {"3": {"finished": "T"}}}


def test_the_tunnel_rule_is_the_cli_one() -> None:
    assert tunnel_command(TUNNEL) == "ssh -N -L 9090:node2:9090 -p 8822 root@login"
    argv = session_record.tunnel_argv(TUNNEL, 19090, keepalive=True)
    assert "127.0.0.1:19090:node2:9090" in argv and "ExitOnForwardFailure=yes" in argv


def test_session_ids_follow_one_rule() -> None:
    session_id = session_record.new_session_id("Llama.cpp")
    assert re.fullmatch(r"llama_cpp_\d{8}_\d{6}_[0-9a-f]{6}", session_id)


def test_the_cli_writers_follow_the_schema(tmp_path: Path) -> None:
    update_record(tmp_path, {"id": tmp_path.name, "status": "step 3", "jobs": {"service": {}}})
    run_command.mark_interrupted(tmp_path, "SIGINT", ["7"])
    record = read_record(tmp_path)
    assert problems(record) == []
    assert record["status"] == "interrupted" and record["jobs"]["service"]["state"] == "CANCELLED"


def test_no_other_code_writes_session_json() -> None:
    """Every writer goes through update_record or the session_record action."""
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "python", "plugins", "playbooks", "roles"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or name.endswith("session_record.py"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"dest: .*session\.json|session\.json\"?\)?\.write_text|RECORD_FILE", text):
            offenders.append(name)
    assert offenders == []


def test_roles_return_results_and_only_playbooks_record_them() -> None:
    """Roles take inputs and return <role>_result / session_job_result; session.yml (and the
    scenarios, as its stand-in caller) record them. A role that wrote the record or read the
    session's copy of it would not be usable outside a session."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "roles").rglob("*"))
        if path.is_file() and path.suffix in {".yml", ".j2"}
        and re.search(r"hpcansible\.hpc\.session_record:|session_job_record", path.read_text())
    ]  # fmt: skip
    assert offenders == []
    returned = (ROOT / "playbooks/session/step_end.yml").read_text()
    assert "session_job_result" in returned and "hpcansible_step_results" in returned


def test_the_readme_points_at_the_schema() -> None:
    assert "plugins/module_utils/session_record.py" in (ROOT / "README.md").read_text()


def test_every_schema_key_is_described() -> None:
    for key, (kind, description) in SCHEMA.items():
        assert kind in session_record.JSON_TYPES and description, key
    json.dumps(SCHEMA)


@pytest.mark.parametrize("session_id", ["../x", "a/b", "..", "-rf", "", "x" * 101, "a..b"])
def test_ids_that_could_leave_the_sessions_folder_are_refused(session_id: str) -> None:
    with pytest.raises(ValueError, match="use letters, digits"):
        session_record.check_session_id(session_id)


def test_the_cli_refuses_them_before_making_a_folder(tmp_path, monkeypatch) -> None:
    from hpcansible import sessions
    from hpcansible.errors import UserError

    monkeypatch.setattr(sessions, "sessions_home", lambda: tmp_path)
    with pytest.raises(UserError, match=r"session id '\.\./escape'"):
        sessions.claim_session("../escape")
    assert list(tmp_path.iterdir()) == []
