"""redis-benchmark (Debian: redis-tools), the Redis field's own load tool.

One run per sweep point: `-c` clients (concurrency; the seed's clients / client_counts),
`-n` requests per test (requests; num_operations), `-d` value size (value_size, value_sizes;
data_sizes), `-P` pipeline depth (pipeline; pipeline_depths), `-r` keyspace, `-t` tests
(tests; native_tests), `--threads`. Its progress lines (`SET: rps=... avg_msec=...`, every
250 ms) feed the live metrics; each test's final block gives the requests, the throughput
and the latency by percentile with cumulative counts, from which the latency histogram is
rebuilt. redis-benchmark stops at the first error reply; the step then fails with it.

The password never goes on the command line: redis-benchmark reads it only from `-a` (it
ignores REDISCLI_AUTH, checked with 7.0.15), so `-a @HPCANSIBLE_SECRET` is swapped for the
real one inside the process by a preload library (see process.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpcansible_jobs.bench.config import DEFAULT_REQUESTS, BenchConfig
from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.bench.native.base import (
    NUMBER,
    SECRET_ENV,
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
from hpcansible_jobs.bench.summary import warning
from hpcansible_jobs.errors import UserError

PROGRAM = "redis-benchmark"
TOOL = "redis-benchmark"
PACKAGE = "redis-tools"
RECORDS = (
    "none: redis-benchmark reports each test's totals and latency distribution, not single requests"
)
DEFAULT_PORT = 6379
TESTS = (
    "ping", "ping_inline", "ping_mbulk", "set", "get", "incr", "lpush", "rpush", "lpop",
    "rpop", "sadd", "hset", "spop", "zadd", "zpopmin", "lrange", "lrange_100", "lrange_300",
    "lrange_500", "lrange_600", "mset",
)  # fmt: skip
UNSUPPORTED = {
    "key_size": "redis-benchmark names its keys itself (key:<12 digits>)",
    "redis_set_ratio": "redis-benchmark runs one command per test; list them in tests",
    "redis_prefill": "redis-benchmark's GET test reads what its SET test wrote",
    "timeout": "redis-benchmark has no request timeout",
}
LIVE = re.compile(
    rf"^\s*(?P<test>[^:]+): rps=(?P<rps>{NUMBER}) \(overall: (?P<overall>{NUMBER}|inf|-?nan)\) "
    rf"avg_msec=(?P<avg>{NUMBER}|nan|-?nan)"
)
BLOCK = re.compile(r"^====== (?P<test>.+?) ======\s*$", re.MULTILINE)
COMPLETED = re.compile(rf"(?P<n>\d+) requests completed in (?P<s>{NUMBER}) seconds")
PERCENTILE = re.compile(
    rf"^\s*(?P<p>{NUMBER})% <= (?P<ms>{NUMBER}) milliseconds \(cumulative count (?P<c>\d+)\)"
)
THROUGHPUT = re.compile(rf"throughput summary: (?P<rps>{NUMBER}) requests per second")
SUMMARY_COLUMNS = ("avg", "min", "p50", "p95", "p99", "max")
LATENCY_HEADER = re.compile(r"^\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*$")
ERROR_LINE = re.compile(
    r"(NOAUTH|WRONGPASS|Could not connect|Error from server|replied with error|ERR )[^\r\n]*"
)


def tests_of(config: BenchConfig) -> str:
    """The -t list: tests, else the Python engine's redis_command (get or set)."""
    return (config.tests or config.redis_command).replace(" ", "").lower()


def check(parsed: Mapping[str, Any], place: Callable[[str], str]) -> None:
    if parsed.get("tests") and "redis_command" in parsed:
        raise UserError(f"{place('redis_command')}: give tests or redis_command, not both")
    if parsed.get("redis_command") == "mixed":
        raise UserError(
            f"{place('redis_command')}: mixed: redis-benchmark runs one command per test; "
            "list them in tests (set,get) or use engine: python"
        )
    check_tests(parsed.get("tests"), TESTS, "a redis-benchmark test", place, many=True)
    if "duration" in parsed and "requests" not in parsed:
        raise UserError(
            f"{place('duration')}: redis-benchmark runs a number of requests per test "
            "(requests, num_operations), not a duration"
        )


def invocation(config: BenchConfig, program: str, workdir: Path) -> Invocation:
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    argv = [
        program,
        "-h", parts["host"],
        "-p", str(parts["port"]),
        "-c", str(config.concurrency[0]),
        "-n", str(config.requests or DEFAULT_REQUESTS),
        "-d", str(config.value_size),
        "-P", str(config.pipeline[0]),
        "-r", str(config.keyspace),
        "-t", tests_of(config),
        "--precision", "3",
    ]  # fmt: skip
    if config.threads:
        argv += ["--threads", str(config.threads)]
    if config.endpoint.startswith("rediss://"):
        argv.append("--tls")
    if parts["database"] and parts["database"].isdigit():
        argv += ["--dbnum", parts["database"]]
    password = secret_of(config, parts)
    if not password:
        return Invocation(argv)
    if parts["user"]:
        argv += ["--user", parts["user"]]
    argv += ["-a", "@" + SECRET_ENV]
    return Invocation(argv, env={SECRET_ENV: password}, secret_argument=True)


def prepare(config: BenchConfig, program: str, workdir: Path) -> list[tuple[str, Invocation]]:
    return []


def client_threads(config: BenchConfig) -> int:
    return config.threads or 1


def version(program: str) -> str | None:
    return tool_version([program, "--version"])


def describe(config: BenchConfig) -> dict[str, Any]:
    parts = endpoint_parts(config.endpoint, DEFAULT_PORT)
    return {
        "url": f"{config.endpoint.split('://', 1)[0]}://{parts['host']}:{parts['port']}",
        "tests": tests_of(config),
        "clients": config.concurrency[0],
        "requests_per_test": config.requests or DEFAULT_REQUESTS,
        "value_size": config.value_size,
        "pipeline": config.pipeline[0],
        "keyspace": config.keyspace,
    }


class LiveParser:
    """`SET: rps=57160.0 (overall: 72908.2) avg_msec=0.076 (overall: 0.076)` every 250 ms.

    The overall rate is the test's requests so far over its time so far: their product,
    capped at the test's request count, is what it has done, so that the live counter never
    runs ahead of the tool's own total (the step's end adds what the lines missed)."""

    def __init__(self, config: BenchConfig) -> None:
        self.per_test = config.requests or DEFAULT_REQUESTS
        self.last = time.monotonic()
        self.test = ""
        self.test_started = self.last
        self.counted = 0.0

    def started(self, _pid: int) -> None:
        self.last = self.test_started = time.monotonic()

    def feed(self, line: str) -> LiveSample | None:
        match = LIVE.match(line)
        if match is None:
            return None
        now = time.monotonic()
        test = match["test"].strip()
        if test != self.test:  # a new test began after the previous line
            self.test, self.test_started, self.counted = test, self.last, 0.0
        self.last = now
        overall = match["overall"]
        done = self.counted
        if "inf" not in overall and "nan" not in overall:
            done = min(float(self.per_test), float(overall) * (now - self.test_started))
        completed = max(0.0, done - self.counted)
        self.counted += completed
        avg = match["avg"]
        return LiveSample(
            completed=completed,
            throughput=float(match["rps"]),
            latency_mean_ms=float(avg) if "nan" not in avg else None,
            test=test,
        )


def parse_blocks(text: str) -> dict[str, dict[str, Any]]:
    """Each test's final block: requests, seconds, throughput, latency summary, and the
    latency distribution as (ms, count) pairs."""
    text = text.replace("\r", "\n")
    tests: dict[str, dict[str, Any]] = {}
    heads = list(BLOCK.finditer(text))
    for index, head in enumerate(heads):
        body = text[head.end() : heads[index + 1].start() if index + 1 < len(heads) else None]
        completed = COMPLETED.search(body)
        throughput = THROUGHPUT.search(body)
        if completed is None or throughput is None:
            continue  # a test cut off before its summary (stopped by a signal)
        counts: list[tuple[float, int]] = []
        previous = 0
        lines = body.splitlines()
        in_percentiles = False
        summary: dict[str, float] = {}
        for position, line in enumerate(lines):
            if line.startswith("Latency by percentile distribution"):
                in_percentiles = True
                continue
            if in_percentiles:
                point = PERCENTILE.match(line)
                if point is None:
                    in_percentiles = False
                    continue
                cumulative = int(point["c"])
                counts.append((float(point["ms"]), cumulative - previous))
                previous = cumulative
            if LATENCY_HEADER.match(line) and position + 1 < len(lines):
                values = [float(v) for v in lines[position + 1].split()]
                summary = dict(zip(SUMMARY_COLUMNS, values, strict=False))
        requests = int(completed["n"])
        rps = float(throughput["rps"])
        tests[head["test"].strip()] = {
            "requests": requests,
            "seconds": round(requests / rps, 6) if rps > 0 else float(completed["s"]),
            "requests_per_s": rps,
            "latency_ms": summary,
            "distribution": counts,
        }
    return tests


def parse(execution: Execution, config: BenchConfig, workdir: Path) -> ToolResult:
    output = execution.stdout + "\n" + execution.stderr
    tests = parse_blocks(execution.stdout)
    problem = ERROR_LINE.search(output)
    if not tests:
        if execution.interrupted:
            return ToolResult(0, 0, 0.0, LatencyHistogram())
        reason = tail(output, 2) or "no output"  # "Node ... replied with error: | NOAUTH ..."
        raise ToolFailed(f"no test completed (exit {execution.returncode}): {reason}")
    latency = LatencyHistogram()
    for figures in tests.values():
        latency.merge(
            histogram_from_counts(
                figures.pop("distribution"),
                mean_ms=figures["latency_ms"].get("avg"),
                min_ms=figures["latency_ms"].get("min"),
                max_ms=figures["latency_ms"].get("max"),
            )
        )
    operations = sum(figures["requests"] for figures in tests.values())
    seconds = sum(figures["seconds"] for figures in tests.values())
    result = ToolResult(
        operations=operations,
        failed=0,
        seconds=seconds,
        latency=latency,
        details={"tests": tests},
    )
    if execution.returncode != 0 and not execution.interrupted:
        message = problem.group(0).strip() if problem else tail(output)
        # the request that got the error reply: redis-benchmark stops there
        result.operations += 1
        result.failed = 1
        result.errors["redis_error"] = 1
        result.error_examples["redis_error"] = message
        exited = f"redis-benchmark exited {execution.returncode}: {message}"
        result.warnings.append(warning("native_tool_error", exited))
    if config.duration is not None:
        result.warnings.append(
            warning(
                "duration_not_used",
                "duration: not used; redis-benchmark runs requests per test",
            )
        )
    return result
