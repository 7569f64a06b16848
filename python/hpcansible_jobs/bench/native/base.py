"""What every native tool module provides, and the parts they share.

A tool module (redis_benchmark.py, wrk.py, pgbench.py, sysbench.py) defines:

- PROGRAM (the executable), TOOL (its name in summary.json), UNSUPPORTED (options it cannot
  honour, with the reason) and RECORDS (what per-request records it gives, if any);
- check(parsed, place): its own option rules (one-line UserError naming the option);
- invocation(config, program, workdir): the command of one step (an Invocation);
- prepare(config, program, workdir): commands to run once, untimed, before the start gate
  (pgbench -i, sysbench prepare), as Invocations;
- LiveParser: turns the tool's progress lines into LiveSamples while it runs;
- parse(execution, config, workdir): the finished step as a ToolResult.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.errors import UserError

SECRET_ENV = "HPCANSIBLE_SECRET"
DEFAULT_DATABASE = "bench"
DEFAULT_USER = "bench"
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Invocation:
    """One run of the tool: its argv (never a secret), extra environment (secrets only
    here or in 0600 files) and whether the secret-argument preload is needed."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    secret_argument: bool = False

    def shown(self) -> str:
        """The command as summary.json and the log show it: the argv, secrets never in it."""
        return shlex.join(self.argv)


@dataclass
class Execution:
    """What one run of a tool left: exit status, output, timing, CPU."""

    returncode: int
    stdout: str
    stderr: str
    start_ns: int  # epoch ns
    end_ns: int
    cpu_s: float
    interrupted: bool = False

    @property
    def wall_s(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9)


@dataclass(frozen=True)
class LiveSample:
    """One progress line: operations completed since the last sample (an estimate from the
    tool's rate), the current throughput and mean latency, errors since the last sample."""

    completed: float
    throughput: float
    latency_mean_ms: float | None = None
    errors: float = 0.0
    test: str = ""


@dataclass
class ToolResult:
    """A finished step in the tool's own figures."""

    operations: int  # completed operations (requests, transactions)
    failed: int
    seconds: float  # the tool's measured time of the operations
    latency: LatencyHistogram
    errors: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # per test, queries/s, ...
    warnings: list[dict[str, str]] = field(default_factory=list)
    # per epoch second: operations completed, when the tool's own log says (pgbench)
    series: dict[int, dict[str, float]] | None = None


class ToolFailed(RuntimeError):
    """The tool could not run the step; the message is one line for the user."""


def endpoint_parts(endpoint: str, default_port: int) -> dict[str, Any]:
    """host, port, user, password, database of a service URL."""
    parts = urlsplit(endpoint)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or default_port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "database": parts.path.lstrip("/") or None,
    }


def secret_of(config: Any, parts: Mapping[str, Any]) -> str | None:
    """The service's password: the config's (from a 0600 file) or the URL's."""
    return config.password or parts.get("password")


def histogram_from_counts(
    counts: Iterable[tuple[float, int]],
    mean_ms: float | None = None,
    min_ms: float | None = None,
    max_ms: float | None = None,
) -> LatencyHistogram:
    """A LatencyHistogram from a tool's distribution: (latency in ms, how many) pairs. The
    mean, min and max are the tool's exact figures where it gives them."""
    histogram = LatencyHistogram()
    total = 0
    weighted = 0.0
    lowest: float | None = None
    highest = 0.0
    for value_ms, count in counts:
        if count <= 0:
            continue
        micros = max(1, round(value_ms * 1000))
        histogram.hdr.record_value(min(micros, 3_600_000_000), int(count))
        total += int(count)
        weighted += value_ms * count
        lowest = value_ms if lowest is None else min(lowest, value_ms)
        highest = max(highest, value_ms)
    if total == 0:
        return histogram
    histogram.count = total
    mean = mean_ms if mean_ms is not None else weighted / total
    histogram.sum_ns = round(mean * 1e6 * total)
    histogram.min_ns = round((min_ms if min_ms is not None else lowest or 0.0) * 1e6)
    histogram.max_ns = round((max_ms if max_ms is not None else highest) * 1e6)
    return histogram


def histogram_from_percentiles(
    points: Iterable[tuple[float, float]],
    count: int,
    mean_ms: float | None = None,
    min_ms: float | None = None,
    max_ms: float | None = None,
) -> LatencyHistogram:
    """A LatencyHistogram from (percentile, latency in ms) points of `count` operations:
    the operations between two percentiles are put at the upper one's latency."""
    pairs: list[tuple[float, int]] = []
    placed = 0
    for percentile, value_ms in sorted(points):
        upto = round(count * min(percentile, 100.0) / 100.0)
        if upto > placed:
            pairs.append((value_ms, upto - placed))
            placed = upto
    if placed < count and pairs:
        pairs.append((pairs[-1][0] if max_ms is None else max_ms, count - placed))
    return histogram_from_counts(pairs, mean_ms, min_ms, max_ms)


def tool_version(argv: list[str], pattern: str = r"\d+(?:\.\d+)+") -> str | None:
    """The version a tool prints for argv (stdout or stderr), or None."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(0) if match else None


def tail(text: str, lines: int = 3) -> str:
    """The last non-empty lines of a tool's output, on one line."""
    kept = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return " | ".join(kept[-lines:])


def write_private(path: Path, content: str) -> Path:
    """A file only its owner reads (0600), created so from the start."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(content)
    return path


def check_tests(
    given: Any, known: Sequence[str], what: str, place: Callable[[str], str], many: bool = False
) -> None:
    """`tests` names the tool's own tests (a comma list where `many`), else one line naming
    the option, the name and the known ones."""
    if given is None:
        return
    names = str(given).lower().split(",") if many else [str(given)]
    for name in (name.strip() for name in names):
        if name and name not in known:
            raise UserError(f"{place('tests')}: {name!r} is not {what} (known: {', '.join(known)})")
