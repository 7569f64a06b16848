"""Accuracy against calibrated servers: reported TTFT, TPOT and E2E medians vs the truth.

Servers: tests/bench/calibrated_server.py (threads + high-resolution sleeps, sends token k
at arrival + TTFT + k * TPOT) and the Ollama stand-in (ollama-standin serve with
OLLAMA_STANDIN_TTFT_MS / _TPOT_MS). Truth: TTFT, TPOT and E2E = TTFT + (N - 1) * TPOT.
Target: medians within 1 ms of the truth at 1 and 16 concurrent streams, token counts
exact, every request accounted for.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import (
    OLLAMA_STANDIN,
    calibrated_server,
    ollama_standin,
    records,
    run_bench,
    table,
    verdict,
)

TTFT_MS = 50.0
TPOT_MS = 10.0
TOKENS = 50
E2E_MS = TTFT_MS + (TOKENS - 1) * TPOT_MS
TOLERANCE_MS = 1.0
MODEL = "calibration"


def measure(url: str, streams: int, requests: int, output: Path) -> dict[str, Any]:
    # one warm-up request per stream (excluded): it opens the connection
    summary = run_bench(
        [
            "--endpoint",
            url,
            "--api",
            "ollama",
            "--model",
            MODEL,
            "--concurrency",
            str(streams),
            "--requests",
            str(requests + streams),
            "--warmup-requests",
            str(streams),
            "--output-tokens",
            str(TOKENS),
            "--timeout",
            "60",
        ],
        output,
    )
    rows = [r for r in records(output) if not r["warmup"]]
    latency = summary["latency_ms"]
    result = {
        "streams": streams,
        "requests": requests,
        "ttft": latency["ttft"]["p50"],
        "tpot": latency["tpot"]["p50"],
        "e2e": latency["e2e"]["p50"],
        # what the server itself measured (arrival -> first / last token)
        "server_ttft": statistics.median(r["prompt_eval_duration"] / 1e6 for r in rows),
        "server_e2e": statistics.median(r["total_duration"] / 1e6 for r in rows),
        "accounted": summary["requests"]["total"] == requests
        and summary["requests"]["succeeded"] == requests,
        "tokens_exact": summary["tokens"]["output_total"] == requests * TOKENS
        and all(r["output_tokens"] == TOKENS and len(r["chunks_ms"]) == TOKENS for r in rows),
    }
    result["ok"] = (
        abs(result["ttft"] - TTFT_MS) <= TOLERANCE_MS
        and abs(result["tpot"] - TPOT_MS) <= TOLERANCE_MS
        and abs(result["e2e"] - E2E_MS) <= TOLERANCE_MS
        and result["accounted"]
        and result["tokens_exact"]
    )
    return result


def main(quick: bool = False) -> list[dict[str, Any]]:
    plan = [(1, 5 if quick else 20), (16, 32 if quick else 160)]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        work = Path(tmp)
        servers = [("calibrated", lambda: calibrated_server(TTFT_MS, TPOT_MS))]
        if OLLAMA_STANDIN.exists():
            servers.append(
                (
                    "ollama-standin",
                    lambda: ollama_standin(work, MODEL, TTFT_MS, TPOT_MS, parallel=16),
                )
            )
        for name, start in servers:
            with start() as server:
                for streams, requests in plan:
                    result = measure(server.url, streams, requests, work / f"{name}-{streams}")
                    results.append({"server": name, **result})
    print(
        f"Calibration: truth TTFT {TTFT_MS:g} ms, TPOT {TPOT_MS:g} ms, E2E {E2E_MS:g} ms "
        f"({TOKENS} tokens); target: medians within {TOLERANCE_MS:g} ms"
    )
    print(
        table(
            [
                "server",
                "streams",
                "reqs",
                "TTFT p50",
                "dTTFT",
                "TPOT p50",
                "dTPOT",
                "E2E p50",
                "dE2E",
                "srv TTFT",
                "srv E2E",
                "tokens",
                "all",
                "result",
            ],
            [
                [
                    r["server"],
                    r["streams"],
                    r["requests"],
                    r["ttft"],
                    r["ttft"] - TTFT_MS,
                    r["tpot"],
                    r["tpot"] - TPOT_MS,
                    r["e2e"],
                    r["e2e"] - E2E_MS,
                    r["server_ttft"],
                    r["server_e2e"],
                    "exact" if r["tokens_exact"] else "WRONG",
                    "yes" if r["accounted"] else "NO",
                    verdict(r["ok"]),
                ]
                for r in results
            ],
        )
    )
    print("(srv = the server's own clock from request arrival; the difference to the client's")
    print(" figure is loopback, the server's request parsing and the client's own overhead)")
    return results


if __name__ == "__main__":
    outcome = main(quick="--quick" in sys.argv)
    sys.exit(0 if all(r["ok"] for r in outcome if r["server"] == "calibrated") else 1)
