"""Metric arithmetic on recorded timestamps, merging, and the summary.json schema."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import pytest
from hpcansible_jobs.bench import report
from hpcansible_jobs.bench.engine import RunOutcome, WorkerPlan
from hpcansible_jobs.bench.histogram import LatencyHistogram
from hpcansible_jobs.bench.metrics import Aggregate, aggregate_run
from hpcansible_jobs.bench.recorder import Clock, Recorder, write_records
from hpcansible_jobs.bench.summary import summarize

MS = 1_000_000
START = 10_000 * MS  # monotonic ns of the run start
CLOCK = Clock(epoch_ns=1_700_000_000 * 1_000_000_000, mono_ns=START)


def recorded_run(plan: WorkerPlan) -> RunOutcome:
    """Three requests with known timestamps (ms after START):

    0: on time; tokens at 50, 60, 70, 80      -> ttft 50, e2e 80, tpot 10, itl 10,10,10
    1: scheduled 0, sent 20 (late); tokens at 70, 90 -> ttft 50, e2e 70, e2e_intended 90
    2: sent 1, timed out at 500
    """
    rec = Recorder(4)
    for _ in range(3):
        rec.allocate()
    for i, sent in enumerate((0, 20, 1)):
        rec.scheduled[i] = START
        rec.dispatched[i] = START  # dispatched on time; request 1 then waited for a slot
        rec.sent[i] = START + sent * MS
    rec.chunks[0] = array("q", [START + t * MS for t in (50, 60, 70, 80)])
    rec.chunks[1] = array("q", [START + t * MS for t in (70, 90)])
    for i in (0, 1):
        rec.first_byte[i] = START + 5 * MS
        rec.first_token[i] = rec.chunks[i][0]
        rec.end[i] = rec.chunks[i][-1]
        rec.done[i] = rec.end[i] + MS
        rec.status[i] = 200
        rec.input_tokens[i] = 10
    rec.output_tokens[0] = 4
    rec.output_tokens[1] = 2
    rec.done[2] = START + 500 * MS
    rec.error[2] = "timeout"
    rec.completed.extend([0, 1, 2])
    return RunOutcome(
        recorder=rec,
        clock=CLOCK,
        start_ns=START,
        end_ns=START + 600 * MS,
        plan=plan,
        stopped_early=None,
        loop_lag_us=[100, 200, 300],
        cpu_s=0.06,
        wall_s=0.6,
    )


OPEN_PLAN = WorkerPlan(offsets=array("q", [0, 0, 0]))


def test_metric_arithmetic_from_timestamps() -> None:
    agg, warmup = aggregate_run(recorded_run(OPEN_PLAN), "ollama", {}, late_ms=10.0)
    assert warmup == [False, False, False]
    assert (agg.total, agg.succeeded, agg.failed) == (3, 2, 1)
    assert agg.errors == {"timeout": 1}
    assert (agg.input_tokens, agg.output_tokens) == (20, 6)
    assert agg.late_sends == 1  # request 1 was sent 20 ms after its schedule

    stats = {name: h.stats_ms() for name, h in agg.histograms.items()}
    assert stats["ttft"]["mean"] == 50.0 and stats["ttft"]["p50"] == 50.0
    assert stats["e2e"]["mean"] == 75.0 and stats["e2e"]["max"] == 80.0
    assert stats["e2e_intended"]["mean"] == 85.0 and stats["e2e_intended"]["max"] == 90.0
    assert stats["tpot"]["mean"] == 15.0  # (80-50)/3 = 10 and (70-50)/1 = 20
    assert stats["itl"]["count"] == 4 and stats["itl"]["mean"] == 12.5
    assert stats["send_lag"]["max"] == 20.0
    # window: from the start to the last measured end (request 2 at 500 ms)
    assert agg.window_s == pytest.approx(0.5)


def test_closed_loop_intended_equals_actual_and_nothing_is_late() -> None:
    outcome = recorded_run(WorkerPlan(stream_starts=[0]))
    for i in range(3):
        outcome.recorder.scheduled[i] = outcome.recorder.sent[i]
    agg, _ = aggregate_run(outcome, "ollama", {}, late_ms=10.0)
    assert agg.late_sends == 0
    assert agg.histograms["e2e"].stats_ms() == agg.histograms["e2e_intended"].stats_ms()
    assert "send_lag" not in agg.histograms


def test_warmup_is_excluded_by_count_and_by_time() -> None:
    by_count = WorkerPlan(offsets=array("q", [0, 0, 0]), warmup_requests=1)
    agg, warmup = aggregate_run(recorded_run(by_count), "ollama", {}, late_ms=10.0)
    assert warmup == [True, False, False]
    assert (agg.total, agg.warmup_excluded) == (2, 1)
    assert agg.histograms["ttft"].count == 1

    outcome = recorded_run(WorkerPlan(offsets=array("q", [0, 0, 0]), warmup_ns=5 * MS))
    outcome.recorder.scheduled[2] = START + 10 * MS  # only this one is after the warm-up
    agg, warmup = aggregate_run(outcome, "ollama", {}, late_ms=10.0)
    assert warmup == [True, True, False]
    assert agg.window_s == pytest.approx(0.495)  # opens at the end of the warm-up


def test_goodput_counts_requests_meeting_every_slo() -> None:
    slo = {"ttft_ms": 60.0, "tpot_ms": 15.0}
    agg, _ = aggregate_run(recorded_run(OPEN_PLAN), "ollama", slo, late_ms=10.0)
    assert agg.slo_met == 1  # request 0; request 1's tpot is 20 ms; request 2 failed
    assert agg.slo_met_by_key == {"ttft_ms": 2, "tpot_ms": 1}
    summary = summarize(agg, {"slo": slo, "late_ms": 10.0}, {}, {})
    assert summary["goodput"]["attainment"] == pytest.approx(1 / 3, abs=1e-6)
    assert summary["goodput"]["requests_per_s"] == pytest.approx(2.0)  # 1 / 0.5 s


def test_merging_adds_counts_and_histograms() -> None:
    first, _ = aggregate_run(recorded_run(OPEN_PLAN), "ollama", {}, late_ms=10.0)
    second, _ = aggregate_run(recorded_run(OPEN_PLAN), "ollama", {}, late_ms=10.0)
    merged = Aggregate.from_json(json.loads(json.dumps(first.to_json())))
    merged.merge(second)
    assert (merged.total, merged.failed, merged.output_tokens) == (6, 2, 12)
    assert merged.histograms["itl"].count == 8
    assert merged.histograms["e2e"].stats_ms()["mean"] == 75.0
    assert merged.series[1_700_000_000]["succeeded"] == 4
    assert len(merged.processes) == 2


def test_histogram_percentiles_are_precise_and_capped_at_max() -> None:
    histogram = LatencyHistogram()
    histogram.record_many_ns([i * 1000 for i in range(1, 1001)])  # 1 us .. 1 ms
    stats = histogram.stats_ms()
    assert stats["p50"] == 0.5 and stats["p99"] == 0.99 and stats["max"] == 1.0
    big = LatencyHistogram()
    big.record_many_ns([1_234_567_891])
    assert big.stats_ms()["p50"] == 1234.568  # never above the exact max
    assert big.stats_ms()["p50"] <= big.stats_ms()["max"]


def test_histogram_clamps_negative_values_to_zero() -> None:
    """A clock step can make an end precede its start; such a value counts as 0."""
    histogram = LatencyHistogram()
    histogram.record_many_ns(array("q", [-5 * MS, 2 * MS]))
    assert (histogram.count, histogram.sum_ns, histogram.min_ns) == (2, 2 * MS, 0)
    assert histogram.stats_ms()["max"] == 2.0


def test_summary_schema(tmp_path: Path) -> None:
    agg, warmup = aggregate_run(recorded_run(OPEN_PLAN), "openai", {}, late_ms=10.0)
    summary = summarize(agg, {"rate": 5.0, "late_ms": 10.0}, {"url": "http://x"}, {})
    assert set(summary["requests"]) >= {"total", "succeeded", "failed", "errors"}
    for metric in ("ttft", "tpot", "itl", "e2e", "e2e_intended"):
        assert set(summary["latency_ms"][metric]) >= {
            "mean",
            "p50",
            "p90",
            "p95",
            "p99",
            "p999",
            "max",
        }
    assert set(summary["throughput"]) == {"requests_per_s", "output_tokens_per_s"}
    assert set(summary["tokens"]) == {
        "input_total",
        "output_total",
        "output_asked_total",
        "output_received_share",
        "input_source",
        "output_source",
        "sources",
    }
    assert summary["window_s"] == pytest.approx(0.5)
    assert summary["window"] == {
        "start": "2023-11-14T22:13:20.000Z",
        "end": "2023-11-14T22:13:20.500Z",
    }
    assert summary["gate"] is None and summary["warnings"] == []
    assert set(summary["load"]) == {"mode", "asked", "achieved"}
    health = summary["client_health"]
    assert health["event_loop_lag_ms"]["p99"] == 0.3
    assert health["cpu"]["max_percent_of_core"] == 10.0
    assert health["valid"] is True
    assert "ttft" in summary["definitions"]
    assert summary["throughput"]["output_tokens_per_s"] == pytest.approx(12.0)

    report.write_outputs(tmp_path, agg, summary)
    write_records(
        tmp_path, "jsonl", agg_outcome := recorded_run(OPEN_PLAN).recorder, START, warmup, 0
    )
    assert agg_outcome.size == 3
    lines = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert lines[0]["chunks_ms"] == [50.0, 60.0, 70.0, 80.0]
    assert lines[2]["error"] == "timeout"
    assert (tmp_path / "hdr" / "ttft.hgrm").read_text().startswith("       Value")
    series = (tmp_path / "timeseries.csv").read_text().splitlines()
    assert series[0].startswith("epoch_s,elapsed_s,in_window,sent,completed")
    assert report.read_aggregate(tmp_path).total == 3


def test_client_bottleneck_makes_the_run_invalid() -> None:
    outcome = recorded_run(OPEN_PLAN)
    outcome.loop_lag_us = [50_000] * 10
    outcome.cpu_s = 0.59
    agg, _ = aggregate_run(outcome, "http", {}, late_ms=10.0)
    health = summarize(agg, {}, {}, {})["client_health"]
    assert health["valid"] is False
    assert any("event-loop lag" in reason for reason in health["invalid_reasons"])
    assert any("client CPU" in reason for reason in health["invalid_reasons"])
