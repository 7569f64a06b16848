"""wrk (Debian: wrk 4.1), the HTTP field's own closed-loop load tool.

`-c` connections (concurrency), `-t` threads (threads, default 1), `-d` duration,
`--timeout`, `-H` headers; method and body through wrk_report.lua (read in its init, so that
wrk still sends one precomputed request and calls no Lua per request). The script's done()
prints one JSON line: requests, bytes, socket and status errors, latency min/max/mean and
percentiles, from which the latency histogram is rebuilt.

wrk prints nothing until it ends: the live figures come from the bytes it has written
(/proc/PID/io wchar, read each report_interval) divided by the size of its request, which
the script prints at the start: requests sent, not answered.

wrk2 (an open loop at a set rate, latency from the intended send) is not packaged for
Debian 12; an open loop runs with engine: python.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.native.base import (
    Execution,
    Invocation,
    LiveSample,
    ToolFailed,
    ToolResult,
    histogram_from_percentiles,
    tail,
    tool_version,
    write_private,
)
from hpcansible_jobs.errors import UserError

PROGRAM = "wrk"
TOOL = "wrk"
PACKAGE = "wrk"
RECORDS = "none: wrk reports totals and a latency distribution, not single requests"
SCRIPT = Path(__file__).with_name("wrk_report.lua")
REPORT_PREFIX = "hpcansible-wrk "
REQUEST_BYTES_PREFIX = "hpcansible-wrk-request-bytes "
UNSUPPORTED = {
    "requests": "wrk runs for a duration, not a number of requests",
    "expect_status": "wrk counts every status of 400 and above as an error, and no other",
}


def check(parsed: Mapping[str, Any], place: Callable[[str], str]) -> None:
    if "duration" not in parsed:
        raise UserError(f"{place('duration')}: required with wrk, which runs for a duration")
    concurrency = parsed.get("concurrency", (1,))
    if parsed.get("threads", 1) > min(concurrency):
        raise UserError(f"{place('threads')}: more wrk threads than connections (concurrency)")


def url_of(config: BenchConfig) -> str:
    if not config.path:
        return config.endpoint
    return config.endpoint.rstrip("/") + "/" + config.path.lstrip("/")


def invocation(config: BenchConfig, program: str, workdir: Path) -> Invocation:
    argv = [
        program,
        "-t", str(config.threads or 1),
        "-c", str(config.concurrency[0]),
        "-d", f"{config.duration:g}s",
        "--timeout", f"{config.timeout:g}s",
        "--latency",
        "-s", str(SCRIPT),
    ]  # fmt: skip
    for name, value in config.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url_of(config))
    env = {"HPCANSIBLE_WRK_METHOD": config.method}
    if config.body is not None:
        body = workdir / "wrk-body"
        write_private(body, config.body.decode("utf-8", "surrogateescape"))
        env["HPCANSIBLE_WRK_BODY_FILE"] = str(body)
    return Invocation(argv, env=env)


def prepare(config: BenchConfig, program: str, workdir: Path) -> list[tuple[str, Invocation]]:
    return []


def client_threads(config: BenchConfig) -> int:
    return config.threads or 1


def version(program: str) -> str | None:
    return tool_version([program, "-v"])


def describe(config: BenchConfig) -> dict[str, Any]:
    return {
        "url": url_of(config),
        "method": config.method,
        "connections": config.concurrency[0],
        "threads": config.threads or 1,
        "duration_s": config.duration,
    }


def written_bytes(pid: int) -> int | None:
    """wchar of /proc/PID/io: every byte the process has written (sockets included)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class LiveParser:
    """Requests sent, from the bytes wrk has written, every report_interval."""

    def __init__(self, config: BenchConfig) -> None:
        self.interval = config.report_interval
        self.request_bytes: int | None = None
        self.emit: Callable[[LiveSample], None] | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def feed(self, line: str) -> LiveSample | None:
        if line.startswith(REQUEST_BYTES_PREFIX):
            self.request_bytes = int(line[len(REQUEST_BYTES_PREFIX) :].strip() or 0) or None
        return None

    def started(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._poll, args=(pid,), daemon=True)
        self._thread.start()

    def _poll(self, pid: int) -> None:
        last_bytes = written_bytes(pid) or 0
        last = time.monotonic()
        while not self._done.wait(self.interval):
            now_bytes = written_bytes(pid)
            if now_bytes is None:
                return
            now = time.monotonic()
            if self.request_bytes and self.emit is not None:
                sent = (now_bytes - last_bytes) / self.request_bytes
                self.emit(LiveSample(completed=sent, throughput=sent / (now - last)))
            last_bytes, last = now_bytes, now

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def report_of(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith(REPORT_PREFIX):
            try:
                return json.loads(line[len(REPORT_PREFIX) :])
            except json.JSONDecodeError:
                return None
    return None


def parse(execution: Execution, config: BenchConfig, workdir: Path) -> ToolResult:
    report = report_of(execution.stdout)
    if report is None:
        reason = tail(execution.stderr or execution.stdout) or "no output"
        raise ToolFailed(f"no report (exit {execution.returncode}): {reason}")
    errors = report["errors"]
    socket_errors = {name: errors[name] for name in ("connect", "read", "write", "timeout")}
    requests = int(report["requests"])
    latency = report["latency_us"]
    points = [
        (float(p), (value if p < 100 else latency["max"]) / 1000)
        for p, value in latency["percentiles"]
    ]
    histogram = histogram_from_percentiles(
        points,
        requests,
        mean_ms=latency["mean"] / 1000,
        min_ms=latency["min"] / 1000,
        max_ms=latency["max"] / 1000,
    )
    failed_by_class = {name: count for name, count in socket_errors.items() if count}
    if errors["status"]:
        failed_by_class["http_status"] = int(errors["status"])
    seconds = report["duration_us"] / 1e6
    return ToolResult(
        operations=requests + sum(socket_errors.values()),
        failed=sum(failed_by_class.values()),
        seconds=seconds,
        latency=histogram,
        errors=failed_by_class,
        error_examples={
            name: f"wrk counted {count} {name} errors" for name, count in failed_by_class.items()
        },
        details={
            "bytes": report["bytes"],
            "bytes_per_s": round(report["bytes"] / seconds, 1) if seconds else 0.0,
            "wrk_errors": errors,
        },
    )
