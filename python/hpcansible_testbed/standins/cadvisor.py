"""`cadvisor-standin`: the hpcansible STAND-IN for cAdvisor. It is not cAdvisor.

It accepts cAdvisor's Go-style flags (-port=8080, --port 8080, -docker_only, -docker_only=false)
and serves /healthz and the Prometheus endpoint with cAdvisor's metric names and labels, so that
hpcansible's service jobs and Prometheus configuration can be tested where cAdvisor cannot be
installed. Containers are the node (id="/") and each SLURM job found in /proc
(id="/slurm/uid_<uid>/job_<jobid>"); see hpcansible_testbed.standins._cadvisor_scan for how each
number is measured. Stand-in markers: the X-Hpcansible-Standin header, the
`hpcansible_standin_info` gauge, --help and the first log line.

Flags with an effect: -port, -listen_ip, -prometheus_endpoint, -housekeeping_interval (how often
/proc is scanned; scrapes serve the last scan), -disable_metrics, -enable_metrics,
-raw_cgroup_prefix_whitelist, -docker_only (with no whitelist: only the root container),
-disable_root_cgroup_stats, -machine_id_file, -version, -v (>= 2 logs each scan). The others
are accepted and ignored: there are no Docker/containerd/CRI-O runtimes, container labels,
storage drivers, perf events or resctrl here.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hpcansible_testbed.standins import STANDIN_HEADER
from hpcansible_testbed.standins._cadvisor_metrics import (
    ALL_METRIC_GROUPS,
    DEFAULT_DISABLED_GROUPS,
    Identity,
    enabled_groups,
    render,
)
from hpcansible_testbed.standins._cadvisor_scan import NodeScanner, Snapshot, machine_info
from hpcansible_testbed.standins._gocompat import GoFlagSet

# Reported as cadvisor_version_info{cadvisorVersion=...}: a real release, so dashboards and
# version checks behave as with cAdvisor; the revision and hpcansible_standin_info mark the fake.
CADVISOR_VERSION = "v0.49.1"
CADVISOR_REVISION = "standin"
STANDIN_NOTICE = "hpcansible cAdvisor stand-in (reads /proc; not real cAdvisor)"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def parse_metric_groups(text: str) -> frozenset[str]:
    """A -disable_metrics / -enable_metrics value, rejected the way cAdvisor rejects it."""
    if not text:
        return frozenset()
    groups = text.split(",")
    for group in groups:
        if group not in ALL_METRIC_GROUPS:
            raise ValueError(f'unsupported metric "{group}" specified')
    return frozenset(groups)


def build_flags(program: str = "cadvisor") -> GoFlagSet:
    flags = GoFlagSet(program, banner=f"{STANDIN_NOTICE}. It accepts cAdvisor's flags.\n")
    # Flags with an effect.
    flags.int("port", 8080, "port to listen")
    flags.string("listen_ip", "", "IP to listen on, defaults to all IPs")
    flags.string("prometheus_endpoint", "/metrics", "Endpoint to expose Prometheus metrics on")
    flags.duration("housekeeping_interval", 1.0, "Interval between container housekeepings")
    flags.duration(
        "max_housekeeping_interval",
        60.0,
        "Largest interval to allow between container housekeepings",
    )
    flags.duration("global_housekeeping_interval", 60.0, "Interval between global housekeepings")
    flags.bool(
        "allow_dynamic_housekeeping",
        True,
        "Whether to allow the housekeeping interval to be dynamic",
    )
    flags.bool("docker_only", False, "Only report docker containers in addition to root stats")
    flags.bool("disable_root_cgroup_stats", False, "Disable collecting root Cgroup stats")
    groups_help = ", ".join(sorted(ALL_METRIC_GROUPS, key=str.lower))
    flags.value(
        "disable_metrics",
        DEFAULT_DISABLED_GROUPS,
        f"comma-separated list of `metrics` to be disabled. Options are {groups_help}.",
        parse_metric_groups,
        ",".join(sorted(DEFAULT_DISABLED_GROUPS)),
    )
    flags.value(
        "enable_metrics",
        frozenset(),
        "comma-separated list of `metrics` to be enabled. If set, overrides 'disable_metrics'. "
        f"Options are {groups_help}.",
        parse_metric_groups,
        "",
    )
    flags.string(
        "raw_cgroup_prefix_whitelist",
        "",
        "A comma-separated list of cgroup path prefix that needs to be collected even when "
        "-docker_only is specified",
    )
    flags.bool(
        "store_container_labels",
        True,
        "convert container labels and environment variables into labels on prometheus metrics "
        "for each container. If flag set to false, then only metrics exported are container "
        "name, first alias, and image name",
    )
    flags.string(
        "whitelisted_container_labels",
        "",
        "comma separated list of container labels to be converted to labels on prometheus "
        "metrics for each container. store_container_labels must be set to false for this to "
        "take effect.",
    )
    flags.string(
        "machine_id_file",
        "/etc/machine-id,/var/lib/dbus/machine-id",
        "Comma-separated list of files to check for machine-id. Use the first one that exists.",
    )
    flags.string(
        "boot_id_file",
        "/proc/sys/kernel/random/boot_id",
        "Comma-separated list of files to check for boot-id. Use the first one that exists.",
    )
    flags.bool("version", False, "print cAdvisor version and exit")
    _accepted_and_ignored(flags)
    _klog_flags(flags)
    return flags


def _accepted_and_ignored(flags: GoFlagSet) -> None:
    """Real cAdvisor flags that have nothing to act on here; scripts may still pass them."""
    for name, default, usage in (
        ("docker", "unix:///var/run/docker.sock", "docker endpoint"),
        ("docker_root", "/var/lib/docker", "DEPRECATED: docker root is read from docker info"),
        ("containerd", "/run/containerd/containerd.sock", "containerd endpoint"),
        ("containerd-namespace", "k8s.io", "containerd namespace"),
        ("crio", "unix:///var/run/crio/crio.sock", "CRI-O endpoint"),
        ("podman", "unix:///var/run/podman/podman.sock", "podman endpoint"),
        ("env_metadata_whitelist", "", "a comma-separated list of environment variable keys"),
        ("docker_env_metadata_whitelist", "", "DEPRECATED: use env_metadata_whitelist"),
        ("http_auth_file", "", "HTTP auth file for the web UI"),
        ("http_auth_realm", "localhost", "HTTP auth realm for the web UI"),
        ("http_digest_file", "", "HTTP digest file for the web UI"),
        ("http_digest_realm", "localhost", "HTTP digest file for the web UI"),
        (
            "collector_cert",
            "",
            "Collector's certificate, exposed to endpoints for certificate based authentication.",
        ),
        ("collector_key", "", "Key for the collector's certificate"),
        ("url_base_prefix", "", "prefix path that will be prepended to all paths"),
        ("storage_driver", "", "Storage `driver` to use. Data is always cached shortly in memory"),
        ("storage_driver_host", "localhost:8086", "database host:port"),
        ("storage_driver_db", "cadvisor", "database name"),
        ("storage_driver_user", "root", "database username"),
        ("storage_driver_password", "root", "database password"),
        ("storage_driver_table", "stats", "table name"),
        (
            "perf_events_config",
            "",
            "Path to a JSON file containing configuration of perf events to measure.",
        ),
        ("mesos_agent", "127.0.0.1:5051", "Mesos agent address"),
    ):
        flags.string(name, default, usage)
    for name, default_bool, usage in (
        ("profiling", False, "Enable profiling via web interface host:port/debug/pprof/"),
        ("enable_load_reader", False, "Whether to enable cpu load reader"),
        ("log_cadvisor_usage", False, "Whether to log the usage of the cAdvisor container"),
        ("storage_driver_secure", False, "use secure connection with database"),
        ("docker_tls", False, "use TLS to connect to docker"),
        ("disable_cgroup_stats", False, "Disable collecting cgroup stats"),
    ):
        flags.bool(name, default_bool, usage)
    flags.int(
        "max_procs",
        0,
        "max number of CPUs that can be used simultaneously. Less than 1 for default "
        "(number of cores).",
    )
    flags.int(
        "application_metrics_count_limit",
        100,
        "Max number of application metrics to store (per container)",
    )
    flags.int("event_storage_event_limit", 0, "Max number of events to store (per type)")
    flags.duration("storage_duration", 120.0, "How long to keep data stored (Default: 2min).")
    flags.duration("update_machine_info_interval", 300.0, "Interval between machine info updates.")
    flags.duration(
        "resctrl_interval",
        0.0,
        "Resctrl mon groups updating interval. Zero value disables updating mon groups.",
    )
    flags.duration(
        "storage_driver_buffer_duration",
        60.0,
        "Writes in the storage driver will be buffered for this duration",
    )


def _klog_flags(flags: GoFlagSet) -> None:
    """The logging flags cAdvisor gets from klog. Logs always go to stderr here."""
    flags.int("v", 0, "number for the log level verbosity")
    flags.bool("logtostderr", True, "log to standard error instead of files")
    flags.bool("alsologtostderr", False, "log to standard error as well as files")
    flags.string("log_dir", "", "If non-empty, write log files in this directory")
    flags.string("log_file", "", "If non-empty, use this log file")
    flags.int("log_file_max_size", 1800, "Defines the maximum size a log file can grow to.")
    flags.string("stderrthreshold", "2", "logs at or above this threshold go to stderr")
    flags.string(
        "vmodule", "", "comma-separated list of pattern=N settings for file-filtered logging"
    )
    flags.string("log_backtrace_at", ":0", "when logging hits line file:N, emit a stack trace")
    flags.bool("skip_headers", False, "If true, avoid header prefixes in the log messages")
    flags.bool("skip_log_headers", False, "If true, avoid headers when opening log files")
    flags.bool("add_dir_header", False, "If true, adds the file directory to the header")
    flags.bool("one_output", False, "If true, only write logs to their native severity level")


# ----------------------------------------------------------------------------- logging


def log(message: str, severity: str = "I") -> None:
    """One line in klog's format, which is what cAdvisor's log looks like."""
    now = datetime.now()
    sys.stderr.write(f"{severity}{now:%m%d %H:%M:%S.%f} {os.getpid():7d} standin.go:1] {message}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- exporter


@dataclass(frozen=True)
class ExporterSettings:
    listen_ip: str
    port: int
    prometheus_endpoint: str
    housekeeping_seconds: float
    groups: frozenset[str]
    include_root: bool
    job_prefixes: tuple[str, ...]
    machine_id_files: tuple[str, ...]
    verbosity: int

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> ExporterSettings:
        return cls(
            listen_ip=values["listen_ip"],
            port=values["port"],
            prometheus_endpoint="/" + values["prometheus_endpoint"].lstrip("/"),
            housekeeping_seconds=max(values["housekeeping_interval"], 0.01),
            groups=enabled_groups(values["disable_metrics"], values["enable_metrics"]),
            include_root=not values["disable_root_cgroup_stats"],
            job_prefixes=job_prefixes(values["raw_cgroup_prefix_whitelist"], values["docker_only"]),
            machine_id_files=tuple(values["machine_id_file"].split(",")),
            verbosity=values["v"],
        )


def job_prefixes(whitelist: str, docker_only: bool) -> tuple[str, ...]:
    """cAdvisor's raw-cgroup rule: a whitelist filters raw cgroups whether or not -docker_only
    is given; -docker_only with no whitelist leaves only the root container."""
    prefixes = tuple(whitelist.split(","))
    if docker_only and prefixes == ("",):
        return ()
    return prefixes


class Exporter:
    """Scans /proc every housekeeping interval and keeps the rendered page for scrapes."""

    def __init__(self, settings: ExporterSettings, proc: Path = Path("/proc")) -> None:
        self.settings = settings
        self.scanner = NodeScanner(
            proc,
            include_root=settings.include_root,
            job_prefixes=settings.job_prefixes,
            count_file_descriptors="process" in settings.groups,
        )
        self.machine = machine_info(proc, settings.machine_id_files)
        self.identity = Identity(CADVISOR_VERSION, CADVISOR_REVISION)
        self.page = b""
        self.last_snapshot = Snapshot(time.time(), [])
        self.stopping = threading.Event()

    def housekeep_once(self) -> None:
        started = time.monotonic()
        try:
            snapshot = self.scanner.scan(time.time())
        except Exception as error:  # one bad scan must not end the exporter
            log(f"Failed to update stats: {error!r}", "W")
            snapshot = Snapshot(time.time(), self.last_snapshot.containers, scrape_error=True)
        self.last_snapshot = snapshot
        # Swapping in a finished bytes object is atomic: scrapes never see a partial page.
        self.page = render(snapshot, self.machine, self.settings.groups, self.identity)
        if self.settings.verbosity >= 2:
            took = (time.monotonic() - started) * 1000
            log(f"housekeeping: {len(snapshot.containers)} containers in {took:.1f}ms")

    def housekeep_forever(self) -> None:
        interval = self.settings.housekeeping_seconds
        next_run = time.monotonic()
        while True:
            next_run += interval
            delay = next_run - time.monotonic()
            if delay < 0:  # a scan overran: skip the missed ticks instead of bunching up
                next_run += -delay // interval * interval + interval
                delay = next_run - time.monotonic()
            if self.stopping.wait(delay):
                return
            self.housekeep_once()


def make_handler(exporter: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "cadvisor-standin"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == exporter.settings.prometheus_endpoint:
                self._send(200, TEXT_FORMAT, exporter.page)
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok")
            elif path == "/":
                self._send(307, "text/html; charset=utf-8", b"", {"Location": "/containers/"})
            elif path.startswith("/containers"):
                page = f"<html><body><p>{STANDIN_NOTICE}</p><p>Metrics: <a href="
                page += f'"{exporter.settings.prometheus_endpoint}">'
                page += f"{exporter.settings.prometheus_endpoint}</a></p></body></html>\n"
                self._send(200, "text/html; charset=utf-8", page.encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"404 page not found\n")

        def do_HEAD(self) -> None:
            self.do_GET()

        def _send(
            self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header(STANDIN_HEADER, "cadvisor")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            if exporter.settings.verbosity >= 4:
                log(f"{self.address_string()} {format % args}")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow scraper must not hold up shutdown


def _server_for(settings: ExporterSettings, exporter: Exporter) -> _Server:
    host = settings.listen_ip or "0.0.0.0"
    server_class = _Server
    if ":" in host:
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
    return server_class((host, settings.port), make_handler(exporter))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    program = os.path.basename(sys.argv[0]) if argv is None else "cadvisor"
    values, _ = build_flags(program).parse_or_exit(arguments)
    if values["version"]:
        print(f"cAdvisor version {CADVISOR_VERSION} ({CADVISOR_REVISION})")
        print(f"({STANDIN_NOTICE})", file=sys.stderr)
        return 0
    settings = ExporterSettings.from_flags(values)
    exporter = Exporter(settings)
    exporter.housekeep_once()  # the first scrape already has data
    try:
        server = _server_for(settings, exporter)
    except OSError as error:
        where = f"{settings.listen_ip}:{settings.port}"
        log(f"Failed to start cAdvisor: listen tcp {where}: {error.strerror or error}", "F")
        return 255  # klog.Fatal's exit status
    return run(settings, exporter, server)


def run(settings: ExporterSettings, exporter: Exporter, server: _Server) -> int:
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    workers = [
        threading.Thread(target=exporter.housekeep_forever, name="housekeeping", daemon=True),
        threading.Thread(target=server.serve_forever, args=(0.2,), name="http", daemon=True),
    ]
    for worker in workers:
        worker.start()
    log(
        f"{STANDIN_NOTICE}: Starting cAdvisor version: {CADVISOR_VERSION}-{CADVISOR_REVISION} "
        f"on port {settings.port} (listen_ip={settings.listen_ip or 'all'}, "
        f"endpoint={settings.prometheus_endpoint}, "
        f"housekeeping={settings.housekeeping_seconds:g}s, "
        f"metrics={','.join(sorted(settings.groups, key=str.lower))})"
    )
    while not stop.wait(1.0):
        pass  # waking now and then lets Python run the signal handler promptly
    log("Exiting given signal")
    exporter.stopping.set()
    server.shutdown()
    server.server_close()
    for worker in workers:
        worker.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
