"""Sweeps: the points of product / zip / one-axis plans, the knee and the highest load
meeting the SLO on constructed summaries, and a whole sweep run end to end."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from bench_testing import free_port, scrape_until
from hpcansible.errors import UserError
from hpcansible_jobs.bench.config import build_config
from hpcansible_jobs.bench.sweep import (
    SweepPoint,
    find_knee,
    find_max_load_meeting_slo,
    plan_sweep,
    sweep_summary,
)

BASE = {"endpoint": "http://127.0.0.1:1", "api": "openai", "output": "/tmp/x"}


def plan_of(**values: Any):
    return plan_sweep(build_config({**BASE, **values}))


def test_product_runs_every_combination_load_outermost() -> None:
    plan = plan_of(concurrency="1,2", output_tokens="16,64", input_tokens="50,100")
    assert plan.mode == "product" and plan.is_sweep
    assert plan.axes == {
        "concurrency": [1, 2],
        "input_tokens": [50, 100],
        "output_tokens": [16, 64],
    }
    assert len(plan.points) == 8
    first, second, last = plan.points[0], plan.points[1], plan.points[-1]
    assert first.label == "concurrency-1_input_tokens-50_output_tokens-16"
    assert second.values == {"concurrency": 1, "input_tokens": 50, "output_tokens": 64}
    assert last.values == {"concurrency": 2, "input_tokens": 100, "output_tokens": 64}
    # each point's config holds one value per axis, and the label for the live metrics
    assert (last.config.concurrency, last.config.input_tokens, last.config.output_tokens) == (
        (2,),
        (100,),
        (64,),
    )
    assert last.config.step == last.label


def test_zip_pairs_the_lists_and_broadcasts_single_values() -> None:
    plan = plan_of(rate="1,2,4", output_tokens="16,32,64", input_tokens=20, sweep="zip")
    assert [p.values for p in plan.points] == [
        {"rate": 1, "input_tokens": 20, "output_tokens": 16},
        {"rate": 2, "input_tokens": 20, "output_tokens": 32},
        {"rate": 4, "input_tokens": 20, "output_tokens": 64},
    ]
    assert [p.label for p in plan.points][1] == "rate-2_output_tokens-32"
    assert plan.fixed == {"input_tokens": 20}
    assert plan.points[0].config.rate == (1.0,)


def test_one_axis_keeps_the_other_lists_first_value() -> None:
    plan = plan_of(concurrency="1,2,5", output_tokens="50,100", sweep="concurrency")
    assert [p.label for p in plan.points] == ["concurrency-1", "concurrency-2", "concurrency-5"]
    assert all(p.config.output_tokens == (50,) for p in plan.points)
    assert plan.unused == {"output_tokens": [100]}
    assert plan.fixed["output_tokens"] == 50


def test_a_single_run_is_one_point_named_run() -> None:
    plan = plan_of(concurrency=3, output_tokens=16)
    assert not plan.is_sweep
    assert [(p.label, p.values) for p in plan.points] == [
        ("run", {"concurrency": 3, "input_tokens": 128, "output_tokens": 16})
    ]


def test_token_axes_only_for_llm_apis_and_input_only_for_synthetic_prompts() -> None:
    http = plan_sweep(build_config({**BASE, "api": "http", "concurrency": "1,2"}))
    assert set(http.points[0].values) == {"concurrency"}
    with_prompts = plan_of(prompts="default", output_tokens="8,16")
    assert "input_tokens" not in with_prompts.points[0].values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"concurrency": "1,2", "output_tokens": "8,16,32", "sweep": "zip"}, "zip needs lists"),
        ({"concurrency": "1,1,2"}, "concurrency: 1 is listed twice"),
        ({"rate": "1,2", "sweep": "concurrency"}, "sweep: concurrency: the run is an open loop"),
        ({"input_tokens": "10,20", "prompts": "default"}, "input_tokens: a list sweeps"),
        ({"sweep": "diagonal"}, "sweep: expected one of product, zip, concurrency"),
        ({"output_tokens": "50,abc"}, "output_tokens: expected an integer or a comma-separated"),
    ],
)
def test_sweep_mistakes_are_one_line_errors(values: dict, message: str) -> None:
    with pytest.raises(UserError) as caught:
        build_config({**BASE, **values}, source="client.yml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("client.yml: ")


# --- knee and highest load meeting the SLO ----------------------------------------------


def point(load: float, **other: float) -> SweepPoint:
    values = {"concurrency": load, **other}
    label = "_".join(f"{k}-{v:g}" for k, v in values.items())
    return SweepPoint(label, values, build_config(BASE))


def step_summary(throughput: float, p99: float | None, attainment: float | None) -> dict:
    summary: dict[str, Any] = {
        "api": "openai",
        "target": {"url": "u"},
        "throughput": {"requests_per_s": throughput},
        "latency_ms": {"e2e_intended": {"p99": p99}},
        "warnings": [],
        "window": None,
    }
    if attainment is not None:
        summary["goodput"] = {"attainment": attainment}
    return summary


def test_knee_where_throughput_stops_following_the_load() -> None:
    series = [
        (point(1), step_summary(10, 100, 1.0)),
        (point(2), step_summary(19, 110, 1.0)),  # +90 % for +100 %: gain 0.9
        (point(4), step_summary(36, 130, 0.95)),  # +89 % for +100 %
        (point(8), step_summary(45, 160, 0.7)),  # +25 % for +100 %: gain 0.25 < 0.5
        (point(16), step_summary(46, 900, 0.2)),
    ]
    knee = find_knee(series, "concurrency")
    assert knee is not None and knee["load"] == 4 and knee["label"] == "concurrency-4"
    assert "throughput +25% for +100% concurrency (4 to 8)" in knee["reason"]
    best = find_max_load_meeting_slo(series, "concurrency", 0.9)
    assert best == {
        "label": "concurrency-4",
        "load": 4,
        "values": {"concurrency": 4},
        "attainment": 0.95,
    }
    assert find_max_load_meeting_slo(series, "concurrency", 0.99)["load"] == 2


def test_knee_where_p99_jumps_and_none_when_it_scales() -> None:
    jump = [
        (point(1), step_summary(10, 100, None)),
        (point(2), step_summary(20, 250, None)),  # linear throughput, p99 x2.5
    ]
    knee = find_knee(jump, "concurrency")
    assert knee["load"] == 1 and "p99 x2.5" in knee["reason"]
    linear = [(point(c), step_summary(10 * c, 100, None)) for c in (1, 2, 4)]
    assert find_knee(linear, "concurrency") is None
    assert find_max_load_meeting_slo(linear, "concurrency", 0.9) is None  # no SLO


def test_sweep_summary_over_series_takes_the_lowest() -> None:
    config = build_config(
        {**BASE, "concurrency": "1,2,4", "output_tokens": "16,64", "slo": "ttft_ms:500"}
    )
    plan = plan_sweep(config)
    figures = {  # (concurrency, output_tokens) -> throughput, p99, attainment
        (1, 16): (10, 100, 1.0),
        (2, 16): (20, 100, 1.0),
        (4, 16): (40, 110, 0.95),
        (1, 64): (5, 400, 1.0),
        (2, 64): (6, 500, 0.92),  # knee at 1 for long answers
        (4, 64): (6, 2000, 0.5),
    }
    done = []
    for p in plan.points:
        t, p99, attainment = figures[(p.values["concurrency"], p.values["output_tokens"])]
        summary = step_summary(t, p99, attainment)
        summary["window"] = {"start": f"2026-01-01T00:00:0{len(done)}.000Z"}
        summary["window"]["end"] = f"2026-01-01T00:00:0{len(done)}.500Z"
        done.append((p, summary))
    top = sweep_summary(plan, done, {"tool": "t"}, None, config.slo, 0.9)
    assert [s["fixed"] for s in top["series"]] == [{"output_tokens": 16}, {"output_tokens": 64}]
    assert top["series"][0]["knee"] is None
    assert top["series"][1]["knee"]["load"] == 1
    assert top["knee"]["label"] == "concurrency-1_output_tokens-64"
    assert [s["max_load_meeting_slo"]["load"] for s in top["series"]] == [4, 2]
    assert top["max_load_meeting_slo"]["load"] == 2
    assert top["window"] == {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:00:05.500Z"}
    assert top["sweep"]["axes"] == {"concurrency": [1, 2, 4], "output_tokens": [16, 64]}
    assert top["sweep"]["points_run"] == 6 and top["gate"] is None
    assert [p["dir"] for p in top["points"]][:2] == [
        "concurrency-1_output_tokens-16",
        "concurrency-1_output_tokens-64",
    ]


# --- a whole sweep ------------------------------------------------------------------------


def test_a_sweep_runs_as_one_session_with_a_step_label(run_bench, http_server) -> None:
    port = free_port()
    labels = [
        "concurrency-1_output_tokens-2",
        "concurrency-1_output_tokens-4",
        "concurrency-2_output_tokens-2",
        "concurrency-2_output_tokens-4",
    ]
    counted = [f'outcome="success",session_id="local",step="{label}"}} 6.0' for label in labels]
    scraped: list[str | None] = []

    def scrape() -> None:  # until every point's requests are counted under its label
        scraped.append(scrape_until(port, lambda text: all(c in text for c in counted), 60))

    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        code, top, out = run_bench(
            "--endpoint",
            http_server,
            "--api",
            "ollama",
            "--model",
            "m",
            "--concurrency",
            "1,2",
            "--output-tokens",
            "2,4",
            "--requests",
            "6",
            "--warmup-requests",
            "2",
            "--slo",
            "ttft_ms:10000",
            "--metrics-port",
            str(port),
            "--metrics-host",
            "127.0.0.1",
            "--linger",
            "0.3",
        )
    finally:
        thread.join()
    assert code == 0
    assert [p["label"] for p in top["points"]] == labels
    for entry in top["points"]:
        summary = json.loads((out / entry["dir"] / "summary.json").read_text())
        assert summary == entry["summary"]
        assert summary["point"] == {"label": entry["label"], "values": entry["values"]}
        assert summary["requests"]["warmup_excluded"] == 2  # each point its own warm-up
        assert summary["tokens"]["output_asked_total"] == 4 * entry["values"]["output_tokens"]
        for name in ("timeseries.csv", "requests.jsonl", "hdr/e2e.hgrm"):
            assert (out / entry["dir"] / name).is_file()
    assert top["window"]["start"] == top["points"][0]["summary"]["window"]["start"]
    assert top["window"]["end"] == top["points"][-1]["summary"]["window"]["end"]
    assert top["max_load_meeting_slo"]["load"] == 2
    assert scraped[0] is not None, "the live metrics never counted every point"
    assert 'step="run"' not in scraped[0]
