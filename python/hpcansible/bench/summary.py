"""summary.json: the issue-4 schema rendered from a (merged) Aggregate, the metric
definitions written into it, and the per-second time series rows."""

from __future__ import annotations

from typing import Any

from hpcansible.bench.histogram import LatencyHistogram
from hpcansible.bench.metrics import (
    LATENCY_METRICS,
    MAX_CPU_PERCENT,
    MAX_DISPATCH_LAG_P99_MS,
    MAX_LOOP_LAG_P99_MS,
    Aggregate,
    empty_series_row,
)

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
        row = agg.series.get(second) or empty_series_row()
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
