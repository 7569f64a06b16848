"""What the cAdvisor stand-in measures: the node as the root container "/" and each SLURM job.

Real cAdvisor reads cgroups. The test clusters run slurmd with proctrack/linuxproc and no cgroup
plugin, so the stand-in finds a job's processes instead by the SLURM_JOB_ID in their environment
and sums them, presenting each job as the container SLURM's cgroup plugin would have created:
id="/slurm/uid_<uid>/job_<jobid>", name="job_<jobid>".

How each number is obtained (and where it differs from a cgroup's):
- root "/": CPU from /proc/stat, memory from /proc/meminfo, disk I/O from /proc/diskstats, process
  and thread counts over every visible process; these are machine-wide.
- a job: the sum over its live processes of utime+stime (/proc/<pid>/stat), RssAnon/RssFile/
  RssShmem/VmSwap (/proc/<pid>/status; shared pages count once per process), read_bytes/
  write_bytes (/proc/<pid>/io, reported with device=""), open descriptors, processes and threads.
  A cgroup keeps the CPU time and I/O of processes that have exited; so does the stand-in, by
  adding each vanished process's last sample to the job, and counters never go backwards. Work
  done by a process that starts and exits between two scans is missed.
- network: /proc/net/dev of the stand-in's own network namespace (lo, veth*, docker* skipped, as
  cAdvisor does), for the root and for every job, since a node's jobs share that namespace.
- only processes in the stand-in's network namespace belong to its jobs, so on a test bed where
  every "node" is a network namespace on one machine each stand-in reports its own node's jobs.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
SECTOR_BYTES = 512
IGNORED_INTERFACE_PREFIXES = ("lo", "veth", "docker", "nerdctl")  # cAdvisor's own list


@dataclass(frozen=True)
class NetworkCounters:
    receive_bytes: int
    receive_packets: int
    receive_errors: int
    receive_dropped: int
    transmit_bytes: int
    transmit_packets: int
    transmit_errors: int
    transmit_dropped: int


@dataclass(frozen=True)
class DiskCounters:
    read_bytes: int
    write_bytes: int
    reads: int | None  # completed operations; only the block layer knows, so only the root has it
    writes: int | None


@dataclass
class ContainerStats:
    id: str
    name: str
    start_time: float
    last_seen: float = 0.0
    cpu_user_seconds: float = 0.0
    cpu_system_seconds: float = 0.0
    memory_usage: int = 0
    memory_working_set: int = 0
    memory_rss: int = 0
    memory_cache: int = 0
    memory_swap: int = 0
    memory_mapped_file: int = 0
    memory_max_usage: int = 0
    processes: int = 0
    threads: int = 0
    file_descriptors: int = 0
    network: dict[str, NetworkCounters] = field(default_factory=dict)
    disk_io: dict[str, DiskCounters] = field(default_factory=dict)

    @property
    def cpu_usage_seconds(self) -> float:
        return self.cpu_user_seconds + self.cpu_system_seconds


@dataclass(frozen=True)
class MachineInfo:
    cpu_cores: int
    cpu_physical_cores: int
    cpu_sockets: int
    memory_bytes: int
    swap_bytes: int
    boot_id: str
    machine_id: str
    system_uuid: str
    kernel_version: str
    os_version: str


@dataclass(frozen=True)
class Snapshot:
    timestamp: float  # unix seconds when the scan finished
    containers: list[ContainerStats]
    scrape_error: bool = False


# ----------------------------------------------------------------------------- small readers


def read_text(path: Path | str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def read_key_values(path: Path | str) -> dict[str, int]:
    """Files like /proc/meminfo or /proc/<pid>/status: "Key:   123 kB" -> {"Key": 123}."""
    values = {}
    for line in read_text(path).splitlines():
        key, _, rest = line.partition(":")
        number = rest.split()[:1]
        if number and number[0].isdigit():
            values[key] = int(number[0])
    return values


def parse_net_dev(text: str) -> dict[str, NetworkCounters]:
    interfaces = {}
    for line in text.splitlines()[2:]:
        name, _, numbers = line.partition(":")
        name = name.strip()
        if not numbers or name.startswith(IGNORED_INTERFACE_PREFIXES):
            continue
        fields = [int(value) for value in numbers.split()]
        interfaces[name] = NetworkCounters(
            receive_bytes=fields[0],
            receive_packets=fields[1],
            receive_errors=fields[2],
            receive_dropped=fields[3],
            transmit_bytes=fields[8],
            transmit_packets=fields[9],
            transmit_errors=fields[10],
            transmit_dropped=fields[11],
        )
    return interfaces


def parse_diskstats(text: str, whole_disks: set[str]) -> dict[str, DiskCounters]:
    disks = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[2] not in whole_disks:
            continue
        disks[f"/dev/{fields[2]}"] = DiskCounters(
            read_bytes=int(fields[5]) * SECTOR_BYTES,
            write_bytes=int(fields[9]) * SECTOR_BYTES,
            reads=int(fields[3]),
            writes=int(fields[7]),
        )
    return disks


def whole_disks(sys_block: Path = Path("/sys/block")) -> set[str]:
    """Block devices that are disks, not partitions or loop/ram devices."""
    try:
        names = os.listdir(sys_block)
    except OSError:
        return set()
    return {name for name in names if not name.startswith(("loop", "ram", "zram"))}


@dataclass(frozen=True)
class ProcessStat:
    start_ticks: int
    user_ticks: int
    system_ticks: int
    threads: int


def parse_process_stat(text: str) -> ProcessStat:
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessStat(
        start_ticks=int(fields[19]),
        user_ticks=int(fields[11]),
        system_ticks=int(fields[12]),
        threads=int(fields[17]),
    )


def environ_value(raw: bytes, name: str) -> str | None:
    prefix = name.encode() + b"="
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


# ----------------------------------------------------------------------------- machine


def machine_info(proc: Path, machine_id_files: Iterable[str]) -> MachineInfo:
    meminfo = read_key_values(proc / "meminfo")
    cpu_cores = os.cpu_count() or 1
    physical_cores, sockets = _cpu_topology(proc / "cpuinfo", cpu_cores)
    return MachineInfo(
        cpu_cores=cpu_cores,
        cpu_physical_cores=physical_cores,
        cpu_sockets=sockets,
        memory_bytes=meminfo.get("MemTotal", 0) * 1024,
        swap_bytes=meminfo.get("SwapTotal", 0) * 1024,
        boot_id=_first_readable([proc / "sys/kernel/random/boot_id"]),
        machine_id=_first_readable(machine_id_files),
        system_uuid=_first_readable(["/sys/class/dmi/id/product_uuid"]),
        kernel_version=platform.release(),
        os_version=_os_version(),
    )


def _cpu_topology(cpuinfo: Path, logical: int) -> tuple[int, int]:
    try:
        text = read_text(cpuinfo)
    except OSError:
        return logical, 1
    cores, sockets = set(), set()
    for block in text.split("\n\n"):
        socket = re.search(r"^physical id\s*:\s*(\d+)", block, re.MULTILINE)
        core = re.search(r"^core id\s*:\s*(\d+)", block, re.MULTILINE)
        if socket and core:
            sockets.add(socket.group(1))
            cores.add((socket.group(1), core.group(1)))
    return (len(cores) or logical), (len(sockets) or 1)


def _first_readable(paths: Iterable[str | Path]) -> str:
    for path in paths:
        try:
            return read_text(path).strip()
        except OSError:
            continue
    return ""


def _os_version() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- scanner


ProcessKey = tuple[int, int]  # (pid, start ticks): a pid reused by a new process is a new key


@dataclass(frozen=True)
class ProcessIdentity:
    job_id: str | None  # None: not one of this node's SLURM job processes
    uid: int


@dataclass(frozen=True)
class JobProcessSample:
    user_seconds: float
    system_seconds: float
    read_bytes: int
    write_bytes: int


@dataclass
class JobHistory:
    """What must outlive single scans for a job to look like a cgroup."""

    start_time: float
    uid: int
    live: dict[ProcessKey, JobProcessSample] = field(default_factory=dict)
    exited_user_seconds: float = 0.0
    exited_system_seconds: float = 0.0
    exited_read_bytes: int = 0
    exited_write_bytes: int = 0
    max_memory_usage: int = 0
    reported: dict[str, float] = field(default_factory=dict)

    def retire(self, key: ProcessKey) -> None:
        sample = self.live.pop(key)
        self.exited_user_seconds += sample.user_seconds
        self.exited_system_seconds += sample.system_seconds
        self.exited_read_bytes += sample.read_bytes
        self.exited_write_bytes += sample.write_bytes

    def monotonic(self, counter: str, value: float) -> float:
        value = max(value, self.reported.get(counter, 0.0))
        self.reported[counter] = value
        return value


@dataclass
class _JobAccumulator:
    memory_rss: int = 0
    memory_file: int = 0
    memory_shmem: int = 0
    memory_swap: int = 0
    processes: int = 0
    threads: int = 0
    file_descriptors: int = 0
    earliest_start: float = float("inf")
    uid: int = 0
    samples: dict[ProcessKey, JobProcessSample] = field(default_factory=dict)


class NodeScanner:
    """Turns /proc into a Snapshot; keep one instance so exited processes are accounted for."""

    def __init__(
        self,
        proc: Path = Path("/proc"),
        *,
        include_root: bool = True,
        job_prefixes: tuple[str, ...] = ("",),
        count_file_descriptors: bool = True,
    ) -> None:
        self.proc = proc
        self.include_root = include_root
        self.job_prefixes = job_prefixes  # cgroup-path prefixes to accept, "" accepts all
        self.count_file_descriptors = count_file_descriptors
        self.boot_time = self._boot_time()
        self.own_netns = self._netns("self")
        self.disks = whole_disks()
        self._identities: dict[ProcessKey, ProcessIdentity] = {}
        self._jobs: dict[str, JobHistory] = {}
        self._root_max_usage = 0

    def _boot_time(self) -> float:
        for line in read_text(self.proc / "stat").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
        return 0.0

    def _netns(self, pid: str) -> str | None:
        try:
            return os.readlink(self.proc / pid / "ns/net")
        except OSError:
            return None

    def scan(self, now: float) -> Snapshot:
        network = self._network()
        jobs: dict[str, _JobAccumulator] = {}
        all_processes = all_threads = all_fds = 0
        seen: set[ProcessKey] = set()
        for pid in self._pids():
            try:
                stat = parse_process_stat(read_text(self.proc / pid / "stat"))
                key = (int(pid), stat.start_ticks)
                identity = self._identity(pid, key)
                fds = self._count_fds(pid)
                if identity.job_id is not None and self._accepts(identity):
                    self._add_job_process(jobs, pid, key, stat, identity, fds)
            except (OSError, ValueError, IndexError):
                continue  # the process exited mid-scan, or is not ours to read
            seen.add(key)
            all_processes += 1
            all_threads += stat.threads
            all_fds += fds
        self._identities = {key: self._identities[key] for key in seen if key in self._identities}
        containers = [self._job_container(job_id, acc, network) for job_id, acc in jobs.items()]
        for job_id in set(self._jobs) - set(jobs):
            del self._jobs[job_id]  # no live process left: the container is gone, as in cAdvisor
        if self.include_root:
            root = self._root_container(network, all_processes, all_threads, all_fds)
            containers.insert(0, root)
        for container in containers:
            container.last_seen = float(int(now))  # cAdvisor reports whole seconds
        return Snapshot(timestamp=now, containers=containers)

    def _pids(self) -> list[str]:
        return [entry for entry in os.listdir(self.proc) if entry.isdigit()]

    def _identity(self, pid: str, key: ProcessKey) -> ProcessIdentity:
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identities[key] = self._read_identity(pid)
        return identity

    def _read_identity(self, pid: str) -> ProcessIdentity:
        try:
            raw = (self.proc / pid / "environ").read_bytes()
        except OSError:
            return ProcessIdentity(None, -1)  # another user's process, or a kernel thread
        job_id = environ_value(raw, "SLURM_JOB_ID")
        if job_id is None or self._netns(pid) != self.own_netns:
            return ProcessIdentity(None, -1)
        uid_text = environ_value(raw, "SLURM_JOB_UID")
        uid = int(uid_text) if uid_text and uid_text.isdigit() else os.stat(self.proc / pid).st_uid
        return ProcessIdentity(job_id, uid)

    def _accepts(self, identity: ProcessIdentity) -> bool:
        container_id = job_container_id(identity.uid, identity.job_id or "")
        return any(container_id.startswith(prefix) for prefix in self.job_prefixes)

    def _count_fds(self, pid: str) -> int:
        if not self.count_file_descriptors:
            return 0
        try:
            return len(os.listdir(self.proc / pid / "fd"))
        except OSError:
            return 0

    def _add_job_process(
        self,
        jobs: dict[str, _JobAccumulator],
        pid: str,
        key: ProcessKey,
        stat: ProcessStat,
        identity: ProcessIdentity,
        fds: int,
    ) -> None:
        status = read_key_values(self.proc / pid / "status")
        io = read_key_values(self.proc / pid / "io")
        assert identity.job_id is not None
        acc = jobs.setdefault(identity.job_id, _JobAccumulator(uid=identity.uid))
        acc.memory_rss += status.get("RssAnon", 0) * 1024
        acc.memory_file += status.get("RssFile", 0) * 1024
        acc.memory_shmem += status.get("RssShmem", 0) * 1024
        acc.memory_swap += status.get("VmSwap", 0) * 1024
        acc.processes += 1
        acc.threads += stat.threads
        acc.file_descriptors += fds
        acc.earliest_start = min(
            acc.earliest_start, self.boot_time + stat.start_ticks / CLOCK_TICKS_PER_SECOND
        )
        acc.samples[key] = JobProcessSample(
            user_seconds=stat.user_ticks / CLOCK_TICKS_PER_SECOND,
            system_seconds=stat.system_ticks / CLOCK_TICKS_PER_SECOND,
            read_bytes=io.get("read_bytes", 0),
            write_bytes=io.get("write_bytes", 0),
        )

    def _job_container(
        self, job_id: str, acc: _JobAccumulator, network: dict[str, NetworkCounters]
    ) -> ContainerStats:
        history = self._jobs.get(job_id)
        if history is None:
            history = self._jobs[job_id] = JobHistory(acc.earliest_start, acc.uid)
        for key in set(history.live) - set(acc.samples):
            history.retire(key)
        history.live = acc.samples
        live = acc.samples.values()
        user = history.exited_user_seconds + sum(sample.user_seconds for sample in live)
        system = history.exited_system_seconds + sum(sample.system_seconds for sample in live)
        read = history.exited_read_bytes + sum(sample.read_bytes for sample in live)
        write = history.exited_write_bytes + sum(sample.write_bytes for sample in live)
        cache = acc.memory_file + acc.memory_shmem
        usage = acc.memory_rss + cache
        history.max_memory_usage = max(history.max_memory_usage, usage)
        return ContainerStats(
            id=job_container_id(history.uid, job_id),
            name=f"job_{job_id}",
            start_time=history.start_time,
            cpu_user_seconds=history.monotonic("user", user),
            cpu_system_seconds=history.monotonic("system", system),
            memory_usage=usage,
            memory_working_set=usage,
            memory_rss=acc.memory_rss,
            memory_cache=cache,
            memory_swap=acc.memory_swap,
            memory_mapped_file=acc.memory_file,
            memory_max_usage=history.max_memory_usage,
            processes=acc.processes,
            threads=acc.threads,
            file_descriptors=acc.file_descriptors,
            network=network,
            disk_io={
                "": DiskCounters(
                    read_bytes=int(history.monotonic("read", read)),
                    write_bytes=int(history.monotonic("write", write)),
                    reads=None,
                    writes=None,
                )
            },
        )

    def _root_container(
        self, network: dict[str, NetworkCounters], processes: int, threads: int, fds: int
    ) -> ContainerStats:
        user, system = self._root_cpu_seconds()
        meminfo = {
            key: value * 1024 for key, value in read_key_values(self.proc / "meminfo").items()
        }
        usage = meminfo.get("MemTotal", 0) - meminfo.get("MemFree", 0)
        self._root_max_usage = max(self._root_max_usage, usage)
        try:
            disk_io = parse_diskstats(read_text(self.proc / "diskstats"), self.disks)
        except OSError:
            disk_io = {}
        return ContainerStats(
            id="/",
            name="",
            start_time=self.boot_time,
            cpu_user_seconds=user,
            cpu_system_seconds=system,
            memory_usage=usage,
            memory_working_set=max(0, usage - meminfo.get("Inactive(file)", 0)),
            memory_rss=meminfo.get("AnonPages", 0),
            memory_cache=meminfo.get("Cached", 0) + meminfo.get("Buffers", 0),
            memory_swap=meminfo.get("SwapTotal", 0) - meminfo.get("SwapFree", 0),
            memory_mapped_file=meminfo.get("Mapped", 0),
            memory_max_usage=self._root_max_usage,
            processes=processes,
            threads=threads,
            file_descriptors=fds,
            network=network,
            disk_io=disk_io,
        )

    def _root_cpu_seconds(self) -> tuple[float, float]:
        """(user, system) like cpuacct.stat of the root cgroup: guest time is inside user."""
        for line in read_text(self.proc / "stat").splitlines():
            if line.startswith("cpu "):
                ticks = [int(value) for value in line.split()[1:]]
                user = ticks[0] + ticks[1]  # user + nice
                system = ticks[2] + ticks[5] + ticks[6]  # system + irq + softirq
                return user / CLOCK_TICKS_PER_SECOND, system / CLOCK_TICKS_PER_SECOND
        return 0.0, 0.0

    def _network(self) -> dict[str, NetworkCounters]:
        try:
            return parse_net_dev(read_text(self.proc / "net/dev"))
        except OSError:
            return {}


def job_container_id(uid: int, job_id: str) -> str:
    """The cgroup path SLURM's cgroup/v1 plugin gives a job."""
    return f"/slurm/uid_{uid}/job_{job_id}"
