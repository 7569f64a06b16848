# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind hpcansible.hpc.session_record: the one writer of session.json.

It runs on the controller, in-process: opening a session, merging an update and writing the
record cost milliseconds, not a module execution each (0.3 to 0.9 s on a small machine). Only
when SLURM's host is reached over a connection other than local does it run one command there
to mirror the record into the cluster-side session folder.
"""

from __future__ import annotations

import base64
import re
import shlex
import socket
import subprocess
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_record import (
    RECORD_FILE,
    merge,
    new_secret,
    now_iso,
    problems,
    read_record,
    render,
    taken_reason,
    write_atomic,
)


def plain(value: Any) -> Any:
    """Ansible's tagged values as plain JSON values: str(), int() and float() drop a value's
    data tags, where to_text() keeps them. The record is a host fact, and ansible-core 2.19
    encodes and decodes host facts with their tags on every task (get_vars); 100 Origin tags
    in the record cost about 10 ms a task, 1 s of a Redis session (measured, issue 9). Other
    types pass as they are, for the schema check to name."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def stamped(path: str, moment: str) -> dict[str, Any]:
    """{"steps": {"3": {"finished": moment}}} for "steps.3.finished"."""
    value: Any = moment
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        ("open", "update", "stamp", "files", "folders", "remote_folders", "secrets")
    )
    # Bookkeeping is written in check mode too: --dry-run shows what would be submitted.
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        # Task-level vars reach an action plugin as written: render them (a value that came
        # in unsafe, as the CLI's extra vars do, stays the text it is).
        cluster_dir = str(self._templar.template(task_vars.get("hpcansible_session_dir") or ""))
        if not cluster_dir:
            raise AnsibleActionFail("session_record needs hpcansible_session_dir (set by resolve)")
        # Where Ansible runs: the same folder unless a laptop mirrors a cluster's session.
        local_dir = Path(
            str(
                self._templar.template(task_vars.get("hpcansible_local_session_dir") or cluster_dir)
            )
        )
        remote = getattr(self._connection, "transport", "local") != "local"
        if args.get("open"):
            self._refuse_a_taken_id(local_dir, task_vars)
        for folder in args.get("folders") or []:
            (local_dir / str(folder)).mkdir(parents=True, exist_ok=True, mode=0o700)
        remote_folders = [f"{cluster_dir}/{folder}" for folder in args.get("remote_folders") or []]
        if not remote:
            for folder in remote_folders:
                Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, content in (args.get("files") or {}).items():
            write_atomic(local_dir / str(name), to_text(content))
        for name in args.get("secrets") or []:
            secret = local_dir / "secrets" / str(name)
            if not secret.exists():  # generated once; a rerun of a dry run keeps it
                write_atomic(secret, new_secret() + "\n")
        record = read_record(local_dir)
        update = args.get("update") or {}
        if args.get("open"):
            record = {}  # a dry run's record of the same id is replaced, not merged into
            update = merge(self._provenance(task_vars), update)
        for path in args.get("stamp") or []:
            # the record's one clock: dotted keys (steps.3.finished) set to now, UTC
            update = merge(update, stamped(str(path), now_iso()))
        record = plain(merge(record, update))  # the fact and the file hold the same, untagged
        wrong = problems(record)
        if wrong:
            raise AnsibleActionFail(f"session.json: {'; '.join(wrong)}")
        text = render(record)
        write_atomic(local_dir / RECORD_FILE, text)
        if not remote and Path(cluster_dir) != local_dir:
            write_atomic(Path(cluster_dir) / RECORD_FILE, text)
        elif remote:
            self._mirror(cluster_dir, remote_folders, text)
        result.update(changed=False, record=record, ansible_facts={"session_job_record": record})
        return result

    def _provenance(self, task_vars: dict) -> dict[str, Any]:
        """When and where the session was opened, with which versions: read here, at once."""
        playbook_dir = Path(str(task_vars.get("playbook_dir") or "."))
        git = subprocess.run(
            ["git", "-C", str(playbook_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        sinfo = self._low_level_execute_command("sinfo --version")
        slurm = to_text(sinfo.get("stdout", "")).strip() if sinfo.get("rc") == 0 else ""
        return {
            "created": now_iso(),
            "versions": {
                "ansible": to_text(task_vars.get("ansible_version", {}).get("full", "")),
                "slurm": re.sub(r"^slurm(-wlm)?\s*", "", slurm),
                "git_commit": git.stdout.strip() if git.returncode == 0 else "",
            },
            "hosts": {
                "controller": socket.gethostname(),
                "slurm_login": to_text(task_vars.get("inventory_hostname", "")),
            },
        }

    def _refuse_a_taken_id(self, local_dir: Path, task_vars: dict) -> None:
        """One session id, one session: a second run with a taken id stops here, before
        anything is rendered or submitted."""
        session_id = str(task_vars.get("hpcansible_session_id", local_dir.name))
        reason = taken_reason(read_record(local_dir), session_id)
        if reason:
            raise AnsibleActionFail(reason)

    def _mirror(self, cluster_dir: str, folders: list[str], text: str) -> None:
        """One command on SLURM's host: create the folders, write session.json atomically."""
        target = f"{cluster_dir}/{RECORD_FILE}"
        payload = base64.b64encode(text.encode()).decode()
        temporary = f"{cluster_dir}/.{RECORD_FILE}.{now_iso().replace(':', '')}"
        command = " && ".join(
            [
                "umask 077",
                "mkdir -p " + " ".join(shlex.quote(f) for f in [cluster_dir, *folders]),
                f"printf %s {payload} | base64 -d > {shlex.quote(temporary)}",
                f"mv -f {shlex.quote(temporary)} {shlex.quote(target)}",
            ]
        )
        done = self._low_level_execute_command(command)
        if done.get("rc", 1) != 0:
            raise AnsibleActionFail(
                f"writing {target} on the cluster failed: "
                f"{to_text(done.get('stderr') or done.get('stdout')).strip()}"
            )
