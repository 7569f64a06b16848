"""The client's per-interval series: requests placed on the wall clock, percentiles per
interval, and timeseries.csv when there are no per-request records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hpcansible.report.records import (
    client_series,
    interval_for,
    place_requests,
    series_from_requests,
    series_from_timeseries,
)
from hpcansible.report.results import Point
from report_testing import START, request_rows, write_run


def point(directory: Path, summary: dict) -> Point:
    return Point("", {}, summary, directory)


def test_requests_are_placed_on_the_epoch_axis_from_the_aggregates_window(tmp_path: Path):
    write_run(tmp_path, count=20, errors=0)
    summary = json.loads((tmp_path / "summary.json").read_text())
    placed = place_requests(point(tmp_path, summary))
    rows = request_rows(20, 0)
    assert len(placed) == 20
    assert placed[0].done_s == pytest.approx(START + rows[0]["done_ms"] / 1e3, abs=1e-6)
    assert placed[3].ttft_ms == pytest.approx(53) and placed[3].e2e_ms == pytest.approx(203)


def test_each_worker_is_anchored_by_its_own_aggregate(tmp_path: Path):
    """Worker 1 started 5 s later than worker 0: its records' zero is its own."""
    write_run(tmp_path, count=10, errors=0)
    late = tmp_path / "late"
    write_run(late, count=10, errors=0, origin=START + 5)
    (tmp_path / "workers" / "w1").mkdir(parents=True)
    (late / "aggregate.json").rename(tmp_path / "workers" / "w1" / "aggregate.json")
    with (tmp_path / "requests.jsonl").open("a") as out:
        for row in request_rows(10, 0, worker=1):
            out.write(json.dumps(row) + "\n")
    placed = place_requests(point(tmp_path, {}))
    firsts = sorted(r.done_s - START for r in placed[:1] + placed[10:11])
    assert firsts == pytest.approx([0.2015, 5.2015], abs=1e-3)


def test_percentiles_per_interval_and_errors_by_class(tmp_path: Path):
    summary = write_run(tmp_path, count=40, errors=4)
    series = client_series([point(tmp_path, summary)])
    assert series.interval_s == 1.0 and "per-request records" in series.source
    assert sum(series.succeeded_per_s) == 36 and sum(series.errors_per_s["timeout"]) == 4
    assert set(series.latency_ms) == {"ttft p50", "ttft p99", "e2e p50", "e2e p99"}
    # one second holds the requests sent 0, 250, 500, 750 ms in: E2E 200 + i ms
    assert series.latency_ms["e2e p99"][0] == pytest.approx(203)
    assert series.latency_ms["e2e p50"][0] == pytest.approx(201)
    assert series.times[0] == pytest.approx(START + 0.5)  # aligned on the window's start


def test_without_records_timeseries_csv_gives_means(tmp_path: Path):
    summary = write_run(tmp_path, count=40, errors=3, records=False)
    series = client_series([point(tmp_path, summary)])
    assert series.source.startswith("timeseries.csv")
    assert set(series.latency_ms) == {"ttft mean", "e2e mean", "e2e max"}
    assert sum(series.succeeded_per_s) == 37 and sum(series.errors_per_s["failed"]) == 3
    (tmp_path / "timeseries.csv").unlink()
    assert client_series([point(tmp_path, summary)]) is None
    assert series_from_timeseries(tmp_path) is None


def test_intervals_keep_at_most_forty_points_of_two_requests_each():
    spans = (10, 40, 41, 200, 3600, 10**6)
    assert [interval_for(s, 10**6) for s in spans] == [1, 1, 2, 5, 120, 600]
    assert interval_for(35, 40) == 2  # 1.1 requests/s: 1 s would hold 0 or 1
    assert interval_for(35, 10) == 10
    assert series_from_requests([]).empty
