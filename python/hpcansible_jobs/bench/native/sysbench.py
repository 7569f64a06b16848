"""sysbench (Debian: sysbench 1.0), the MySQL/MariaDB field's own OLTP load tool.

Before the start gate, untimed: `sysbench <test> prepare` creates `tables` tables of
`table_size` rows (dropped first by `cleanup`, so that every session starts alike). Each
step then runs `--threads` clients (concurrency) for `--time` seconds (duration) or
`--events` transactions (requests), with `--report-interval` progress lines (the live
figures) and `--histogram` (the latency histogram: every bucket and its count). The test is
tests (oltp_read_write by default; oltp_read_only, oltp_write_only, oltp_point_select, ...).

The password goes in a 0600 option file (--config-file), never on the command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpcansible_jobs.bench.config import DEFAULT_REQUESTS, BenchConfig
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
    write_private,
)

PROGRAM = "sysbench"
TOOL = "sysbench"
PACKAGE = "sysbench"
RECORDS = "none: sysbench reports totals, per-interval figures and a latency histogram"
DEFAULT_PORT = 3306
TESTS = (
    "oltp_read_write",
    "oltp_read_only",
    "oltp_write_only",
    "oltp_point_select",
    "oltp_update_index",
    "oltp_update_non_index",
    "oltp_insert",
    "oltp_delete",
    "select_random_points",
    "select_random_ranges",
)
OPTIONS_FILE = "sysbench.cnf"
SECRET_FILES = (OPTIONS_FILE,)  # removed after preparing and after each step
UNSUPPORTED = {
    "timeout": "sysbench has no per-transaction timeout",
}
PROGRESS = re.compile(
    rf"^\[ (?P<t>{NUMBER})s \] thds: \d+ tps: (?P<tps>{NUMBER}) qps: (?P<qps>{NUMBER}).*?"
    rf"lat \(ms,\d+%\): (?P<lat>{NUMBER}) err/s: (?P<err>{NUMBER})"
)
TRANSACTIONS = re.compile(rf"transactions:\s+(?P<n>\d+)\s+\((?P<rate>{NUMBER}) per sec\.\)")
QUERIES = re.compile(rf"queries:\s+(?P<n>\d+)\s+\((?P<rate>{NUMBER}) per sec\.\)")
IGNORED = re.compile(r"ignored errors:\s+(?P<n>\d+)")
LATENCY = {
    name: re.compile(rf"^\s+{label}:\s+(?P<ms>{NUMBER})\s*$", re.MULTILINE)
    for name, label in (("min", "min"), ("avg", "avg"), ("max", "max"))
}
PERCENTILE = re.compile(rf"^\s+(?P<p>\d+)th percentile:\s+(?P<ms>{NUMBER})\s*$", re.MULTILINE)
BUCKET = re.compile(rf"^\s+(?P<ms>{NUMBER}) \|\**\s+(?P<n>\d+)\s*$")
FATAL = re.compile(r"FATAL:[^\r\n]*")


def test_of(config: BenchConfig) -> str:
    return (config.tests or "oltp_read_write").strip()


def check(parsed: Mapping[str, Any], place: Callable[[str], str]) -> None:
    check_tests(parsed.get("tests"), TESTS, "a sysbench OLTP test", place)


def common(config: BenchConfig, workdir: Path) -> tuple[list[str], Path | None]:
    """The test, database and table options, and the 0600 option file with the password."""
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    argv = [
        test_of(config),
        "--db-driver=mysql",
        f"--mysql-host={parts['host']}",
        f"--mysql-port={parts['port']}",
        f"--mysql-user={config.user or parts['user'] or DEFAULT_USER}",
        f"--mysql-db={config.database or parts['database'] or DEFAULT_DATABASE}",
        f"--tables={config.tables}",
        f"--table-size={config.table_size}",
    ]
    password = secret_of(config, parts)
    if not password:
        return argv, None
    options = write_private(workdir / OPTIONS_FILE, f"mysql-password={password}\n")
    return [*argv, f"--config-file={options}"], options


def invocation(config: BenchConfig, program: str, workdir: Path) -> Invocation:
    argv, _ = common(config, workdir)
    if config.duration is not None:
        bound = [f"--time={max(1, round(config.duration))}", "--events=0"]
    else:
        bound = ["--time=0", f"--events={config.requests or DEFAULT_REQUESTS}"]
    return Invocation(
        [
            program,
            *argv,
            f"--threads={config.concurrency[0]}",
            *bound,
            f"--report-interval={max(1, round(config.report_interval))}",
            "--histogram=on",
            "--percentile=99",
            "run",
        ]
    )


def prepare(config: BenchConfig, program: str, workdir: Path) -> list[tuple[str, Invocation]]:
    argv, _ = common(config, workdir)
    size = f"{config.tables} table(s) of {config.table_size} rows"
    return [
        ("sysbench cleanup (an earlier run's tables)", Invocation([program, *argv, "cleanup"])),
        (f"sysbench prepare: {size} (untimed)", Invocation([program, *argv, "prepare"])),
    ]


def client_threads(config: BenchConfig) -> int:
    return config.concurrency[0]


def version(program: str) -> str | None:
    return tool_version([program, "--version"])


def describe(config: BenchConfig) -> dict[str, Any]:
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    database = config.database or parts["database"] or DEFAULT_DATABASE
    return {
        "url": f"mysql://{parts['host']}:{parts['port']}/{database}",
        "test": test_of(config),
        "threads": config.concurrency[0],
        "tables": config.tables,
        "table_size": config.table_size,
    }


class LiveParser:
    """`[ 2s ] thds: 2 tps: 244.06 qps: 4886.14 (...) lat (ms,99%): 331.91 err/s: 1.00`."""

    def __init__(self, config: BenchConfig) -> None:
        self.interval = max(1, round(config.report_interval))

    def feed(self, line: str) -> LiveSample | None:
        match = PROGRESS.match(line.strip())
        if match is None:
            return None
        tps = float(match["tps"])
        return LiveSample(
            completed=tps * self.interval,
            throughput=tps,
            errors=float(match["err"]) * self.interval,
        )


def parse(execution: Execution, config: BenchConfig, workdir: Path) -> ToolResult:
    (workdir / OPTIONS_FILE).unlink(missing_ok=True)  # the password is not kept with results
    output = execution.stdout + "\n" + execution.stderr
    transactions = TRANSACTIONS.search(output)
    if transactions is None:
        if execution.interrupted:
            raise ToolFailed("stopped by a signal before sysbench reported")
        fatal = FATAL.search(output)
        reason = fatal.group(0) if fatal else tail(output) or "no output"
        raise ToolFailed(f"no report (exit {execution.returncode}): {reason}")
    count = int(transactions["n"])
    rate = float(transactions["rate"])
    latency_ms = {name: float(m["ms"]) for name, p in LATENCY.items() if (m := p.search(output))}
    buckets = [
        (float(m["ms"]), int(m["n"])) for line in output.splitlines() if (m := BUCKET.match(line))
    ]
    histogram = histogram_from_counts(
        buckets,
        mean_ms=latency_ms.get("avg"),
        min_ms=latency_ms.get("min"),
        max_ms=latency_ms.get("max"),
    )
    queries = QUERIES.search(output)
    ignored = IGNORED.search(output)
    percentile = PERCENTILE.search(output)
    return ToolResult(
        operations=count,
        failed=0,
        seconds=count / rate if rate > 0 else execution.wall_s,
        latency=histogram,
        details={
            "transactions_per_s": rate,
            "queries": int(queries["n"]) if queries else None,
            "queries_per_s": float(queries["rate"]) if queries else None,
            # deadlocks and the like, retried by sysbench: not failed transactions
            "ignored_errors": int(ignored["n"]) if ignored else 0,
            "latency_ms": {
                **latency_ms,
                **({f"p{percentile['p']}": float(percentile["ms"])} if percentile else {}),
            },
        },
    )
