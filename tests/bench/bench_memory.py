"""Client memory: peak RSS of one bench process against the number of requests it made.

Open loop at a fixed rate against a local nginx, two run lengths; the difference in peak
RSS over the difference in requests is what each request costs while the run lasts
(per-request records stay in memory until the end, where they become requests.jsonl,
the histograms and the time series). There is no target in the issue: the figures say
how long a high-rate run can be before memory matters.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import Nginx, run_bench_with_usage, table

RATE = 3000


def peak_rss_run(url: str, requests: int, output: Path) -> dict[str, Any]:
    """Run the bench client for `requests` requests; its own peak RSS (not its children's)."""
    args = [
        "--endpoint", url, "--api", "http",
        "--rate", str(RATE), "--arrivals", "constant",
        "--requests", str(requests), "--warmup", "0",
        "--records", "jsonl", "--timeout", "10",
    ]  # fmt: skip
    _, usage = run_bench_with_usage(args, output)
    return {
        "requests": requests,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "records_mb": (output / "requests.jsonl").stat().st_size / 2**20,
    }


def main(quick: bool = False) -> list[dict[str, Any]]:
    counts = (15_000, 150_000) if quick else (15_000, 90_000, 150_000)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, Nginx() as nginx:
        rows = [peak_rss_run(nginx.url, n, Path(tmp) / str(n)) for n in counts]
    # Over the widest span: start-up's own peak (imports, the first connections) hides the
    # records of a short run, so this is a lower bound until the runs are long.
    smaller, larger = rows[0], rows[-1]
    per_request = (
        (larger["peak_rss_mb"] - smaller["peak_rss_mb"])
        * 2**20
        / (larger["requests"] - smaller["requests"])
    )
    print(f"one bench process, open loop {RATE:,}/s against nginx, records kept until the end")
    print(
        table(
            ["requests", "peak RSS MB", "requests.jsonl MB"],
            [[r["requests"], r["peak_rss_mb"], r["records_mb"]] for r in rows],
        )
    )
    hour = per_request * RATE * 3600 / 2**30
    print(
        f"from {smaller['requests']:,} to {larger['requests']:,} requests each request adds "
        f"at least {per_request:,.0f} bytes of peak RSS; an hour at {RATE:,}/s would add "
        f"{hour:,.1f} GB or more"
    )
    return [*rows, {"summary": True, "ok": True, "bytes_per_request": per_request}]


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
