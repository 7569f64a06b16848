"""summary.json: the issue-4 schema rendered from a (merged) Aggregate, the metric
definitions written into it, the run's warnings, and the per-second time series rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hpcansible_jobs.bench.config import OPTIONS_BY_NAME
from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.bench.metrics import (
    LATENCY_METRICS,
    MAX_CPU_PERCENT,
    MAX_DISPATCH_LAG_P99_MS,
    MAX_LOOP_LAG_P99_MS,
    Aggregate,
    empty_series_row,
)
from hpcansible_jobs.bench.recorder import EMPTY_RESPONSE

# A run is flagged (summary.json `warnings`) above this share of empty answers, and when
# the output tokens received fall below this share of those asked for.
MAX_EMPTY_SHARE = 0.01
MIN_OUTPUT_RECEIVED_SHARE = 0.9

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
    "content chunks are counted only when the server reports none (tokens_counted=chunks, "
    "output_tokens_source=chunks); totals cover succeeded measured requests",
    "input_tokens": "server-reported (Ollama prompt_eval_count, OpenAI usage.prompt_tokens); "
    "for a server that streams no usage (llama-cpp-python) the server's tokenizer "
    "(/extras/tokenize/count) is asked for each prompt before the run, plus the chat "
    "template's tokens measured once (input_tokens_source=tokenize)",
    "output_asked_total": "output tokens asked for (max_tokens / num_predict) by every "
    "measured request, failed ones included; output_received_share = output_total / "
    f"output_asked_total, flagged below {MIN_OUTPUT_RECEIVED_SHARE:g}",
    "empty_response": "an LLM answer that completed without one non-empty content token; "
    "it is a failure (error class empty_response, no latency, never meets an SLO); the "
    f"run is flagged when more than {MAX_EMPTY_SHARE:.0%} of measured requests are empty",
    "window": "the measured window in UTC (ISO 8601, milliseconds): start = end of warm-up "
    "(or the first measured request's scheduled send), end = the last measured request's end",
    "gate": "null when not gated; else when the session released the start gate "
    "(released_at, by), how long the client waited for it and whether it gave up "
    "(timed_out: the load started without it)",
    "warnings": "what makes the figures doubtful, each {code, message}: empty_responses, "
    "output_tokens_short, input_tokens_missing, gate_timed_out, client_invalid",
    "requests_per_s": "succeeded measured requests / window_s",
    "output_tokens_per_s": "sum of output tokens of succeeded measured requests / window_s",
    "window_s": "from the end of warm-up (or the start) to the last measured request's end",
    "warmup": "requests whose index is below warmup_requests or whose scheduled send is "
    "before start + warmup are excluded from every figure except the time series",
    "percentiles": "p50/p90/p95/p99/p999 from HdrHistograms (us, 4 significant digits); "
    "mean and max are exact; latency figures cover succeeded requests",
    "send_lag": "actual send - scheduled send (open loop); late sends exceed late_ms",
    "goodput": "measured requests meeting every SLO / window_s; attainment = that count / "
    "measured requests (failures never meet an SLO); met = attainment >= slo_attainment",
    "client_health": "event-loop lag = how late a 10 ms timer fires; the run is invalid "
    f"when its p99 exceeds {MAX_LOOP_LAG_P99_MS:g} ms, open-loop dispatch lag (task start - "
    f"scheduled send) p99 exceeds {MAX_DISPATCH_LAG_P99_MS:g} ms, or a client process used "
    f"more than {MAX_CPU_PERCENT:g}% of a core",
    "errors": "connect, timeout, http_<status>, broken_stream (stream cut or malformed), "
    "server_error (error object in the stream), empty_response (an answer without content), "
    "cancelled (still running at the end), auth, redis_error, other; error_examples holds "
    "the first message of each class",
}


def iso_utc(epoch_ns: int) -> str:
    """2026-01-01T12:00:00.123Z"""
    moment = datetime.fromtimestamp(epoch_ns / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def window_json(start_ns: int | None, end_ns: int | None) -> dict[str, str] | None:
    """summary.json's `window`, or None when nothing was measured."""
    if start_ns is None or end_ns is None:
        return None
    return {"start": iso_utc(start_ns), "end": iso_utc(end_ns)}


def _source_name(counts: dict[str, int]) -> str | None:
    """The one source of every count, `mixed`, or None when there were no LLM requests."""
    present = [name for name, count in counts.items() if count]
    if not present:
        return None
    return present[0] if len(present) == 1 else "mixed"


def tokens_json(agg: Aggregate) -> dict[str, Any]:
    sources: dict[str, dict[str, int]] = {"input": {}, "output": {}}
    for key, count in sorted(agg.token_sources.items()):
        side, _, name = key.partition(".")
        sources.setdefault(side, {})[name] = count
    asked = agg.output_asked
    return {
        "input_total": agg.input_tokens,
        "output_total": agg.output_tokens,
        "output_asked_total": asked,
        "output_received_share": round(agg.output_tokens / asked, 4) if asked else None,
        "input_source": _source_name(sources["input"]),
        "output_source": _source_name(sources["output"]),
        "sources": sources,
    }


def warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def run_warnings(
    agg: Aggregate, tokens: dict[str, Any], invalid_reasons: list[str], gate: dict | None
) -> list[dict[str, str]]:
    """Everything that makes this run's figures doubtful (summary.json `warnings`)."""
    found = []
    empty = agg.errors.get(EMPTY_RESPONSE, 0)
    if agg.total and empty / agg.total > MAX_EMPTY_SHARE:
        found.append(
            warning(
                "empty_responses",
                f"{empty} of {agg.total} answers ({empty / agg.total:.1%}) had no content "
                f"(more than {MAX_EMPTY_SHARE:.0%})",
            )
        )
    share = tokens["output_received_share"]
    if share is not None and share < MIN_OUTPUT_RECEIVED_SHARE:
        found.append(
            warning(
                "output_tokens_short",
                f"received {tokens['output_total']} of {tokens['output_asked_total']} output "
                f"tokens asked for ({share:.0%}, below {MIN_OUTPUT_RECEIVED_SHARE:.0%})",
            )
        )
    missing = tokens["sources"]["input"].get("none", 0)
    if missing:
        found.append(
            warning(
                "input_tokens_missing",
                f"{missing} succeeded requests have no input token count from the server",
            )
        )
    if gate is not None and gate.get("timed_out"):
        found.append(
            warning(
                "gate_timed_out",
                f"the start gate was not released within {gate['waited_s']:g} s; the "
                "measured load started anyway and may lie outside Prometheus's window",
            )
        )
    if invalid_reasons:
        found.append(warning("client_invalid", "; ".join(invalid_reasons)))
    return found


def _rate(count: float, window_s: float) -> float:
    return round(count / window_s, 3) if window_s > 0 else 0.0


def summarize(
    agg: Aggregate,
    asked: dict[str, Any],
    target: dict[str, Any],
    extra: dict[str, Any],
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """summary.json: the issue-4 schema (requests, latency_ms, throughput, tokens,
    window_s, load, client_health, definitions, and goodput with SLOs) plus the measured
    window, the start gate and the warnings."""
    window = agg.window_s
    tokens = tokens_json(agg)
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
        "tokens": tokens,
        "window_s": round(window, 6),
        "window": window_json(agg.window_start_ns, agg.window_end_ns),
        "gate": gate,
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
        "warnings": run_warnings(agg, tokens, reasons, gate),
        "definitions": DEFINITIONS,
    }
    slo = asked.get("slo") or {}
    if slo:
        attainment = round(agg.slo_met / agg.total, 6) if agg.total else None
        target_share = asked.get("slo_attainment") or OPTIONS_BY_NAME["slo_attainment"].default
        summary["goodput"] = {
            "slo": slo,
            "requests_per_s": _rate(agg.slo_met, window),
            "attainment": attainment,
            "slo_attainment": target_share,
            "met": attainment is not None and attainment >= target_share,
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
