"""`prometheus ID`: browse a finished session's metrics with the real Prometheus binary.

`served_tsdb` is the one way a stored TSDB is served: `prometheus ID` waits on it until Ctrl-C,
`report ID` queries it and ends it. Every user of the machine reaches 127.0.0.1, so the copy
is served with basic auth too (DESIGN.md section 7): a fresh password in a 0600 file of the
0700 temporary folder.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from hpcansible.errors import UserError
from hpcansible.processes import end_process
from hpcansible.prometheus_http import login_hint, request
from hpcansible.sessions import read_session
from hpcansible.tunnel import free_local_port

# Serve only what is stored: no scraping, and no retention that would delete old blocks.
CONFIG = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"
USER = "hpcansible"
BCRYPT_ROUNDS = 10  # as for the session's own Prometheus (plugins/filter/bcrypt_hash.py)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prometheus",
        help="serve a session's TSDB snapshot locally, with the real Prometheus",
        description="Copy the session's TSDB snapshot (or, without one, its TSDB folder as the "
        "job left it) to a temporary folder and serve it with Prometheus on 127.0.0.1 until "
        "Ctrl-C.",
    )
    parser.add_argument("session_id", metavar="ID")
    parser.add_argument("--port", type=int, default=0, help="local port (default: a free one)")
    parser.add_argument("--binary", default="prometheus", help="the prometheus program")
    parser.set_defaults(func=serve)


def stored_tsdb(record: dict[str, Any]) -> Path:
    prometheus = record.get("prometheus", {})
    for candidate in (prometheus.get("snapshot"), prometheus.get("storage")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise UserError(f"session {record.get('id')}: no TSDB snapshot or folder to serve")


def wait_ready(
    process: subprocess.Popen, url: str, login: tuple[str, str] | None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(
                f"prometheus exited with status {process.returncode} before it was ready"
            )
        try:
            request(f"{url}/-/ready", login, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise UserError(f"prometheus not ready at {url} after {timeout:g} s")


def protect(work: Path) -> tuple[Path, tuple[str, str], Path]:
    """A web config with basic auth for a fresh password: (config, login, password file)."""
    password = secrets.token_urlsafe(24)
    password_file = work / "password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()
    web = work / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    web.chmod(0o600)
    return web, (USER, password), password_file


@dataclass(frozen=True)
class ServedTSDB:
    url: str
    process: subprocess.Popen
    login: tuple[str, str]
    password_file: Path

    @property
    def auth(self) -> dict[str, str]:
        """As session.json's prometheus.auth names a login."""
        return {"username": self.login[0], "password_file": str(self.password_file)}


@contextmanager
def served_tsdb(source: Path, binary: str = "prometheus", port: int = 0) -> Iterator[ServedTSDB]:
    """Serve a copy of the TSDB folder `source` on 127.0.0.1 until the block ends."""
    program = shutil.which(binary)
    if program is None:
        raise UserError(f"{binary}: not found (install Prometheus or give --binary)")
    port = port or free_local_port()
    with tempfile.TemporaryDirectory(prefix="hpcansible-tsdb-") as work:
        data = Path(work) / "data"
        # A copy: Prometheus writes into its TSDB, the session's snapshot stays as it was taken.
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("lock", "snapshots"))
        config = Path(work) / "prometheus.yml"
        config.write_text(CONFIG)
        web, login, password_file = protect(Path(work))
        with (Path(work) / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    program,
                    f"--config.file={config}",
                    f"--web.config.file={web}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(process, url, login)
            yield ServedTSDB(url, process, login, password_file)
        finally:
            end_process(process, grace_s=30)


def serve(args: argparse.Namespace) -> int:
    record = read_session(args.session_id)
    source = stored_tsdb(record)
    try:
        with served_tsdb(source, args.binary, args.port) as served:
            hint = login_hint({"prometheus": {"auth": served.auth}})
            print(
                f"session {args.session_id}'s metrics ({source}): {served.url}  ({hint}; "
                "Ctrl-C stops)",
                flush=True,
            )
            served.process.wait()
    except KeyboardInterrupt:
        pass
    print("stopped", file=sys.stderr)
    return 0
