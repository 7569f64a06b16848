"""One benchmark, start to finish: live metrics up, wait for the service, plan the load,
open the connections, wait for the start gate, run (in this process or in workers),
aggregate, write the outputs. A sweep runs one step per point into its own directory
(sweep.py), waiting for the gate before the first one only."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

from hpcansible_jobs import __version__
from hpcansible_jobs.bench import report
from hpcansible_jobs.bench.apis import make_client
from hpcansible_jobs.bench.config import LLM_APIS, BenchConfig
from hpcansible_jobs.bench.engine import LoadGenerator, RunOutcome, Snapshot, WorkerPlan
from hpcansible_jobs.bench.gate import StartGate
from hpcansible_jobs.bench.live import LiveMetrics, MetricsServer, RunState
from hpcansible_jobs.bench.metrics import Aggregate, aggregate_run
from hpcansible_jobs.bench.prompts import load_prompts
from hpcansible_jobs.bench.recorder import write_records
from hpcansible_jobs.bench.schedule import (
    NS_PER_S,
    arrival_offsets_ns,
    share,
    split_count,
    stream_start_offsets_ns,
)
from hpcansible_jobs.bench.summary import summarize
from hpcansible_jobs.bench.sweep import SweepPlan, SweepPoint, plan_sweep, sweep_summary
from hpcansible_jobs.errors import ServiceUnreachable

EXIT_OK = 0
EXIT_FAILED = 1  # stopped by --max-error-rate, or no request succeeded
EXIT_INTERRUPTED = 130
SERVICE_POLL_S = 0.5


def build_plans(config: BenchConfig) -> list[WorkerPlan]:
    """Each worker's share of one step's load (a single plan without --workers)."""
    workers = config.workers
    warmup_ns = int(config.warmup * NS_PER_S)
    duration_ns = None if config.duration is None else int(config.duration * NS_PER_S)
    plans = []
    if config.open_loop:
        offsets = arrival_offsets_ns(
            config.rate[0],
            config.arrivals,
            config.burstiness,
            count=config.requests,
            duration_s=config.duration,
            ramp_s=config.ramp,
            seed=config.seed,
        )
        for w in range(workers):
            plans.append(
                WorkerPlan(
                    worker=w,
                    workers=workers,
                    offsets=share(offsets, workers, w),
                    warmup_requests=split_count(config.warmup_requests, workers, w),
                    warmup_ns=warmup_ns,
                )
            )
        return plans
    starts = stream_start_offsets_ns(config.concurrency[0], config.ramp)
    for w in range(workers):
        plans.append(
            WorkerPlan(
                worker=w,
                workers=workers,
                stream_starts=list(share(starts, workers, w)),
                request_limit=None
                if config.requests is None
                else split_count(config.requests, workers, w),
                duration_ns=duration_ns,
                warmup_requests=split_count(config.warmup_requests, workers, w),
                warmup_ns=warmup_ns,
            )
        )
    return plans


def make_generator(
    config: BenchConfig,
    plan: WorkerPlan,
    on_progress: Callable[[Snapshot], None] | None,
    live: LiveMetrics | None,
) -> LoadGenerator:
    prompts = None
    if config.api in LLM_APIS:
        prompts = load_prompts(
            config.prompts,
            config.input_tokens[0],
            config.output_tokens[0],
            config.seed,
            config.requests,
        )
    client = make_client(config, prompts)
    client.worker, client.workers = plan.worker, plan.workers

    def progress(snapshot: Snapshot) -> None:
        if live is not None:
            live.in_flight.set(snapshot.in_flight)
        if on_progress is not None:
            on_progress(snapshot)

    return LoadGenerator(
        config,
        plan,
        client,
        on_progress=progress,
        on_completed=live.observe if live is not None else None,
    )


def finish_process(
    config: BenchConfig, outcome: RunOutcome, out_dir: Path
) -> tuple[Aggregate, Path | None]:
    """Aggregate one process's records and write its per-request file."""
    agg, is_warmup = aggregate_run(outcome, config.api, config.slo, config.late_ms)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = write_records(
        out_dir, config.records, outcome.recorder, outcome.start_ns, is_warmup, outcome.plan.worker
    )
    return agg, records


def asked_load(config: BenchConfig) -> dict[str, Any]:
    """What was asked, for summary.load.asked."""
    return {
        "rate": config.rate[0] if config.open_loop else None,
        "arrivals": config.arrivals if config.open_loop else None,
        "burstiness": config.burstiness if config.open_loop else None,
        "concurrency": None if config.open_loop else config.concurrency[0],
        "requests": config.requests,
        "duration_s": config.duration,
        "warmup_requests": config.warmup_requests,
        "warmup_s": config.warmup,
        "ramp_s": config.ramp,
        "workers": config.workers,
        "connections": config.max_in_flight,
        "timeout_s": config.timeout,
        "max_error_rate": config.max_error_rate,
        "late_ms": config.late_ms,
        "seed": config.seed,
        "input_tokens": (
            config.input_tokens[0] if config.api in LLM_APIS and not config.prompts else None
        ),
        "output_tokens": config.output_tokens[0] if config.api in LLM_APIS else None,
        "prompts": config.prompts if config.api in LLM_APIS else None,
        "ignore_eos": config.ignore_eos if config.api in LLM_APIS else None,
        "slo": config.slo or None,
        "slo_attainment": config.slo_attainment,
    }


def summary_extra(config: BenchConfig, started: float) -> dict[str, Any]:
    return {
        "tool": f"hpcansible bench {__version__}",
        "session_id": config.session_id,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        # who sent the load (issue 10): a native engine replaces this with its tool
        "engine": {"name": "python", "version": __version__, "command": None, "kind": "python"},
    }


def run_single(
    config: BenchConfig, live: LiveMetrics | None, gate: StartGate
) -> tuple[Aggregate, dict[str, Any]]:
    """One step in this process: connect, wait for the gate, run."""
    plan = build_plans(config)[0]
    display = report.ProgressDisplay(
        f"{config.api} bench", plan.expected_requests, config.duration, config.quiet
    )
    with display:
        generator = make_generator(config, plan, display.update, live)

        async def main() -> RunOutcome:
            await generator.prepare()
            try:
                await gate.wait_async()
            except BaseException:  # interrupted while waiting: close what prepare opened
                await generator.client.close()
                raise
            return await generator.run()

        outcome = uvloop.run(main())
    agg, _ = finish_process(config, outcome, config.output)
    return agg, generator.client.describe()


def run_step(
    point: SweepPoint,
    live: LiveMetrics | None,
    gate: StartGate,
    state: RunState | None = None,
) -> dict[str, Any]:
    """Run one step (one sweep point), write its outputs, return its summary."""
    config = point.config
    started = time.time()
    if live is not None:
        live.set_step(config.step)
    if state is not None:
        state.set_step_running(config.step, True)
    try:
        if config.workers > 1:
            from hpcansible_jobs.bench.workers import run_workers

            agg, target = run_workers(config, gate)
        else:
            agg, target = run_single(config, live, gate)
    finally:
        if state is not None:
            state.set_step_running(config.step, False)
    extra = summary_extra(config, started)
    extra["point"] = {"label": point.label, "values": point.values}
    summary = summarize(agg, asked_load(config), target, extra, gate.summary())
    report.write_outputs(config.output, agg, summary)
    return summary


def exit_code_for(summaries: list[dict[str, Any]]) -> int:
    stops = [s["load"]["achieved"]["stopped_early"] or "" for s in summaries]
    if any("signal" in stop for stop in stops):
        return EXIT_INTERRUPTED
    if any("max_error_rate" in stop for stop in stops):
        return EXIT_FAILED
    if any(s["requests"]["succeeded"] == 0 for s in summaries):
        return EXIT_FAILED
    return EXIT_OK


def run_benchmark(config: BenchConfig) -> int:
    """The whole command: live metrics up, wait for the service, run, linger."""
    # native engines (issue 10): the API's own load tool instead of the Python engine
    from hpcansible_jobs.bench.native import resolve_engine, run_native

    if resolve_engine(config) == "native":
        return run_native(config)
    if config.prompts:
        # fail here, as a usage error, rather than inside every worker process
        load_prompts(
            config.prompts, config.input_tokens[0], config.output_tokens[0], config.seed, None
        )
    plan = plan_sweep(config)
    live_server = live = None
    if config.metrics_port is not None:
        live_server = MetricsServer(
            config.metrics_host, config.metrics_port, config.workers > 1, config.session_id
        )
        live_server.announce(config.quiet)
        if config.workers == 1:
            # one set of metrics for every sweep step; worker processes make their own
            first = plan.points[0].label
            live = LiveMetrics(config.session_id, config.api, live_server.registry, first)
    state = None if live_server is None else live_server.state
    gate = StartGate(
        config.gate_file, config.gate_timeout, None if state is None else state.set_gate_open
    )
    try:
        wait_for_service(config)
        code = run_steps(config, plan, live, gate, state)
        if live_server is not None and config.linger > 0 and code != EXIT_INTERRUPTED:
            linger(config)
        return code
    finally:
        if live_server is not None:
            live_server.close()


def run_steps(
    config: BenchConfig,
    plan: SweepPlan,
    live: LiveMetrics | None,
    gate: StartGate,
    state: RunState | None = None,
) -> int:
    """One run, or one step per sweep point; the exit code."""
    if not plan.is_sweep:
        summary = run_step(plan.points[0], live, gate, state)
        if not config.quiet:
            report.print_summary(summary)
        return exit_code_for([summary])
    started = time.time()
    done = []
    for point in plan.points:
        in_dir = replace(point, config=point.config.with_output(config.output / point.label))
        summary = run_step(in_dir, live, gate, state)
        done.append((point, summary))
        if summary["load"]["achieved"]["stopped_early"] == "signal":
            break
    top = sweep_summary(
        plan,
        done,
        summary_extra(config, started),
        gate.summary(),
        config.slo,
        config.slo_attainment,
    )
    report.write_json(config.output / report.SUMMARY, top)
    if not config.quiet:
        report.print_sweep(top)
    return exit_code_for([summary for _, summary in done])


def _endpoint_address(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    default = {"https": 443, "redis": 6379, "rediss": 6379, "postgres": 5432, "postgresql": 5432,
               "mysql": 3306}.get(parts.scheme, 80)  # fmt: skip
    return parts.hostname or "localhost", parts.port or default


def wait_for_service(config: BenchConfig) -> None:
    """Wait (up to --wait-for-service seconds) until the endpoint accepts TCP connections:
    in a session the client job may start while the service is still loading."""
    if config.wait_for_service <= 0:
        return
    host, port = _endpoint_address(config.endpoint)
    deadline = time.monotonic() + config.wait_for_service
    while True:
        try:
            socket.create_connection(
                (host, port), timeout=min(5.0, config.wait_for_service)
            ).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                reason = error.strerror or type(error).__name__
                raise ServiceUnreachable(
                    f"endpoint {host}:{port}: no connection after waiting "
                    f"{config.wait_for_service:g} s (wait_for_service): {reason}"
                ) from None
        time.sleep(SERVICE_POLL_S)


def linger(config: BenchConfig) -> None:
    """Keep the live metrics up for --linger seconds so that Prometheus scrapes the final
    values; SIGTERM (scancel) or Ctrl-C ends the wait early."""
    done = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda _signum, _frame: done.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if not config.quiet:
            print(f"live metrics stay up for {config.linger:g} s (Ctrl-C ends)", file=sys.stderr)
        done.wait(config.linger)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
