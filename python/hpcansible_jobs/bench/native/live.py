"""Live metrics of a native tool: bench/live.py's names, fed from the tool's progress lines.

The tools report rates, not single requests, every second or so: hpcansible_bench_requests
(outcome success/failure) grows by the operations the rate implies (corrected to the tool's
exact count when the step ends), hpcansible_bench_in_flight holds the clients, and two gauges
that only native engines have say what the tool reports now:

- hpcansible_bench_throughput (operations/s, by step and test),
- hpcansible_bench_latency_mean_seconds (the tool's mean latency over its last interval).

The request latency histogram of the Python engine stays empty: no tool reports single
requests while it runs.
"""

from __future__ import annotations

import threading

from prometheus_client import Gauge

from hpcansible_jobs.bench.live import PREFIX, LiveMetrics
from hpcansible_jobs.bench.native.base import LiveSample


class NativeLive:
    """A LiveMetrics plus the tool's current throughput and latency."""

    def __init__(self, live: LiveMetrics) -> None:
        self.live = live
        labels = ("session_id", "api", "step", "test")
        self._throughput = Gauge(
            f"{PREFIX}_throughput",
            "Operations per second the native tool reports now",
            labels,
            registry=live.registry,
        )
        self._latency = Gauge(
            f"{PREFIX}_latency_mean_seconds",
            "Mean latency the native tool reports over its last interval",
            labels,
            registry=live.registry,
        )
        self._lock = threading.Lock()
        self.counted = 0.0  # operations counted in this step so far
        self.errors_counted = 0.0
        self.test = ""

    def set_step(self, step: str, clients: int) -> None:
        self.live.set_step(step)
        self.live.in_flight.set(clients)
        self.counted = 0.0
        self.errors_counted = 0.0

    def _labels(self, test: str) -> dict[str, str]:
        return {**self.live.labels, "test": test or "all"}

    def sample(self, sample: LiveSample) -> None:
        with self._lock:
            if sample.completed > 0:
                self.live.succeeded.inc(sample.completed)
                self.counted += sample.completed
            if sample.errors > 0:
                self.live.failed.inc(sample.errors)
                self.errors_counted += sample.errors
            labels = self._labels(sample.test)
            if sample.test != self.test and self.test:
                self._throughput.labels(**self._labels(self.test)).set(0)
            self.test = sample.test
            self._throughput.labels(**labels).set(sample.throughput)
            if sample.latency_mean_ms is not None:
                self._latency.labels(**labels).set(sample.latency_mean_ms / 1000)

    def finish(self, operations: int, failed: int) -> None:
        """The step ended: counters to the tool's exact totals, gauges to 0."""
        with self._lock:
            if operations - failed > self.counted:
                self.live.succeeded.inc(operations - failed - self.counted)
            if failed > self.errors_counted:
                self.live.failed.inc(failed - self.errors_counted)
            self._throughput.labels(**self._labels(self.test)).set(0)
            self.live.in_flight.set(0)
