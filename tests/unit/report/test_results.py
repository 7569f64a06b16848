"""Reading the client's results: single runs, both sweep formats, windows, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hpcansible.errors import UserError
from hpcansible.report.results import (
    epoch_s,
    flags,
    gate_time,
    key_metrics,
    load_results,
    measured_window,
    slo_verdict,
)
from hpcansible.report.session import resolve_session
from report_testing import START, write_run, write_session


def test_a_session_resolves_by_id_directory_and_results_dir(home: Path):
    directory = write_session(home, "s1")
    write_run(directory / "results")
    by_id = resolve_session("s1")
    assert by_id.directory == directory and by_id.record["id"] == "s1" and by_id.active
    assert resolve_session(str(directory)).results_dir == directory / "results"
    from_results = resolve_session(str(directory / "results"))
    assert from_results.id == "s1" and from_results.directory == directory


def test_a_bare_results_directory_is_a_session_without_record(tmp_path: Path, home: Path):
    write_run(tmp_path / "out")
    found = resolve_session(str(tmp_path / "out"))
    assert found.record == {} and found.directory == tmp_path / "out" and not found.active


def test_unknown_sessions_and_missing_results_are_one_line_errors(home: Path):
    with pytest.raises(UserError, match="session nope: unknown"):
        resolve_session("nope")
    with pytest.raises(UserError, match="/nowhere/results: no such directory"):
        resolve_session("/nowhere/results")
    write_session(home, "early")
    with pytest.raises(UserError, match=r"session early: no results yet .*logs early"):
        load_results(resolve_session("early"))
    (home / "early" / "results" / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_results(resolve_session("early"))


def test_a_single_run_is_one_point_with_its_window(home: Path):
    directory = write_session(home)
    summary = write_run(directory / "results")
    results = load_results(resolve_session(str(directory)))
    assert not results.is_sweep and len(results.points) == 1
    start, end = results.window
    assert start == pytest.approx(epoch_s(summary["window"]["start"]), abs=1e-3)
    assert end - start == pytest.approx(summary["window_s"], abs=2e-3)


def test_the_window_falls_back_to_the_aggregate_then_started_at(tmp_path: Path):
    summary = write_run(tmp_path)
    del summary["window"]
    assert measured_window(summary, tmp_path)[0] == pytest.approx(START, abs=1e-3)
    (tmp_path / "aggregate.json").unlink()
    start, end = measured_window(summary, tmp_path)
    assert (start, end - start) == (START, pytest.approx(summary["window_s"]))
    assert measured_window({}, tmp_path) is None


def test_the_first_sweep_format_is_read(tmp_path: Path, home: Path):
    results_dir = tmp_path / "results"
    steps = []
    for value in (1, 2, 4):
        step = write_run(results_dir / f"concurrency-{value}", origin=START + 100 * value)
        steps.append({**step, "sweep_value": value})
    (results_dir / "summary.json").write_text(
        json.dumps({"sweep": {"parameter": "concurrency", "values": [1, 2, 4]}, "steps": steps})
    )
    results = load_results(resolve_session(str(results_dir)))
    assert results.is_sweep and results.axes == ["concurrency"]
    assert [p.label for p in results.points] == ["concurrency-1", "concurrency-2", "concurrency-4"]
    assert [p.values for p in results.points] == [{"concurrency": v} for v in (1.0, 2.0, 4.0)]
    assert results.points[2].directory == results_dir / "concurrency-4"
    assert results.window[0] == pytest.approx(START + 100, abs=1e-3)


def test_the_sweep_with_points_knee_and_max_load_is_read(tmp_path: Path):
    results_dir = tmp_path / "results"
    points = []
    for n, (c, out) in enumerate([(1, 16), (2, 16), (1, 64), (2, 64)]):
        label = f"concurrency-{c}_output_tokens-{out}"
        summary = write_run(results_dir / label, origin=START + 100 * n)
        points.append(
            {
                "label": label,
                "values": {"concurrency": c, "output_tokens": out},
                "dir": label,
                "summary": summary,
            }
        )
    knee = {"label": "concurrency-1_output_tokens-16", "load": 1, "reason": "flat"}
    top = {
        "sweep": {
            "mode": "product",
            "load_axis": "concurrency",
            "axes": {"concurrency": [1, 2], "output_tokens": [16, 64]},
        },
        "points": points,
        "knee": knee,
        "max_load_meeting_slo": {"label": "concurrency-2_output_tokens-16", "load": 2},
        "warnings": [{"code": "sweep_incomplete", "message": "3 of 4 points ran"}],
    }
    (results_dir / "summary.json").write_text(json.dumps(top))
    results = load_results(resolve_session(str(results_dir)))
    assert results.axes == ["concurrency", "output_tokens"] and results.load_axis == "concurrency"
    assert results.knee == "concurrency-1_output_tokens-16" and results.knee_reason == "flat"
    assert results.max_load_meeting_slo == "concurrency-2_output_tokens-16"
    assert results.points[3].values == {"concurrency": 2, "output_tokens": 64}
    assert flags(results.top) == ["3 of 4 points ran"]


def test_key_metrics_read_every_field_and_tolerate_old_summaries(tmp_path: Path):
    summary = write_run(tmp_path, slo={"ttft_ms": 100})
    metrics = key_metrics(summary)
    assert metrics["success"] == pytest.approx(58 / 60, abs=1e-6)
    assert metrics["received"] == pytest.approx(58 / 60, abs=1e-3)
    assert metrics["ttft_p99"] == summary["latency_ms"]["ttft"]["p99"]
    assert metrics["goodput"] == summary["goodput"]["requests_per_s"]
    assert set(key_metrics({"requests": {"total": 3}}).values()) == {3.0, None}


def test_slo_verdicts_follow_the_clients_target_or_its_default(tmp_path: Path):
    assert slo_verdict(write_run(tmp_path / "a")) is None
    passing = write_run(tmp_path / "b", slo={"ttft_ms": 100})
    verdict = slo_verdict(passing)
    assert verdict.passed and "96.7% of requests meet ttft_ms <= 100" in verdict.detail
    failing = write_run(tmp_path / "c", errors=20, slo={"ttft_ms": 100})
    assert not slo_verdict(failing).passed
    del failing["goodput"]["met"], failing["goodput"]["slo_attainment"]
    failing["goodput"]["attainment"] = 0.95  # an old summary: the client's default target
    assert slo_verdict(failing).passed


def test_flags_name_warnings_and_an_invalid_client():
    assert flags({"warnings": [{"code": "x", "message": "few tokens"}, "plain"]}) == [
        "few tokens",
        "plain",
    ]
    old = {"client_health": {"valid": False, "invalid_reasons": ["loop lag"]}}
    assert flags(old) == ["invalid run, the client was the bottleneck: loop lag"]


def test_the_gate_comes_from_the_summary_or_the_session():
    released = "2026-01-01T00:00:01.500Z"
    assert gate_time({"gate": {"released_at": released}}, {}) == epoch_s(released)
    assert gate_time({"gate": None}, {"gate": {"released_at": released}}) == epoch_s(released)
    assert gate_time({}, {}) is None
    assert epoch_s("2026-01-01T00:00:00") == epoch_s("2026-01-01T00:00:00Z")
