"""Coordinated omission: the server stops for 1 s during a 1,000 requests/s open-loop run.

nginx's worker gets SIGSTOP 2.5 s into a 6 s run and SIGCONT 1 s later. With 16
connections (as wrk2 would hold) the requests due during the stall wait for a free
connection: latency from the actual send hides most of that wait, latency from the
intended send (e2e_intended) shows it, and the late sends are counted. With the default
in-flight cap (1024) requests keep going out on schedule and both views show the stall.
Target: the intended-time p99 reflects the stall (>= 500 ms here) and late sends are
counted.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_support import PYTHON, Nginx, run_bench, table, verdict

RATE = 1000
DURATION_S = 6.0
PAUSE_AT_S = 2.5  # after the client's first send (startup measured, see below)
PAUSE_S = 1.0
STARTUP_S = 0.6  # python -m hpcansible bench needs this long before its first request


def measure(nginx: Nginx, connections: int | None, stall: bool, output: Path) -> dict[str, Any]:
    args = [
        "--endpoint",
        nginx.url,
        "--api",
        "http",
        "--rate",
        str(RATE),
        "--arrivals",
        "constant",
        "--duration",
        str(DURATION_S),
        "--timeout",
        "10",
        "--records",
        "none",
    ]
    if connections:
        args += ["--connections", str(connections)]
    pauser = None
    if stall:
        (worker,) = nginx.worker_pids()
        pauser = threading.Thread(target=_pause, args=(worker,))
        pauser.start()
    started = time.monotonic()
    summary = run_bench(args, output)
    if pauser is not None:
        pauser.join()
    latency = summary["latency_ms"]
    achieved = summary["load"]["achieved"]
    return {
        "connections": connections or summary["load"]["asked"]["connections"],
        "stall": stall,
        "e2e": latency["e2e"],
        "intended": latency["e2e_intended"],
        "late": achieved["late_sends"],
        "send_lag_p99": achieved["send_lag_ms"]["p99"],
        "total": summary["requests"]["total"],
        "failed": summary["requests"]["failed"],
        "elapsed": time.monotonic() - started,
    }


def _pause(pid: int) -> None:
    from bench_support import pause_process

    pause_process(pid, STARTUP_S + PAUSE_AT_S, PAUSE_S)


def main(quick: bool = False) -> list[dict[str, Any]]:
    del quick  # one size: the stall needs the whole run
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-co-") as tmp, Nginx() as nginx:
        for connections, stall in ((16, False), (16, True), (None, True)):
            name = f"c{connections}-{'stall' if stall else 'base'}"
            results.append(measure(nginx, connections, stall, Path(tmp) / name))
    print(
        f"open loop {RATE} req/s constant for {DURATION_S:g} s; nginx worker SIGSTOPped "
        f"for {PAUSE_S:g} s at ~{PAUSE_AT_S:g} s; python: {PYTHON}"
    )
    rows = []
    for r in results:
        e2e, intended = r["e2e"], r["intended"]
        rows.append(
            [
                r["connections"],
                "yes" if r["stall"] else "no",
                r["total"],
                r["failed"],
                e2e["p50"],
                e2e["p99"],
                e2e["p999"],
                e2e["max"],
                intended["p50"],
                intended["p99"],
                intended["max"],
                r["late"],
                r["send_lag_p99"],
            ]
        )
    print(
        table(
            [
                "conns",
                "stall",
                "requests",
                "failed",
                "e2e p50",
                "e2e p99",
                "e2e p999",
                "e2e max",
                "intended p50",
                "intended p99",
                "intended max",
                "late sends",
                "send lag p99",
            ],
            rows,
        )
    )
    stalled = results[1]
    ok = stalled["intended"]["p99"] >= 500.0 and stalled["late"] >= 500
    print(
        f"16 connections with the stall: intended p99 {stalled['intended']['p99']:,.1f} ms vs "
        f"actual-send p99 {stalled['e2e']['p99']:,.1f} ms, {stalled['late']} late sends: "
        f"{verdict(ok)}"
    )
    return [*results, {"summary": True, "ok": ok}]


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome[-1]["ok"] else 1)
