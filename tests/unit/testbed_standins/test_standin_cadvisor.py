"""The cAdvisor stand-in: what it scans, what it exports, and how it runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpcansible_testbed.standins import STANDIN_HEADER
from hpcansible_testbed.standins._cadvisor_metrics import (
    ALL_METRIC_GROUPS,
    DEFAULT_DISABLED_GROUPS,
    Identity,
    enabled_groups,
    render,
)
from hpcansible_testbed.standins._cadvisor_scan import (
    JobHistory,
    JobProcessSample,
    NodeScanner,
    Snapshot,
    environ_value,
    machine_info,
    parse_net_dev,
    parse_process_stat,
)
from hpcansible_testbed.standins.cadvisor import job_prefixes
from standin_testing import free_port, standin_process, stop_with

JOB_ID = "990077"
UID = os.getuid()
JOB_CONTAINER = f'id="/slurm/uid_{UID}/job_{JOB_ID}"'
REQUIRED_NAMES = (
    "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total",
    "container_memory_usage_bytes",
    "container_memory_working_set_bytes",
    "container_memory_rss",
    "container_memory_cache",
    "container_memory_max_usage_bytes",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_network_receive_packets_total",
    "container_network_transmit_packets_total",
    "container_network_receive_errors_total",
    "container_fs_reads_bytes_total",
    "container_fs_writes_bytes_total",
    "container_processes",
    "container_threads",
    "container_start_time_seconds",
    "container_last_seen",
    "machine_cpu_cores",
    "machine_memory_bytes",
    "cadvisor_version_info",
    "hpcansible_standin_info",
)


@pytest.fixture
def slurm_job_process() -> Iterator[subprocess.Popen[bytes]]:
    """A child process that looks like part of SLURM job JOB_ID; it burns a little CPU first."""
    environment = {**os.environ, "SLURM_JOB_ID": JOB_ID, "SLURM_JOB_UID": str(UID)}
    script = "import time\nend = time.time() + 0.2\nwhile time.time() < end: pass\ntime.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", script], env=environment)
    time.sleep(0.3)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def sample_lines(page: str, name: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith(name + "{")]


def value_of(page: str, name: str, *label_fragments: str) -> float:
    for line in sample_lines(page, name):
        if all(fragment in line for fragment in label_fragments):
            return float(line.split()[1])
    raise AssertionError(f"no {name} sample with {label_fragments}")


def render_scan(scanner: NodeScanner, groups: frozenset[str] = ALL_METRIC_GROUPS) -> str:
    machine = machine_info(Path("/proc"), ["/etc/machine-id"])
    snapshot = scanner.scan(time.time())
    return render(snapshot, machine, groups, Identity("v0.49.1", "standin")).decode()


# ----------------------------------------------------------------------------- parsing


def test_process_stat_parsing_survives_odd_command_names() -> None:
    fields = ["S"] + ["0"] * 50
    fields[11], fields[12], fields[17], fields[19] = "150", "50", "7", "12345"
    stat = parse_process_stat("42 (weird) (name) " + " ".join(fields))
    assert (stat.user_ticks, stat.system_ticks, stat.threads, stat.start_ticks) == (
        150,
        50,
        7,
        12345,
    )


def test_net_dev_skips_loopback_and_veth_like_cadvisor() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes ...\n"
        "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
        "  eth0: 2000 20 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n"
        " veth1: 5 5 0 0 0 0 0 0 5 5 0 0 0 0 0 0\n"
    )
    interfaces = parse_net_dev(text)
    assert list(interfaces) == ["eth0"]
    eth0 = interfaces["eth0"]
    assert (eth0.receive_bytes, eth0.receive_packets, eth0.receive_errors) == (2000, 20, 1)
    assert (eth0.transmit_bytes, eth0.transmit_packets, eth0.transmit_dropped) == (3000, 30, 4)


def test_environ_lookup_matches_whole_names() -> None:
    raw = b"SLURM_JOB_ID_X=1\0SLURM_JOB_ID=77\0HOME=/root\0"
    assert environ_value(raw, "SLURM_JOB_ID") == "77"
    assert environ_value(raw, "SLURM_JOB_UID") is None


def test_job_counters_keep_exited_processes_and_never_go_back() -> None:
    history = JobHistory(start_time=0.0, uid=0)
    history.live = {(1, 1): JobProcessSample(2.0, 1.0, 100, 200)}
    history.retire((1, 1))
    assert (history.exited_user_seconds, history.exited_write_bytes) == (2.0, 200)
    assert history.monotonic("user", 5.0) == 5.0
    assert history.monotonic("user", 4.0) == 5.0


# ----------------------------------------------------------------------------- rules


def test_metric_groups_follow_cadvisor_rules() -> None:
    default = enabled_groups(DEFAULT_DISABLED_GROUPS, frozenset())
    assert "process" not in default  # cAdvisor disables process metrics by default
    assert {"cpu", "memory", "network", "diskIO"} <= default
    only = enabled_groups(DEFAULT_DISABLED_GROUPS, frozenset({"cpu", "process"}))
    assert only == {"cpu", "process"}


def test_raw_cgroup_whitelist_rules() -> None:
    assert job_prefixes("", docker_only=False) == ("",)  # everything
    assert job_prefixes("", docker_only=True) == ()  # root container only
    assert job_prefixes("/slurm,/other", docker_only=False) == ("/slurm", "/other")
    assert job_prefixes("/slurm", docker_only=True) == ("/slurm",)


# ----------------------------------------------------------------------------- scanning /proc


def test_a_process_with_slurm_job_id_appears_as_a_job_container(
    slurm_job_process: subprocess.Popen[bytes],
) -> None:
    page = render_scan(NodeScanner())
    for name in REQUIRED_NAMES:
        assert sample_lines(page, name), f"{name} missing"
    assert f'name="job_{JOB_ID}"' in page
    assert value_of(page, "container_processes", JOB_CONTAINER) >= 1
    assert value_of(page, "container_threads", JOB_CONTAINER) >= 1
    assert value_of(page, "container_memory_rss", JOB_CONTAINER) > 1_000_000
    assert value_of(page, "container_cpu_usage_seconds_total", JOB_CONTAINER, 'cpu="total"') > 0
    assert value_of(page, "container_cpu_usage_seconds_total", 'id="/"', 'cpu="total"') > 0
    assert value_of(page, "machine_cpu_cores") == os.cpu_count()
    assert 'hpcansible_standin_info{kind="cadvisor"} 1' in page
    assert 'cadvisorVersion="v0.49.1"' in page
    assert not any('interface="lo"' in line for line in page.splitlines())


def test_container_samples_carry_the_scan_timestamp(
    slurm_job_process: subprocess.Popen[bytes],
) -> None:
    line = sample_lines(render_scan(NodeScanner()), "container_memory_rss")[0]
    timestamp_ms = int(line.split()[2])
    assert abs(timestamp_ms / 1000 - time.time()) < 10


def test_job_container_disappears_when_its_processes_exit(
    slurm_job_process: subprocess.Popen[bytes],
) -> None:
    scanner = NodeScanner()
    assert JOB_CONTAINER in render_scan(scanner)
    slurm_job_process.kill()
    slurm_job_process.wait()
    assert JOB_CONTAINER not in render_scan(scanner)


def test_whitelist_and_root_switch_filter_containers(
    slurm_job_process: subprocess.Popen[bytes],
) -> None:
    elsewhere = render_scan(NodeScanner(job_prefixes=("/system.slice",)))
    assert JOB_CONTAINER not in elsewhere
    assert 'id="/"' in elsewhere
    jobs_only = render_scan(NodeScanner(include_root=False, job_prefixes=("/slurm",)))
    assert JOB_CONTAINER in jobs_only
    assert 'id="/"' not in jobs_only


def test_disabled_groups_are_left_out(slurm_job_process: subprocess.Popen[bytes]) -> None:
    groups = ALL_METRIC_GROUPS - {"network", "diskIO", "process", "memory"}
    page = render_scan(NodeScanner(), groups)
    for absent in (
        "container_network_",
        "container_fs_",
        "container_processes",
        "container_memory_",
    ):
        assert absent not in page
    assert sample_lines(page, "container_cpu_usage_seconds_total")
    assert sample_lines(page, "container_last_seen")  # not gated, as in cAdvisor


def test_scan_copes_with_processes_vanishing(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = NodeScanner()
    real_pids = scanner._pids
    monkeypatch.setattr(scanner, "_pids", lambda: ["999999999", *real_pids()])
    snapshot: Snapshot = scanner.scan(time.time())
    assert snapshot.containers[0].id == "/"


# ----------------------------------------------------------------------------- the program


def test_serves_metrics_and_healthz_and_exits_cleanly_on_sigterm(
    slurm_job_process: subprocess.Popen[bytes],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    arguments = [
        f"-port={port}",
        "-listen_ip",
        "127.0.0.1",
        "--housekeeping_interval=100ms",
        "-prometheus_endpoint=/custom",
        "-raw_cgroup_prefix_whitelist=/slurm",
        "-disable_metrics=tcp,udp",
        "-logtostderr",
        "-v=0",
    ]
    module = "hpcansible_testbed.standins.cadvisor"
    with standin_process(module, arguments, f"{base}/healthz") as process:
        with urllib.request.urlopen(f"{base}/healthz") as response:
            assert response.read() == b"ok"
            assert response.headers[STANDIN_HEADER] == "cadvisor"
        with urllib.request.urlopen(f"{base}/custom") as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            page = response.read().decode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}/metrics")
        status, stderr = stop_with(process, signal.SIGTERM)
    assert status == 0
    assert "hpcansible cAdvisor stand-in" in stderr.splitlines()[0]
    assert JOB_CONTAINER in page
    assert re.search(rf"^container_processes\{{{re.escape(JOB_CONTAINER)}", page, re.M)


def test_unknown_flag_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpcansible_testbed.standins.cadvisor", "-bogus"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("flag provided but not defined: -bogus")
