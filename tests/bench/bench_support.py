"""Helpers for the benchmark scripts: servers on loopback, the bench CLI, wrk, tables.

Every server started here is a child process of the script, on 127.0.0.1 and a free
port, with its files in a temporary directory; `stop()` ends exactly that process.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpcansible.processes import end_process

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
OLLAMA_STANDIN = [PYTHON, "-m", "hpcansible_testbed.standins.ollama"]
# No single benchmark step may run longer than this (seconds).
STEP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class Server:
    """A child process serving on 127.0.0.1:port."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = port
        self.log = log
        output = log.open("wb") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, stdout=output, stderr=output
        )
        try:
            wait_for_port(port)
        except RuntimeError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        end_process(self.process, grace_s=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def calibrated_server(ttft_ms: float, tpot_ms: float) -> Server:
    port = free_port()
    argv = [
        PYTHON,
        str(HERE / "calibrated_server.py"),
        "--port",
        str(port),
        "--ttft-ms",
        str(ttft_ms),
        "--tpot-ms",
        str(tpot_ms),
    ]
    return Server(argv, port)


def ollama_standin(
    workdir: Path, model: str, ttft_ms: float, tpot_ms: float, parallel: int
) -> Server:
    """`ollama-standin serve` with its models in `workdir` and `model` pulled."""
    port = free_port()
    env = {
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(workdir / "models"),
        "OLLAMA_STANDIN_TTFT_MS": str(ttft_ms),
        "OLLAMA_STANDIN_TPOT_MS": str(tpot_ms),
        "OLLAMA_NUM_PARALLEL": str(parallel),
    }
    server = Server([*OLLAMA_STANDIN, "serve"], port, env=env, log=workdir / "standin.log")
    subprocess.run(
        [str(OLLAMA_STANDIN), "pull", model],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return server


class Nginx(Server):
    """nginx with its own config in a temp dir: one worker, a small static file."""

    BODY_BYTES = 612  # the size of Debian's default index page

    def __init__(self, workers: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.root.chmod(0o755)  # the worker runs as nobody and must read html/
        (self.root / "html").mkdir()
        (self.root / "logs").mkdir()
        (self.root / "html" / "index.html").write_bytes(b"a" * self.BODY_BYTES)
        port = free_port()
        temp_paths = " ".join(
            f"{kind}_temp_path {self.root}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.root / "nginx.conf").write_text(
            f"worker_processes {workers};\ndaemon off;\npid {self.root}/nginx.pid;\n"
            f"error_log {self.root}/logs/error.log;\n"
            "events { worker_connections 8192; }\n"
            f"http {{ access_log off; {temp_paths} keepalive_requests 10000000;\n"
            f"  server {{ listen 127.0.0.1:{port} backlog=4096; root {self.root}/html; }} }}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        super().__init__([nginx, "-p", str(self.root), "-c", str(self.root / "nginx.conf")], port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/index.html"

    def worker_pids(self) -> list[int]:
        """nginx's worker processes: the children of the master we started."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


def run_bench_with_usage(
    args: Sequence[str], output: Path, timeout_s: float = STEP_TIMEOUT_S
) -> tuple[dict[str, Any], resource.struct_rusage]:
    """Run `python -m hpcansible bench ARGS --output OUTPUT --quiet`: its summary.json and
    the resources that process alone used (ru_maxrss: its own peak RSS, in kB)."""
    argv = [PYTHON, "-m", "hpcansible", "bench", *args, "--output", str(output), "--quiet"]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        watchdog = threading.Timer(timeout_s, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1) or not (output / "summary.json").is_file():
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()[-800:]
            if process.returncode == -signal.SIGKILL:
                message = f"killed after {timeout_s:g} s; {message}"
            raise RuntimeError(f"bench failed ({process.returncode}): {message}")
    return json.loads((output / "summary.json").read_text()), usage


def run_bench(
    args: Sequence[str], output: Path, timeout_s: float = STEP_TIMEOUT_S
) -> dict[str, Any]:
    """Run `python -m hpcansible bench ARGS --output OUTPUT --quiet`; its summary.json."""
    return run_bench_with_usage(args, output, timeout_s)[0]


def records(output: Path) -> list[dict[str, Any]]:
    with (output / "requests.jsonl").open() as lines:
        return [json.loads(line) for line in lines]


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, connections: int, duration_s: int, threads: int = 1) -> dict[str, float]:
    """wrk's p50/p99 latency (ms) and requests/s."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30, check=True)
    result: dict[str, float] = {}
    for percent, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        found = re.search(rf"^\s+{percent}\s+([\d.]+)(us|ms|s)\s*$", done.stdout, re.M)
        if found is None:
            raise RuntimeError(f"wrk output without {percent}: {done.stdout}")
        result[key] = float(found.group(1)) * _WRK_UNITS[found.group(2)]
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    result["requests_per_s"] = float(rate.group(1)) if rate else 0.0
    return result


def pause_process(pid: int, after_s: float, pause_s: float) -> None:
    """SIGSTOP `pid` after `after_s`, SIGCONT it `pause_s` later (call from a thread)."""
    time.sleep(after_s)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(pause_s)
    finally:
        os.kill(pid, signal.SIGCONT)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (benchmark output goes to logs and docs)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
