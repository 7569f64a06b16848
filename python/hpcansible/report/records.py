"""The client's per-interval series on the wall-clock axis.

From the per-request records (requests.jsonl or requests.csv) when they exist: they give
p50 and p99 per interval. Record times are milliseconds from the process's run start; the
epoch of that start follows from the aggregate, whose window ends when the last measured
request was done (metrics.aggregate_run). Without records, timeseries.csv gives
per-second counts and means.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcansible.report.results import Point, aggregate_window, epoch_s

NICE_INTERVALS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
TARGET_INTERVALS = 40  # at most about this many points per time plot
MIN_PER_INTERVAL = 2  # requests per interval on average, for a p50 and p99 worth drawing


@dataclass
class Request:
    done_s: float  # epoch seconds
    error: str | None
    ttft_ms: float | None
    e2e_ms: float | None


@dataclass
class ClientSeries:
    """Per-interval values; times are the intervals' middles in epoch seconds."""

    interval_s: float
    source: str  # where the numbers come from, said in the report
    times: list[float] = field(default_factory=list)
    succeeded_per_s: list[float] = field(default_factory=list)
    errors_per_s: dict[str, list[float]] = field(default_factory=dict)  # by class
    latency_ms: dict[str, list[float | None]] = field(default_factory=dict)  # "ttft p50"...

    @property
    def empty(self) -> bool:
        return not self.times


def interval_for(span_s: float, requests: int = 0) -> float:
    """The shortest nice interval with at most TARGET_INTERVALS of them over the span and,
    on average, MIN_PER_INTERVAL requests in each."""
    shortest = max(span_s / TARGET_INTERVALS, MIN_PER_INTERVAL * span_s / max(requests, 1))
    for interval in NICE_INTERVALS_S:
        if interval >= shortest:
            return float(interval)
    return float(NICE_INTERVALS_S[-1])


def read_records(directory: Path) -> list[dict[str, Any]] | None:
    jsonl, table = directory / "requests.jsonl", directory / "requests.csv"
    try:
        if jsonl.is_file():
            with jsonl.open(encoding="utf-8") as lines:
                return [json.loads(line) for line in lines if line.strip()]
        if table.is_file():
            with table.open(encoding="utf-8", newline="") as rows:
                return [_typed(row) for row in csv.DictReader(rows)]
    except (OSError, ValueError):
        return None
    return None


def _typed(row: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, text in row.items():
        if text in ("", None):
            typed[key] = None
        elif text in ("True", "False"):
            typed[key] = text == "True"
        else:
            try:
                typed[key] = float(text)
            except ValueError:
                typed[key] = text
    return typed


def _origin_epoch_s(records: list[dict[str, Any]], window_end: float | None) -> float | None:
    """Epoch of the records' zero: the window ends at the last measured request's done."""
    done = [r["done_ms"] for r in records if not r.get("warmup") and r.get("done_ms") is not None]
    if window_end is None or not done:
        return None
    return window_end - max(done) / 1e3


def place_requests(point: Point) -> list[Request] | None:
    """The point's requests on the epoch axis, each worker anchored by its own aggregate."""
    records = read_records(point.directory)
    if records is None:
        return None
    by_worker: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_worker[int(record.get("worker") or 0)].append(record)
    overall = aggregate_window(point.directory) or point.window
    started = epoch_s(point.summary.get("started_at"))
    placed = []
    for worker, mine in by_worker.items():
        own = aggregate_window(point.directory / "workers" / f"w{worker}") or overall
        origin = _origin_epoch_s(mine, own[1] if own else None) or started
        if origin is None:
            return None
        for record in mine:
            if record.get("done_ms") is None:
                continue
            sent = record.get("sent_ms")
            end = record.get("end_ms") or record.get("done_ms")
            first = record.get("first_token_ms")
            placed.append(
                Request(
                    done_s=origin + record["done_ms"] / 1e3,
                    error=record.get("error"),
                    ttft_ms=None if first is None or sent is None else first - sent,
                    e2e_ms=None if sent is None else end - sent,
                )
            )
    return placed


def _percentile(values: list[float], percentile: float) -> float:
    """Nearest rank, as HdrHistogram reports (a value that was seen)."""
    ordered = sorted(values)
    rank = math.ceil(len(ordered) * percentile / 100) - 1
    return ordered[max(0, min(len(ordered) - 1, rank))]


def series_from_requests(
    requests: list[Request], anchor: float | None = None, interval_s: float | None = None
) -> ClientSeries:
    """Intervals aligned on `anchor` (the measured window's start), so that none straddles
    it; each value is drawn at its interval's middle."""
    if not requests:
        return ClientSeries(interval_s or 1.0, "requests.jsonl (no completed request)")
    first = min(r.done_s for r in requests)
    last = max(r.done_s for r in requests)
    interval = interval_s or interval_for(last - first, len(requests))
    start = first - (first - (first if anchor is None else anchor)) % interval
    count = int((last - start) // interval) + 1
    bins: list[list[Request]] = [[] for _ in range(count)]
    for request in requests:
        bins[int((request.done_s - start) // interval)].append(request)
    classes = sorted({r.error for r in requests if r.error})
    series = ClientSeries(
        interval,
        f"per-request records, {interval:g} s intervals by completion time",
        times=[start + (n + 0.5) * interval for n in range(count)],
        errors_per_s={name: [] for name in classes},
    )
    for metric in ("ttft", "e2e"):
        for stat in ("p50", "p99"):
            series.latency_ms[f"{metric} {stat}"] = []
    for members in bins:
        ok = [r for r in members if r.error is None]
        series.succeeded_per_s.append(len(ok) / interval)
        for name in classes:
            series.errors_per_s[name].append(sum(r.error == name for r in members) / interval)
        for metric in ("ttft", "e2e"):
            values = [v for v in (getattr(r, f"{metric}_ms") for r in ok) if v is not None]
            for stat, percentile in (("p50", 50.0), ("p99", 99.0)):
                series.latency_ms[f"{metric} {stat}"].append(
                    _percentile(values, percentile) if values else None
                )
    if not any(v is not None for v in series.latency_ms["ttft p50"]):
        del series.latency_ms["ttft p50"], series.latency_ms["ttft p99"]
    return series


def series_from_timeseries(directory: Path) -> ClientSeries | None:
    """timeseries.csv: per-second counts and means (no percentiles without records)."""
    path = directory / "timeseries.csv"
    try:
        with path.open(encoding="utf-8", newline="") as rows:
            table = [_typed(row) for row in csv.DictReader(rows)]
    except OSError:
        return None
    if not table:
        return None
    series = ClientSeries(1.0, "timeseries.csv, per second (means: no per-request records)")
    series.errors_per_s["failed"] = []
    for name in ("ttft mean", "e2e mean", "e2e max"):
        series.latency_ms[name] = []
    for row in table:
        series.times.append(float(row["epoch_s"]) + 0.5)
        series.succeeded_per_s.append(float(row.get("succeeded") or 0))
        series.errors_per_s["failed"].append(float(row.get("failed") or 0))
        for name, column in (
            ("ttft mean", "ttft_mean_ms"),
            ("e2e mean", "e2e_mean_ms"),
            ("e2e max", "e2e_max_ms"),
        ):
            series.latency_ms[name].append(row.get(column))
    if not any(v is not None for v in series.latency_ms["ttft mean"]):
        del series.latency_ms["ttft mean"]
    if not any(series.errors_per_s["failed"]):
        series.errors_per_s.clear()
    return series


def client_series(points: list[Point]) -> ClientSeries | None:
    """Every point's requests on one axis (a sweep's points follow each other), in
    intervals aligned on the first measured window's start."""
    placed: list[Request] = []
    for point in points:
        requests = place_requests(point)
        if requests is None:
            placed = []
            break
        placed.extend(requests)
    if placed:
        window = points[0].window
        return series_from_requests(placed, window[0] if window else None)
    if len(points) == 1:
        return series_from_timeseries(points[0].directory)
    merged = [s for s in (series_from_timeseries(p.directory) for p in points) if s]
    return _concatenate(merged) if merged else None


def _concatenate(parts: list[ClientSeries]) -> ClientSeries:
    whole = ClientSeries(parts[0].interval_s, parts[0].source)
    names = {name for part in parts for name in part.latency_ms}
    classes = {name for part in parts for name in part.errors_per_s}
    whole.latency_ms = {name: [] for name in sorted(names)}
    whole.errors_per_s = {name: [] for name in sorted(classes)}
    for part in parts:
        size = len(part.times)
        whole.times += part.times
        whole.succeeded_per_s += part.succeeded_per_s
        for name in names:
            whole.latency_ms[name] += part.latency_ms.get(name, [None] * size)
        for name in classes:
            whole.errors_per_s[name] += part.errors_per_s.get(name, [0.0] * size)
    return whole
