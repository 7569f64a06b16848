"""Metrics from recorded timestamps, kept in a mergeable form.

`aggregate_run` turns one process's records into an Aggregate: counters, HdrHistograms,
a per-second time series and client-health facts. Aggregates from worker processes or
from several client jobs merge exactly (counts and sums add, histograms add), and
`summarize` renders the merged result into summary.json's schema.

Latencies are recorded into HdrHistograms in microseconds with 4 significant digits
(values up to 32 ms are exact to 1 us; above, within 0.05 %). Means and maxima are
kept exactly beside the histograms.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from typing import Any

from hdrh.histogram import HdrHistogram

from hpcansible.bench.engine import RunOutcome
from hpcansible.bench.recorder import NOT_SET

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000  # one hour
HDR_DIGITS = 4
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2e", "e2e_intended")
# The client is flagged as the bottleneck above these (see client_health in the summary).
MAX_LOOP_LAG_P99_MS = 10.0
MAX_DISPATCH_LAG_P99_MS = 10.0
MAX_CPU_PERCENT = 90.0

DEFINITIONS = {
    "actual_send": "when the request left the client: for ollama/openai the moment its "
    "headers were written to the socket; for http/redis when it was handed to the client "
    "library (aiohttp / redis-py), which adds their ~50 us of request building",
    "scheduled_send": "open loop: start + the precomputed arrival offset; closed loop: the "
    "moment the stream's previous request ended",
    "ttft": "time to first token: first non-empty content chunk - actual send",
    "e2e": "end-to-end latency: last content chunk (whole response for http/redis) - actual send",
    "e2e_intended": "last content chunk - scheduled send: includes any wait for the client, "
    "a connection or an in-flight slot (coordinated omission); in a closed loop it differs "
    "from e2e only by the client's request building",
    "tpot": "time per output token, per request: (e2e - ttft) / (output_tokens - 1), for "
    "requests with more than one output token",
    "itl": "inter-token latency: every gap between consecutive content chunks, pooled",
    "output_tokens": "server-reported (Ollama eval_count, OpenAI usage.completion_tokens); "
    "content chunks are counted only when the server reports none (tokens_counted=chunks)",
    "requests_per_s": "succeeded measured requests / window_s",
    "output_tokens_per_s": "sum of output tokens of succeeded measured requests / window_s",
    "window_s": "from the end of warm-up (or the start) to the last measured request's end",
    "warmup": "requests whose index is below warmup_requests or whose scheduled send is "
    "before start + warmup are excluded from every figure except the time series",
    "percentiles": "p50/p90/p95/p99/p999 from HdrHistograms (us, 4 significant digits); "
    "mean and max are exact; latency figures cover succeeded requests",
    "send_lag": "actual send - scheduled send (open loop); late sends exceed late_ms",
    "goodput": "measured requests meeting every SLO / window_s; attainment = that count / "
    "measured requests (failures never meet an SLO)",
    "client_health": "event-loop lag = how late a 10 ms timer fires; the run is invalid "
    f"when its p99 exceeds {MAX_LOOP_LAG_P99_MS:g} ms, open-loop dispatch lag (task start - "
    f"scheduled send) p99 exceeds {MAX_DISPATCH_LAG_P99_MS:g} ms, or a client process used "
    f"more than {MAX_CPU_PERCENT:g}% of a core",
    "errors": "connect, timeout, http_<status>, broken_stream (stream cut or malformed), "
    "server_error (error object in the stream), cancelled (still running at the end), "
    "auth, redis_error, other; error_examples holds the first message of each class",
}


class LatencyHistogram:
    """An HdrHistogram in microseconds plus exact count, sum, min and max in nanoseconds."""

    def __init__(self) -> None:
        self.hdr = HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_DIGITS)
        self.count = 0
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns = 0

    def record_many_ns(self, values_ns: list[int]) -> None:
        """Record nanosecond values (negatives clamp to 0), grouping equal microseconds."""
        if not values_ns:
            return
        values = [v if v > 0 else 0 for v in values_ns]
        self.count += len(values)
        self.sum_ns += sum(values)
        low, high = min(values), max(values)
        self.min_ns = low if self.min_ns is None else min(self.min_ns, low)
        self.max_ns = max(self.max_ns, high)
        for micros, repeat in Counter((v + 500) // 1000 for v in values).items():
            self.hdr.record_value(min(micros, HDR_HIGHEST_US), repeat)

    def merge(self, other: LatencyHistogram) -> None:
        if other.count == 0:
            return
        self.hdr.add(other.hdr)
        self.count += other.count
        self.sum_ns += other.sum_ns
        assert other.min_ns is not None
        self.min_ns = other.min_ns if self.min_ns is None else min(self.min_ns, other.min_ns)
        self.max_ns = max(self.max_ns, other.max_ns)

    def _cumulative_counts(self) -> list[int]:
        # hdrh walks its counts array in Python per percentile (slow with 4 digits);
        # accumulate + bisect do the same walk at C speed.
        counts = self.hdr.counts
        last = min(len(counts), self.hdr.get_counts_array_index(self.hdr.get_max_value()) + 1)
        return list(accumulate(counts[:last]))

    def _micros_at(self, cumulative: list[int], percentile: float) -> int:
        target = self.hdr.get_target_count_at_percentile(percentile)
        index = min(bisect_left(cumulative, target), len(cumulative) - 1)
        return self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))

    def percentile_ms(self, percentile: float) -> float | None:
        if self.count == 0:
            return None
        micros = self._micros_at(self._cumulative_counts(), percentile)
        # HdrHistogram reports a bucket's upper edge; never report more than the true max
        return round(min(micros * 1000, self.max_ns) / 1e6, 3)

    def stats_ms(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"count": self.count}
        stats["mean"] = round(self.sum_ns / self.count / 1e6, 3) if self.count else None
        cumulative = self._cumulative_counts() if self.count else []
        for name, percentile in PERCENTILES.items():
            micros = self._micros_at(cumulative, percentile) if self.count else None
            stats[name] = (
                None if micros is None else round(min(micros * 1000, self.max_ns) / 1e6, 3)
            )
        stats["max"] = round(self.max_ns / 1e6, 3) if self.count else None
        return stats

    def percentile_distribution(self, ticks_per_half_distance: int = 5) -> str:
        """HdrHistogram's .hgrm text (values in ms), as HistogramLogAnalyzer reads it:
        percentile steps halve towards 100 % (ticks_per_half_distance per halving)."""
        lines = [
            f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}",
            "",
        ]
        if not self.count:
            return "\n".join(lines) + "\n"
        cumulative = self._cumulative_counts()
        total = cumulative[-1]
        level = 0.0
        while True:
            target = self.hdr.get_target_count_at_percentile(level)
            index = min(bisect_left(cumulative, target), len(cumulative) - 1)
            micros = self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))
            reached = cumulative[index]
            fraction = reached / total if level >= 100.0 or reached >= total else level / 100
            value = f"{min(micros * 1000, self.max_ns) / 1e6:12.3f}"
            if reached >= total:
                lines.append(f"{value} {1.0:2.12f} {reached:10d}")
                break
            lines.append(f"{value} {fraction:2.12f} {reached:10d} {1 / (1 - fraction):14.2f}")
            halvings = int(math.log2(100.0 / (100.0 - level))) + 1
            level += 100.0 / (ticks_per_half_distance * 2**halvings)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum_ns": self.sum_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "hdr": self.hdr.encode().decode("ascii") if self.count else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        histogram = cls()
        if data.get("count"):
            histogram.hdr = HdrHistogram.decode(data["hdr"].encode("ascii"))
            histogram.count = int(data["count"])
            histogram.sum_ns = int(data["sum_ns"])
            histogram.min_ns = data["min_ns"]
            histogram.max_ns = int(data["max_ns"])
        return histogram


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
        for name in (
            "total",
            "succeeded",
            "failed",
            "warmup_excluded",
            "input_tokens",
            "output_tokens",
            "late_sends",
            "slo_met",
            "latency_sum_ns",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for target, source in (
            (self.errors, other.errors),
            (self.slo_met_by_key, other.slo_met_by_key),
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
            mine = self.series.setdefault(second, _empty_series_row())
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
        for name in (
            "api",
            "mode",
            "total",
            "succeeded",
            "failed",
            "warmup_excluded",
            "input_tokens",
            "output_tokens",
            "late_sends",
            "slo_met",
            "latency_sum_ns",
            "window_start_ns",
            "window_end_ns",
        ):
            setattr(aggregate, name, data[name])
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


def _empty_series_row() -> dict[str, float]:
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
    values: dict[str, list[int]] = {
        name: [] for name in (*LATENCY_METRICS, "send_lag", "dispatch_lag")
    }
    is_warmup: list[bool] = []
    measured_start: int | None = None
    measured_end: int | None = None
    series = agg.series

    def row(mono_ns: int) -> dict[str, float]:
        second = clock.to_epoch_ns(mono_ns) // 1_000_000_000
        found = series.get(second)
        if found is None:
            found = series[second] = _empty_series_row()
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
        if ttft is not None and output_tokens > 1:
            tpot = (e2e - ttft) / (output_tokens - 1)
            values["tpot"].append(round(tpot))
        chunks = rec.chunks[i]
        if chunks and len(chunks) > 1:
            values["itl"].extend([b - a for a, b in pairwise(chunks)])
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


def _process_health(outcome: RunOutcome, dispatch_lags_ns: list[int]) -> dict[str, Any]:
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


def _rate(count: float, window_s: float) -> float:
    return round(count / window_s, 3) if window_s > 0 else 0.0


def summarize(
    agg: Aggregate, asked: dict[str, Any], target: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    """summary.json: the issue-4 schema (requests, latency_ms, throughput, tokens,
    window_s, load, client_health, definitions, and goodput with SLOs)."""
    window = agg.window_s
    latency = {name: agg.histogram(name).stats_ms() for name in LATENCY_METRICS}
    send_lag = agg.histogram("send_lag").stats_ms()
    loop_lag = LatencyHistogram()
    for process in agg.processes:
        loop_lag.merge(LatencyHistogram.from_json(process["loop_lag"]))
    reasons = [
        f"worker {p['worker']}: {reason}" if len(agg.processes) > 1 else reason
        for p in agg.processes
        for reason in p["invalid_reasons"]
    ]
    summary: dict[str, Any] = {
        **extra,
        "api": agg.api,
        "target": target,
        "requests": {
            "total": agg.total,
            "succeeded": agg.succeeded,
            "failed": agg.failed,
            "errors": dict(sorted(agg.errors.items())),
            "error_examples": dict(sorted(agg.error_examples.items())),
            "success_rate": round(agg.succeeded / agg.total, 6) if agg.total else None,
            "warmup_excluded": agg.warmup_excluded,
        },
        "latency_ms": latency,
        "throughput": {
            "requests_per_s": _rate(agg.succeeded, window),
            "output_tokens_per_s": _rate(agg.output_tokens, window),
        },
        "tokens": {"input_total": agg.input_tokens, "output_total": agg.output_tokens},
        "window_s": round(window, 6),
        "load": {
            "mode": agg.mode,
            "asked": asked,
            "achieved": {
                "sent_per_s": _rate(agg.total, window),
                "requests_per_s": _rate(agg.succeeded, window),
                "mean_in_flight": round(agg.latency_sum_ns / 1e9 / window, 3) if window else 0.0,
                "late_sends": agg.late_sends,
                "late_threshold_ms": asked.get("late_ms"),
                "send_lag_ms": {k: send_lag[k] for k in ("mean", "p50", "p99", "max")},
                "stopped_early": ", ".join(agg.stopped_early) or None,
            },
        },
        "client_health": {
            "event_loop_lag_ms": {
                "p50": loop_lag.percentile_ms(50.0),
                "p99": loop_lag.percentile_ms(99.0),
                "max": round(loop_lag.max_ns / 1e6, 3) if loop_lag.count else None,
            },
            "cpu": {
                "processes": len(agg.processes),
                "max_percent_of_core": max((p["cpu_percent"] for p in agg.processes), default=0.0),
                "total_seconds": round(sum(p["cpu_seconds"] for p in agg.processes), 3),
            },
            "dispatch_lag_p99_ms": max(
                (p["dispatch_lag_p99_ms"] for p in agg.processes), default=0.0
            ),
            "valid": not reasons,
            "invalid_reasons": reasons,
        },
        "definitions": DEFINITIONS,
    }
    slo = asked.get("slo") or {}
    if slo:
        summary["goodput"] = {
            "slo": slo,
            "requests_per_s": _rate(agg.slo_met, window),
            "attainment": round(agg.slo_met / agg.total, 6) if agg.total else None,
            "attainment_by_slo": {
                key: round(agg.slo_met_by_key.get(key, 0) / agg.total, 6) if agg.total else None
                for key in slo
            },
        }
    return summary


def series_rows(agg: Aggregate) -> list[dict[str, Any]]:
    """The per-second time series as CSV rows (every second from first to last event)."""
    if not agg.series:
        return []
    first, last = min(agg.series), max(agg.series)
    origin = first
    window_start = None if agg.window_start_ns is None else agg.window_start_ns // 1_000_000_000
    window_end = None if agg.window_end_ns is None else agg.window_end_ns // 1_000_000_000
    rows = []
    for second in range(first, last + 1):
        row = agg.series.get(second) or _empty_series_row()
        succeeded = row["succeeded"]
        in_window = (
            window_start is not None
            and window_end is not None
            and window_start <= second <= window_end
        )
        rows.append(
            {
                "epoch_s": second,
                "elapsed_s": second - origin,
                "in_window": int(in_window),
                "sent": int(row["sent"]),
                "completed": int(row["completed"]),
                "succeeded": int(succeeded),
                "failed": int(row["failed"]),
                "output_tokens": int(row["output_tokens"]),
                "e2e_mean_ms": round(row["e2e_sum_ms"] / succeeded, 3) if succeeded else "",
                "e2e_max_ms": round(row["e2e_max_ms"], 3) if succeeded else "",
                "ttft_mean_ms": (
                    round(row["ttft_sum_ms"] / row["ttft_count"], 3) if row["ttft_count"] else ""
                ),
                "late_sends": int(row["late_sends"]),
                "send_lag_max_ms": round(row["send_lag_max_ms"], 3),
            }
        )
    return rows
