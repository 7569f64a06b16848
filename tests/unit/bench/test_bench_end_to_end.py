"""Fast end-to-end runs of the bench command against in-process servers, one per API shape."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from bench_testing import PROMPT_TOKENS, free_port, parse_bench_args, scrape_until
from hpcansible_jobs.bench.live import LiveMetrics
from hpcansible_jobs.bench.recorder import Recorder


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def server_tokens(input_total: int, output_total: int, requests: int) -> dict:
    """summary.json `tokens` when the server counted every token and gave all asked for."""
    return {
        "input_total": input_total,
        "output_total": output_total,
        "output_asked_total": output_total,
        "output_received_share": 1.0,
        "input_source": "server",
        "output_source": "server",
        "sources": {"input": {"server": requests}, "output": {"server": requests}},
    }


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
def test_ollama_streams(run_bench, http_server, endpoint: str) -> None:
    code, summary, out = run_bench(
        "--endpoint",
        http_server,
        "--api",
        "ollama",
        "--model",
        "m",
        "--ollama-endpoint",
        endpoint,
        "--concurrency",
        "2",
        "--requests",
        "6",
        "--output-tokens",
        "3",
        "--input-tokens",
        "5",
    )
    assert code == 0
    requests = summary["requests"]
    assert (requests["total"], requests["succeeded"], requests["failed"]) == (6, 6, 0)
    assert requests["errors"] == {} and requests["error_examples"] == {}
    assert summary["tokens"] == server_tokens(6 * PROMPT_TOKENS, 18, 6)
    latency = summary["latency_ms"]
    assert latency["itl"]["count"] == 12
    assert 0 < latency["ttft"]["p50"] <= latency["e2e"]["p50"]
    assert latency["tpot"]["count"] == 6 and latency["tpot"]["mean"] > 1.0
    assert summary["target"]["url"].endswith(f"/api/{endpoint}")
    first = records(out)[0]
    assert first["eval_count"] == 3 and first["prompt_eval_duration"] == 100
    assert len(first["chunks_ms"]) == 3


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_openai_streams_with_usage(run_bench, http_server, endpoint: str) -> None:
    code, summary, out = run_bench(
        "--endpoint",
        http_server + "/v1",
        "--api",
        "openai",
        "--openai-endpoint",
        endpoint,
        "--concurrency",
        "3",
        "--requests",
        "6",
        "--output-tokens",
        "4",
        "--model",
        "m",
    )
    assert code == 0
    assert summary["requests"]["succeeded"] == 6
    assert summary["tokens"] == server_tokens(6 * PROMPT_TOKENS, 24, 6)
    assert summary["latency_ms"]["itl"]["count"] == 18
    assert summary["target"]["url"] == f"{http_server}/v1/" + (
        "chat/completions" if endpoint == "chat" else "completions"
    )
    assert all("tokens_counted" not in r for r in records(out))


def test_http_open_loop(run_bench, http_server) -> None:
    code, summary, out = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--rate",
        "400",
        "--arrivals",
        "constant",
        "--requests",
        "40",
        "--warmup-requests",
        "4",
    )
    assert code == 0
    assert summary["requests"]["total"] == 36
    assert summary["requests"]["warmup_excluded"] == 4
    assert summary["load"]["mode"] == "open"
    achieved = summary["load"]["achieved"]
    assert achieved["send_lag_ms"]["p50"] is not None
    assert summary["latency_ms"]["ttft"]["count"] == 0  # not an LLM API
    assert summary["latency_ms"]["e2e_intended"]["p50"] >= summary["latency_ms"]["e2e"]["p50"]
    rows = records(out)
    assert len(rows) == 40 and sum(r["warmup"] for r in rows) == 4
    scheduled = [r["scheduled_ms"] for r in rows]
    assert scheduled[1] - scheduled[0] == pytest.approx(2.5, abs=0.01)  # 400 req/s
    assert (out / "timeseries.csv").read_text().count("\n") >= 2


def test_errors_are_classified(run_bench, http_server, tmp_path: Path) -> None:
    code, summary, _ = run_bench(
        "--endpoint",
        http_server + "/status/503",
        "--api",
        "http",
        "--requests",
        "4",
    )
    assert code == 1  # nothing succeeded
    assert summary["requests"]["errors"] == {"http_503": 4}
    assert summary["requests"]["error_examples"] == {"http_503": "status"}

    closed_port = free_port()  # a port nobody listens on
    _, summary, _ = run_bench(
        "--endpoint",
        f"http://127.0.0.1:{closed_port}",
        "--api",
        "http",
        "--requests",
        "3",
        output=tmp_path / "refused",
    )
    assert summary["requests"]["errors"] == {"connect": 3}
    assert "Cannot connect" in summary["requests"]["error_examples"]["connect"]

    _, summary, _ = run_bench(
        "--endpoint",
        http_server,
        "--api",
        "ollama",
        "--model",
        "m",
        "--requests",
        "2",
        "--output-tokens",
        "2",
        "--path",
        "/api/generate?broken=1",
        output=tmp_path / "broken",
    )
    assert summary["requests"]["errors"] == {"broken_stream": 2}


def test_max_error_rate_stops_early(run_bench, http_server) -> None:
    code, summary, _ = run_bench(
        "--endpoint",
        http_server + "/status/500",
        "--api",
        "http",
        "--rate",
        "2000",
        "--requests",
        "4000",
        "--max-error-rate",
        "0.5",
    )
    assert code == 1
    assert summary["load"]["achieved"]["stopped_early"] == "max_error_rate"
    assert summary["requests"]["total"] < 4000


def test_redis_get_set_mixed_with_password(run_bench, redis_server, tmp_path: Path) -> None:
    url, state = redis_server
    stats = state["stats"]
    stats.clear()
    code, summary, out = run_bench(
        "--endpoint",
        url,
        "--api",
        "redis",
        "--password",
        "s3cret",
        "--redis-command",
        "mixed",
        "--redis-set-ratio",
        "0.25",
        "--keyspace",
        "50",
        "--key-size",
        "8",
        "--value-size",
        "32",
        "--concurrency",
        "4",
        "--requests",
        "40",
    )
    assert code == 0
    assert summary["requests"]["succeeded"] == 40
    assert stats["SET"] == 50 + 10  # prefill of the keyspace, then a quarter of 40
    assert stats["GET"] == 30
    assert len(state["store"][b"k0000049"]) == 32
    assert sum(r["command"] == "SET" for r in records(out)) == 10
    assert summary["target"]["url"] == url  # no password in the summary

    code, summary, _ = run_bench(
        "--endpoint",
        url.replace("redis://", "redis://:s3cret@"),
        "--api",
        "redis",
        "--redis-command",
        "set",
        "--rate",
        "200",
        "--requests",
        "10",
        output=tmp_path / "url-password",
    )
    assert summary["requests"]["succeeded"] == 10


def test_redis_wrong_password_is_a_user_error(bench_error, redis_server) -> None:
    url, _ = redis_server
    message = bench_error(
        "--endpoint",
        url,
        "--api",
        "redis",
        "--password",
        "wrong",
        "--requests",
        "2",
        "--output",
        "/tmp/unused-bench-out",
    )
    assert message.startswith("endpoint 127.0.0.1:")
    assert "cannot prefill Redis keys" in message


def test_workers_split_the_load_and_merge(run_bench, http_server) -> None:
    code, summary, out = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--rate",
        "300",
        "--arrivals",
        "constant",
        "--requests",
        "30",
        "--workers",
        "2",
    )
    assert code == 0
    assert summary["requests"]["succeeded"] == 30
    assert summary["client_health"]["cpu"]["processes"] == 2
    rows = records(out)
    assert sorted(r["worker"] for r in rows) == [0] * 15 + [1] * 15
    # the two workers together keep the one global schedule: 0, 3.33, 6.67 ms ...
    scheduled = sorted(r["scheduled_ms"] for r in rows)
    assert scheduled[2] - scheduled[0] == pytest.approx(2 * 1000 / 300, abs=0.05)
    assert (out / "workers" / "w1" / "aggregate.json").is_file()


def test_merge_of_job_array_directories(run_bench, http_server, tmp_path: Path) -> None:
    for name in ("job1", "job2"):
        run_bench(
            "--endpoint",
            http_server + "/static",
            "--api",
            "http",
            "--requests",
            "5",
            output=tmp_path / name,
        )
    args = parse_bench_args(
        [
            "bench",
            "merge",
            str(tmp_path / "job1"),
            str(tmp_path / "job2"),
            "--output",
            str(tmp_path / "merged"),
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["requests"]["succeeded"] == 10
    assert merged["latency_ms"]["e2e"]["count"] == 10
    assert len(merged["merged_from"]) == 2


def test_concurrency_sweep_writes_a_step_per_value(run_bench, http_server) -> None:
    code, summary, out = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--concurrency",
        "1,2",
        "--requests",
        "4",
    )
    assert code == 0
    assert summary["sweep"]["axes"] == {"concurrency": [1, 2]}
    assert [p["summary"]["load"]["asked"]["concurrency"] for p in summary["points"]] == [1, 2]
    assert [p["label"] for p in summary["points"]] == ["concurrency-1", "concurrency-2"]
    assert (out / "concurrency-2" / "summary.json").is_file()


def test_jsonl_prompts_slo_and_csv_records(run_bench, http_server, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "hello there", "output_tokens": 2}\n'
        '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}\n'
    )
    code, summary, out = run_bench(
        "--endpoint",
        http_server,
        "--api",
        "openai",
        "--prompts",
        str(prompts),
        "--requests",
        "4",
        "--records",
        "csv",
        "--slo",
        "ttft_ms:10000,tpot_ms:10000",
    )
    assert code == 0
    assert summary["tokens"]["output_total"] == 10  # 2 + 3 + 2 + 3
    assert summary["goodput"]["attainment"] == 1.0
    assert (out / "requests.csv").read_text().startswith("index,worker,warmup")


def test_live_metrics_endpoint(run_bench, http_server) -> None:
    port = free_port()
    scraped: list[str | None] = []

    def scrape() -> None:
        success = 'hpcansible_bench_requests_total{api="http",outcome="success"'
        scraped.append(scrape_until(port, lambda text: success in text))

    thread = threading.Thread(target=scrape)
    thread.start()
    run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--rate",
        "200",
        "--requests",
        "60",
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
        "--session-id",
        "s42",
    )
    thread.join()
    assert scraped[0], "no live metrics were served during the run"
    assert 'session_id="s42"' in scraped[0]
    assert "hpcansible_bench_request_latency_seconds_bucket" in scraped[0]


def test_live_metrics_count_outcomes() -> None:
    from prometheus_client import generate_latest

    rec = Recorder(2)
    for i, error in enumerate((None, "timeout")):
        rec.allocate()
        rec.sent[i] = 1_000
        rec.end[i] = rec.done[i] = 2_000_000
        rec.error[i] = error
    rec.first_token[0] = 1_000_000
    rec.output_tokens[0] = 5
    live = LiveMetrics("sess", "ollama")
    live.observe(rec, [0, 1])
    text = generate_latest(live.registry).decode()
    labels = 'session_id="sess",step="run"'
    assert (
        f'hpcansible_bench_errors_total{{api="ollama",error_class="timeout",{labels}}} 1.0' in text
    )
    assert f'hpcansible_bench_output_tokens_total{{api="ollama",{labels}}} 5.0' in text
    assert f'hpcansible_bench_ttft_seconds_count{{api="ollama",{labels}}} 1.0' in text


def test_wait_for_service_gives_up_with_one_line(bench_error) -> None:
    closed_port = free_port()
    started = time.monotonic()
    message = bench_error(
        "--endpoint",
        f"http://127.0.0.1:{closed_port}",
        "--api",
        "http",
        "--requests",
        "1",
        "--wait-for-service",
        "0.3",
        "--output",
        "/tmp/unused-bench-out",
    )
    assert time.monotonic() - started < 5
    assert message.startswith(f"endpoint 127.0.0.1:{closed_port}: no connection after waiting")


def test_the_benchmark_client_roles_config_file(http_server, tmp_path: Path) -> None:
    """The keys roles/benchmark_client writes into bench.yml (plus recipe parameters)."""
    port = free_port()
    config = tmp_path / "bench.yml"
    config.write_text(
        "model: m\nollama_endpoint: generate\nconcurrency: 2\nrequests: 4\ninput_tokens: 8\n"
        "output_tokens: 2\nslo: ttft_ms:500,tpot_ms:50\n"
        f"endpoint: {http_server}\napi: ollama\noutput: {tmp_path / 'results'}\n"
        f"session_id: ollama_20260101_1200_abcd\nmetrics_port: {port}\nlinger: 0.2\n"
        "wait_for_service: 5\nquiet: true\n"
    )
    args = parse_bench_args(["bench", "--config", str(config)])
    started = time.monotonic()
    assert args.func(args) == 0
    assert time.monotonic() - started >= 0.2  # lingered with the metrics up
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["session_id"] == "ollama_20260101_1200_abcd"
    assert summary["goodput"]["attainment"] == 1.0
