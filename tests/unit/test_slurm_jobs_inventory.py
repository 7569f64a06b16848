"""The slurm_jobs inventory plugin on captured squeue output: hosts, groups, variables, SSH.

The plugin is instantiated directly and its option definitions are registered from its
DOCUMENTATION the way Ansible's plugin loader does it; `subprocess.run` is replaced, so no
SLURM and no SSH is needed. (The same plugin against the real testbed, locally and through
the login node, is in tests/integration/test_slurm_testbed.py.)
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import add_fragments
from ansible_collections.hpcansible.hpc.plugins.inventory import slurm_jobs
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import SQUEUE_FORMAT

PLUGIN = "hpcansible.hpc.slurm_jobs"

# squeue -h -o '%i|%j|%T|%r|%N|%P|%L|%u|%k' on the testbed: session 'capsess' with a service and
# prometheus on node1, a two-node client, a pending redis (64 CPUs asked); another session's
# service on node3 and an untagged job on node2.
SQUEUE_SESSION = """\
29|hpcansible-capsess-redis|PENDING|PartitionConfig||debug|2:00|root|hpcansible:session=capsess;role=redis;ports=6379
26|hpcansible-capsess-service|RUNNING|None|node1|debug|1:58|root|hpcansible:session=capsess;role=service;ports=11434,8080
27|hpcansible-capsess-prometheus|RUNNING|None|node1|debug|1:58|root|hpcansible:session=capsess;role=prometheus;ports=9090
28|hpcansible-capsess-client|RUNNING|None|node[2-3]|debug|1:58|root|hpcansible:session=capsess;role=client
30|hpcansible-other-service|RUNNING|None|node3|debug|1:58|root|hpcansible:session=other;role=service;ports=11434
31|bench-web|RUNNING|None|node2|debug|1:58|root|(null)
"""


def register_option_definitions() -> None:
    """What PluginLoader._load_config_defs does when Ansible loads the plugin by name."""
    if C.config.has_configuration_definition("inventory", PLUGIN):
        return
    doc = yaml.safe_load(slurm_jobs.DOCUMENTATION)
    add_fragments(doc, slurm_jobs.__file__, fragment_loader=fragment_loader, is_module=False)
    C.config.initialize_plugin_configuration_definitions("inventory", PLUGIN, doc["options"])


class FakeRun:
    """Stands in for subprocess.run: records each command, answers with squeue output."""

    def __init__(self, stdout: str = SQUEUE_SESSION, returncode: int = 0, stderr: str = ""):
        self.stdout, self.returncode, self.stderr = stdout, returncode, stderr
        self.calls: list[tuple[list[str], dict]] = []

    def __call__(self, command, **kwargs):
        self.calls.append((list(command), kwargs))
        return subprocess.CompletedProcess(command, self.returncode, self.stdout, self.stderr)


@pytest.fixture
def fake_run(monkeypatch):
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    return fake


def load(tmp_path: Path, config: dict, name: str = "session.slurm_jobs.yml") -> InventoryData:
    register_option_definitions()
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": PLUGIN, **config}))
    plugin = slurm_jobs.InventoryModule()
    plugin._load_name = PLUGIN
    assert plugin.verify_file(str(path))
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=False)
    return inventory


def hosts_of(inventory: InventoryData, group: str) -> list[str]:
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def host_vars(inventory: InventoryData, host: str) -> dict:
    return inventory.get_host(host).get_vars()


# --- hosts, groups, variables ----------------------------------------------------------------


def test_hosts_are_the_session_s_nodes(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "capsess"})
    assert sorted(inventory.hosts) == ["node1", "node2", "node3"]
    assert hosts_of(inventory, "service") == ["node1"]
    assert hosts_of(inventory, "prometheus") == ["node1"]
    assert hosts_of(inventory, "client") == ["node2", "node3"]
    assert hosts_of(inventory, "slurm_running") == ["node1", "node2", "node3"]
    assert "redis" not in inventory.groups  # pending: no node yet
    assert "slurm_pending" not in inventory.groups


def test_host_variables(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "capsess"})
    node1 = host_vars(inventory, "node1")
    # node1 runs the service and prometheus: the service comes first in role order
    assert node1["slurm_job_id"] == "26"
    assert node1["slurm_job_state"] == "RUNNING"
    assert node1["slurm_job_name"] == "hpcansible-capsess-service"
    assert node1["slurm_partition"] == "debug"
    assert node1["slurm_role"] == "service"
    assert node1["slurm_session"] == "capsess"
    assert node1["slurm_time_left"] == "1:58"
    assert node1["service_ports"] == [11434, 8080]
    assert [job["job_id"] for job in node1["slurm_jobs"]] == ["26", "27"]
    assert node1["slurm_jobs"][1]["role"] == "prometheus"
    assert node1["slurm_jobs"][1]["ports"] == [9090]

    node3 = host_vars(inventory, "node3")
    assert (node3["slurm_job_id"], node3["slurm_role"], node3["service_ports"]) == (
        "28",
        "client",
        [],
    )
    # the other session's job on node3 is not part of this inventory
    assert [job["job_id"] for job in node3["slurm_jobs"]] == ["28"]


def test_pending_jobs_are_listed_on_all(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "capsess"})
    all_vars = inventory.groups["all"].get_vars()
    (pending,) = all_vars["slurm_pending_jobs"]
    assert (pending["job_id"], pending["role"], pending["reason"]) == (
        "29",
        "redis",
        "PartitionConfig",
    )
    assert pending["ports"] == [6379]
    assert all_vars["slurm_session"] == "capsess"


def test_two_jobs_on_one_node_whatever_the_squeue_order(tmp_path, fake_run):
    lines = SQUEUE_SESSION.splitlines()
    fake_run.stdout = "\n".join([lines[2], lines[1]]) + "\n"  # prometheus listed first
    inventory = load(tmp_path, {"session": "capsess"})
    node1 = host_vars(inventory, "node1")
    assert node1["slurm_role"] == "service"
    assert node1["slurm_job_id"] == "26"
    assert [job["role"] for job in node1["slurm_jobs"]] == ["service", "prometheus"]
    assert hosts_of(inventory, "service") == hosts_of(inventory, "prometheus") == ["node1"]


def test_two_jobs_of_the_same_role_on_one_node_lowest_id_wins(tmp_path, fake_run):
    fake_run.stdout = (
        "41|b|RUNNING|None|node1|debug|1:00|root|hpcansible:session=s;role=worker;ports=2\n"
        "40|a|RUNNING|None|node1|debug|1:00|root|hpcansible:session=s;role=worker;ports=1\n"
    )
    inventory = load(tmp_path, {"session": "s"})
    node1 = host_vars(inventory, "node1")
    assert (node1["slurm_job_id"], node1["service_ports"]) == ("40", [1])
    assert hosts_of(inventory, "worker") == ["node1"]


def test_other_sessions_and_untagged_jobs_are_left_out(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "other"})
    assert sorted(inventory.hosts) == ["node3"]
    assert host_vars(inventory, "node3")["slurm_job_id"] == "30"
    assert host_vars(inventory, "node3")["service_ports"] == [11434]


def test_no_session_selects_every_tagged_job(tmp_path, fake_run):
    inventory = load(tmp_path, {})
    assert sorted(inventory.hosts) == ["node1", "node2", "node3"]
    # node3 runs capsess' client and other's service: the service wins role order
    assert host_vars(inventory, "node3")["slurm_job_id"] == "30"
    assert "31" not in [job["job_id"] for job in host_vars(inventory, "node2")["slurm_jobs"]]


def test_session_from_the_environment(tmp_path, fake_run, monkeypatch):
    monkeypatch.setenv("HPCANSIBLE_SESSION", "other")
    inventory = load(tmp_path, {})
    assert sorted(inventory.hosts) == ["node3"]


def test_templated_session(tmp_path, fake_run, monkeypatch):
    monkeypatch.setenv("MY_SESSION_FOR_TEST", "other")
    inventory = load(tmp_path, {"session": "{{ lookup('env', 'MY_SESSION_FOR_TEST') }}"})
    assert sorted(inventory.hosts) == ["node3"]
    assert inventory.groups["all"].get_vars()["slurm_session"] == "other"


def test_unknown_session_gives_an_empty_inventory(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "nobody"})
    assert sorted(inventory.hosts) == []
    assert inventory.groups["all"].get_vars()["slurm_pending_jobs"] == []


def test_name_prefix_selects_untagged_jobs(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "manual", "name_prefix": "bench-"})
    assert sorted(inventory.hosts) == ["node2"]
    assert hosts_of(inventory, "web") == ["node2"]
    node2 = host_vars(inventory, "node2")
    assert (node2["slurm_role"], node2["slurm_session"], node2["slurm_job_id"]) == (
        "web",
        "manual",
        "31",
    )


def test_states_get_their_own_groups(tmp_path, fake_run):
    fake_run.stdout = (
        "50|a|COMPLETING|None|node1|debug|0:00|root|hpcansible:session=s;role=service\n"
        "51|b|SUSPENDED|None|node2|debug|0:00|root|hpcansible:session=s;role=client\n"
    )
    inventory = load(tmp_path, {"session": "s"})
    assert hosts_of(inventory, "slurm_completing") == ["node1"]
    assert hosts_of(inventory, "slurm_suspended") == ["node2"]


def test_include_finished_asks_for_all_states(tmp_path, fake_run):
    fake_run.stdout = (
        "60|a|COMPLETED|None|node1|debug|0:00|root|hpcansible:session=s;role=service\n"
        "61|b|FAILED|NonZeroExitCode|node2|debug|0:00|root|hpcansible:session=s;role=client\n"
    )
    inventory = load(tmp_path, {"session": "s", "include_finished": True, "user": "alice"})
    ((command, _),) = fake_run.calls
    assert command == [
        "squeue",
        "-h",
        "-o",
        SQUEUE_FORMAT,
        "--states=all",
        "--user=alice",
    ]
    assert hosts_of(inventory, "slurm_completed") == ["node1"]
    assert hosts_of(inventory, "slurm_failed") == ["node2"]


# --- constructed: compose, groups, keyed_groups ----------------------------------------------


def test_compose_groups_and_keyed_groups(tmp_path, fake_run):
    inventory = load(
        tmp_path,
        {
            "session": "capsess",
            "compose": {
                "service_url": "'http://' ~ inventory_hostname ~ ':' ~ (service_ports | first)",
                "job_count": "slurm_jobs | length",
            },
            "groups": {
                "with_ports": "service_ports | length > 0",
                "many_jobs": "slurm_jobs | length > 1",
            },
            "keyed_groups": [
                {"key": "slurm_partition", "prefix": "partition"},
                {"key": "slurm_role", "prefix": "role"},
            ],
        },
    )
    node1 = host_vars(inventory, "node1")
    assert node1["service_url"] == "http://node1:11434"
    assert node1["job_count"] == 2
    assert hosts_of(inventory, "with_ports") == ["node1"]
    assert hosts_of(inventory, "many_jobs") == ["node1"]
    assert hosts_of(inventory, "partition_debug") == ["node1", "node2", "node3"]
    assert hosts_of(inventory, "role_service") == ["node1"]
    assert hosts_of(inventory, "role_client") == ["node2", "node3"]


def test_strict_compose_error_is_reported(tmp_path, fake_run):
    with pytest.raises(Exception, match=r"undefined|no_such_var"):
        load(tmp_path, {"session": "capsess", "strict": True, "compose": {"x": "no_such_var"}})


def test_lenient_compose_error_is_ignored(tmp_path, fake_run):
    inventory = load(tmp_path, {"session": "capsess", "compose": {"x": "no_such_var"}})
    assert "x" not in host_vars(inventory, "node1")


# --- where squeue runs: locally or on the login node over SSH --------------------------------


def test_local_query_runs_squeue_as_an_argument_list(tmp_path, fake_run):
    load(tmp_path, {"session": "capsess", "command_timeout": 7})
    ((command, kwargs),) = fake_run.calls
    assert command == ["squeue", "-h", "-o", SQUEUE_FORMAT]
    assert kwargs["timeout"] == 7
    assert kwargs["input"] == ""  # never the caller's stdin
    assert "shell" not in kwargs


def test_login_host_query_goes_over_ssh_with_a_quoted_remote_command(tmp_path, fake_run):
    load(
        tmp_path,
        {
            "session": "capsess",
            "login_host": "login",
            "login_port": 8822,
            "login_user": "u100000",
            "ssh_args": ["-i", "/home/u/.ssh/key with space", "-o", "ConnectTimeout=5"],
            "user": "u100000",
        },
    )
    ((command, kwargs),) = fake_run.calls
    remote = ["squeue", "-h", "-o", SQUEUE_FORMAT, "--user=u100000"]
    assert command == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-p",
        "8822",
        "-l",
        "u100000",
        "-i",
        "/home/u/.ssh/key with space",
        "-o",
        "ConnectTimeout=5",
        "login",
        "--",
        shlex.join(remote),
    ]
    # The remote shell sees exactly the argument list: '|' and '%' stay inside one argument.
    assert shlex.split(command[-1]) == remote
    assert command[-1] == "squeue -h -o '%i|%j|%T|%r|%N|%P|%L|%u|%k' --user=u100000"
    assert kwargs["input"] == ""


def test_login_host_from_the_environment(tmp_path, fake_run, monkeypatch):
    monkeypatch.setenv("HPCANSIBLE_LOGIN_HOST", "login.example.org")
    monkeypatch.setenv("HPCANSIBLE_LOGIN_PORT", "2222")
    load(tmp_path, {"session": "capsess"})
    ((command, _),) = fake_run.calls
    assert command[:6] == ["ssh", "-o", "BatchMode=yes", "-p", "2222", "login.example.org"]


def test_remote_hostile_values_are_quoted(tmp_path, fake_run):
    load(tmp_path, {"session": "capsess", "login_host": "login", "user": "x; touch /tmp/pwned"})
    ((command, _),) = fake_run.calls
    assert shlex.split(command[-1])[-1] == "--user=x; touch /tmp/pwned"


def test_squeue_failure_is_a_parser_error_naming_the_host(tmp_path, fake_run):
    fake_run.returncode, fake_run.stdout = 255, ""
    fake_run.stderr = "ssh: connect to host login port 8822: Connection refused\n"
    with pytest.raises(AnsibleParserError) as caught:
        load(tmp_path, {"session": "capsess", "login_host": "login"})
    message = str(caught.value)
    assert "cannot list SLURM jobs on login" in message
    assert "Connection refused" in message


def test_missing_squeue_and_timeouts_are_parser_errors(tmp_path, monkeypatch):
    def missing(command, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(subprocess, "run", missing)
    with pytest.raises(AnsibleParserError, match=r"cannot list SLURM jobs on this host.*not found"):
        load(tmp_path, {"session": "s"})

    def slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(AnsibleParserError, match="no answer within 30 s"):
        load(tmp_path, {"session": "s"})


# --- which files are ours --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("x.slurm_jobs.yml", True),
        ("slurm_jobs.yaml", True),
        ("x.slurm_jobs.yaml", True),
        ("hosts.yml", False),
        ("slurm_jobs.json", False),
    ],
)
def test_verify_file(tmp_path, name, ours):
    path = tmp_path / name
    path.write_text(f"plugin: {PLUGIN}\n")
    assert slurm_jobs.InventoryModule().verify_file(str(path)) is ours


def test_another_plugin_s_file_is_refused(tmp_path, fake_run):
    path = tmp_path / "x.slurm_jobs.yml"
    path.write_text("plugin: community.general.iocage\n")
    register_option_definitions()
    plugin = slurm_jobs.InventoryModule()
    plugin._load_name = PLUGIN
    with pytest.raises(AnsibleParserError, match="Incorrect plugin name"):
        plugin.parse(InventoryData(), DataLoader(), str(path))
    assert fake_run.calls == []
