"""The testbed, the slurm_job module and the slurm_jobs inventory plugin on real SLURM.

Needs the testbed up (`python -m hpcansible testbed up`); the `slurm_testbed` fixture fails
when it is not. Other people use the same testbed at the same time: every job here carries a
unique token in its name or comment, only jobs with that token are ever cancelled, and each
asks for one CPU for a few minutes at most.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import (
    SbatchOptions,
    Slurm,
    build_tag,
    expand_hostlist,
)
from testbed_support import ROOT, VENV_BIN, run, squeue_lines

pytestmark = pytest.mark.testbed

NODES = ("node1", "node2", "node3")
SLEEP_SCRIPT = "#!/bin/bash\nsleep 120\n"


def local_runner(argv, stdin=None):
    done = subprocess.run(
        list(argv), input=stdin or "", capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode, done.stdout, done.stderr


def active_jobs_with(token: str) -> list[str]:
    return [line for line in squeue_lines() if token in line]


def cancel_jobs_with(token: str) -> None:
    """Cancel the jobs whose name or comment carries this test's token, and only those."""
    ids = [line.split("|", 1)[0] for line in active_jobs_with(token)]
    if ids:
        run(["scancel", *ids])
        deadline = time.monotonic() + 15
        while active_jobs_with(token) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def token(slurm_testbed) -> Iterator[str]:
    """A unique session id for one test; its jobs are cancelled afterwards, whatever happened."""
    value = f"t{uuid.uuid4().hex[:12]}"
    yield value
    cancel_jobs_with(value)


def playbook(tmp_path: Path, tasks: list[dict], check: bool = False) -> list[dict]:
    """Run `tasks` (each a slurm_job argument dict, or a full task) on localhost; their results.

    Every task registers its result and ignores errors, so failures come back as results with
    `failed: true` and the module's `msg`.
    """
    plays_tasks = []
    for index, task in enumerate(tasks):
        # a full task names its module by FQCN; anything else is slurm_job's arguments
        body = task if any("." in key for key in task) else {"hpcansible.hpc.slurm_job": task}
        plays_tasks.append(
            {"name": f"step {index}", **body, "register": f"r{index}", "ignore_errors": True}
        )
    results = tmp_path / "results.json"
    registered = ", ".join(f"r{index}" for index in range(len(tasks)))
    plays_tasks.append(
        {
            "name": "save the results",
            "ansible.builtin.copy": {
                "content": "{{ [" + registered + "] | to_json }}",
                "dest": str(results),
                "mode": "0600",
            },
            "check_mode": False,
        }
    )
    play = [{"name": "test", "hosts": "localhost", "gather_facts": False, "tasks": plays_tasks}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    argv = ["ansible-playbook", "-i", str(ROOT / "inventory" / "testbed"), str(path)]
    if check:
        argv += ["--check", "--diff"]
    done = run(argv, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return json.loads(results.read_text())


def unwrap(value):
    """ansible-inventory --list marks strings as {"__ansible_unsafe": ...}: take the values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


# --- the testbed itself ----------------------------------------------------------------------


def test_status_exits_zero_and_names_every_part(slurm_testbed):
    done = run([str(VENV_BIN / "python"), "-m", "hpcansible", "testbed", "status"], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    expected = [
        "up: bridge hpcbr0",
        "up: munge",
        "up: slurmctld",
        "up: login sshd (login:8822)",
        "up: namespace login",
    ]
    for node in NODES:
        expected += [f"up: namespace {node}", f"up: slurmd {node}", f"up: node {node}"]
    for line in expected:
        assert line in lines, done.stdout
    assert "missing" not in done.stdout


def test_sinfo_lists_the_three_nodes_usable(slurm_testbed):
    done = run(["sinfo", "-N", "-h", "-o", "%N %t %c"])
    assert done.returncode == 0, done.stderr
    states = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    assert set(NODES) <= set(states), done.stdout
    for node in NODES:
        state, cpus = states[node]
        # idle, or busy with other people's jobs; never down, drained or unknown
        assert state in ("idle", "mix", "alloc", "comp"), f"{node} is {state}"
        assert cpus == "2"


def test_srun_runs_on_the_node_asked_for(slurm_testbed):
    done = run(
        [
            "srun",
            "-N1",
            "-n1",
            "-c1",
            "-t1",
            "-w",
            "node2",
            "--job-name=hpcansible-srun-t",
            "hostname",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "node2"


def test_login_node_answers_squeue_over_ssh(slurm_testbed):
    done = run(["ssh", "-p", "8822", "-o", "BatchMode=yes", "login", "squeue"], timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:4] == ["JOBID", "PARTITION", "NAME", "USER"]


# --- the slurm_job module through ansible-playbook -------------------------------------------


def test_module_submit_wait_idempotence_info_and_cancel_by_session(token, tmp_path):
    common = {"session": token, "time": "00:03:00", "cpus_per_task": 1, "poll_interval": 0.1}
    service = {
        **common,
        "role": "service",
        "ports": [18080, 8080],
        "script": SLEEP_SCRIPT,
        "output": str(tmp_path / "service-%j.out"),
        "wait_for": "running",
        "timeout": 30,
    }
    client = {
        **common,
        "role": "client",
        "nodes": "2",
        "ntasks": 2,
        "script": SLEEP_SCRIPT,
        "output": str(tmp_path / "client-%j.out"),
        "wait_for": "running",
        "timeout": 30,
    }
    results = playbook(
        tmp_path,
        [
            service,  # 0 submit, wait until running
            service,  # 1 the same again: found, not submitted
            client,  # 2 two nodes
            {"state": "info", "session": token},  # 3
            {"state": "info", "job_id": "{{ r0.job_id }}"},  # 4
            {"state": "absent", "session": token, "role": "client", "timeout": 20},  # 5
            {"state": "info", "session": token},  # 6
            {"state": "absent", "session": token, "timeout": 20},  # 7
            {"state": "absent", "session": token, "timeout": 20},  # 8 nothing left
            {"state": "info", "session": token},  # 9
        ],
    )
    first, again, two, info_all, info_one, cancel_client, after_client = results[:7]
    cancel_all, cancel_none, info_none = results[7:]
    for result in results:
        assert not result.get("failed"), result.get("msg")

    job_id = first["job_id"]
    assert first["changed"] is True
    assert first["state"] == "RUNNING"
    assert len(first["nodes"]) == 1 and first["nodes"][0] in NODES
    assert first["nodes"] == [first["nodelist"]]
    assert first["job"]["session"] == token
    assert first["job"]["role"] == "service"
    assert first["job"]["ports"] == [18080, 8080]
    assert first["stdout_path"] == str(tmp_path / f"service-{job_id}.out")
    assert first["sbatch_argv"][:2] == ["sbatch", "--parsable"]
    assert f"--job-name=hpcansible-{token}-service" in first["sbatch_argv"]

    assert again["changed"] is False
    assert again["job_id"] == job_id
    assert again["state"] == "RUNNING"

    assert two["changed"] is True
    assert len(two["nodes"]) == 2, two
    assert set(two["nodes"]) <= set(NODES)
    assert two["nodes"] == expand_hostlist(two["nodelist"])

    assert info_all["changed"] is False
    assert sorted(job["job_id"] for job in info_all["jobs"]) == sorted([job_id, two["job_id"]])
    assert info_one["job_id"] == job_id
    assert info_one["state"] == "RUNNING"
    assert info_one["job"]["ports"] == [18080, 8080]

    assert cancel_client["changed"] is True
    assert cancel_client["cancelled"] == [two["job_id"]]
    assert [job["job_id"] for job in after_client["jobs"]] == [job_id]

    assert cancel_all["changed"] is True
    assert cancel_all["cancelled"] == [job_id]
    assert cancel_none["changed"] is False
    assert info_none["jobs"] == []
    assert active_jobs_with(token) == []


def test_module_job_asking_for_too_many_cpus_times_out_with_the_reason(token, tmp_path):
    (pending, cancel) = playbook(
        tmp_path,
        [
            {
                "session": token,
                "role": "big",
                "cpus_per_task": 64,
                "time": "00:01:00",
                "script": SLEEP_SCRIPT,
                "output": str(tmp_path / "big-%j.out"),
                "wait_for": "running",
                "timeout": 3,
                "poll_interval": 0.1,
            },
            {"state": "absent", "session": token, "timeout": 20},
        ],
    )
    assert pending["failed"] is True
    assert pending["changed"] is True  # it was submitted, and is cancelled below
    assert pending["state"] == "PENDING"
    assert pending["reason"] == "PartitionConfig"
    assert "still PENDING after 3 s: reason PartitionConfig" in pending["msg"]
    assert cancel["cancelled"] == [pending["job_id"]]


def test_module_failing_job_fails_with_state_exit_code_and_output_tail(token, tmp_path):
    marker = f"MARKER-{token}"
    (failed,) = playbook(
        tmp_path,
        [
            {
                "name": "a job that fails",
                "hpcansible.hpc.slurm_job": {
                    "session": token,
                    "role": "failing",
                    "cpus_per_task": 1,
                    "time": "00:01:00",
                    "script": f"#!/bin/bash\necho starting\necho {marker}\nexit 3\n",
                    "output": str(tmp_path / "failing-%j.out"),
                    "wait_for": "completed",
                    "timeout": 30,
                    "poll_interval": 0.1,
                },
            }
        ],
    )
    assert failed["failed"] is True
    assert failed["state"] == "FAILED"
    assert failed["exit_code"] == "3:0"
    assert failed["reason"] == "NonZeroExitCode"
    message = failed["msg"]
    assert f"job {failed['job_id']} (hpcansible-{token}-failing) FAILED" in message
    assert "exit code 3:0" in message
    assert message.rstrip().endswith(marker)
    assert "starting" in message


def test_module_wait_for_completed_on_a_successful_job(token, tmp_path):
    (done,) = playbook(
        tmp_path,
        [
            {
                "session": token,
                "role": "ok",
                "cpus_per_task": 1,
                "time": "00:01:00",
                "script": f"#!/bin/bash\necho done-{token} on $(hostname)\n",
                "output": str(tmp_path / "ok-%j.out"),
                "wait_for": "completed",
                "timeout": 30,
                "poll_interval": 0.1,
            }
        ],
    )
    assert not done.get("failed"), done.get("msg")
    assert (done["changed"], done["state"], done["exit_code"]) == (True, "COMPLETED", "0:0")
    (node,) = done["nodes"]
    output = Path(done["stdout_path"]).read_text()
    assert output.strip() == f"done-{token} on {node}"


def test_module_check_mode_submits_nothing(token, tmp_path):
    (checked,) = playbook(
        tmp_path,
        [
            {
                "name": f"check-{token}",
                "session": token,
                "script": SLEEP_SCRIPT,
                "cpus_per_task": 1,
                "wait_for": "running",
                "timeout": 5,
            }
        ],
        check=True,
    )
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert checked["state"] == "WOULD_SUBMIT"
    assert checked["job_id"] is None
    assert checked["diff"]["after"] == SLEEP_SCRIPT
    assert f"--job-name=check-{token}" in checked["sbatch_argv"]
    done = run(["squeue", "-h", "--states=all", f"--name=check-{token}", "-o", "%i"])
    assert done.returncode == 0 and done.stdout.strip() == ""


def test_module_hostile_name_and_comment_stay_harmless_strings(token, tmp_path):
    # Shaped like 'x; rm -rf ~', but aimed at a throwaway directory and canary files: if any
    # shell ever parsed these values, the directory would be gone or a canary would exist.
    victim = tmp_path / "victim"
    (victim / "inside").mkdir(parents=True)
    canaries = [tmp_path / f"canary{index}" for index in range(4)]
    name = f"x; touch {canaries[0]}; rm -rf {victim} #{token}"
    comment = (
        f"$(touch {canaries[1]}) `touch {canaries[2]}` | touch {canaries[3]} "
        f"$HOME ~ x; rm -rf {victim}"
    )
    (submitted,) = playbook(
        tmp_path,
        [
            {
                "name": name,
                "session": token,
                "comment": comment,
                "cpus_per_task": 1,
                "time": "00:01:00",
                "script": '#!/bin/bash\nprintf "%s\\n" "$SLURM_JOB_NAME"\n',
                "output": str(tmp_path / "hostile-%j.out"),
                "wait_for": "completed",
                "timeout": 30,
                "poll_interval": 0.1,
            }
        ],
    )
    assert not submitted.get("failed"), submitted.get("msg")
    assert submitted["state"] == "COMPLETED"
    job = submitted["job"]
    assert job["name"] == name
    assert job["comment"] == f"hpcansible:session={token};role=job {comment}"
    assert job["session"] == token
    assert f"--job-name={name}" in submitted["sbatch_argv"]
    # SLURM itself stored the strings verbatim ($HOME and ~ not expanded), and nothing ran
    shown = run(["scontrol", "show", "job", "-o", submitted["job_id"]]).stdout
    assert f"JobName={name} " in shown
    assert f"role=job {comment}" in shown
    assert Path(submitted["stdout_path"]).read_text() == name + "\n"
    assert [canary for canary in canaries if canary.exists()] == []
    assert (victim / "inside").is_dir()


def test_module_sbatch_error_is_reported(token, tmp_path):
    (bad,) = playbook(
        tmp_path,
        [{"session": token, "partition": f"nope{token}", "script": SLEEP_SCRIPT}],
    )
    assert bad["failed"] is True
    assert bad["msg"] == "sbatch: Invalid partition name specified"
    assert active_jobs_with(token) == []


# --- the slurm_jobs inventory plugin, locally and through the login node ----------------------


@pytest.fixture(scope="module")
def inventory_job(slurm_testbed) -> Iterator[dict]:
    """One running job of a fresh session, tagged as a service serving two ports."""
    session = f"i{uuid.uuid4().hex[:12]}"
    slurm = Slurm(local_runner)
    options = SbatchOptions(
        job_name=f"hpcansible-{session}-service",
        comment=build_tag(session, "service", [11434, 8080]),
        time="00:03:00",
        cpus_per_task=1,
        output="/dev/null",
    )
    job_id = slurm.submit(options, SLEEP_SCRIPT)
    try:
        job = slurm.wait(job_id, "running", timeout=30, interval=0.1)
        yield {"session": session, "job_id": job_id, "node": job.nodes[0]}
    finally:
        cancel_jobs_with(session)


@pytest.mark.parametrize("where", ["local", "login"])
def test_inventory_plugin_finds_the_job_s_node(inventory_job, tmp_path, where):
    config = {"plugin": "hpcansible.hpc.slurm_jobs", "session": inventory_job["session"]}
    if where == "login":
        config.update(login_host="login", login_port=8822)
    config["keyed_groups"] = [{"key": "slurm_partition", "prefix": "partition"}]
    config["compose"] = {"service_url": "'http://' ~ inventory_hostname ~ ':' ~ service_ports[0]"}
    path = tmp_path / f"{where}.slurm_jobs.yml"
    path.write_text(yaml.safe_dump(config))
    done = run(["ansible-inventory", "-i", str(path), "--list"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert "[WARNING]" not in done.stderr, done.stderr
    inventory = unwrap(json.loads(done.stdout))
    node = inventory_job["node"]
    assert inventory["service"]["hosts"] == [node]
    assert inventory["slurm_running"]["hosts"] == [node]
    assert inventory["partition_debug"]["hosts"] == [node]
    host = inventory["_meta"]["hostvars"][node]
    assert host["slurm_job_id"] == inventory_job["job_id"]
    assert host["slurm_job_state"] == "RUNNING"
    assert host["slurm_job_name"] == f"hpcansible-{inventory_job['session']}-service"
    assert host["slurm_partition"] == "debug"
    assert host["slurm_role"] == "service"
    assert host["slurm_session"] == inventory_job["session"]
    assert host["service_ports"] == [11434, 8080]
    assert host["service_url"] == f"http://{node}:11434"
    assert host["slurm_pending_jobs"] == []
    assert set(inventory["_meta"]["hostvars"]) == {node}


def test_inventory_plugin_login_host_unreachable_is_a_clear_error(inventory_job, tmp_path):
    path = tmp_path / "bad.slurm_jobs.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "plugin": "hpcansible.hpc.slurm_jobs",
                "session": inventory_job["session"],
                "login_host": "login",
                "login_port": 1,
                "command_timeout": 10,
            }
        )
    )
    done = run(["ansible-inventory", "-i", str(path), "--list"], timeout=60)
    output = done.stdout + done.stderr
    assert "cannot list SLURM jobs on login" in output
    assert "Connection refused" in output


# --- a playbook that submits, refreshes the inventory and uses the discovered host ------------


def test_playbook_refreshes_the_inventory_and_uses_the_discovered_host(token, tmp_path):
    inventory = tmp_path / "refresh.slurm_jobs.yml"
    inventory.write_text("plugin: hpcansible.hpc.slurm_jobs\n")
    port = random.randint(20000, 40000)
    done = run(
        [
            "ansible-playbook",
            "-i",
            str(ROOT / "inventory" / "testbed"),
            "-i",
            str(inventory),
            str(ROOT / "tests" / "playbooks" / "inventory_refresh.yml"),
            "-e",
            f"session_id={token}",
            "-e",
            f"web_port={port}",
            "-e",
            f"output_dir={tmp_path}",
        ],
        timeout=180,
        HPCANSIBLE_SESSION=token,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    recap = done.stdout[done.stdout.rindex("PLAY RECAP") :]
    assert "failed=0" in recap and "unreachable=0" in recap
    assert "rescued=0" in recap
    assert "TASK [Fetch a page from the web server]" in done.stdout
    assert active_jobs_with(token) == []
    (log,) = tmp_path.glob(f"hpcansible-{token}-web-*.out")
    assert '"GET / HTTP/1.1" 200' in log.read_text()
    # scancel stopped the server too: no process of the session outlives its job
    server = f"http.server {port} --bind"
    deadline = time.monotonic() + 10
    while run(["pgrep", "-f", server]).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run(["pgrep", "-f", server]).returncode == 1, f"{server} still runs"


# --- down and up again (last in the suite: it takes the cluster away for a minute) ----------


def hpcansible_testbed(action: str) -> subprocess.CompletedProcess:
    return run([str(VENV_BIN / "python"), "-m", "hpcansible", "testbed", action], timeout=300)


def test_down_removes_everything_and_up_survives_leftovers(slurm_testbed):
    done = hpcansible_testbed("down")
    assert done.returncode == 0, done.stdout + done.stderr
    namespaces = run(["ip", "netns", "list"]).stdout
    assert not any(name in namespaces.split() for name in ("login", *NODES))
    assert run(["ip", "link", "show", "hpcbr0"]).returncode != 0
    assert "hpcansible-testbed" not in Path("/etc/hosts").read_text()
    assert not Path("/etc/slurm/slurm.conf").exists()
    assert run(["pgrep", "-x", "slurmctld"]).returncode == 1
    assert run(["pgrep", "-x", "slurmd"]).returncode == 1
    status = hpcansible_testbed("status")
    assert status.returncode != 0 and "MISSING: slurmctld" in status.stdout

    # Leftovers of an earlier testbed whose processes are gone: a namespace without its
    # interface, a bridge without its address, a stale /etc/hosts line and spool folder.
    run(["ip", "netns", "add", "node1"])
    run(["ip", "link", "add", "hpcbr0", "type", "bridge"])
    with Path("/etc/hosts").open("a") as hosts:
        hosts.write("10.99.99.99 node2 # hpcansible-testbed\n")
    Path("/var/spool/slurmd/node3").mkdir(parents=True, exist_ok=True)

    done = hpcansible_testbed("up")
    assert done.returncode == 0, done.stdout + done.stderr
    assert hpcansible_testbed("status").returncode == 0
    assert "10.99.99.99" not in Path("/etc/hosts").read_text()
    # the default partition holds every node (cpu and gpu list them again)
    states = run(["sinfo", "-N", "-h", "-p", "debug", "-o", "%N %t"]).stdout.split("\n")
    assert sorted(line.split()[0] for line in states if line.strip()) == list(NODES)
    srun = run(["srun", "-N1", "-n1", "-c1", "-t1", "-w", "node2", "hostname"])
    assert srun.stdout.strip() == "node2", srun.stderr
