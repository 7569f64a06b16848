"""The load loop of one process: closed or open loop, on uvloop, bounded in count and time.

Open loop: a dispatcher walks the precomputed schedule and starts one task per request
when it is due. The task stamps `dispatched` (client scheduling lag), waits for one of the
`max_in_flight` slots, stamps `sent` and runs the request: latency from `scheduled`
(intended) includes any wait for a slot or for the client, latency from `sent` does not
(coordinated omission made visible). Closed loop: N streams each send the next request
when the previous one ends.

A monitor task (every MONITOR_INTERVAL_S) feeds completed requests to the progress bar,
the live Prometheus metrics and the --max-error-rate check, outside the request path.
A sampler measures event-loop lag: if the loop wakes late, the client is the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import resource
import signal
from array import array
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from hpcansible_jobs.bench.apis.base import ApiClient
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.recorder import Clock, Recorder

MONITOR_INTERVAL_S = 0.25
LAG_SAMPLE_INTERVAL_S = 0.01
# The error-rate check waits for this many measured results before it can stop a run.
MIN_RESULTS_FOR_ERROR_RATE = 20
# After a stop signal, in-flight requests get this long before they are cancelled.
SIGNAL_GRACE_S = 2.0


@dataclass
class WorkerPlan:
    """This process's share of the load (worker `worker` of `workers`)."""

    worker: int = 0
    workers: int = 1
    offsets: array | None = None  # open loop: send offsets in ns from the start
    stream_starts: list[int] | None = None  # closed loop: each stream's start offset (ns)
    request_limit: int | None = None  # closed loop: requests this worker sends at most
    duration_ns: int | None = None  # closed loop: no new request after this
    warmup_requests: int = 0  # the first N request indices are warm-up
    warmup_ns: int = 0  # requests scheduled before start + warmup_ns are warm-up

    @property
    def open_loop(self) -> bool:
        return self.offsets is not None

    @property
    def expected_requests(self) -> int | None:
        return len(self.offsets) if self.offsets is not None else self.request_limit

    def is_warmup(self, index: int, scheduled_ns: int, start_ns: int) -> bool:
        """Warm-up by count (the first request indices) or by intended send time."""
        if index < self.warmup_requests:
            return True
        return self.warmup_ns > 0 and scheduled_ns < start_ns + self.warmup_ns


@dataclass
class Snapshot:
    """Progress so far, for the progress bar and worker-to-parent reports."""

    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    elapsed_s: float = 0.0


@dataclass
class RunOutcome:
    """Everything a run leaves behind for metrics: raw records plus run-level facts."""

    recorder: Recorder
    clock: Clock
    start_ns: int
    end_ns: int
    plan: WorkerPlan
    stopped_early: str | None
    loop_lag_us: list[int] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadGenerator:
    def __init__(
        self,
        config: BenchConfig,
        plan: WorkerPlan,
        client: ApiClient,
        on_progress: Callable[[Snapshot], None] | None = None,
        on_completed: Callable[[Recorder, Sequence[int]], None] | None = None,
    ) -> None:
        self.config = config
        self.plan = plan
        self.client = client
        self.on_progress = on_progress
        self.on_completed = on_completed  # live metrics: batches of completed indices
        self.rec = Recorder(plan.expected_requests or 1024)
        client.recorder = self.rec
        self.start_ns = 0
        self.stopping = False
        self.stop_reason: str | None = None
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop_lag_us: list[int] = []
        self._seen = 0
        self._measured_done = 0
        self._measured_failed = 0
        self._failed = 0
        self._slots: asyncio.Semaphore | None = None
        self._stopped_at_ns = 0
        self._dispatch_end_ns = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Open the client's connections; nothing is timed yet."""
        await self.client.start()

    async def run(self, start_at_ns: int | None = None) -> RunOutcome:
        """Send the plan's load, starting at `start_at_ns` (perf_counter_ns) or now."""
        loop = asyncio.get_running_loop()
        self._install_signal_handlers(loop)
        # Objects made during setup (schedule, prompts, bodies) never need collecting:
        # freezing them keeps full garbage collections short during the run.
        gc.collect()
        gc.freeze()
        clock = Clock.now()
        self.start_ns = start_at_ns if start_at_ns is not None else perf_counter_ns() + 1_000_000
        cpu_before = _cpu_seconds()
        sampler = loop.create_task(self._sample_loop_lag())
        monitor = loop.create_task(self._monitor())
        try:
            await self._sleep_until(self.start_ns)
            if self.plan.open_loop:
                self._slots = asyncio.Semaphore(self.config.max_in_flight)
                await self._open_loop()
            else:
                await self._closed_loop()
            await self._drain()
        finally:
            end_ns = perf_counter_ns()
            cpu_s = _cpu_seconds() - cpu_before
            for task in (sampler, monitor):
                task.cancel()
            await asyncio.gather(sampler, monitor, return_exceptions=True)
            self._consume_completed()
            self._remove_signal_handlers(loop)
            gc.unfreeze()
            await self.client.close()
        return RunOutcome(
            recorder=self.rec,
            clock=clock,
            start_ns=self.start_ns,
            end_ns=end_ns,
            plan=self.plan,
            stopped_early=self.stop_reason,
            loop_lag_us=self.loop_lag_us,
            cpu_s=cpu_s,
            wall_s=(end_ns - self.start_ns) / 1e9,
        )

    def stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            self._stopped_at_ns = perf_counter_ns()

    # --- open loop ------------------------------------------------------------------------

    async def _open_loop(self) -> None:
        offsets = self.plan.offsets
        assert offsets is not None
        rec = self.rec
        scheduled = rec.scheduled
        start = self.start_ns
        count = len(offsets)
        spawn = self._spawn
        request = self._open_request
        i = 0
        while i < count and not self.stopping:
            now = perf_counter_ns()
            due = start + offsets[i]
            if due > now:
                # uvloop timers count whole milliseconds and a shorter sleep returns at
                # once, which would turn this loop into a busy spin: sleep whole ms.
                await asyncio.sleep(math.ceil((due - now) / 1e6) / 1e3)
                continue
            # Start every request that is due now; the timer woke up at most ~1 ms late.
            while i < count:
                due = start + offsets[i]
                if due > now:
                    break
                index = rec.allocate()
                scheduled[index] = due
                spawn(request(index))
                i += 1
        self._dispatch_end_ns = perf_counter_ns()

    async def _open_request(self, i: int) -> None:
        rec = self.rec
        rec.dispatched[i] = perf_counter_ns()
        slots = self._slots
        assert slots is not None
        async with slots:
            rec.sent[i] = perf_counter_ns()
            self.in_flight += 1
            try:
                await self.client.send(i, rec)
            finally:
                self.in_flight -= 1
        rec.completed.append(i)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- closed loop ----------------------------------------------------------------------

    async def _closed_loop(self) -> None:
        # streams end on their own (count, duration or stop); _drain bounds the wait
        for offset in self.plan.stream_starts or [0]:
            self._spawn(self._stream(offset))

    async def _stream(self, start_offset_ns: int) -> None:
        await self._sleep_until(self.start_ns + start_offset_ns)
        rec = self.rec
        client = self.client
        limit = self.plan.request_limit
        deadline = None if self.plan.duration_ns is None else self.start_ns + self.plan.duration_ns
        while not self.stopping:
            if limit is not None and rec.size >= limit:
                break
            now = perf_counter_ns()
            if deadline is not None and now >= deadline:
                break
            i = rec.allocate()
            rec.scheduled[i] = now
            rec.dispatched[i] = now
            rec.sent[i] = now
            self.in_flight += 1
            try:
                await client.send(i, rec)
            finally:
                self.in_flight -= 1
            rec.completed.append(i)

    # --- end of run -----------------------------------------------------------------------

    def _drain_deadline_ns(self) -> float:
        """When to give up on requests still running; every bound is finite except a
        closed loop counted in requests only, where each request is bounded by --timeout."""
        timeout_ns = int((self.config.timeout + 1.0) * 1e9)
        if self.stop_reason == "signal":
            return self._stopped_at_ns + SIGNAL_GRACE_S * 1e9
        if self.plan.open_loop:
            return self._dispatch_end_ns + timeout_ns
        if self.plan.duration_ns is not None:
            return self.start_ns + self.plan.duration_ns + timeout_ns
        return math.inf

    async def _drain(self) -> None:
        while self.tasks:
            remaining = (self._drain_deadline_ns() - perf_counter_ns()) / 1e9
            if remaining <= 0:
                break
            await asyncio.wait(set(self.tasks), timeout=min(remaining, MONITOR_INTERVAL_S))
        leftovers = set(self.tasks)
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)

    async def _sleep_until(self, when_ns: int) -> None:
        while not self.stopping:
            remaining = when_ns - perf_counter_ns()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining / 1e9, MONITOR_INTERVAL_S))

    # --- monitoring -----------------------------------------------------------------------

    async def _sample_loop_lag(self) -> None:
        interval_ns = int(LAG_SAMPLE_INTERVAL_S * 1e9)
        samples = self.loop_lag_us
        while True:
            before = perf_counter_ns()
            await asyncio.sleep(LAG_SAMPLE_INTERVAL_S)
            samples.append(max(0, perf_counter_ns() - before - interval_ns) // 1000)

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            self._consume_completed()

    def _consume_completed(self) -> None:
        rec = self.rec
        new = rec.completed[self._seen :]
        self._seen += len(new)
        errors = rec.error
        for i in new:
            failed = errors[i] is not None
            self._failed += failed
            if not self.plan.is_warmup(i, rec.scheduled[i], self.start_ns):
                self._measured_done += 1
                self._measured_failed += failed
        if new and self.on_completed is not None:
            self.on_completed(rec, new)
        limit = self.config.max_error_rate
        if (
            limit is not None
            and self._measured_done >= MIN_RESULTS_FOR_ERROR_RATE
            and self._measured_failed / self._measured_done > limit
        ):
            self.stop("max_error_rate")
        if self.on_progress is not None:
            self.on_progress(
                Snapshot(
                    completed=self._seen,
                    failed=self._failed,
                    in_flight=self.in_flight,
                    elapsed_s=max(0.0, (perf_counter_ns() - self.start_ns) / 1e9),
                )
            )

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        # SLURM's scancel and time limits send SIGTERM: stop sending, keep what was measured.
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop, "signal")

    def _remove_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
