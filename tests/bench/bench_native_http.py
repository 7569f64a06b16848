"""The native HTTP engine against plain wrk on nginx, with the Python engine beside them.

The same nginx (one worker, a 612-byte static file, bench_support.Nginx), the same
connections, one wrk thread, the same duration. Plain wrk and `hpcansible bench --engine
native` (wrk under the client: its Lua report, its written bytes polled for the live
metrics) run alternately, five times each; the ratio is the median of the five pairs' ratios
(each pair ran back to back, so that what else the machine does weighs on both alike), each
the client's requests/s over plain wrk's (both wrk's own figure over its own duration).
Target: at least 0.95. The Python engine (aiohttp, one process, closed loop) runs the same
load beside them. wrk2, an open loop at a set rate, is not packaged for Debian 12.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import Nginx, run_bench, run_wrk, table, verdict

TARGET_RATIO = 0.95
ROUNDS = 5


def bench_args(url: str, connections: int, duration_s: int, engine: str) -> list[str]:
    args = ["--endpoint", url, "--api", "http", "--engine", engine,
            "--concurrency", str(connections), "--duration", str(duration_s)]  # fmt: skip
    return args + (["--threads", "1"] if engine == "native" else ["--records", "none"])


def main(quick: bool = False) -> list[dict[str, Any]]:
    duration = 2 if quick else 4
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-native-http-") as tmp, Nginx() as nginx:
        for connections in (1, 16):
            plain, ours = [], []
            for round_ in range(ROUNDS):
                plain.append(run_wrk(nginx.url, connections, duration)["requests_per_s"])
                summary = run_bench(
                    bench_args(nginx.url, connections, duration, "native"),
                    Path(tmp) / f"n{connections}-{round_}",
                )
                assert summary["engine"]["name"] == "wrk", summary["engine"]
                ours.append(summary["throughput"]["requests_per_s"])
            args = bench_args(nginx.url, connections, duration, "python")
            python = run_bench(args, Path(tmp) / f"p{connections}")["throughput"]["requests_per_s"]
            ratio = statistics.median(n / w for n, w in zip(ours, plain, strict=True))
            results.append(
                {"connections": connections, "wrk": statistics.median(plain),
                 "native": statistics.median(ours), "python": python, "ratio": ratio,
                 "ok": ratio >= TARGET_RATIO}
            )  # fmt: skip
    print(
        f"nginx static file on loopback, {duration} s per run, one wrk thread; medians of "
        f"{ROUNDS} alternating runs, ratio the median of the pairs' ratios; python engine: one "
        "process, closed loop"
    )
    rows = [
        [r["connections"], round(r["wrk"]), round(r["native"]), r["ratio"], round(r["python"]),
         r["python"] / r["wrk"], verdict(r["ok"])]
        for r in results
    ]  # fmt: skip
    print(
        table(
            ["conns", "wrk/s", "native/s", "ratio", "python/s", "python ratio",
             f"ratio >= {TARGET_RATIO}"],
            rows,
        )
    )  # fmt: skip
    return results


if __name__ == "__main__":
    outcome = main(quick="--quick" in sys.argv)
    sys.exit(0 if all(r["ok"] for r in outcome) else 1)
