"""Render a Snapshot in the Prometheus text format with cAdvisor's metric names and labels.

Names, help texts, types, label names and the metric group that gates each family (the names
-disable_metrics / -enable_metrics take) follow cAdvisor's prometheus collector. As in cAdvisor,
container samples carry the scan's timestamp, labels are sorted, and numbers are printed the way
Go prints them. CPU usage is reported with cpu="total", as cAdvisor does where per-CPU usage is
unavailable (cgroup v2); a per-process scan has no per-CPU split either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from hpcansible_testbed.standins._cadvisor_scan import ContainerStats, MachineInfo, Snapshot
from hpcansible_testbed.standins._gocompat import format_go_float

# Every metric group name cAdvisor accepts in -disable_metrics / -enable_metrics.
ALL_METRIC_GROUPS = frozenset(
    {
        "accelerator",
        "advtcp",
        "app",
        "cpu",
        "cpuLoad",
        "cpu_topology",
        "cpuset",
        "disk",
        "diskIO",
        "hugetlb",
        "memory",
        "memory_numa",
        "network",
        "oom_event",
        "percpu",
        "perf_event",
        "pressure",
        "process",
        "referenced_memory",
        "resctrl",
        "sched",
        "tcp",
        "udp",
    }
)
# cAdvisor's default -disable_metrics: note "process" is off unless asked for.
DEFAULT_DISABLED_GROUPS = frozenset(
    {
        "advtcp",
        "cpu_topology",
        "cpuset",
        "hugetlb",
        "memory_numa",
        "process",
        "referenced_memory",
        "resctrl",
        "sched",
        "tcp",
        "udp",
    }
)

Sample = tuple[dict[str, str], float]  # extra labels (cpu, interface, device...), value


@dataclass(frozen=True)
class ContainerFamily:
    name: str
    help: str
    type: str
    group: str | None  # None: always exported
    samples: Callable[[ContainerStats], Iterable[Sample]]


def _one(value: Callable[[ContainerStats], float]) -> Callable[[ContainerStats], list[Sample]]:
    return lambda container: [({}, value(container))]


def _per_interface(field_name: str) -> Callable[[ContainerStats], list[Sample]]:
    def samples(container: ContainerStats) -> list[Sample]:
        return [
            ({"interface": interface}, getattr(counters, field_name))
            for interface, counters in sorted(container.network.items())
        ]

    return samples


def _per_device(field_name: str) -> Callable[[ContainerStats], list[Sample]]:
    def samples(container: ContainerStats) -> list[Sample]:
        found = []
        for device, counters in sorted(container.disk_io.items()):
            value = getattr(counters, field_name)
            if value is not None:
                found.append(({"device": device}, value))
        return found

    return samples


def _network_family(direction: str, what: str, field_name: str, help: str) -> ContainerFamily:
    return ContainerFamily(
        f"container_network_{direction}_{what}_total",
        help,
        "counter",
        "network",
        _per_interface(field_name),
    )


CONTAINER_FAMILIES: Sequence[ContainerFamily] = (
    ContainerFamily(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
        "counter",
        "cpu",
        _one(lambda c: c.cpu_system_seconds),
    ),
    ContainerFamily(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        "counter",
        "cpu",
        lambda c: [({"cpu": "total"}, c.cpu_usage_seconds)],
    ),
    ContainerFamily(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
        "counter",
        "cpu",
        _one(lambda c: c.cpu_user_seconds),
    ),
    ContainerFamily(
        "container_file_descriptors",
        "Number of open file descriptors for the container.",
        "gauge",
        "process",
        _one(lambda c: c.file_descriptors),
    ),
    ContainerFamily(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
        "counter",
        "diskIO",
        _per_device("read_bytes"),
    ),
    ContainerFamily(
        "container_fs_reads_total",
        "Cumulative count of reads completed",
        "counter",
        "diskIO",
        _per_device("reads"),
    ),
    ContainerFamily(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
        "counter",
        "diskIO",
        _per_device("write_bytes"),
    ),
    ContainerFamily(
        "container_fs_writes_total",
        "Cumulative count of writes completed",
        "counter",
        "diskIO",
        _per_device("writes"),
    ),
    ContainerFamily(
        "container_last_seen",
        "Last time a container was seen by the exporter",
        "gauge",
        None,
        _one(lambda c: c.last_seen),
    ),
    ContainerFamily(
        "container_memory_cache",
        "Number of bytes of page cache memory.",
        "gauge",
        "memory",
        _one(lambda c: c.memory_cache),
    ),
    ContainerFamily(
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes.",
        "gauge",
        "memory",
        _one(lambda c: c.memory_mapped_file),
    ),
    ContainerFamily(
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
        "gauge",
        "memory",
        _one(lambda c: c.memory_max_usage),
    ),
    ContainerFamily(
        "container_memory_rss",
        "Size of RSS in bytes.",
        "gauge",
        "memory",
        _one(lambda c: c.memory_rss),
    ),
    ContainerFamily(
        "container_memory_swap",
        "Container swap usage in bytes.",
        "gauge",
        "memory",
        _one(lambda c: c.memory_swap),
    ),
    ContainerFamily(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        "gauge",
        "memory",
        _one(lambda c: c.memory_usage),
    ),
    ContainerFamily(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        "gauge",
        "memory",
        _one(lambda c: c.memory_working_set),
    ),
    _network_family("receive", "bytes", "receive_bytes", "Cumulative count of bytes received"),
    _network_family(
        "receive",
        "errors",
        "receive_errors",
        "Cumulative count of errors encountered while receiving",
    ),
    _network_family(
        "receive",
        "packets_dropped",
        "receive_dropped",
        "Cumulative count of packets dropped while receiving",
    ),
    _network_family(
        "receive", "packets", "receive_packets", "Cumulative count of packets received"
    ),
    _network_family("transmit", "bytes", "transmit_bytes", "Cumulative count of bytes transmitted"),
    _network_family(
        "transmit",
        "errors",
        "transmit_errors",
        "Cumulative count of errors encountered while transmitting",
    ),
    _network_family(
        "transmit",
        "packets_dropped",
        "transmit_dropped",
        "Cumulative count of packets dropped while transmitting",
    ),
    _network_family(
        "transmit", "packets", "transmit_packets", "Cumulative count of packets transmitted"
    ),
    ContainerFamily(
        "container_processes",
        "Number of processes running inside of the container.",
        "gauge",
        "process",
        _one(lambda c: c.processes),
    ),
    ContainerFamily(
        "container_spec_cpu_shares",
        "CPU share of the container.",
        "gauge",
        None,
        _one(lambda c: 1024),  # the kernel's default share: neither root nor jobs set one here
    ),
    ContainerFamily(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
        "gauge",
        None,
        _one(lambda c: c.start_time),
    ),
    ContainerFamily(
        "container_threads",
        "Number of threads running inside of the container",
        "gauge",
        "process",
        _one(lambda c: c.threads),
    ),
)


def enabled_groups(disabled: frozenset[str], enabled: frozenset[str]) -> frozenset[str]:
    """cAdvisor's rule: a non-empty -enable_metrics replaces everything -disable_metrics says."""
    return enabled if enabled else ALL_METRIC_GROUPS - disabled


def _labels(pairs: dict[str, str]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(pairs.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _header(name: str, help: str, kind: str) -> list[str]:
    return [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]


@dataclass(frozen=True)
class Identity:
    """What the exporter says about itself in cadvisor_version_info."""

    version: str
    revision: str


def render(snapshot: Snapshot, machine: MachineInfo, groups: frozenset[str], me: Identity) -> bytes:
    lines = _version_lines(machine, me)
    lines += _container_lines(snapshot, groups)
    lines += _machine_lines(machine)
    lines += _header("container_scrape_error", _SCRAPE_ERROR_HELP, "gauge")
    lines.append(f"container_scrape_error {int(snapshot.scrape_error)}")
    lines += _header("hpcansible_standin_info", _STANDIN_HELP, "gauge")
    lines.append('hpcansible_standin_info{kind="cadvisor"} 1')
    return ("\n".join(lines) + "\n").encode()


_SCRAPE_ERROR_HELP = "1 if there was an error while getting container metrics, 0 otherwise"
_STANDIN_HELP = (
    "Marks this endpoint as the hpcansible cAdvisor stand-in (reads /proc), not real cAdvisor."
)


def _version_lines(machine: MachineInfo, me: Identity) -> list[str]:
    labels = {
        "cadvisorRevision": me.revision,
        "cadvisorVersion": me.version,
        "dockerVersion": "",
        "kernelVersion": machine.kernel_version,
        "osVersion": machine.os_version,
    }
    help = (
        "A metric with a constant '1' value labeled by kernel version, OS version, "
        "docker version, cadvisor version & cadvisor revision."
    )
    return [
        *_header("cadvisor_version_info", help, "gauge"),
        f"cadvisor_version_info{_labels(labels)} 1",
    ]


def _container_lines(snapshot: Snapshot, groups: frozenset[str]) -> list[str]:
    timestamp_ms = f" {int(snapshot.timestamp * 1000)}"
    base_labels = [
        (container, {"id": container.id, "image": "", "name": container.name})
        for container in snapshot.containers
    ]
    lines: list[str] = []
    for family in CONTAINER_FAMILIES:
        if family.group is not None and family.group not in groups:
            continue
        samples = []
        for container, base in base_labels:
            for extra, value in family.samples(container):
                labels = _labels({**base, **extra})
                samples.append(f"{family.name}{labels} {format_go_float(value)}{timestamp_ms}")
        if samples:
            lines += _header(family.name, family.help, family.type)
            lines += samples
    return lines


def _machine_lines(machine: MachineInfo) -> list[str]:
    labels = _labels(
        {
            "boot_id": machine.boot_id,
            "machine_id": machine.machine_id,
            "system_uuid": machine.system_uuid,
        }
    )
    families = (
        ("machine_cpu_cores", "Number of logical CPU cores.", machine.cpu_cores),
        ("machine_cpu_physical_cores", "Number of physical CPU cores.", machine.cpu_physical_cores),
        ("machine_cpu_sockets", "Number of CPU sockets.", machine.cpu_sockets),
        (
            "machine_memory_bytes",
            "Amount of memory installed on the machine.",
            machine.memory_bytes,
        ),
        (
            "machine_swap_bytes",
            "Amount of swap memory available on the machine.",
            machine.swap_bytes,
        ),
    )
    lines: list[str] = []
    for name, help, value in families:
        lines += _header(name, help, "gauge")
        lines.append(f"{name}{labels} {format_go_float(value)}")
    return lines
