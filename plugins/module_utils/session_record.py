# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""session.json: its schema, and the one way to change it (merge, then write atomically).

The session record is written by the `session_record` action plugin (the playbooks) and by
the CLI (`run`, `stop`, `report`), always through `update_record`. Nothing here imports Ansible:
both sides load this file. The README points here for the schema.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.hpcansible.hpc.plugins.module_utils.session_files import (
    replace_atomically,
)

RECORD_FILE = "session.json"

# Every top-level key of session.json: (JSON type, what it holds). A writer that adds a key
# adds it here first; tests/unit/test_session_record.py checks every writer against this.
SCHEMA: dict[str, tuple[str, str]] = {
    "id": ("str", "session id: <service>_<UTC date>_<time>_<6 hex>, or the --session-id given"),
    "status": (
        "str",
        "starting, step N, running, dry-run, failed, interrupted, stopped, finished",
    ),
    "dry_run": ("bool", "true for run --dry-run (Ansible check mode): nothing was submitted"),
    "site": ("str", "the site profile's hpcansible_site"),
    "profile": ("str", "the site profile folder"),
    "created": ("str", "ISO 8601 UTC, when the session was opened"),
    "session_dir": ("str", "the session folder on the cluster's shared filesystem"),
    "results_dir": ("str", "where the client writes summary.json and its records"),
    "recipes": ("object", "service, client, prometheus: the recipe files given"),
    "notes": ("array", "what the recipes ask for that is not used here, and other notes"),
    "versions": ("object", "hpcansible, ansible, slurm, git_commit, service"),
    "hosts": ("object", "controller and slurm_login host names"),
    "steps": ("object", "per step number: name, status (running/done/failed), started, finished"),
    "jobs": ("object", "per role: job_id, name, node, nodes, state, script, ports, log, sbatch"),
    "service": ("object", "name, type, port, scheme, node, exporter, exporter_port, exporter_job"),
    "service_endpoint": ("str", "http://<node>:<port> (redis://... for Redis)"),
    "client": ("object", "name, api, endpoint, metrics_port, metrics_url, config, results_dir"),
    "prometheus": (
        "object",
        "url, port, config, storage, targets, scrape_interval, auth {username, password_file}, "
        "snapshot, snapshot_error",
    ),
    "prometheus_url": ("str", "what the user opens once the tunnel runs (http://localhost:<port>)"),
    "prometheus_node_url": ("str", "Prometheus on its node, reachable from the login node"),
    "tunnel": (
        "object",
        "login_host, login_port, login_user, local_port, remote_host, remote_port",
    ),
    "tunnel_command": ("str", "ssh -N -L <local>:<node>:<port> -p <port> <user>@<login>"),
    "tunnel_pid": ("int", "the tunnel run --open-tunnel left open (closed by stop)"),
    "tunnel_url": ("str", "the URL of that tunnel"),
    "gate": ("object", "the start gate: file, released_at, by, waited_s, timed_out"),
    "window": ("object", "the client's measured window: start, end (ISO 8601 UTC)"),
    "failed_step": ("int", "the step that failed"),
    "error": ("str", "why it failed, as printed"),
    "interrupted_by": ("str", "the signal that interrupted run (SIGINT, SIGTERM, SIGHUP)"),
    "stopped": ("str", "ISO 8601 UTC, when stop ended it"),
    "stop_reason": ("str", "why it was stopped"),
    "verdict": ("object", "run --wait: ok, reasons (service ended first, success below threshold)"),
    "cancelled_jobs": ("array", "job ids cancelled by stop or an interruption"),
    "report": ("object", "html, md: the report files, and when they were written"),
}
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "bool": (bool,),
    "int": (int,),
    "object": (dict,),
    "array": (list,),
}


def new_session_id(service_name: str, moment: datetime | None = None) -> str:
    """<service>_<UTC date>_<time>_<6 hex>: sortable, unique, a valid Ansible group name."""
    stem = "".join(c if c.isalnum() else "_" for c in str(service_name).lower()) or "session"
    stamp = (moment or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    return f"{stem}_{stamp}_{secrets.token_hex(3)}"


def new_secret(length: int = 32) -> str:
    """A password for a session's service or Prometheus: 32 letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# A session id names a folder and SLURM job names, and is an Ansible group: letters, digits,
# '_', '.', '-', starting with a letter or digit (so never '..', '/' or an option).
SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_session_id(session_id: str) -> str:
    """The id, or ValueError with the one-line reason."""
    if not SESSION_ID.match(session_id) or ".." in session_id:
        raise ValueError(
            f"session id {session_id!r}: use letters, digits, '_', '.' or '-' (at most 100, "
            "starting with a letter or digit)"
        )
    return session_id


# A session whose record has another status is live or finished: its id is taken.
REUSABLE_STATUSES = ("dry-run",)


def taken_reason(record: Mapping[str, Any], session_id: str) -> str | None:
    """Why a new session may not use this id (a record of it exists), or None."""
    if not record or record.get("status") in REUSABLE_STATUSES:
        return None
    return (
        f"session {session_id} exists already ({record.get('status', 'unknown')}, "
        f"created {record.get('created', '?')}): choose another --session-id"
    )


def now_iso() -> str:
    """The record's clock: UTC, ISO 8601 with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` merged into `base`, mappings recursively; lists and scalars are replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def problems(record: Mapping[str, Any]) -> list[str]:
    """What in a record does not follow SCHEMA (unknown keys, wrong types); empty when fine."""
    found = []
    for key, value in record.items():
        if key not in SCHEMA:
            found.append(f"{key}: not in the session.json schema")
            continue
        kind = SCHEMA[key][0]
        allowed = JSON_TYPES[kind]
        if value is not None and (
            not isinstance(value, allowed) or (kind == "int" and isinstance(value, bool))
        ):
            found.append(f"{key}: expected {kind}, got {type(value).__name__}")
    return found


def read_record(directory: Path) -> dict[str, Any]:
    """The record in `directory`, or {} when there is none (or it cannot be read)."""
    try:
        data = json.loads((Path(directory) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def render(record: Mapping[str, Any]) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename: a reader never sees half
    a file, and two writers never interleave. Mode 0600 whatever the umask."""
    replace_atomically(Path(path), text.encode("utf-8"), 0o600)


def update_record(directory: Path, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `changes` into the record in `directory`, write it, and return it."""
    record = merge(read_record(directory), changes)
    wrong = problems(record)
    if wrong:
        raise ValueError(f"{Path(directory) / RECORD_FILE}: {'; '.join(wrong)}")
    write_atomic(Path(directory) / RECORD_FILE, render(record))
    return record


def tunnel_argv(
    tunnel: Mapping[str, Any], local_port: int | None = None, keepalive: bool = False
) -> list[str]:
    """The ssh command that forwards a local port to Prometheus on its node through the login
    host; `keepalive` adds what an unattended tunnel needs (fail fast, keep-alives, no prompts)."""
    destination = str(tunnel["login_host"])
    if tunnel.get("login_user"):
        destination = f"{tunnel['login_user']}@{destination}"
    port = tunnel.get("local_port") if local_port is None else local_port
    forward = f"{port}:{tunnel['remote_host']}:{tunnel['remote_port']}"
    options = []
    if keepalive:
        forward = f"127.0.0.1:{forward}"
        options = ["-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
                   "-o", "ServerAliveCountMax=3", "-o", "BatchMode=yes"]  # fmt: skip
    return ["ssh", "-N", *options, "-L", forward, "-p", str(tunnel["login_port"]), destination]


def tunnel_command(tunnel: Mapping[str, Any]) -> str:
    """The tunnel as the user types it."""
    return shlex.join(tunnel_argv(tunnel))
