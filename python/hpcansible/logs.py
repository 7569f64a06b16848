"""`logs ID [--role R] [-f]`: the output of a session's jobs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hpcansible.errors import UserError
from hpcansible.sessions import read_session


def register(subparsers: argparse._SubParsersAction) -> None:
    logs = subparsers.add_parser("logs", help="the output of a session's jobs")
    logs.add_argument("session_id", metavar="ID")
    logs.add_argument("--role", choices=("service", "client", "prometheus"), help="one job only")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    logs.set_defaults(func=logs_command)


def log_files(session_id: str, role: str | None) -> list[tuple[str, Path]]:
    record = read_session(session_id)
    roles = (
        [role]
        if role
        else [r for r in ("service", "client", "prometheus") if r in record.get("jobs", {})]
    )
    files = []
    for name in roles:
        job = record.get("jobs", {}).get(name)
        if not job:
            raise UserError(f"session {session_id} has no {name} job")
        files.append((name, Path(job["log"])))
    return files


def logs_command(args: argparse.Namespace) -> int:
    files = log_files(args.session_id, args.role)
    positions = {}
    for role, path in files:
        if len(files) > 1:
            print(f"==> {role}: {path} <==")
        text = path.read_text(errors="replace") if path.exists() else "(no output yet)\n"
        sys.stdout.write(text)
        positions[path] = path.stat().st_size if path.exists() else 0
    if not args.follow:
        return 0
    try:
        while True:
            for role, path in files:
                if path.exists() and path.stat().st_size > positions[path]:
                    with path.open(errors="replace") as handle:
                        handle.seek(positions[path])
                        chunk = handle.read()
                    positions[path] += len(chunk.encode())
                    prefix = f"[{role}] " if len(files) > 1 else ""
                    sys.stdout.write("".join(prefix + line for line in chunk.splitlines(True)))
                    sys.stdout.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
