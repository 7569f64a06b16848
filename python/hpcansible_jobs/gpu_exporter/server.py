"""`python -m hpcansible_jobs.gpu_exporter`: serve the job's GPU metrics on ADDRESS:PORT/metrics.

    python -m hpcansible_jobs.gpu_exporter --address "${node_address}" --port 9400
    python -m hpcansible_jobs.gpu_exporter --once          # one scrape to stdout, then exit

It ends on SIGTERM or SIGINT (scancel, the job script's end) with status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hpcansible_jobs.gpu_exporter import DEFAULT_PORT, EXPORTER_NAME
from hpcansible_jobs.gpu_exporter.collector import GpuCollector
from hpcansible_jobs.gpu_exporter.exposition import CONTENT_TYPE, render
from hpcansible_jobs.gpu_exporter.selection import job_selection
from hpcansible_jobs.gpu_exporter.xid import start_xid_thread

log = logging.getLogger("hpcansible_jobs.gpu_exporter")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hpcansible_jobs.gpu_exporter",
        description="GPU metrics of a SLURM job, with dcgm-exporter's names, from NVML.",
    )
    parser.add_argument(
        "--address", default="", help="address to listen on (default: every address)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: 9400)")
    parser.add_argument(
        "--job-id",
        default=os.environ.get("SLURM_JOB_ID", ""),
        help="value of the hpc_job label (default: $SLURM_JOB_ID)",
    )
    parser.add_argument(
        "--gpus",
        default=None,
        help="GPUs to watch, NVML indices or UUIDs, comma-separated "
        "(default: CUDA_VISIBLE_DEVICES, else SLURM_STEP_GPUS/SLURM_JOB_GPUS, else all)",
    )
    parser.add_argument("--once", action="store_true", help="print one scrape and exit")
    parser.add_argument("--verbose", action="store_true", help="log debug lines")
    return parser.parse_args(argv)


def handler_for(collector: GpuCollector) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        server_version = EXPORTER_NAME

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                body, content_type, status = render(collector.collect()), CONTENT_TYPE, 200
            elif self.path in ("/", "/health"):
                body = f"{EXPORTER_NAME}: GPU metrics at /metrics\n".encode()
                content_type, status = "text/plain; charset=utf-8", 200
            else:
                body, content_type, status = b"not found\n", "text/plain; charset=utf-8", 404
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return MetricsHandler


def serve(collector: GpuCollector, address: str, port: int) -> int:
    try:
        server = ThreadingHTTPServer((address, port), handler_for(collector))
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", address or "*", port, error.strerror or error)
        return 1
    server.daemon_threads = True

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        # scancel signals every process of the job, and the job script then signals its
        # children once more: stop once.
        if stopping.is_set():
            return
        stopping.set()
        log.info("stopping (%s)", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving http://%s:%d/metrics", address or "*", port)
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="hpcansible-gpu-exporter: %(message)s",
        stream=sys.stderr,
    )
    collector = GpuCollector(job_selection(os.environ, args.gpus), args.job_id)
    collector.start()
    if args.once:
        sys.stdout.buffer.write(render(collector.collect()))
        return 0
    stop_xids = None
    if collector.gpus and collector.nvml is not None:
        stop_xids = start_xid_thread(collector.nvml, collector.gpus, collector.record_xid)
    try:
        return serve(collector, args.address, args.port)
    finally:
        if stop_xids is not None:
            stop_xids.set()
