"""Fixture data for the report's unit tests: a client's results and a session directory
written as the client and the playbook write them, and a fake Prometheus HTTP API."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hpcansible_jobs.bench.histogram import LatencyHistogram

START = 1_767_000_000.0  # epoch seconds of the first request's send
GAP_MS = 250.0  # between sends
SERVICE_JOB = "11"


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def request_rows(count: int, errors: int, worker: int = 0) -> list[dict[str, Any]]:
    """Times in ms from the run start: TTFT 50-54 ms, E2E 200 ms + i, the last `errors`
    requests time out without a token."""
    rows = []
    for i in range(count):
        sent = i * GAP_MS + 1.0
        failed = i >= count - errors
        first = None if failed else sent + 50 + i % 5
        end = None if failed else sent + 200 + i
        rows.append(
            {
                "index": i,
                "worker": worker,
                "warmup": False,
                "scheduled_ms": sent - 1.0,
                "sent_ms": sent,
                "first_token_ms": first,
                "end_ms": end,
                "done_ms": (end or sent + 300) + 0.5,
                "error": "timeout" if failed else None,
                "output_tokens": None if failed else 16,
                "chunks_ms": None if failed else [50.0 + k * 10 for k in range(16)],
            }
        )
    return rows


def histogram(values_ms: list[float]) -> LatencyHistogram:
    found = LatencyHistogram()
    found.record_many_ns([round(v * 1e6) for v in values_ms])
    return found


def write_run(
    directory: Path,
    count: int = 60,
    errors: int = 2,
    origin: float = START,
    slo: dict[str, float] | None = None,
    records: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One measured run as the client leaves it; returns its summary."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = request_rows(count, errors)
    ok = [r for r in rows if r["error"] is None]
    latencies = {
        "ttft": histogram([r["first_token_ms"] - r["sent_ms"] for r in ok]),
        "e2e": histogram([r["end_ms"] - r["sent_ms"] for r in ok]),
        "tpot": histogram([(r["end_ms"] - r["first_token_ms"]) / 15 for r in ok]),
        "itl": histogram([10.0] * 15 * len(ok)),
    }
    latencies["e2e_intended"] = latencies["e2e"]
    window_start = origin + rows[0]["scheduled_ms"] / 1e3
    window_end = origin + max(r["done_ms"] for r in rows) / 1e3
    aggregate = {
        "format": "hpcansible-bench-aggregate/1",
        "window_start_ns": round(window_start * 1e9),
        "window_end_ns": round(window_end * 1e9),
        "histograms": {name: h.to_json() for name, h in latencies.items()},
    }
    (directory / "aggregate.json").write_text(json.dumps(aggregate))
    if records:
        with (directory / "requests.jsonl").open("w") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    (directory / "hdr").mkdir(exist_ok=True)
    for name, found in latencies.items():
        (directory / "hdr" / f"{name}.hgrm").write_text(found.percentile_distribution())
    write_timeseries(directory, rows, origin)
    length = window_end - window_start
    summary: dict[str, Any] = {
        "tool": "hpcansible bench test",
        "api": "openai",
        "started_at": iso(origin),
        "requests": {
            "total": count,
            "succeeded": len(ok),
            "failed": errors,
            "errors": {"timeout": errors} if errors else {},
            "success_rate": round(len(ok) / count, 6),
        },
        "latency_ms": {name: h.stats_ms() for name, h in latencies.items()},
        "throughput": {
            "requests_per_s": round(len(ok) / length, 3),
            "output_tokens_per_s": round(16 * len(ok) / length, 3),
        },
        "tokens": {
            "input_total": 32 * len(ok),
            "output_total": 16 * len(ok),
            "output_asked_total": 16 * count,
        },
        "window_s": round(length, 6),
        "window": {"start": iso(window_start), "end": iso(window_end)},
        "gate": {"released_at": iso(window_start - 2), "waited_s": 3.0, "timed_out": False},
        "client_health": {"valid": True, "invalid_reasons": []},
        "warnings": [],
        "definitions": {"ttft": "first non-empty content chunk - actual send"},
        **extra,
    }
    if slo:
        summary["goodput"] = {
            "slo": slo,
            "requests_per_s": summary["throughput"]["requests_per_s"],
            "attainment": round(len(ok) / count, 6),
            "attainment_by_slo": {key: round(len(ok) / count, 6) for key in slo},
            "slo_attainment": 0.9,
            "met": len(ok) / count >= 0.9,
        }
    (directory / "summary.json").write_text(json.dumps(summary))
    return summary


def write_timeseries(directory: Path, rows: list[dict[str, Any]], origin: float) -> None:
    per_second: dict[int, dict[str, float]] = {}
    for row in rows:
        second = int(origin + row["done_ms"] / 1e3)
        found = per_second.setdefault(
            second, {"succeeded": 0, "failed": 0, "e2e": 0.0, "ttft": 0.0}
        )
        if row["error"]:
            found["failed"] += 1
        else:
            found["succeeded"] += 1
            found["e2e"] += row["end_ms"] - row["sent_ms"]
            found["ttft"] += row["first_token_ms"] - row["sent_ms"]
    with (directory / "timeseries.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["epoch_s", "succeeded", "failed", "e2e_mean_ms", "e2e_max_ms", "ttft_mean_ms"]
        )
        for second in sorted(per_second):
            found = per_second[second]
            ok = found["succeeded"]
            writer.writerow(
                [
                    second,
                    int(ok),
                    int(found["failed"]),
                    round(found["e2e"] / ok, 3) if ok else "",
                    round(found["e2e"] / ok, 3) if ok else "",
                    round(found["ttft"] / ok, 3) if ok else "",
                ]
            )


def write_session(
    home: Path,
    session_id: str = "llamacpp_test",
    url: str = "",
    status: str = "running",
    **extra: Any,
) -> Path:
    directory = home / session_id
    (directory / "results").mkdir(parents=True, exist_ok=True)
    (directory / "prometheus").mkdir(exist_ok=True)
    (directory / "prometheus" / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 5s\nscrape_configs: []\n"
    )
    (directory / "recipes").mkdir(exist_ok=True)
    (directory / "recipes" / "client.yml").write_text("client:\n  name: llm-client\n")
    record = {
        "id": session_id,
        "status": status,
        "created": "2026-01-01T00:00:00",
        "profile": str(home / "no-such-profile"),  # SLURM is never asked in unit tests
        "results_dir": str(directory / "results"),
        "jobs": {
            "service": {"job_id": SERVICE_JOB, "node": "node1", "state": "RUNNING"},
            "client": {"job_id": "12", "node": "node2", "state": "COMPLETED"},
            "prometheus": {"job_id": "13", "node": "node3", "state": "RUNNING"},
        },
        "service": {
            "name": "llamacpp",
            "type": "llamacpp",
            "exporter": "cadvisor",
            "exporter_job": "llamacpp-cadvisor",
        },
        "client": {"name": "llm-client"},
        "prometheus": {"url": url, "storage": str(directory / "prometheus" / "data")},
        "recipes": {"service": "/recipes/service.yml", "client": "/recipes/client.yml"},
        "notes": ["prompt_lengths is not used"],
        "versions": {"hpcansible": "0.1.0", "slurm": "22.05.8"},
        **extra,
    }
    (directory / "session.json").write_text(json.dumps(record))
    return directory


# --- a fake Prometheus ---------------------------------------------------------------------

Answer = Callable[[str, float, float, float], list[dict[str, Any]]]
Samples = Callable[[str, float, float], list[dict[str, Any]]]  # selector, start, end
RANGE_SELECTOR = re.compile(r"^(?P<selector>.+)\[(?P<seconds>\d+)s\]$")


def busy_during(window: tuple[float, float], idle: float, busy: float) -> Callable[[float], float]:
    return lambda t: busy if window[0] <= t <= window[1] else idle


def counter_samples(functions: dict[str, Callable[[float], float]], every: float = 10.0) -> Samples:
    """Raw samples every `every` seconds (cAdvisor's housekeeping) of a counter."""

    def samples(selector: str, start: float, end: float) -> list[dict[str, Any]]:
        for pattern, function in functions.items():
            if re.search(pattern, selector):
                first = start - start % every + every
                times = [first + k * every for k in range(int((end - first) // every) + 1)]
                return [{"metric": {}, "values": [[t, str(function(t))] for t in times]}]
        return []

    return samples


def range_answer(functions: dict[str, Callable[[float], float]]) -> Answer:
    """query_range answers: the first pattern found in the expression gives the values."""

    def answer(expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        for pattern, function in functions.items():
            if re.search(pattern, expr):
                count = int((end - start) // step) + 1
                values = [[start + k * step, str(function(start + k * step))] for k in range(count)]
                return [{"metric": {"gpu": "0"}, "values": values}]
        return []

    return answer


class FakePrometheus:
    """/api/v1/query, /api/v1/query_range and /api/v1/targets on 127.0.0.1; remembers every
    request."""

    def __init__(
        self, answer: Answer, password: str | None = None, samples: Samples | None = None
    ) -> None:
        self.answer = answer
        self.raw = samples or (lambda selector, start, end: [])
        self.requests: list[tuple[str, dict[str, str], str]] = []  # path, params, auth
        # What /api/v1/targets gives as every target's lastScrape, one per request (the last
        # one stays): epoch seconds; none, long after every fixture load (START + 1000).
        self.last_scrapes: list[float] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                auth = self.headers.get("Authorization", "")
                fake.requests.append((parts.path, params, auth))
                if password is not None and auth != basic("hpcansible", password):
                    self.reply(401, {"status": "error", "error": "unauthorized"})
                elif parts.path == "/api/v1/query_range":
                    result = fake.answer(
                        params["query"],
                        float(params["start"]),
                        float(params["end"]),
                        float(params["step"]),
                    )
                    self.reply(
                        200,
                        {"status": "success", "data": {"resultType": "matrix", "result": result}},
                    )
                elif parts.path == "/api/v1/query" and RANGE_SELECTOR.match(params["query"]):
                    found = RANGE_SELECTOR.match(params["query"])
                    end = float(params["time"])
                    result = fake.raw(found["selector"], end - int(found["seconds"]), end)
                    self.reply(200, {"status": "success", "data": {"result": result}})
                elif parts.path == "/api/v1/targets":
                    scrapes = fake.last_scrapes
                    last = (
                        (scrapes.pop(0) if len(scrapes) > 1 else scrapes[0])
                        if scrapes
                        else START + 1000
                    )
                    target = {
                        "labels": {"job": "redis-cadvisor"},
                        "health": "up",
                        "lastScrape": iso(last),
                    }
                    self.reply(200, {"status": "success", "data": {"activeTargets": [target]}})
                elif parts.path == "/api/v1/query":
                    machine = "machine_cpu_cores" in params["query"]
                    result = [{"metric": {}, "value": [0, "2"]}] if machine else []
                    self.reply(200, {"status": "success", "data": {"result": result}})
                else:
                    self.reply(404, {"status": "error", "error": "not found"})

            def reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def queries(self) -> list[str]:
        return [p["query"] for path, p, _ in self.requests if path == "/api/v1/query_range"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- looking at images ---------------------------------------------------------------------


def colored_pixels(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels are within `tolerance` of the colour (a plotted line's)."""
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")[..., :3] * 255
    distance = abs(pixels - rgb).max(axis=-1)
    return int((distance <= tolerance).sum())


def saturated_pixels(png: bytes) -> int:
    """Pixels of a clear colour: data (lines, bars); not the white, grey and black of axes,
    grid and text, nor the pale shading of the measured window."""
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")[..., :3] * 255
    return int(((pixels.max(axis=-1) - pixels.min(axis=-1)) > 80).sum())


LINE_BLUE = (0x1F, 0x77, 0xB4)
