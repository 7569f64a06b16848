"""Live Prometheus metrics (--metrics-port), labelled with the session id.

The session's Prometheus scrapes this endpoint next to the service node's cAdvisor, so
client-side latency shows up beside the service's CPU and memory. Metrics are fed in
batches by the engine's monitor task, never from the request path.

With --workers K, every worker process writes its values through prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR) and the parent serves their sum.

Request metrics carry a `step` label: the sweep point's label (`run` without a sweep), so
that graphs split by point. The parent adds the run's state (RunState):
hpcansible_bench_gate_open (0 while the client waits for the start gate, else 1) and
hpcansible_bench_step_running{step} (1 while that step's load runs).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hpcansible_jobs.bench.recorder import NOT_SET, Recorder

PREFIX = "hpcansible_bench"
# Seconds; covers a sub-millisecond cache hit up to a ten-minute generation.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class LiveMetrics:
    """Counters and histograms for one process, fed with batches of completed requests."""

    def __init__(
        self,
        session_id: str,
        api: str,
        registry: CollectorRegistry | None = None,
        step: str = "run",
    ) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        names = ("session_id", "api", "step")
        self.base_labels = {"session_id": session_id, "api": api}
        self._requests = Counter(
            f"{PREFIX}_requests",
            "Requests completed, by outcome",
            [*names, "outcome"],
            registry=registry,
        )
        self._errors = Counter(
            f"{PREFIX}_errors",
            "Failed requests, by error class",
            [*names, "error_class"],
            registry=registry,
        )
        self._latency = Histogram(
            f"{PREFIX}_request_latency_seconds",
            "End-to-end latency from the actual send",
            names,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._ttft = Histogram(
            f"{PREFIX}_ttft_seconds",
            "Time to first token",
            names,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._output_tokens = Counter(
            f"{PREFIX}_output_tokens",
            "Output tokens of succeeded requests",
            names,
            registry=registry,
        )
        self._in_flight = Gauge(
            f"{PREFIX}_in_flight",
            "Requests in flight at the last update",
            names,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.in_flight: Any = None
        self.set_step(step)

    def set_step(self, step: str) -> None:
        """Count what follows under this sweep point's label."""
        labels = {**self.base_labels, "step": step}
        self.labels = labels
        self.succeeded = self._requests.labels(**labels, outcome="success")
        self.failed = self._requests.labels(**labels, outcome="failure")
        self.latency = self._latency.labels(**labels)
        self.ttft = self._ttft.labels(**labels)
        self.output_tokens = self._output_tokens.labels(**labels)
        if self.in_flight is not None:
            self.in_flight.set(0)  # the previous step's streams are done
        self.in_flight = self._in_flight.labels(**labels)
        self._error_children: dict[str, Any] = {}

    def observe(self, rec: Recorder, indices: Sequence[int]) -> None:
        for i in indices:
            error = rec.error[i]
            if error is not None:
                self.failed.inc()
                child = self._error_children.get(error)
                if child is None:
                    child = self._error_children[error] = self._errors.labels(
                        **self.labels, error_class=error
                    )
                child.inc()
                continue
            self.succeeded.inc()
            sent = rec.sent[i]
            self.latency.observe(((rec.end[i] or rec.done[i]) - sent) / 1e9)
            if rec.first_token[i] != NOT_SET:
                self.ttft.observe((rec.first_token[i] - sent) / 1e9)
            if rec.output_tokens[i] > 0:
                self.output_tokens.inc(rec.output_tokens[i])


class RunState(Collector):
    """The parent process's view of the run: is the start gate open, which step runs."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.gate_open = 1
        self.steps: dict[str, int] = {}

    def set_gate_open(self, is_open: bool) -> None:
        self.gate_open = int(is_open)

    def set_step_running(self, step: str, running: bool) -> None:
        self.steps[step] = int(running)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gate = GaugeMetricFamily(
            f"{PREFIX}_gate_open",
            "0 while the client waits for the session's start gate, 1 once the load may run",
            labels=["session_id"],
        )
        gate.add_metric([self.session_id], self.gate_open)
        yield gate
        steps = GaugeMetricFamily(
            f"{PREFIX}_step_running",
            "1 while this sweep point's load runs (step=run without a sweep)",
            labels=["session_id", "step"],
        )
        for step, running in self.steps.items():
            # a step that waits for the gate has not started its load yet
            steps.add_metric([self.session_id, step], running and self.gate_open)
        yield steps


class MetricsServer:
    """The HTTP endpoint; in multi-process mode it serves the workers' summed values."""

    def __init__(self, host: str, port: int, multiprocess: bool, session_id: str) -> None:
        self.multiproc_dir: str | None = None
        if multiprocess:
            # Set before the workers start: they pick multiprocess mode up at import.
            self.multiproc_dir = tempfile.mkdtemp(prefix="hpcansible-bench-metrics-")
            os.environ[MULTIPROC_ENV] = self.multiproc_dir
            from prometheus_client import multiprocess as prometheus_multiprocess

            self.registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(self.registry, path=self.multiproc_dir)
        else:
            self.registry = CollectorRegistry()
        self.state = RunState(session_id)
        self.registry.register(self.state)
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self.server.server_port

    def announce(self, quiet: bool) -> None:
        if not quiet:
            print(
                f"live metrics on http://{self.server.server_address[0]}:{self.port}/metrics",
                file=sys.stderr,
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.multiproc_dir is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)
