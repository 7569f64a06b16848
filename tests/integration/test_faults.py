"""Safe on a shared cluster, honest under faults (issue 12), on the testbed.

One session (Ollama stand-in recipes) is shared by the tests of this module that only look at
it; the faults that take SLURM's daemons away come last and put them back.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed_support import (
    PYTHON,
    ROOT,
    SESSIONS,
    http_json,
    job_processes,
    read_record,
    recipe_set,
    run,
    session_jobs,
    stop,
    unique,
)

pytestmark = pytest.mark.testbed

OLLAMA = recipe_set("ollama")
# What another user of the cluster would send from another node, without the session's password.
OTHER_USER = r"""
import sys, urllib.request, urllib.error
base = sys.argv[1]
for method, path in (("GET", "/api/v1/query?query=up"),
                     ("POST", "/api/v1/admin/tsdb/delete_series?match[]=up"),
                     ("POST", "/-/quit")):
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, method=method,
                                                           data=b"" if method == "POST" else None),
                                    timeout=5) as answer:
            print(path, answer.status)
    except urllib.error.HTTPError as error:
        print(path, error.code)
"""


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "hpcansible", *args], timeout=timeout)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def controller_answers(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(["scontrol", "ping"], timeout=10).stdout.count(" is UP"):
            return True
        time.sleep(1)
    return False


@pytest.fixture(scope="module")
def session(slurm_testbed) -> Iterator[dict]:
    """One running session for the read-only checks; stopped at the end of the module."""
    session_id = unique("faults")
    done = cli("run", "--json", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    yield json.loads(done.stdout)
    stop(session_id)
    assert session_jobs(session_id) == []


def test_prometheus_refuses_other_users_and_keeps_running(session):
    url = session["prometheus"]["url"]
    other = run(
        ["nsenter", "--net=/var/run/netns/node3", PYTHON, "-c", OTHER_USER, url], timeout=60
    )
    answers = dict(line.rsplit(" ", 1) for line in other.stdout.splitlines())
    assert answers == {
        "/api/v1/query?query=up": "401",
        "/api/v1/admin/tsdb/delete_series?match[]=up": "401",
        "/-/quit": "401",
    }, other.stdout + other.stderr
    # Still running, and the owner's credentials work (status reads the targets with them).
    assert http_json(f"{url}/api/v1/query?query=up", record=session)["status"] == "success"
    status = cli("status", session["id"], "--json", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(target["health"] == "up" for target in json.loads(status.stdout)["targets"])


def test_the_session_is_the_users_alone(session):
    directory = Path(session["session_dir"])
    assert mode(directory) == 0o700
    assert mode(directory / "session.json") == 0o600
    assert mode(directory / "secrets" / "prometheus.password") == 0o600
    for folder in ("jobs", "logs", "results", "prometheus", "recipes", "client"):
        assert mode(directory / folder) == 0o700, folder
    for script in (directory / "jobs").iterdir():
        assert mode(script) == 0o700, script
    for log in (directory / "logs").glob("*.out"):
        assert mode(log) & 0o077 == 0, log
    password = (directory / "secrets" / "prometheus.password").read_text().strip()
    shown = run(["scontrol", "show", "job", session["jobs"]["prometheus"]["job_id"]]).stdout
    for place in (
        shown,
        (directory / "session.json").read_text(),
        *(log.read_text(errors="replace") for log in (directory / "logs").iterdir()),
    ):
        assert password not in place  # fmt: skip


def test_the_same_id_twice_is_refused_before_anything_is_submitted(session):
    before = session_jobs(session["id"])
    record = (Path(session["session_dir"]) / "session.json").read_text()
    done = cli("run", "--session-id", session["id"], *OLLAMA, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "exists already" in done.stderr, done.stderr
    assert session_jobs(session["id"]) == before
    assert (Path(session["session_dir"]) / "session.json").read_text() == record


def test_a_closed_pipe_ends_quietly(session):
    done = subprocess.run(
        f"{PYTHON} -m hpcansible list | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.startswith("SESSION") and done.stderr == ""


def test_no_runner_folder_is_left_in_tmp(session):
    before = set(Path("/tmp").glob("hpcansible-runner-*"))
    assert cli("doctor", timeout=300).returncode == 0
    assert set(Path("/tmp").glob("hpcansible-runner-*")) == before


def test_a_restarted_controller_leaves_the_session_running_and_a_down_one_is_one_line(session):
    """slurmctld down: status and stop say so in one line; restarted (state kept), the session
    runs on and status is healthy again."""
    assert run(["pkill", "-x", "slurmctld"]).returncode == 0
    try:
        time.sleep(1)
        status = cli("status", session["id"], timeout=120)
        assert status.returncode == 1
        assert status.stderr.count("\n") == 1 and "SLURM" in status.stderr, status.stderr
        stopped = cli("stop", session["id"], timeout=180)
        assert stopped.returncode == 2, stopped.stderr
        assert "these may still run:" in stopped.stderr and "service job" in stopped.stderr
        assert stopped.stderr.count("\n") == 1
    finally:
        subprocess.run(["slurmctld"], check=True)  # without -c: the jobs are recovered
        assert controller_answers(60)
    deadline = time.monotonic() + 60
    while True:
        status = cli("status", session["id"], "--json", timeout=120)
        if status.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status.returncode == 0, status.stdout + status.stderr


def test_munge_down_is_named_by_doctor_and_testbed_up_brings_it_back(session):
    """Without munge, slurmctld soon declares the nodes failed and drops their jobs (the
    session's among them) without killing their processes; `testbed up` restarts munged,
    resumes the nodes and ends those orphans, so that their ports are free again."""
    assert run(["pkill", "-x", "munged"]).returncode == 0
    try:
        doctor = cli("doctor", timeout=300)
        assert doctor.returncode == 1
        line = next(line for line in doctor.stdout.splitlines() if "munge" in line)
        assert line.startswith("FAIL") and "munged does not answer" in line, doctor.stdout
    finally:
        up = cli("testbed", "up", timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    assert run(["munge", "-n"]).returncode == 0
    idle = run(["sinfo", "-h", "-N", "-o", "%t"]).stdout.split()
    assert idle and set(idle) <= {"idle", "mix", "alloc"}, idle
    job_ids = [str(job["job_id"]) for job in session["jobs"].values()]
    assert job_processes(job_ids) == [] or session_jobs(session["id"]), "orphans left running"


def test_a_taken_port_fails_with_the_log_tail_and_the_hint(sessions, tmp_path):
    """The service's port is taken on its node: step 2 fails and prints the job's log lines."""
    blocker = subprocess.Popen(
        ["nsenter", "--net=/var/run/netns/node1", PYTHON, "-c",
         "import socket, time; s = socket.socket(); "
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
         "s.bind(('0.0.0.0', 11500)); s.listen(); time.sleep(300)"],
    )  # fmt: skip
    try:
        time.sleep(1)
        service = tmp_path / "service.yml"
        text = Path(OLLAMA[0]).read_text()
        text = text.replace("  exporter: cadvisor\n", "  exporter: cadvisor\n  port: 11500\n")
        text = text.replace('    time: "01:00:00"', '    time: "01:00:00"\n    nodelist: node1')
        service.write_text(text)
        session_id = unique("port")
        sessions.append(session_id)
        done = cli("run", "--session-id", session_id, str(service), *OLLAMA[1:], timeout=300)
        assert done.returncode == 1
        assert "[2/6] detect service failed" in done.stderr
        tail = done.stderr.split("last lines of", 1)[1]
        assert "address already in use" in tail.lower(), done.stderr
    finally:
        blocker.kill()


@pytest.mark.slow
def test_a_time_limit_shorter_than_the_load_is_warned_and_fails_wait(sessions, tmp_path):
    service = tmp_path / "service.yml"
    service.write_text(Path(OLLAMA[0]).read_text().replace('time: "01:00:00"', 'time: "00:01:00"'))
    client = tmp_path / "client.yml"
    client.write_text(
        Path(OLLAMA[1]).read_text().replace("    requests: 200\n", "    duration: 150\n")
    )
    session_id = unique("timelimit")
    sessions.append(session_id)
    done = cli("run", "--wait", "--session-id", session_id, str(service), str(client),
               OLLAMA[2], timeout=600)  # fmt: skip
    assert "note:" in done.stderr and "time" in done.stderr  # the pre-submit warning
    assert done.returncode == 1, done.stderr[-3000:]
    assert "ended (TIMEOUT) before the client finished" in done.stderr, done.stderr[-3000:]
    verdict = read_record(session_id)["verdict"]
    assert verdict["ok"] is False


@pytest.mark.slow
def test_a_node_failure_ends_the_job_visibly(sessions):
    session_id = unique("nodefail")
    sessions.append(session_id)
    done = cli("run", "--json", "--session-id", session_id, *OLLAMA)
    assert done.returncode == 0, done.stderr[-3000:]
    node = json.loads(done.stdout)["jobs"]["service"]["node"]
    assert run(["pkill", "-f", f"^slurmd -N {node}$"]).returncode == 0
    try:
        deadline = time.monotonic() + 150  # SlurmdTimeout=30 s, then the node is declared down
        while time.monotonic() < deadline:
            status = cli("status", session_id, "--json", timeout=60)
            jobs = json.loads(status.stdout)["jobs"] if status.stdout else {}
            if jobs.get("service", {}).get("state") == "NODE_FAIL":
                break
            time.sleep(5)
        assert status.returncode == 1
        problems = json.loads(status.stdout)["problems"]
        assert any("service job" in problem and "NODE_FAIL" in problem for problem in problems)
        # Not requeued: nothing of the session runs on another node now.
        assert "service" not in {
            line.split("role=", 1)[1].split(";", 1)[0] for line in session_jobs(session_id)
        }
    finally:
        up = cli("testbed", "up", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
    assert os.path.exists(SESSIONS / session_id / "session.json")
