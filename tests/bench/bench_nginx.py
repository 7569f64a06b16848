"""The bench client (--api http, closed loop) against wrk on a local nginx.

Same nginx (one worker, a 612-byte static file), same connection counts, one after the
other in one run: p50 and p99 side by side, and the client's throughput as a fraction of
wrk's. Target: the client's p50 within 0.25 ms of wrk's at 1 connection. wrk is C with
one thread here (one core, like one bench process); --workers 2 is shown for scale-out.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import Nginx, run_bench, run_wrk, table, verdict

P50_TOLERANCE_MS = 0.25


def measure_client(
    url: str, connections: int, duration_s: int, workers: int, output: Path
) -> dict[str, Any]:
    summary = run_bench(
        [
            "--endpoint",
            url,
            "--api",
            "http",
            "--concurrency",
            str(connections),
            "--duration",
            str(duration_s),
            "--warmup",
            "0.5",
            "--workers",
            str(workers),
            "--records",
            "none",
        ],
        output,
    )
    e2e = summary["latency_ms"]["e2e"]
    if e2e["p50"] is None:
        raise RuntimeError(f"no request succeeded: {summary['requests']}")
    return {
        "p50_ms": e2e["p50"],
        "p99_ms": e2e["p99"],
        "requests_per_s": summary["throughput"]["requests_per_s"],
        "failed": summary["requests"]["failed"],
        "cpu": summary["client_health"]["cpu"]["max_percent_of_core"],
    }


def main(quick: bool = False) -> list[dict[str, Any]]:
    duration = 2 if quick else 5
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp, Nginx() as nginx:
        for connections, workers in ((1, 1), (16, 1), (16, 2)):
            wrk = run_wrk(nginx.url, connections, duration, threads=workers)
            ours = measure_client(
                nginx.url, connections, duration, workers, Path(tmp) / f"c{connections}-w{workers}"
            )
            results.append(
                {"connections": connections, "workers": workers, "wrk": wrk, "ours": ours}
            )
    print(
        f"nginx static file, {duration} s per run; client = python -m hpcansible bench "
        "--api http (closed loop); wrk threads = client workers"
    )
    rows = []
    for r in results:
        wrk, ours = r["wrk"], r["ours"]
        delta = ours["p50_ms"] - wrk["p50_ms"]
        checked = r["connections"] == 1 and r["workers"] == 1
        rows.append(
            [
                r["connections"],
                r["workers"],
                wrk["p50_ms"],
                ours["p50_ms"],
                delta,
                wrk["p99_ms"],
                ours["p99_ms"],
                round(wrk["requests_per_s"]),
                round(ours["requests_per_s"]),
                ours["requests_per_s"] / wrk["requests_per_s"],
                ours["failed"],
                ours["cpu"],
                verdict(delta <= P50_TOLERANCE_MS) if checked else "",
            ]
        )
        r["ok"] = delta <= P50_TOLERANCE_MS if checked else True
    print(
        table(
            [
                "conns",
                "workers",
                "wrk p50",
                "ours p50",
                "dp50",
                "wrk p99",
                "ours p99",
                "wrk req/s",
                "ours req/s",
                "ratio",
                "failed",
                "cpu %",
                "p50 target",
            ],
            rows,
        )
    )

    return results


if __name__ == "__main__":
    outcome = main(quick="--quick" in sys.argv)
    sys.exit(0 if all(r["ok"] for r in outcome) else 1)
