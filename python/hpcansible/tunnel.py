"""SSH tunnels to a session's Prometheus through the cluster's login host."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.processes import end_pid, end_process
from hpcansible.prometheus_http import login_hint
from hpcansible.sessions import read_session, session_dir, session_record_module

ATTEMPTS = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tunnel",
        help="the SSH tunnel command to a session's Prometheus (or open it)",
        description="Print the ssh command that forwards a local port to the session's "
        "Prometheus through the login host; with --open, open it on a free local port and keep "
        "it open until Ctrl-C.",
    )
    parser.add_argument("session_id", metavar="ID")
    parser.add_argument("--open", action="store_true", help="open the tunnel here")
    parser.set_defaults(func=tunnel_command)


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tunnel_argv(tunnel: dict[str, Any], local_port: int) -> list[str]:
    """The printed tunnel command's rule (module_utils/session_record.py), unattended."""
    return session_record_module().tunnel_argv(tunnel, local_port, keepalive=True)


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def open_tunnel(
    record: dict[str, Any], detach: bool, log: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ssh on a free local port; retried when another program takes the port first."""
    tunnel = record.get("tunnel")
    if not tunnel:
        raise UserError(f"session {record.get('id')}: no tunnel yet (Prometheus did not start)")
    last_error = ""
    for _ in range(ATTEMPTS):
        port = free_local_port()
        output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to ssh
        process = subprocess.Popen(
            tunnel_argv(tunnel, port),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output if log else subprocess.PIPE,
            start_new_session=detach,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if port_answers(port):
                return process, f"http://127.0.0.1:{port}"
            if process.poll() is not None:
                break
            time.sleep(0.1)
        end_process(process)
        last_error = (process.stderr.read().decode().strip() if process.stderr else "") or (
            f"see {log}" if log else "ssh exited"
        )
        if "already in use" not in last_error:
            break
    raise UserError(
        f"cannot open the tunnel ({' '.join(tunnel_argv(tunnel, 0)[-4:])}): {last_error}"
    )


def close_tunnel(record: dict[str, Any]) -> bool:
    """Stop the tunnel `run --open-tunnel` left open, if it is still ours."""
    pid = record.get("tunnel_pid")
    if not pid:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not command or Path(command[0].decode()).name != "ssh":
        return False
    end_pid(pid)
    return True


def tunnel_command(args: argparse.Namespace) -> int:
    record = read_session(args.session_id)
    if not args.open:
        if not record.get("tunnel_command"):
            raise UserError(f"session {args.session_id}: no tunnel yet (Prometheus did not start)")
        print(record["tunnel_command"])
        print(
            f"then open {record.get('prometheus_url', '')} and {login_hint(record)}",
            file=sys.stderr,
        )
        return 0
    process, url = open_tunnel(
        record, detach=False, log=session_dir(args.session_id) / "logs" / "tunnel.log"
    )
    print(
        f"Prometheus of {args.session_id}: {url}  ({login_hint(record)}; Ctrl-C closes the tunnel)"
    )
    try:
        process.wait()
    except KeyboardInterrupt:
        end_process(process)
    print("tunnel closed", file=sys.stderr)
    return 0
