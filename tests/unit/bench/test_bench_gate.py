"""The start gate: the measured load waits for the session's gate file, or starts anyway
after gate_timeout; by hand (no gate_file) nothing waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from bench_testing import free_port, scrape_until
from hpcansible_jobs.bench.gate import StartGate, read_gate_file

RELEASED_AT = "2026-01-01T12:00:00.000Z"
WAITING = 'hpcansible_bench_gate_open{session_id="local"} 0.0'


class Release(threading.Thread):
    """Writes the gate file atomically after `delay_s`, as the session's playbook does;
    `at` is the wall-clock time it did."""

    def __init__(self, path: Path, delay_s: float) -> None:
        super().__init__()
        self.path, self.delay_s, self.at = path, delay_s, 0.0
        self.start()

    def run(self) -> None:
        time.sleep(self.delay_s)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps({"released_at": RELEASED_AT, "by": "test"}))
        self.at = time.time()
        os.replace(partial, self.path)


def release_later(path: Path, delay_s: float) -> Release:
    return Release(path, delay_s)


def parse(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_the_load_waits_for_the_gate(run_bench, http_server, tmp_path: Path) -> None:
    """The session's side: once it sees the client wait (gate_open 0), it releases."""
    gate = tmp_path / "gate.json"
    port = free_port()
    seen: list[str | None] = []
    released: list[Release] = []

    def release_when_waiting() -> None:
        seen.append(scrape_until(port, lambda text: WAITING in text, timeout_s=20))
        released.append(release_later(gate, 0.3))

    scraper = threading.Thread(target=release_when_waiting)
    scraper.start()
    code, summary, _ = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--requests",
        "5",
        "--gate-file",
        str(gate),
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
    )
    scraper.join()
    released[0].join()
    assert code == 0
    assert summary["gate"]["released_at"] == RELEASED_AT and summary["gate"]["by"] == "test"
    assert summary["gate"]["timed_out"] is False
    assert 0.3 <= summary["gate"]["waited_s"] < 10
    # nothing measured before the release: the window starts after it
    assert parse(summary["window"]["start"]) >= released[0].at
    assert parse(summary["window"]["end"]) >= parse(summary["window"]["start"])
    assert "gate_timed_out" not in [w["code"] for w in summary["warnings"]]
    assert seen[0] is not None and 'step="run"} 1.0' not in seen[0]  # not running yet


def test_the_load_starts_anyway_after_the_timeout(
    run_bench, http_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = tmp_path / "never.json"
    started = time.monotonic()
    code, summary, _ = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--requests",
        "3",
        "--gate-file",
        str(gate),
        "--gate-timeout",
        "0.4",
    )
    assert code == 0 and summary["requests"]["succeeded"] == 3
    assert time.monotonic() - started >= 0.4
    assert summary["gate"]["timed_out"] is True and summary["gate"]["released_at"] is None
    assert "gate_timed_out" in [w["code"] for w in summary["warnings"]]
    err = capsys.readouterr().err
    assert f"gate {gate} not released after 0.4 s (gate_timeout); starting" in err


def test_by_hand_nothing_waits(run_bench, http_server) -> None:
    started = time.monotonic()
    _, summary, _ = run_bench("--endpoint", http_server + "/static", "--api", "http")
    assert summary["gate"] is None
    assert time.monotonic() - started < 5


def test_a_sweep_waits_once_and_every_point_carries_the_gate(
    run_bench, http_server, tmp_path: Path
) -> None:
    gate = tmp_path / "gate.json"
    released = release_later(gate, 0.3)
    _, top, _ = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--concurrency",
        "1,2",
        "--requests",
        "4",
        "--gate-file",
        str(gate),
    )
    released.join()
    assert top["gate"]["released_at"] == RELEASED_AT
    assert [p["summary"]["gate"] for p in top["points"]] == [top["gate"], top["gate"]]
    first, second = (p["summary"]["window"] for p in top["points"])
    assert top["window"] == {"start": first["start"], "end": second["end"]}


def test_gate_with_workers(run_bench, http_server, tmp_path: Path) -> None:
    gate = tmp_path / "gate.json"
    released = release_later(gate, 0.5)
    _, summary, _ = run_bench(
        "--endpoint",
        http_server + "/static",
        "--api",
        "http",
        "--rate",
        "200",
        "--requests",
        "10",
        "--workers",
        "2",
        "--gate-file",
        str(gate),
    )
    released.join()
    assert summary["requests"]["succeeded"] == 10
    assert summary["gate"]["timed_out"] is False
    assert parse(summary["window"]["start"]) >= released.at


def test_a_gate_file_that_is_not_json_still_opens_the_gate(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.write_text("released\n")
    released_at, by = read_gate_file(gate)
    assert by is None and released_at.startswith(str(datetime.now().year))
    states: list[bool] = []
    outcome = StartGate(str(gate), 5, states.append).wait()
    assert outcome is not None and not outcome.timed_out and outcome.waited_s < 1
    assert states == [False, False, True]  # closed from the start, waited, opened
    assert StartGate(None, 5, states.append).wait() is None and states[-1] is True


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_signal_while_waiting_ends_the_client(
    http_server, tmp_path: Path, workers: str
) -> None:
    """scancel during the wait: exit 130 at once, nothing measured, no wait for the timeout."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hpcansible", "bench", "--endpoint", http_server + "/static",
         "--api", "http", "--rate", "10", "--requests", "4", "--workers", workers,
         "--gate-file", str(tmp_path / "never"), "--output", str(tmp_path / "out"), "--quiet",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert scrape_until(port, lambda text: WAITING in text, timeout_s=20)
        time.sleep(0.5 * int(workers))  # most likely at the gate by now: either way, 130
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert time.monotonic() - started < 10  # not the gate's timeout (180 s)
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()
