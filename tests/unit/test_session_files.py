"""A role's files in one task (module_utils/session_files.py and its action plugin): atomic,
with their mode, checked before they land; the same bytes as ansible.builtin.template."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_files import (
    SessionFile,
    ValidationFailed,
    make_folders,
    parse_mode,
    remote_script,
    write_file,
)

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "a b $(touch pwned) `touch pwned2`; 'q\"\n.txt"


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_a_file_is_written_once_with_its_mode(tmp_path: Path) -> None:
    item = SessionFile(str(tmp_path / "sub" / "redis.conf"), b"port 6379\n", 0o600)
    assert write_file(item) is True
    assert (tmp_path / "sub" / "redis.conf").read_bytes() == b"port 6379\n"
    assert mode(tmp_path / "sub" / "redis.conf") == 0o600
    assert mode(tmp_path / "sub") == 0o700
    assert write_file(item) is False  # unchanged: not rewritten
    assert write_file(SessionFile(item.dest, item.data, 0o700)) is True  # a new mode is a change
    assert mode(tmp_path / "sub" / "redis.conf") == 0o700
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["redis.conf"]  # no temporaries


def test_a_refused_file_never_lands_and_the_message_names_it(tmp_path: Path) -> None:
    dest = tmp_path / "prometheus.yml"
    dest.write_text("old\n")
    check = f"{sys.executable} -c 'import sys; sys.exit(\"bad config in \" + sys.argv[1])' %s"
    refused = r"prometheus\.yml: refused by .*bad config in .*prometheus\.yml"
    with pytest.raises(ValidationFailed, match=refused):
        write_file(SessionFile(str(dest), b"new\n", validate=check))
    assert dest.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prometheus.yml"]


def test_folders_get_their_mode(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir(mode=0o755)
    assert make_folders([str(tmp_path / "open"), str(tmp_path / "new" / "deep")]) is True
    assert mode(tmp_path / "open") == 0o700 and mode(tmp_path / "new" / "deep") == 0o700
    assert make_folders([str(tmp_path / "open")]) is False


@pytest.mark.parametrize(
    "given, expected", [("0600", 0o600), (0o644, 0o644), ("", 0o600), (None, 0o600)]
)
def test_modes(given, expected) -> None:
    assert parse_mode(given, 0o600) == expected


def test_a_mode_that_is_not_octal_is_refused() -> None:
    with pytest.raises(ValueError, match="octal"):
        parse_mode("rw-r--r--", 0o600)


def test_the_remote_command_writes_the_same_files_and_runs_nothing(tmp_path: Path) -> None:
    """The command SLURM's host runs over SSH, run here by sh: hostile names and bytes stay data."""
    files = [
        SessionFile(str(tmp_path / "dir one" / HOSTILE), b"$(touch pwned3)\n\x00\xff", 0o600),
        SessionFile(
            str(tmp_path / "job.sbatch"), b"#!/bin/bash\necho hi\n", 0o700, "grep -q echo %s"
        ),
    ]
    script = remote_script([str(tmp_path / "folder $(x)")], files)
    done = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dir one" / HOSTILE).read_bytes() == b"$(touch pwned3)\n\x00\xff"
    assert mode(tmp_path / "dir one" / HOSTILE) == 0o600
    assert mode(tmp_path / "job.sbatch") == 0o700
    assert mode(tmp_path / "folder $(x)") == 0o700
    assert not list(tmp_path.glob("pwned*")) and not list(Path.cwd().glob("pwned*"))


def test_the_remote_command_stops_at_a_refused_file(tmp_path: Path) -> None:
    files = [SessionFile(str(tmp_path / "prometheus.yml"), b"bad\n", validate="grep -q good %s")]
    done = subprocess.run(["sh", "-c", remote_script([], files)], capture_output=True, text=True)
    assert done.returncode == 3 and "refused" in done.stderr
    assert list(tmp_path.iterdir()) == []


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    redis_port: 6379
    names: [a, b]
  tasks:
    - name: The builtin way
      ansible.builtin.template:
        src: "{{ root }}/redis.conf.j2"
        dest: "{{ out }}/builtin.conf"
        mode: "0600"
    - name: One task
      hpcansible.hpc.session_files:
        folders: ["{{ out }}/kept"]
        secrets:
          - path: "{{ out }}/kept/password"
            fact: [service_password, client_secret]
            value: "{{ given | default('') }}"
        files:
          - dest: "{{ out }}/ours.conf"
            template: "{{ root }}/redis.conf.j2"
          - dest: "{{ out }}/uses-secret.conf"
            content: "requirepass {{ service_password | default('') }}"
            enabled: false
          - dest: "{{ out }}/skipped"
            content: x
            enabled: "{{ 1 > 2 }}"
      no_log: true
    - name: Show the secret facts for the test
      ansible.builtin.copy:
        content: >-
          {{ {'service_password': service_password, 'client_secret': client_secret} | to_json }}
        dest: "{{ out }}/facts.json"
        mode: "0600"
"""


def run_playbook(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "redis.conf.j2").write_text(
        "# {{ ansible_managed }}\n{% for name in names %}\nname {{ name }}\n{% endfor %}\n"
        "port {{ redis_port }}\nrequirepass {{ service_password | default('none') }}\n"
    )
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "out").mkdir(exist_ok=True)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}  # fmt: skip
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         str(tmp_path / "play.yml"), "-e", f"root={tmp_path} out={tmp_path / 'out'}",
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_the_action_renders_as_template_does_and_keeps_its_secret(tmp_path: Path) -> None:
    done = run_playbook(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    out = tmp_path / "out"
    ours = (out / "ours.conf").read_text()
    facts = yaml.safe_load((out / "facts.json").read_text())
    secret = (out / "kept" / "password").read_text()
    assert secret == facts["service_password"] + "\n" and len(secret.strip()) == 32
    assert facts["client_secret"] == facts["service_password"]
    # the same bytes as ansible.builtin.template (trim_blocks, ansible_managed), except that
    # the secret chosen by the same task is a variable of our template
    builtin = (out / "builtin.conf").read_text()
    assert ours == builtin.replace("requirepass none", f"requirepass {secret.strip()}")
    assert mode(out / "ours.conf") == 0o600 and mode(out / "kept") == 0o700
    assert not (out / "skipped").exists() and not (out / "uses-secret.conf").exists()
    assert secret.strip() not in done.stdout  # no_log
    # a second run keeps the secret; a given one wins
    assert run_playbook(tmp_path).returncode == 0
    assert (out / "kept" / "password").read_text() == secret
    assert run_playbook(tmp_path, "-e", "given=s3cret").returncode == 0
    assert (out / "kept" / "password").read_text() == "s3cret\n"
