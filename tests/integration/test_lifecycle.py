"""The CLI's session lifecycle on the testbed: status, list, stop, logs, tunnels, Ctrl-C,
kill -9, dry runs, snapshots that outlive the jobs, and two sessions side by side."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from testbed_support import (
    PYTHON,
    ROOT,
    SESSIONS,
    environment,
    free_port,
    http_json,
    read_record,
    recipe_set,
    run,
    session_job_states,
    session_jobs,
    unique,
)

pytestmark = pytest.mark.testbed

OLLAMA = recipe_set("ollama")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "hpcansible", *args], timeout=timeout)


# The step delay is a test aid, so it lives with the tests: a callback plugin (not a task of
# the session) that holds the step named by HPCANSIBLE_STEP_DELAY=<step>:<seconds>.
STEP_DELAY_CALLBACK = {
    "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).parent / "callbacks"),
    "ANSIBLE_CALLBACKS_ENABLED": "step_delay",
}


def start_run(session_id: str, *args: str, **env: str) -> subprocess.Popen:
    """`run` in the background, its progress lines readable from stderr."""
    if "HPCANSIBLE_STEP_DELAY" in env:
        env = {**STEP_DELAY_CALLBACK, **env}
    return subprocess.Popen(
        [PYTHON, "-m", "hpcansible", "run", "--session-id", session_id, *args, *OLLAMA],
        cwd=ROOT,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 300) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no line with {text!r} in: {''.join(seen)[-2000:]}")


def no_jobs_within(session_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while session_jobs(session_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_run_json_and_status_json_agree(sessions):
    session_id = unique("agree")
    sessions.append(session_id)
    done = cli("run", "--json", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    status = cli("status", session_id, "--json", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    state = json.loads(status.stdout)
    assert state["healthy"] is True
    for role in ("service", "client", "prometheus"):
        assert state["jobs"][role]["job_id"] == record["jobs"][role]["job_id"]
        assert state["jobs"][role]["node"] == record["jobs"][role]["node"]
        assert state["jobs"][role]["state"] == "RUNNING"
    assert state["service_endpoint"] == record["service_endpoint"]
    assert state["prometheus_url"] == record["prometheus"]["url"]
    assert {target["health"] for target in state["targets"]} == {"up"}

    listing = cli("list", timeout=60)
    assert listing.returncode == 0 and session_id in listing.stdout
    logs = cli("logs", session_id, "--role", "service", timeout=60)
    assert logs.returncode == 0 and "hpcansible Ollama stand-in" in logs.stdout
    tunnel = cli("tunnel", session_id, timeout=60)
    assert tunnel.stdout.strip() == record["tunnel_command"]

    for _ in range(2):  # stopping twice is harmless
        stopped = cli("stop", session_id, timeout=180)
        assert stopped.returncode == 0, stopped.stderr
    assert session_jobs(session_id) == []
    after = cli("status", session_id, "--json", timeout=60)
    assert after.returncode == 1
    ended = {job["state"] for job in json.loads(after.stdout)["jobs"].values()}
    assert ended <= {"CANCELLED", "ENDED"}, ended
    assert read_record(session_id)["status"] == "stopped"


@pytest.mark.parametrize(
    "step",
    [pytest.param(step, marks=() if step == 3 else pytest.mark.slow) for step in range(1, 7)],
)
def test_ctrl_c_at_each_step_cancels_the_sessions_jobs(sessions, step):
    session_id = unique(f"ctrlc{step}")
    sessions.append(session_id)
    # Hold the step for a while, so that the interrupt lands inside it.
    process = start_run(session_id, HPCANSIBLE_STEP_DELAY=f"{step}:30")
    wait_for_line(process, f"[{step}/6]")
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    assert process.wait(timeout=60) == 130
    assert no_jobs_within(session_id, 15 - (time.monotonic() - interrupted))
    record = read_record(session_id)
    assert record["status"] == "interrupted" and record["interrupted_by"] == "SIGINT"


def test_kill_9_then_stop_cancels_everything(sessions):
    session_id = unique("kill9")
    sessions.append(session_id)
    process = start_run(session_id, HPCANSIBLE_STEP_DELAY="3:20")
    wait_for_line(process, "[3/6]")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert session_job_states(session_id), "the service should be running"
    stopped = cli("stop", session_id, timeout=180)
    assert stopped.returncode == 0, stopped.stderr
    assert session_jobs(session_id) == []
    time.sleep(10)  # nothing the killed CLI left behind submits anything later
    assert session_jobs(session_id) == []


def test_dry_run_submits_nothing_and_writes_the_scripts(sessions):
    session_id = unique("dry")
    done = cli("run", "--dry-run", "--json", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    assert session_jobs(session_id) == []
    record = json.loads(done.stdout)
    assert record["status"] == "dry-run"
    directory = SESSIONS / session_id
    for script in ("service", "client", "prometheus"):
        text = (directory / "jobs" / f"{script}.sbatch").read_text()
        assert text.startswith("#!/bin/bash")
    assert "scrape_configs" in (directory / "prometheus" / "prometheus.yml").read_text()
    # the nodes a dry run cannot know are named, and the tunnel it prints says so
    assert record["jobs"]["prometheus"]["node"] == "<prometheus-node>"
    assert ":<prometheus-node>:" in record["tunnel_command"]


def test_open_tunnel_gives_a_url_through_the_login_node(sessions):
    session_id = unique("tunnel")
    sessions.append(session_id)
    done = cli("run", "--json", "--open-tunnel", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    url = record["tunnel_url"]
    assert url.startswith("http://127.0.0.1:")
    targets = http_json(f"{url}/api/v1/targets", record=record)
    assert targets["status"] == "success"
    command = Path(f"/proc/{record['tunnel_pid']}/cmdline").read_bytes().split(b"\0")
    assert b"-p" in command and b"8822" in command  # through the login node's sshd
    assert cli("stop", session_id, timeout=180).returncode == 0
    time.sleep(1)
    assert (
        not Path(f"/proc/{record['tunnel_pid']}").exists()
        or b"zombie" in Path(f"/proc/{record['tunnel_pid']}/status").read_bytes().lower()
    )


def test_wait_collects_results_and_the_snapshot_serves_the_sessions_series(sessions):
    session_id = unique("wait")
    sessions.append(session_id)
    done = cli("run", "--json", "--wait", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["status"] == "stopped"
    assert session_jobs(session_id) == []
    summary = json.loads((Path(record["results_dir"]) / "summary.json").read_text())
    assert summary["requests"]["succeeded"] > 0
    snapshot = Path(record["prometheus"]["snapshot"])
    assert snapshot.is_dir()

    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "hpcansible", "prometheus", session_id, "--port", str(port)],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + server.stderr.read()
        exporter_job = record["service"]["exporter_job"]
        created = datetime.fromisoformat(record["created"]).replace(tzinfo=UTC).timestamp()
        query = (
            f"http://127.0.0.1:{port}/api/v1/series?match[]={{job=%22{exporter_job}%22}}"
            f"&start={created - 60:.0f}&end={time.time():.0f}"
        )
        # the local copy has its own password, named on the line it printed
        password_file = re.search(r"password: cat (\S+)\)?;", line).group(1)
        login = {"prometheus": {"auth": {"username": "hpcansible", "password_file": password_file}}}
        series = http_json(query, record=login)["data"]
        assert series, "the snapshot holds no series of the session's exporter"
        assert {item["job"] for item in series} == {exporter_job}
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0


@pytest.mark.slow
def test_two_sessions_do_not_collide_and_stop_separately(sessions):
    first, second = unique("twin_a"), unique("twin_b")
    sessions.extend([first, second])
    records = []
    for session_id in (first, second):
        done = cli("run", "--json", "--session-id", session_id, *OLLAMA)
        assert done.returncode == 0, done.stderr[-3000:]
        records.append(json.loads(done.stdout))
    ports = [record["service"]["port"] for record in records]
    assert ports[0] != ports[1]
    assert SESSIONS / first != SESSIONS / second
    for session_id in (first, second):
        assert cli("status", session_id, timeout=60).returncode == 0
    assert cli("stop", first, timeout=180).returncode == 0
    assert session_jobs(first) == []
    assert cli("status", second, timeout=60).returncode == 0


def test_doctor_passes_on_the_testbed(slurm_testbed):
    done = cli("doctor", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   SLURM commands on localhost:" in done.stdout
    assert "ok   sbatch accepts partition/account/QoS: yes" in done.stdout
    assert "ok   shared folder writable from a compute node:" in done.stdout
    assert "compute nodes reach the internet: no" in done.stdout


def test_doctor_names_a_blocker(slurm_testbed, tmp_path):
    profile = tmp_path / "badsite"
    (profile / "group_vars").mkdir(parents=True)
    for name in ("hosts.yml", "session.slurm_jobs.yml"):
        (profile / name).write_text((ROOT / "inventory" / "testbed" / name).read_text())
    settings = (ROOT / "inventory" / "testbed" / "group_vars" / "all.yml").read_text()
    (profile / "group_vars" / "all.yml").write_text(
        settings.replace("hpcansible_partition: debug", "hpcansible_partition: nosuchpart")
    )
    done = cli("doctor", "--profile", str(profile), timeout=300)
    assert done.returncode == 1
    assert "FAIL partition nosuchpart: not found" in done.stdout
    assert "Invalid partition name specified" in done.stdout


def test_session_through_the_login_node_as_from_a_laptop(sessions):
    """Profile testbed-ssh: Ansible and the CLI reach SLURM only over SSH to the login node;
    the cluster-side session directory is apart from the local mirror."""
    session_id = unique("viassh")
    sessions.append(session_id)
    done = cli("run", "--json", "--profile", "testbed-ssh", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["hosts"]["slurm_login"] == "login"
    assert record["session_dir"] == str(
        Path.home() / "hpcansible-cluster" / "sessions" / session_id
    )
    assert (SESSIONS / session_id / "session.json").exists()
    assert (SESSIONS / session_id / "recipes" / "role_vars.yml").exists()
    status = cli("status", session_id, "--json", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["healthy"] is True
    stopped = cli("stop", session_id, timeout=180)
    assert stopped.returncode == 0, stopped.stderr
    assert session_jobs(session_id) == []
    assert read_record(session_id)["status"] == "stopped"
