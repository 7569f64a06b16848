"""Scale-out: --workers K processes split one step's load and merge their histograms;
`bench merge` merges the output directories of several client jobs (a job array) the
same way.

Workers are spawned (fresh interpreters, each with its own uvloop loop and aiohttp
session). They open their connections, report ready, and all start at one instant on
the machine-wide monotonic clock. Each writes its records and aggregate.json into
OUTPUT/workers/w<i>/; the parent merges them and concatenates the records.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvloop

from hpcansible_jobs.bench import report
from hpcansible_jobs.bench.config import BenchConfig, from_mapping_unchecked
from hpcansible_jobs.bench.engine import RunOutcome, Snapshot
from hpcansible_jobs.bench.gate import StartGate
from hpcansible_jobs.bench.metrics import Aggregate
from hpcansible_jobs.bench.summary import summarize
from hpcansible_jobs.errors import ServiceUnreachable, UserError

# Workers get this long to import, connect (and prefill Redis) before the run is abandoned.
READY_TIMEOUT_S = 300.0
# All workers start this long after the last one is ready, on the shared monotonic clock.
START_DELAY_NS = 100_000_000
PROGRESS_FIELDS = 3  # completed, failed, in flight


def worker_main(
    config_data: dict[str, Any],
    worker: int,
    conn: Connection,
    progress: Any,
    live_metrics: bool,
) -> None:
    """Entry point of worker process `worker` (runs in a spawned interpreter)."""
    from hpcansible_jobs.bench.live import LiveMetrics
    from hpcansible_jobs.bench.runner import build_plans, finish_process, make_generator

    try:
        config = from_mapping_unchecked(config_data)
        plan = build_plans(config)[worker]
        live = None
        if live_metrics:
            live = LiveMetrics(config.session_id, config.api, step=config.step)
        base = worker * PROGRESS_FIELDS

        def on_progress(snapshot: Snapshot) -> None:
            progress[base] = snapshot.completed
            progress[base + 1] = snapshot.failed
            progress[base + 2] = snapshot.in_flight

        generator = make_generator(config, plan, on_progress, live)

        async def main() -> RunOutcome | None:
            try:
                await generator.prepare()
            except UserError as error:
                conn.send(("error", str(error)))
                return None
            conn.send(("ready", None))
            start_at = conn.recv()
            return await generator.run(start_at)

        outcome = uvloop.run(main())
        if outcome is None:
            return
        out_dir = config.output / "workers" / f"w{worker}"
        agg, records = finish_process(config, outcome, out_dir)
        report.write_json(out_dir / report.AGGREGATE, agg.to_json())
        conn.send(("done", {"target": generator.client.describe(), "records": records}))
    except Exception as error:  # reported to the parent as one line
        traceback.print_exc()
        conn.send(("error", f"worker {worker}: {type(error).__name__}: {error}"))


class WorkerPool:
    """The parent's view of K worker processes."""

    def __init__(self, config: BenchConfig, live_metrics: bool) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.count = config.workers
        self.progress = self.context.Array("q", PROGRESS_FIELDS * self.count, lock=False)
        self.processes: list[Any] = []
        self.pipes: list[Connection] = []
        data = config.to_mapping(mask_secrets=False)
        for w in range(self.count):
            parent_end, child_end = self.context.Pipe()
            process = self.context.Process(
                target=worker_main,
                args=(data, w, child_end, self.progress, live_metrics),
                name=f"bench-worker-{w}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self.processes.append(process)
            self.pipes.append(parent_end)

    def receive(self, w: int, timeout: float) -> tuple[str, Any] | None:
        """The next message from worker w, or None (timeout, or the worker died)."""
        conn = self.pipes[w]
        try:
            if conn.poll(timeout):
                return conn.recv()
        except (EOFError, OSError):
            return ("error", f"worker {w} exited (code {self.processes[w].exitcode})")
        if not self.processes[w].is_alive() and not conn.poll(0):
            return ("error", f"worker {w} exited (code {self.processes[w].exitcode})")
        return None

    def snapshot(self) -> Snapshot:
        values = list(self.progress)
        return Snapshot(
            completed=sum(values[0::PROGRESS_FIELDS]),
            failed=sum(values[1::PROGRESS_FIELDS]),
            in_flight=sum(values[2::PROGRESS_FIELDS]),
        )

    def signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for conn in self.pipes:
            conn.close()


def _wait_all_ready(pool: WorkerPool) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for w in range(pool.count):
        message = None
        while message is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UserError(f"worker {w}: not ready after {READY_TIMEOUT_S:g} s")
            message = pool.receive(w, min(remaining, 0.5))
        kind, payload = message
        if kind != "ready":
            raise UserError(str(payload))


def run_workers(config: BenchConfig, gate: StartGate) -> tuple[Aggregate, dict[str, Any]]:
    """Run one step in config.workers processes (they connect, then wait while this
    process waits for the start gate); merged aggregate and target."""
    from hpcansible_jobs.bench.live import MULTIPROC_ENV

    live_metrics = config.metrics_port is not None and MULTIPROC_ENV in os.environ
    pools: list[WorkerPool] = []

    # Ctrl-C reaches the workers through the terminal; scancel's SIGTERM may reach only
    # this process: forward both, and let the workers stop and write what they measured.
    # A signal before the load starts (while the workers are spawned, connect, or wait
    # for the start gate) cancels the gate: nothing runs then. Installed before the
    # workers are spawned, so that a signal never cuts a spawn in half.
    def forward(signum: int, _frame: object) -> None:
        gate.cancel()
        for started in pools:
            started.signal_all(signum)

    previous = {
        signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    results: dict[int, dict[str, Any]] = {}
    try:
        pools.append(WorkerPool(config, live_metrics))
        pool = pools[0]
        if gate.cancelled:
            raise KeyboardInterrupt
        try:
            _wait_all_ready(pool)
        except UserError:
            if gate.cancelled:  # the workers ended on the signal while they started
                raise KeyboardInterrupt from None
            raise
        gate.wait()
        if gate.cancelled:
            raise KeyboardInterrupt
        start_at = time.perf_counter_ns() + START_DELAY_NS
        for conn in pool.pipes:
            conn.send(start_at)
        display = report.ProgressDisplay(
            f"{config.api} bench x{config.workers}",
            config.requests,
            config.duration,
            config.quiet,
        )
        with display:
            while len(results) < pool.count:
                for w in range(pool.count):
                    if w in results:
                        continue
                    message = pool.receive(w, 0.05)
                    if message is None:
                        continue
                    kind, payload = message
                    if kind != "done":
                        raise ServiceUnreachable(str(payload))
                    results[w] = payload
                snapshot = pool.snapshot()
                snapshot.elapsed_s = max(0.0, (time.perf_counter_ns() - start_at) / 1e9)
                display.update(snapshot)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for started in pools:
            _end_pool(started, finished=len(results) == started.count, live=live_metrics)

    worker_dirs = [config.output / "workers" / f"w{w}" for w in range(pool.count)]
    merged = Aggregate()
    for directory in worker_dirs:
        merged.merge(report.read_aggregate(directory))
    _concatenate_records([results[w]["records"] for w in range(pool.count)], config.output)
    return merged, results[0]["target"]


def _end_pool(pool: WorkerPool, finished: bool, live: bool) -> None:
    if not finished:
        pool.signal_all(signal.SIGTERM)
    pool.close()
    if live:
        from prometheus_client import multiprocess as prometheus_multiprocess

        for process in pool.processes:
            if process.pid is not None:
                prometheus_multiprocess.mark_process_dead(process.pid)


def _concatenate_records(files: list[Path | None], out_dir: Path) -> None:
    """Workers' records into one file; CSV headers must match, else files stay apart."""
    present = [Path(f) for f in files if f is not None]
    if not present:
        return
    target = out_dir / present[0].name
    if present[0].suffix == ".csv":
        headers = {f.open(encoding="utf-8").readline() for f in present}
        if len(headers) > 1:
            return
    with target.open("wb") as out:
        for n, path in enumerate(present):
            with path.open("rb") as source:
                if n and path.suffix == ".csv":
                    source.readline()
                shutil.copyfileobj(source, out)
            path.unlink()


def merge_directories(directories: list[Path], output: Path) -> dict[str, Any]:
    """`bench merge`: several runs (e.g. a job array's clients) into one summary."""
    if output.resolve() in {d.resolve() for d in directories}:
        raise UserError(f"--output {output}: must differ from the merged directories")
    merged = Aggregate()
    first_summary: dict[str, Any] | None = None
    for directory in directories:
        aggregate = report.read_aggregate(directory)
        if merged.api and aggregate.api != merged.api:
            raise UserError(f"{directory}: api {aggregate.api} differs from {merged.api}")
        merged.merge(aggregate)
        summary_path = directory / report.SUMMARY
        if first_summary is None and summary_path.is_file():
            first_summary = json.loads(summary_path.read_text(encoding="utf-8"))
    first_summary = first_summary or {}
    asked = dict(first_summary.get("load", {}).get("asked", {}))
    extra = {
        key: first_summary[key]
        for key in ("tool", "session_id", "started_at")
        if key in first_summary
    }
    extra["merged_from"] = [str(d) for d in directories]
    summary = summarize(merged, asked, first_summary.get("target", {}), extra)
    report.write_outputs(output, merged, summary)
    return summary
