"""The native Redis engine against plain redis-benchmark, with the Python engine beside them.

One redis-server on loopback (with a password, as in a session), the same load for all:
clients, requests per test, value size and the tests set,get. Plain redis-benchmark and
`hpcansible bench` with the native engine (redis-benchmark under the client: its password
through the preload, its progress lines parsed for the live metrics) run alternately, five
times each; the ratio is the median of the five pairs' ratios (each pair back to back, so
that what else the machine does weighs on both alike), each the client's figure over the
plain tool's (both: requests / the tool's own time per test, summed over the tests). Target:
at least 0.95. The wall-clock ratio (requests / the whole command's time, start-up included)
is shown beside it. The Python engine (redis-py, asyncio, one process) runs the same GETs.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_real_servers import REDIS_PASSWORD, redis_server
from bench_support import STEP_TIMEOUT_S, run_bench, table, verdict

TARGET_RATIO = 0.95
TESTS = "set,get"
ROUNDS = 5
CSV_ROW = re.compile(r'^"(?P<test>[^"]+)","(?P<rps>[\d.]+)"', re.MULTILINE)


def plain_redis_benchmark(port: int, clients: int, requests: int) -> dict[str, float]:
    """redis-benchmark as a user runs it; requests/s over its per-test times, and wall time."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-a", REDIS_PASSWORD,
            "-c", str(clients), "-n", str(requests), "-d", "64", "-r", "10000", "-t", TESTS,
            "--csv"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=True)
    wall = time.perf_counter() - started
    rates = [float(row["rps"]) for row in CSV_ROW.finditer(done.stdout)]
    if len(rates) != len(TESTS.split(",")):
        raise RuntimeError(f"redis-benchmark printed no figures: {done.stdout[-300:]}")
    seconds = sum(requests / rate for rate in rates)
    total = requests * len(rates)
    return {"requests_per_s": total / seconds, "wall_requests_per_s": total / wall}


def native_engine(url: str, clients: int, requests: int, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    summary = run_bench(
        ["--endpoint", url, "--api", "redis", "--password", REDIS_PASSWORD, "--engine", "native",
         "--tests", TESTS, "--concurrency", str(clients), "--requests", str(requests),
         "--value-size", "64", "--keyspace", "10000", "--metrics-port", "0"],
        out,
    )  # fmt: skip
    wall = time.perf_counter() - started
    assert summary["engine"]["name"] == "redis-benchmark", summary["engine"]
    total = summary["requests"]["succeeded"]
    rate = summary["throughput"]["requests_per_s"]
    return {"requests_per_s": rate, "wall_requests_per_s": total / wall}


def python_engine(url: str, clients: int, requests: int, out: Path) -> dict[str, float]:
    summary = run_bench(
        ["--endpoint", url, "--api", "redis", "--password", REDIS_PASSWORD, "--engine", "python",
         "--redis-command", "get", "--concurrency", str(clients), "--requests", str(requests),
         "--value-size", "64", "--keyspace", "10000", "--records", "none"],
        out,
    )  # fmt: skip
    return {
        "requests_per_s": summary["throughput"]["requests_per_s"],
        "cpu": summary["client_health"]["cpu"]["max_percent_of_core"],
    }


def main(quick: bool = False) -> list[dict[str, Any]]:
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        print("redis-server or redis-benchmark not installed (Debian redis-server, redis-tools)")
        return [{"ok": False}]
    requests = 50_000 if quick else 200_000
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-native-redis-") as tmp:
        workdir = Path(tmp)
        with redis_server(workdir) as server:
            url = f"redis://127.0.0.1:{server.port}"
            for clients in (1, 50):
                n = requests // 4 if clients == 1 else requests
                plain, ours = [], []
                for round_ in range(ROUNDS):
                    plain.append(plain_redis_benchmark(server.port, clients, n))
                    ours.append(native_engine(url, clients, n, workdir / f"n{clients}-{round_}"))
                python = python_engine(url, clients, n // 4, workdir / f"p{clients}")
                median = {
                    name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                    for name, runs in (("plain", plain), ("ours", ours))
                }
                pairs = list(zip(ours, plain, strict=True))
                ratio = statistics.median(
                    n["requests_per_s"] / p["requests_per_s"] for n, p in pairs
                )
                wall_ratio = statistics.median(
                    n["wall_requests_per_s"] / p["wall_requests_per_s"] for n, p in pairs
                )
                results.append(
                    {"clients": clients, "requests": n, "median": median, "python": python,
                     "ratio": ratio, "wall_ratio": wall_ratio, "ok": ratio >= TARGET_RATIO}
                )  # fmt: skip
    print(
        f"redis-server on loopback, tests {TESTS}, value 64 B, keyspace 10000; medians of "
        f"{ROUNDS} alternating runs, ratios the medians of the pairs' ratios; python engine: "
        "GETs, one process"
    )
    rows = [
        [
            r["clients"],
            r["requests"],
            round(r["median"]["plain"]["requests_per_s"]),
            round(r["median"]["ours"]["requests_per_s"]),
            r["ratio"],
            r["wall_ratio"],
            round(r["python"]["requests_per_s"]),
            r["python"]["requests_per_s"] / r["median"]["plain"]["requests_per_s"],
            verdict(r["ok"]),
        ]
        for r in results
    ]
    print(
        table(
            ["clients", "req/test", "redis-benchmark/s", "native/s", "ratio", "wall ratio",
             "python/s", "python ratio", f"ratio >= {TARGET_RATIO}"],
            rows,
        )
    )  # fmt: skip
    return results


if __name__ == "__main__":
    outcome = main(quick="--quick" in sys.argv)
    sys.exit(0 if all(r["ok"] for r in outcome) else 1)
