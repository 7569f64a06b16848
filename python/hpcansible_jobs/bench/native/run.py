"""A benchmark with a native tool, start to finish: the same order as bench/runner.py.

Live metrics up, wait for the service, prepare (untimed: pgbench -i, sysbench prepare),
wait for the session's start gate (bench/gate.py), then one run of the tool per sweep point
(bench/sweep.py plans them: concurrency, and for redis-benchmark value_size and pipeline),
each into its own directory with its own summary.json; a sweep's top-level summary.json
holds the points, the knee and the window, as the Python engine's does.

The tool's figures become an Aggregate (bench/metrics.py) so that summary.summarize writes
the same schema: requests (operations: requests, transactions), latency_ms.e2e from the
tool's own distribution (e2e_intended is the same: a closed loop measured by the tool),
throughput over the tool's measured time, window, gate, client health (the tool's CPU).
`engine` says which tool ran (name, version, command line without secrets) and `native`
holds what only the tool gives (per test figures, queries/s) and what it does not (records).
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from hpcansible_jobs.bench import report
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.gate import StartGate
from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.bench.live import LiveMetrics, MetricsServer, RunState
from hpcansible_jobs.bench.metrics import Aggregate, empty_series_row
from hpcansible_jobs.bench.native import tool_module
from hpcansible_jobs.bench.native.base import Execution, LiveSample, ToolFailed, ToolResult
from hpcansible_jobs.bench.native.live import NativeLive
from hpcansible_jobs.bench.native.process import execute, run_quietly
from hpcansible_jobs.bench.runner import (
    EXIT_INTERRUPTED,
    asked_load,
    exit_code_for,
    linger,
    summary_extra,
    wait_for_service,
)
from hpcansible_jobs.bench.summary import DEFINITIONS, summarize
from hpcansible_jobs.bench.sweep import SweepPlan, SweepPoint, plan_sweep, sweep_summary
from hpcansible_jobs.errors import ServiceUnreachable

TOOL_FAILED = "tool_failed"
NATIVE_DEFINITIONS = {
    "engine": "who sent the load: the native tool (name, version, its command line; "
    "secrets are never on it) or python (hpcansible's own engine)",
    "native": "what only the native tool reports: figures per test (redis-benchmark), "
    "queries/s (sysbench); `records` says whether it gives per-request records",
    "native_window": "with a native tool, window.end is when the tool ended and window.start "
    "is window.end minus the tool's own measured time (its start-up is outside); "
    "throughput = operations / that time, as the tool reports it",
    "native_latency": "latency_ms.e2e is the tool's own latency distribution (redis-benchmark "
    "percentiles, wrk percentiles, pgbench's per-transaction log, sysbench's histogram); "
    "e2e_intended equals it (a closed loop, measured by the tool from its own send)",
}


def _missing_tool(tool: ModuleType, api: str) -> ServiceUnreachable:
    return ServiceUnreachable(
        f"{tool.PROGRAM}: not found on PATH (the native engine for --api {api}); install "
        f"{tool.PACKAGE}" + (" or use engine: python" if api in ("redis", "http") else "")
    )


class Step:
    """One sweep point's run: its live samples become the per-second series."""

    def __init__(self, config: BenchConfig, native_live: NativeLive | None) -> None:
        self.config = config
        self.live = native_live
        self.series: dict[int, dict[str, float]] = {}

    def record(self, sample: LiveSample) -> None:
        if self.live is not None:
            self.live.sample(sample)
        row = self.series.setdefault(time.time_ns() // 1_000_000_000, empty_series_row())
        row["completed"] += sample.completed
        row["succeeded"] += max(0.0, sample.completed - sample.errors)
        row["failed"] += sample.errors
        row["sent"] += sample.completed
        if sample.latency_mean_ms is not None:
            row["e2e_sum_ms"] += sample.latency_mean_ms * sample.completed
            row["e2e_max_ms"] = max(row["e2e_max_ms"], sample.latency_mean_ms)


def _health(execution: Execution, threads: int) -> dict[str, Any]:
    wall = execution.wall_s
    percent = 100.0 * execution.cpu_s / wall / max(1, threads) if wall > 0 else 0.0
    reasons = []
    if percent > 90.0:
        reasons.append(f"client CPU {percent:.0f}% of a core per tool thread > 90%")
    return {
        "worker": 0,
        "loop_lag": LatencyHistogram().to_json(),
        "loop_lag_p99_ms": 0.0,
        "dispatch_lag_p99_ms": 0.0,
        "cpu_seconds": round(execution.cpu_s, 3),
        "wall_seconds": round(wall, 3),
        "cpu_percent": round(percent, 1),
        "invalid_reasons": reasons,
    }


def to_aggregate(
    result: ToolResult, execution: Execution, config: BenchConfig, step: Step, threads: int
) -> Aggregate:
    """The tool's figures as an Aggregate (summary.summarize renders it)."""
    agg = Aggregate(api=config.api, mode="closed")
    agg.total = result.operations
    agg.failed = result.failed
    agg.succeeded = result.operations - result.failed
    agg.errors = dict(result.errors)
    agg.error_examples = dict(result.error_examples)
    latency = result.latency
    if latency.count:
        agg.histograms["e2e"] = latency
        intended = LatencyHistogram()
        intended.merge(latency)
        agg.histograms["e2e_intended"] = intended
        agg.latency_sum_ns = latency.sum_ns
    if result.operations:
        end = execution.end_ns
        agg.window_end_ns = end
        agg.window_start_ns = max(execution.start_ns, end - round(result.seconds * 1e9))
    agg.series = result.series if result.series is not None else step.series
    agg.processes.append(_health(execution, threads))
    if execution.interrupted:
        agg.stopped_early.append("signal")
    return agg


def _failed_result(message: str) -> ToolResult:
    return ToolResult(
        operations=0,
        failed=0,
        seconds=0.0,
        latency=LatencyHistogram(),
        errors={TOOL_FAILED: 1},
        error_examples={TOOL_FAILED: message},
    )


def engine_json(tool: ModuleType, version: str | None, command: str | None) -> dict[str, Any]:
    return {"name": tool.TOOL, "version": version, "command": command, "kind": "native"}


class NativeRun:
    """The whole native benchmark of one config (see the module docstring)."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = replace(config, engine="native")
        self.tool = tool_module(config.api)
        program = shutil.which(self.tool.PROGRAM)
        if program is None:
            raise _missing_tool(self.tool, config.api)
        self.program = program
        self.version = self.tool.version(program)
        self.plan: SweepPlan = plan_sweep(self.config)
        self.server: MetricsServer | None = None
        self.native_live: NativeLive | None = None
        self.state: RunState | None = None
        if self.config.metrics_port is not None:
            self.server = MetricsServer(
                self.config.metrics_host, self.config.metrics_port, False, self.config.session_id
            )
            self.server.announce(self.config.quiet)
            live = LiveMetrics(
                self.config.session_id,
                self.config.api,
                self.server.registry,
                self.plan.points[0].label,
            )
            self.native_live = NativeLive(live)
            self.state = self.server.state
        self.gate = StartGate(
            self.config.gate_file,
            self.config.gate_timeout,
            None if self.state is None else self.state.set_gate_open,
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def wait_for_gate(self) -> bool:
        """False when a stop signal arrived while waiting."""

        def cancel(_signum: int, _frame: object) -> None:
            self.gate.cancel()

        previous = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.gate.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return not self.gate.cancelled

    def prepare(self) -> None:
        workdir = self.config.output
        workdir.mkdir(parents=True, exist_ok=True)
        for what, invocation in self.tool.prepare(self.config, self.program, workdir):
            if not self.config.quiet:
                print(f"bench: {what}", file=sys.stderr)
            run_quietly(invocation, what, cwd=workdir)
        for name in getattr(self.tool, "SECRET_FILES", ()):  # written for preparing only
            (workdir / name).unlink(missing_ok=True)

    def run_point(self, point: SweepPoint, out_dir: Path) -> dict[str, Any]:
        config = replace(point.config, output=out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        step = Step(config, self.native_live)
        if self.native_live is not None:
            self.native_live.set_step(config.step, config.concurrency[0])
        if self.state is not None:
            self.state.set_step_running(config.step, True)
        invocation = self.tool.invocation(config, self.program, out_dir)
        parser = self.tool.LiveParser(config)
        if hasattr(parser, "emit"):  # a tool whose figures are polled, not printed (wrk)
            parser.emit = step.record

        def on_line(line: str) -> None:
            sample = parser.feed(line)
            if sample is not None:
                step.record(sample)

        try:
            execution = execute(
                invocation, on_line, cwd=out_dir, on_start=getattr(parser, "started", None)
            )
        finally:
            if self.state is not None:
                self.state.set_step_running(config.step, False)
        stop = getattr(parser, "stop", None)
        if stop is not None:
            stop()
        try:
            result = self.tool.parse(execution, config, out_dir)
        except ToolFailed as error:
            message = str(error)
            if not execution.interrupted:
                print(f"bench: {self.tool.PROGRAM}: {message}", file=sys.stderr)
            result = _failed_result(message)
        if self.native_live is not None:
            self.native_live.finish(result.operations, result.failed)
        agg = to_aggregate(result, execution, config, step, self.tool.client_threads(config))
        extra = summary_extra(config, started)
        extra["point"] = {"label": point.label, "values": point.values}
        extra["engine"] = engine_json(self.tool, self.version, invocation.shown())
        summary = summarize(
            agg, asked_load(config), self.tool.describe(config), extra, self.gate.summary()
        )
        summary["native"] = {
            "tool": self.tool.TOOL,
            "records": self.tool.RECORDS,
            "measured_s": round(result.seconds, 6),
            "wall_s": round(execution.wall_s, 6),
            "exit_status": execution.returncode,
            **result.details,
        }
        summary["warnings"].extend(result.warnings)
        summary["definitions"] = {**DEFINITIONS, **NATIVE_DEFINITIONS}
        report.write_outputs(out_dir, agg, summary)
        return summary

    def run(self) -> int:
        wait_for_service(self.config)
        self.prepare()
        if not self.wait_for_gate():
            return EXIT_INTERRUPTED
        if not self.plan.is_sweep:
            summary = self.run_point(self.plan.points[0], self.config.output)
            if not self.config.quiet:
                report.print_summary(summary)
            return exit_code_for([summary])
        started = time.time()
        done = []
        for point in self.plan.points:
            summary = self.run_point(point, self.config.output / point.label)
            done.append((point, summary))
            if summary["load"]["achieved"]["stopped_early"] == "signal":
                break
        extra = summary_extra(self.config, started)
        extra["engine"] = engine_json(self.tool, self.version, None)
        top = sweep_summary(
            self.plan, done, extra, self.gate.summary(), {}, self.config.slo_attainment
        )
        top["native"] = {"tool": self.tool.TOOL, "records": self.tool.RECORDS}
        report.write_json(self.config.output / report.SUMMARY, top)
        if not self.config.quiet:
            report.print_sweep(top)
        return exit_code_for([summary for _, summary in done])


def run_native_benchmark(config: BenchConfig) -> int:
    """The whole command with the API's native tool; the exit code as bench/runner.py's."""
    native = NativeRun(config)
    try:
        try:
            code = native.run()
        except ToolFailed as error:
            raise ServiceUnreachable(f"{native.tool.PROGRAM}: {error}") from None
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        if native.server is not None and config.linger > 0 and code != EXIT_INTERRUPTED:
            linger(config)
        return code
    finally:
        native.close()
