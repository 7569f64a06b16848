"""Metrics from recorded timestamps, kept in a mergeable form.

`aggregate_run` turns one process's records into an Aggregate: counters, HdrHistograms,
a per-second time series and client-health facts. Aggregates from worker processes or
from several client jobs merge exactly (counts and sums add, histograms add);
summary.summarize renders a merged Aggregate into summary.json.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.bench.recorder import NOT_SET, TOKEN_SOURCES

if TYPE_CHECKING:  # the engine imports aiohttp, which a recipe check or a summary never needs
    from hpcansible_jobs.bench.engine import RunOutcome

LATENCY_METRICS = ("ttft", "tpot", "itl", "e2e", "e2e_intended")
# The client is flagged as the bottleneck above these (see client_health in the summary).
MAX_LOOP_LAG_P99_MS = 10.0
MAX_DISPATCH_LAG_P99_MS = 10.0
MAX_CPU_PERCENT = 90.0

# Per-second series: counters that add up and maxima that take the max when merging.
SERIES_SUMS = (
    "sent",
    "completed",
    "succeeded",
    "failed",
    "output_tokens",
    "e2e_sum_ms",
    "ttft_sum_ms",
    "ttft_count",
    "late_sends",
)
SERIES_MAXIMA = ("e2e_max_ms", "send_lag_max_ms")
# Aggregate's counters: merging adds them.
AGGREGATE_COUNTERS = (
    "total",
    "succeeded",
    "failed",
    "warmup_excluded",
    "input_tokens",
    "output_tokens",
    "output_asked",
    "late_sends",
    "slo_met",
    "latency_sum_ns",
)


@dataclass
class Aggregate:
    """Mergeable results of one or more processes (see module docstring)."""

    api: str = ""
    mode: str = ""
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)  # class -> first message
    warmup_excluded: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    output_asked: int = 0  # output tokens asked for by every measured LLM request
    # succeeded requests by where their token counts came from: "input.server": 12 ...
    token_sources: dict[str, int] = field(default_factory=dict)
    late_sends: int = 0
    slo_met: int = 0
    slo_met_by_key: dict[str, int] = field(default_factory=dict)
    latency_sum_ns: int = 0  # sum of e2e over succeeded requests (mean in-flight)
    window_start_ns: int | None = None  # epoch ns
    window_end_ns: int | None = None
    histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    series: dict[int, dict[str, float]] = field(default_factory=dict)  # epoch second ->
    processes: list[dict[str, Any]] = field(default_factory=list)  # client health each
    stopped_early: list[str] = field(default_factory=list)

    def histogram(self, name: str) -> LatencyHistogram:
        if name not in self.histograms:
            self.histograms[name] = LatencyHistogram()
        return self.histograms[name]

    @property
    def window_s(self) -> float:
        if self.window_start_ns is None or self.window_end_ns is None:
            return 0.0
        return max(0.0, (self.window_end_ns - self.window_start_ns) / 1e9)

    def merge(self, other: Aggregate) -> None:
        self.api = self.api or other.api
        self.mode = self.mode or other.mode
        for name in AGGREGATE_COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for target, source in (
            (self.errors, other.errors),
            (self.slo_met_by_key, other.slo_met_by_key),
            (self.token_sources, other.token_sources),
        ):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count
        if other.window_start_ns is not None:
            self.window_start_ns = min(
                self.window_start_ns or other.window_start_ns, other.window_start_ns
            )
        if other.window_end_ns is not None:
            self.window_end_ns = max(self.window_end_ns or 0, other.window_end_ns)
        for name, histogram in other.histograms.items():
            self.histogram(name).merge(histogram)
        for second, row in other.series.items():
            mine = self.series.setdefault(second, empty_series_row())
            for key in SERIES_SUMS:
                mine[key] += row.get(key, 0)
            for key in SERIES_MAXIMA:
                mine[key] = max(mine[key], row.get(key, 0))
        for key, example in other.error_examples.items():
            self.error_examples.setdefault(key, example)
        self.processes.extend(other.processes)
        self.stopped_early.extend(r for r in other.stopped_early if r not in self.stopped_early)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "hpcansible-bench-aggregate/1",
            "api": self.api,
            "mode": self.mode,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "errors": self.errors,
            "error_examples": self.error_examples,
            "warmup_excluded": self.warmup_excluded,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "output_asked": self.output_asked,
            "token_sources": self.token_sources,
            "late_sends": self.late_sends,
            "slo_met": self.slo_met,
            "slo_met_by_key": self.slo_met_by_key,
            "latency_sum_ns": self.latency_sum_ns,
            "window_start_ns": self.window_start_ns,
            "window_end_ns": self.window_end_ns,
            "histograms": {name: h.to_json() for name, h in self.histograms.items()},
            "series": {str(second): row for second, row in sorted(self.series.items())},
            "processes": self.processes,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aggregate:
        aggregate = cls()
        for name in ("api", "mode", *AGGREGATE_COUNTERS, "window_start_ns", "window_end_ns"):
            # aggregates written before a counter existed lack it: it counted nothing
            setattr(aggregate, name, data.get(name, 0))
        aggregate.token_sources = dict(data.get("token_sources", {}))
        aggregate.errors = dict(data["errors"])
        aggregate.error_examples = dict(data.get("error_examples", {}))
        aggregate.slo_met_by_key = dict(data["slo_met_by_key"])
        aggregate.histograms = {
            name: LatencyHistogram.from_json(h) for name, h in data["histograms"].items()
        }
        aggregate.series = {int(second): dict(row) for second, row in data["series"].items()}
        aggregate.processes = list(data["processes"])
        aggregate.stopped_early = list(data["stopped_early"])
        return aggregate


def empty_series_row() -> dict[str, float]:
    return dict.fromkeys((*SERIES_SUMS, *SERIES_MAXIMA), 0)


def _slo_values_ms(
    ttft_ns: int | None, tpot_ns: float | None, e2e_ns: int, e2e_intended_ns: int
) -> dict[str, float | None]:
    return {
        "ttft_ms": None if ttft_ns is None else ttft_ns / 1e6,
        "tpot_ms": None if tpot_ns is None else tpot_ns / 1e6,
        "e2e_ms": e2e_ns / 1e6,
        "e2e_intended_ms": e2e_intended_ns / 1e6,
    }


def aggregate_run(
    outcome: RunOutcome, api: str, slo: dict[str, float], late_ms: float
) -> tuple[Aggregate, list[bool]]:
    """One process's records as an Aggregate, plus each request's warm-up flag."""
    rec = outcome.recorder
    plan = outcome.plan
    clock = outcome.clock
    open_loop = plan.open_loop
    late_ns = late_ms * 1e6
    agg = Aggregate(api=api, mode="open" if open_loop else "closed")
    # array("q"): 8 bytes a value where a list holds a pointer and an int object (~36 bytes)
    values: dict[str, array] = {
        name: array("q") for name in (*LATENCY_METRICS, "send_lag", "dispatch_lag")
    }
    is_warmup: list[bool] = []
    measured_start: int | None = None
    measured_end: int | None = None
    series = agg.series

    def row(mono_ns: int) -> dict[str, float]:
        second = clock.to_epoch_ns(mono_ns) // 1_000_000_000
        found = series.get(second)
        if found is None:
            found = series[second] = empty_series_row()
        return found

    for i in rec.indices():
        scheduled, sent, done = rec.scheduled[i], rec.sent[i], rec.done[i]
        warm = plan.is_warmup(i, scheduled, outcome.start_ns)
        is_warmup.append(warm)
        error = rec.error[i]
        late = open_loop and (sent - scheduled > late_ns if sent else True)
        if sent:
            row(sent)["sent"] += 1
            if open_loop:
                lag_row = row(scheduled)
                lag_row["send_lag_max_ms"] = max(
                    lag_row["send_lag_max_ms"], (sent - scheduled) / 1e6
                )
        if late:
            row(scheduled)["late_sends"] += 1
        if done:
            done_row = row(done)
            done_row["completed"] += 1
            done_row["failed" if error else "succeeded"] += 1
        if warm:
            agg.warmup_excluded += 1
            continue

        agg.total += 1
        agg.output_asked += rec.output_asked[i]
        measured_start = scheduled if measured_start is None else min(measured_start, scheduled)
        if done:
            measured_end = done if measured_end is None else max(measured_end, done)
        if open_loop:
            agg.late_sends += late
            if sent:
                values["send_lag"].append(sent - scheduled)
                values["dispatch_lag"].append(rec.dispatched[i] - scheduled)
        if error is not None:
            agg.failed += 1
            agg.errors[error] = agg.errors.get(error, 0) + 1
            if error not in agg.error_examples and rec.detail[i]:
                agg.error_examples[error] = str(rec.detail[i].get("error_detail", ""))
            continue

        agg.succeeded += 1
        end = rec.end[i] or done
        e2e = end - sent
        e2e_intended = end - scheduled
        values["e2e"].append(e2e)
        values["e2e_intended"].append(e2e_intended)
        agg.latency_sum_ns += e2e
        done_row = row(done)
        done_row["e2e_sum_ms"] += e2e / 1e6
        done_row["e2e_max_ms"] = max(done_row["e2e_max_ms"], e2e / 1e6)
        ttft = tpot = None
        if rec.first_token[i] != NOT_SET:
            ttft = rec.first_token[i] - sent
            values["ttft"].append(ttft)
            done_row["ttft_sum_ms"] += ttft / 1e6
            done_row["ttft_count"] += 1
        output_tokens = rec.output_tokens[i]
        if output_tokens > 0:
            agg.output_tokens += output_tokens
            done_row["output_tokens"] += output_tokens
        if rec.input_tokens[i] > 0:
            agg.input_tokens += rec.input_tokens[i]
        if rec.output_asked[i]:  # an LLM request: say where its counts came from
            for side, code in (("input", rec.input_source[i]), ("output", rec.output_source[i])):
                key = f"{side}.{TOKEN_SOURCES[code] or 'none'}"
                agg.token_sources[key] = agg.token_sources.get(key, 0) + 1
        if ttft is not None and output_tokens > 1:
            tpot = (e2e - ttft) / (output_tokens - 1)
            values["tpot"].append(round(tpot))
        chunks = rec.chunks[i]
        if chunks and len(chunks) > 1:
            values["itl"].extend(b - a for a, b in pairwise(chunks))
        if slo:
            measured = _slo_values_ms(ttft, tpot, e2e, e2e_intended)
            met_all = True
            for key, limit in slo.items():
                value = measured[key]
                # a request with no value for an SLO (tpot of a 1-token answer) meets it
                met = value is None or value <= limit
                agg.slo_met_by_key[key] = agg.slo_met_by_key.get(key, 0) + met
                met_all = met_all and met
            agg.slo_met += met_all

    for name, items in values.items():
        if items:
            agg.histogram(name).record_many_ns(items)

    # The window opens at the end of a time warm-up (or the start) and closes when the
    # last measured request ends; with a count warm-up it opens at the first measured send.
    if measured_start is not None:
        if plan.warmup_requests == 0:
            measured_start = outcome.start_ns + plan.warmup_ns
        agg.window_start_ns = clock.to_epoch_ns(measured_start)
        agg.window_end_ns = clock.to_epoch_ns(measured_end or measured_start)

    agg.processes.append(_process_health(outcome, values["dispatch_lag"]))
    if outcome.stopped_early:
        agg.stopped_early.append(outcome.stopped_early)
    return agg, is_warmup


def _process_health(outcome: RunOutcome, dispatch_lags_ns: Sequence[int]) -> dict[str, Any]:
    lag = LatencyHistogram()
    lag.record_many_ns([us * 1000 for us in outcome.loop_lag_us])
    dispatch = LatencyHistogram()
    dispatch.record_many_ns(dispatch_lags_ns)
    cpu_percent = 100.0 * outcome.cpu_s / outcome.wall_s if outcome.wall_s > 0 else 0.0
    reasons = []
    lag_p99 = lag.percentile_ms(99.0) or 0.0
    dispatch_p99 = dispatch.percentile_ms(99.0) or 0.0
    if lag_p99 > MAX_LOOP_LAG_P99_MS:
        reasons.append(f"event-loop lag p99 {lag_p99:.1f} ms > {MAX_LOOP_LAG_P99_MS:g} ms")
    if dispatch_p99 > MAX_DISPATCH_LAG_P99_MS:
        reasons.append(f"dispatch lag p99 {dispatch_p99:.1f} ms > {MAX_DISPATCH_LAG_P99_MS:g} ms")
    if cpu_percent > MAX_CPU_PERCENT:
        reasons.append(f"client CPU {cpu_percent:.0f}% of a core > {MAX_CPU_PERCENT:g}%")
    return {
        "worker": outcome.plan.worker,
        "loop_lag": lag.to_json(),
        "loop_lag_p99_ms": lag_p99,
        "dispatch_lag_p99_ms": dispatch_p99,
        "cpu_seconds": round(outcome.cpu_s, 3),
        "wall_seconds": round(outcome.wall_s, 3),
        "cpu_percent": round(cpu_percent, 1),
        "invalid_reasons": reasons,
    }
