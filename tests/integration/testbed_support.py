"""Helpers shared by the testbed integration tests: commands with the checkout's venv first."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    for name in ("HPCANSIBLE_SESSION", "HPCANSIBLE_LOGIN_HOST", "HPCANSIBLE_LOGIN_PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


def run(argv: list[str], timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=environment(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def squeue_lines() -> list[str]:
    done = run(["squeue", "-h", "-o", "%i|%j|%T|%r|%k"])
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


RECIPES = ROOT / "recipes"
SESSIONS = Path.home() / "hpcansible" / "sessions"


def recipe_set(name: str) -> list[str]:
    if name == "seed":
        return [
            str(RECIPES / "seed" / file)
            for file in (
                "ollama_with_cadvisor.yaml",
                "ollama_benchmark.yaml",
                "prometheus_with_cadvisor.yaml",
            )
        ]
    return [str(RECIPES / name / f"{kind}.yml") for kind in ("service", "client", "prometheus")]


def http_json(url: str, timeout: float = 10, record: dict[str, Any] | None = None) -> Any:
    """GET url as JSON; with a session's record, with its Prometheus credentials."""
    headers = {}
    auth = (record or {}).get("prometheus", {}).get("auth") or {}
    if auth.get("password_file"):
        password = Path(auth["password_file"]).read_text().strip()
        token = base64.b64encode(f"{auth['username']}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def session_jobs(session_id: str) -> list[str]:
    return [line for line in squeue_lines() if f"session={session_id};" in line]


def session_job_states(session_id: str) -> dict[str, str]:
    """role -> SLURM state of the session's jobs still in squeue."""
    states = {}
    for line in session_jobs(session_id):
        fields = line.split("|")
        role = fields[4].split("role=", 1)[1].split(";", 1)[0]
        states[role] = fields[2]
    return states


def job_processes(job_ids: list[str]) -> list[int]:
    """Processes still carrying one of these SLURM job ids in their environment."""
    wanted = {f"SLURM_JOB_ID={job_id}".encode() for job_id in job_ids}
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = set(environ.read_bytes().split(b"\0"))
        except OSError:
            continue
        if variables & wanted:
            found.append(int(environ.parent.name))
    return found


def stop(session_id: str) -> None:
    done = run(
        [
            "ansible-playbook",
            str(ROOT / "playbooks" / "teardown.yml"),
            "-e",
            f"hpcansible_session_id={session_id}",
        ],
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def session_playbook(
    session_id: str,
    recipes: list[str],
    *,
    check: bool = False,
    timeout: float = 600,
    **variables: Any,
) -> subprocess.CompletedProcess:
    """The session's second entry point: `ansible-playbook playbooks/session.yml -e ...` with the
    three recipes and further variables (what the CLI's extra vars do)."""
    extravars = {
        "hpcansible_session_id": session_id,
        "hpcansible_recipes": dict(zip(("service", "client", "prometheus"), recipes, strict=True)),
        **variables,
    }
    argv = [
        "ansible-playbook",
        str(ROOT / "playbooks" / "session.yml"),
        "-e",
        json.dumps(extravars),
    ]
    return run([*argv, "--check"] if check else argv, timeout=timeout)


def read_record(session_id: str) -> dict[str, Any]:
    path = SESSIONS / session_id / "session.json"
    return json.loads(path.read_text()) if path.exists() else {}


def unique(name: str) -> str:
    return f"{name}_{time.strftime('%H%M%S')}_{int(time.monotonic() * 1000) % 10000:04d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_summary(record: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    summary = Path(record["results_dir"]) / "summary.json"
    deadline = time.monotonic() + timeout
    while not summary.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert summary.exists(), f"no {summary} after {timeout} s"
    return json.loads(summary.read_text())


def stop_and_check(session_id: str) -> None:
    """Stop the session; none of its jobs and none of their processes may be left."""
    record = read_record(session_id)
    job_ids = [str(job["job_id"]) for job in record.get("jobs", {}).values() if job.get("job_id")]
    stop(session_id)
    assert session_jobs(session_id) == []
    deadline = time.monotonic() + 15
    while job_processes(job_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_processes(job_ids) == [], f"processes of session {session_id} outlived its jobs"
