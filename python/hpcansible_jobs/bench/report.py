"""Outputs: summary.json, aggregate.json, timeseries.csv, hdr/*.hgrm; the table and the
progress bar (both off with --quiet)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpcansible_jobs.bench.engine import Snapshot
from hpcansible_jobs.bench.metrics import LATENCY_METRICS, Aggregate
from hpcansible_jobs.bench.summary import series_rows
from hpcansible_jobs.errors import UserError

SUMMARY = "summary.json"
AGGREGATE = "aggregate.json"  # mergeable form (HdrHistograms, counters, series)
TIMESERIES = "timeseries.csv"
HDR_DIR = "hdr"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_outputs(out_dir: Path, agg: Aggregate, summary: dict[str, Any]) -> None:
    """Everything but per-request records (those are written by each process)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / SUMMARY, summary)
    write_json(out_dir / AGGREGATE, agg.to_json())
    rows = series_rows(agg)
    with (out_dir / TIMESERIES).open("w", encoding="utf-8", newline="") as out:
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    hdr_dir = out_dir / HDR_DIR
    hdr_dir.mkdir(exist_ok=True)
    for name in (*LATENCY_METRICS, "send_lag"):
        histogram = agg.histograms.get(name)
        if histogram is not None and histogram.count:
            (hdr_dir / f"{name}.hgrm").write_text(histogram.percentile_distribution())


def read_aggregate(directory: Path) -> Aggregate:
    path = directory / AGGREGATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing (is {directory} a bench output directory?)") from None
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable ({error})") from None
    if data.get("format") != "hpcansible-bench-aggregate/1":
        raise UserError(f"{path}: not a bench aggregate (format {data.get('format')!r})")
    return Aggregate.from_json(data)


class ProgressDisplay:
    """A progress bar on stderr, redrawn from the engine's monitor ticks (no extra thread)."""

    def __init__(self, label: str, total_requests: int | None, duration_s: float | None,
                 quiet: bool) -> None:  # fmt: skip
        self.total_requests = total_requests
        self.duration_s = duration_s
        self.progress: Progress | None = None
        if quiet:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            auto_refresh=False,
            transient=False,
        )
        total = float(total_requests) if total_requests else (duration_s or None)
        self.task = self.progress.add_task(label, total=total, status="starting")

    def __enter__(self) -> ProgressDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.refresh()
            self.progress.stop()

    def update(self, snapshot: Snapshot) -> None:
        if self.progress is None:
            return
        done = snapshot.completed
        if self.total_requests:
            completed = float(done)
        else:
            completed = min(snapshot.elapsed_s, self.duration_s or snapshot.elapsed_s)
        status = f"{done} done, {snapshot.failed} failed, {snapshot.in_flight} in flight"
        self.progress.update(self.task, completed=completed, status=status)
        self.progress.refresh()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.1f}"
    return str(value)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{summary.get('api', '')} benchmark ({summary['load']['mode']} loop)")
    table.add_column("latency (ms)")
    for column in ("count", "mean", "p50", "p90", "p99", "p999", "max"):
        table.add_column(column, justify="right")
    for name, stats in summary["latency_ms"].items():
        if stats["count"]:
            table.add_row(name, *(_fmt(stats[c]) for c in ("count", "mean", "p50", "p90",
                                                          "p99", "p999", "max")))  # fmt: skip
    console.print(table)
    requests = summary["requests"]
    throughput = summary["throughput"]
    lines = [
        f"requests: {requests['succeeded']} succeeded, {requests['failed']} failed"
        + (f" {requests['errors']}" if requests["errors"] else ""),
        f"throughput: {throughput['requests_per_s']:,.2f} req/s, "
        f"{throughput['output_tokens_per_s']:,.1f} output tok/s over {summary['window_s']:.2f} s",
    ]
    achieved = summary["load"]["achieved"]
    if summary["load"]["mode"] == "open":
        lag = achieved["send_lag_ms"]
        lines.append(
            f"send lag: p50 {_fmt(lag['p50'])} ms, p99 {_fmt(lag['p99'])} ms; "
            f"late sends: {achieved['late_sends']}"
        )
    if "goodput" in summary:
        goodput = summary["goodput"]
        lines.append(
            f"goodput: {goodput['requests_per_s']:,.2f} req/s, attainment "
            f"{_fmt(goodput['attainment'])} for {goodput['slo']}"
        )
    tokens = summary["tokens"]
    if tokens["output_asked_total"]:
        lines.append(
            f"tokens: {tokens['input_total']} in ({tokens['input_source'] or 'none'}), "
            f"{tokens['output_total']} out of {tokens['output_asked_total']} asked "
            f"({tokens['output_source'] or 'none'})"
        )
    if summary.get("window"):
        lines.append(f"window: {summary['window']['start']} to {summary['window']['end']}")
    if achieved["stopped_early"]:
        lines.append(f"[yellow]stopped early: {achieved['stopped_early']}")
    # client_health's reasons are among the warnings (code client_invalid)
    lines.extend(_warning_lines(summary))
    for line in lines:
        console.print(line)


def _warning_lines(summary: dict[str, Any]) -> list[str]:
    return [f"[yellow]warning ({w['code']}): {w['message']}" for w in summary["warnings"]]


# Short column titles, so that a sweep's table fits 80 columns.
AXIS_HEADERS = {"concurrency": "streams", "input_tokens": "in tok", "output_tokens": "out tok"}


def print_sweep(top: dict[str, Any], console: Console | None = None) -> None:
    """The sweep's table (one row per point), its knee and its highest load meeting the SLO."""
    console = console or Console()
    sweep = top["sweep"]
    axes = list(sweep["axes"])
    table = Table(title=f"sweep ({sweep['mode']}) over {', '.join(axes)}")
    for column in (*(AXIS_HEADERS.get(axis, axis) for axis in axes), "req/s", "tok/s",
                   "ttft p99", "e2e p99", "failed", "slo"):  # fmt: skip
        table.add_column(column, justify="right")
    for point in top["points"]:
        step = point["summary"]
        latency = step["latency_ms"]
        goodput = step.get("goodput")
        table.add_row(
            *(_fmt(point["values"][axis]) for axis in axes),
            _fmt(step["throughput"]["requests_per_s"]),
            _fmt(step["throughput"]["output_tokens_per_s"]),
            _fmt(latency["ttft"]["p99"]),
            _fmt(latency["e2e"]["p99"]),
            _fmt(step["requests"]["failed"]),
            "-" if goodput is None else ("met" if goodput["met"] else "missed"),
        )
    console.print(table)
    knee = top["knee"]
    console.print(
        f"knee: {sweep['load_axis']} {knee['load']:g} ({knee['reason']})"
        if knee
        else "knee: not reached"
    )
    best = top["max_load_meeting_slo"]
    if sweep["slo"]:
        console.print(
            f"highest load meeting the SLO: {sweep['load_axis']} {best['load']:g} "
            f"(attainment {best['attainment']:.3f})"
            if best
            else f"highest load meeting the SLO: none (attainment < {sweep['slo_attainment']:g})"
        )
    for line in _warning_lines(top):
        console.print(line)
