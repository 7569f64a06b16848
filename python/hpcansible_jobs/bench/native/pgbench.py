"""pgbench (Debian: postgresql-client), the Postgres field's own load tool.

Before the start gate, untimed: `pgbench -i -s <scale>` creates and fills its tables. Each
step then runs `-c` clients (concurrency) on `-j` threads (threads, default the clients up
to 4), for `-T` seconds (duration) or `-t` transactions per client (requests split over the
clients), a built-in script (`-b`, tests: tpcb-like, simple-update, select-only), with
`-P` progress lines every report_interval (the live figures) and `-l` a per-transaction log
(client, transaction, latency in us, ..., epoch second): the latency histogram and the
per-second series come from that log, exactly. The logs stay in the step's directory as the
per-request records that pgbench gives.

The password goes by the environment (PGPASSWORD), never on the command line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpcansible_jobs.bench.config import DEFAULT_REQUESTS, BenchConfig
from hpcansible_jobs.bench.metrics import empty_series_row
from hpcansible_jobs.bench.native.base import (
    DEFAULT_DATABASE,
    DEFAULT_USER,
    NUMBER,
    Execution,
    Invocation,
    LiveSample,
    ToolFailed,
    ToolResult,
    check_tests,
    endpoint_parts,
    histogram_from_counts,
    secret_of,
    tail,
    tool_version,
)

PROGRAM = "pgbench"
TOOL = "pgbench"
PACKAGE = "postgresql-client"
RECORDS = "pgbench's per-transaction log (pgbench_log.*: client, transaction, latency us, ...)"
DEFAULT_PORT = 5432
SCRIPTS = ("tpcb-like", "simple-update", "select-only")
LOG_PREFIX = "pgbench_log"
MAX_DEFAULT_THREADS = 4
UNSUPPORTED = {
    "timeout": "pgbench has no per-transaction timeout",
}
PROGRESS = re.compile(
    rf"^progress: (?P<t>{NUMBER}) s, (?P<tps>{NUMBER}) tps, lat (?P<lat>{NUMBER}) ms"
    rf"(?: stddev (?:{NUMBER}|NaN))?(?:, (?P<failed>\d+) failed)?"
)
PROCESSED = re.compile(r"number of transactions actually processed: (?P<n>\d+)")
FAILED = re.compile(r"number of failed transactions: (?P<n>\d+)")
TPS = re.compile(rf"^tps = (?P<tps>{NUMBER}) \(without initial connection time\)", re.MULTILINE)
AVERAGE = re.compile(rf"latency average = (?P<ms>{NUMBER}) ms")
CONNECTION = re.compile(rf"initial connection time = (?P<ms>{NUMBER}) ms")


def script_of(config: BenchConfig) -> str:
    return (config.tests or "tpcb-like").strip()


def check(parsed: Mapping[str, Any], place: Callable[[str], str]) -> None:
    check_tests(parsed.get("tests"), SCRIPTS, "a pgbench built-in script", place)


def connection(config: BenchConfig) -> tuple[list[str], dict[str, str], str]:
    """Host/port/user options, the environment with the password, the database."""
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    user = config.user or parts["user"] or DEFAULT_USER
    database = config.database or parts["database"] or DEFAULT_DATABASE
    env = {}
    password = secret_of(config, parts)
    if password:
        env["PGPASSWORD"] = password
    return ["-h", parts["host"], "-p", str(parts["port"]), "-U", user], env, database


def client_threads(config: BenchConfig) -> int:
    return config.threads or min(config.concurrency[0], MAX_DEFAULT_THREADS)


def invocation(config: BenchConfig, program: str, workdir: Path) -> Invocation:
    target, env, database = connection(config)
    clients = config.concurrency[0]
    for old in workdir.glob(f"{LOG_PREFIX}.*"):  # an earlier run's log would be read too
        old.unlink()
    argv = [
        program,
        *target,
        "-c", str(clients),
        "-j", str(client_threads(config)),
        "-b", script_of(config),
        "-P", f"{config.report_interval:g}",
        "-l", f"--log-prefix={workdir / LOG_PREFIX}",
    ]  # fmt: skip
    if config.duration is not None:
        argv += ["-T", str(max(1, math.ceil(config.duration)))]
    else:
        per_client = math.ceil((config.requests or DEFAULT_REQUESTS) / clients)
        argv += ["-t", str(per_client)]
    return Invocation([*argv, database], env=env)


def prepare(config: BenchConfig, program: str, workdir: Path) -> list[tuple[str, Invocation]]:
    target, env, database = connection(config)
    argv = [program, "-i", "-q", "-s", str(config.scale), *target, database]
    return [(f"pgbench -i -s {config.scale} (its tables, untimed)", Invocation(argv, env=env))]


def version(program: str) -> str | None:
    return tool_version([program, "--version"])


def describe(config: BenchConfig) -> dict[str, Any]:
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    _, _, database = connection(config)
    return {
        "url": f"postgres://{parts['host']}:{parts['port']}/{database}",
        "script": script_of(config),
        "clients": config.concurrency[0],
        "threads": client_threads(config),
        "scale": config.scale,
    }


class LiveParser:
    """`progress: 2.0 s, 1791.1 tps, lat 2.225 ms stddev 1.254, 0 failed` each interval."""

    def __init__(self, config: BenchConfig) -> None:
        self.interval = config.report_interval

    def feed(self, line: str) -> LiveSample | None:
        match = PROGRESS.match(line.strip())
        if match is None:
            return None
        tps = float(match["tps"])
        failed = float(match["failed"] or 0)
        return LiveSample(
            completed=tps * self.interval + failed,
            throughput=tps,
            latency_mean_ms=float(match["lat"]),
            errors=failed,
        )


def read_logs(workdir: Path) -> tuple[list[tuple[float, int]], int, dict[int, dict[str, float]]]:
    """Latency counts (ms, n), failed transactions and the per-second series from the logs:
    `client transaction latency_us script epoch_s epoch_us [lag] [retries]`, where a failed
    or skipped transaction has `failed`/`skipped` for its latency."""
    counts: dict[int, int] = {}
    failed = 0
    series: dict[int, dict[str, float]] = {}
    for log in sorted(workdir.glob(f"{LOG_PREFIX}.*")):
        with log.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.split()
                if len(fields) < 6:
                    continue
                second = int(fields[4])
                row = series.get(second)
                if row is None:
                    row = series[second] = empty_series_row()
                row["sent"] += 1
                row["completed"] += 1
                if not fields[2].isdigit():
                    failed += 1
                    row["failed"] += 1
                    continue
                micros = int(fields[2])
                counts[micros] = counts.get(micros, 0) + 1
                row["succeeded"] += 1
                row["e2e_sum_ms"] += micros / 1000
                row["e2e_max_ms"] = max(row["e2e_max_ms"], micros / 1000)
    return [(micros / 1000, n) for micros, n in sorted(counts.items())], failed, series


def parse(execution: Execution, config: BenchConfig, workdir: Path) -> ToolResult:
    output = execution.stdout + "\n" + execution.stderr
    processed = PROCESSED.search(output)
    tps = TPS.search(output)
    if processed is None or tps is None:
        if execution.interrupted:
            raise ToolFailed("stopped by a signal before pgbench reported")
        raise ToolFailed(f"no report (exit {execution.returncode}): {tail(output) or 'no output'}")
    transactions = int(processed["n"])
    failed_match = FAILED.search(output)
    reported_failed = int(failed_match["n"]) if failed_match else 0
    counts, logged_failed, series = read_logs(workdir)
    average = AVERAGE.search(output)
    latency = histogram_from_counts(
        counts, mean_ms=float(average["ms"]) if average and counts else None
    )
    rate = float(tps["tps"])
    failed = max(reported_failed, logged_failed)
    errors = {"transaction_failed": failed} if failed else {}
    connection_ms = CONNECTION.search(output)
    return ToolResult(
        operations=transactions + failed,
        failed=failed,
        seconds=transactions / rate if rate > 0 else execution.wall_s,
        latency=latency,
        errors=errors,
        error_examples={"transaction_failed": "pgbench counted failed transactions"}
        if failed
        else {},
        details={
            "transactions_per_s": rate,
            "initial_connection_ms": float(connection_ms["ms"]) if connection_ms else None,
            "log_files": sorted(p.name for p in workdir.glob(f"{LOG_PREFIX}.*")),
        },
        series=series or None,
    )
