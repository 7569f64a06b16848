"""`ollama-standin`: the hpcansible STAND-IN for Ollama. It is not Ollama and runs no model.

It mirrors the `ollama` command line (serve, pull, list/ls, ps, rm, -v) and serves Ollama's HTTP
API (native /api/* and OpenAI-compatible /v1/*) with simulated, precisely timed token streams, so
that hpcansible's roles and benchmark client can be tested where Ollama cannot be installed.

Real Ollama environment variables honoured:
  OLLAMA_HOST          [scheme://]host[:port] to listen on / talk to (default 127.0.0.1:11434)
  OLLAMA_MODELS        model store (default ~/.ollama/models); pulls write real-layout manifests
  OLLAMA_NUM_PARALLEL  concurrent generations per model, others queue (default 4)
  OLLAMA_MAX_QUEUE     queued requests before 503 "server busy" (default 512)
  OLLAMA_KEEP_ALIVE    how long an idle model stays loaded (default 5m; negative = forever)
Stand-in calibration (not in Ollama):
  OLLAMA_STANDIN_TTFT_MS   time to first token after the request arrives (default 50)
  OLLAMA_STANDIN_TPOT_MS   time per further output token (default 10)
  OLLAMA_STANDIN_TOKENS    output tokens when the request sets no limit (default 32)
  OLLAMA_STANDIN_LOAD_MS   model load time on a cold model's first request (default 0)
  OLLAMA_STANDIN_VERSION   version reported by /api/version (default 0.6.5)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from hpcansible_testbed.standins._gocompat import format_rfc3339_nano
from hpcansible_testbed.standins._ollama_settings import (
    DEFAULT_VERSION,
    ServerSettings,
    parse_ollama_host,
)

STANDIN_NOTICE = "hpcansible Ollama stand-in (simulated inference, not real Ollama)"
CONNECT_ERROR = "could not connect to ollama app, is it running?"
SHUTDOWN_GRACE_SECONDS = 2.0
LISTEN_BACKLOG = 128  # as web.TCPSite


class CommandError(Exception):
    """Printed as "Error: <message>" with exit status 1, as the real CLI does."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        return show_version()
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except CommandError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ollama-standin",
        description=(
            f"{STANDIN_NOTICE}. Mirrors the `ollama` command line and HTTP API so hpcansible can "
            "be tested where Ollama cannot be installed. It generates placeholder tokens on a "
            "calibrated schedule; it does not run models."
        ),
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="store_true", help="show version information")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", aliases=["start"], help="start the stand-in server")
    serve.set_defaults(func=lambda _args: serve_forever())
    pull = commands.add_parser("pull", help="pull a model (writes its manifest; no weights)")
    pull.add_argument("model")
    pull.add_argument("--insecure", action="store_true", help="accepted for compatibility")
    pull.set_defaults(func=lambda args: pull_model(args.model))
    listing = commands.add_parser("list", aliases=["ls"], help="list pulled models")
    listing.set_defaults(func=lambda _args: list_models())
    running = commands.add_parser("ps", help="list loaded models")
    running.set_defaults(func=lambda _args: list_running())
    remove = commands.add_parser("rm", help="remove a model")
    remove.add_argument("models", nargs="+", metavar="model")
    remove.set_defaults(func=lambda args: remove_models(args.models))
    return parser


# ----------------------------------------------------------------------------- server


def serve_forever() -> int:
    settings = ServerSettings.from_environ(os.environ, warn=lambda text: log("WARN", text))
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_serve(settings))
    return uvloop.run(_serve(settings))


async def _serve(settings: ServerSettings) -> int:
    from aiohttp import web

    from hpcansible_testbed.standins._arrival import stamping_protocols
    from hpcansible_testbed.standins._ollama_api import GinAccessLogger, create_app

    runner = web.AppRunner(
        create_app(settings),
        access_log_class=GinAccessLogger,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    try:
        # Not web.TCPSite: each connection's protocol is wrapped to stamp request arrivals.
        listener = await loop.create_server(
            stamping_protocols(runner.server),
            settings.host.host or None,
            settings.host.port,
            backlog=LISTEN_BACKLOG,
        )
    except OSError as error:
        await runner.cleanup()
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        print(f"Error: listen tcp {settings.host.address}: bind: {reason}", file=sys.stderr)
        return 1
    log_startup(settings)
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    await stop.wait()
    log("INFO", "received termination signal, shutting down")
    listener.close()  # no new connections; the runner then finishes the open ones
    await runner.cleanup()
    await listener.wait_closed()
    return 0


def log_startup(settings: ServerSettings) -> None:
    keep_alive = settings.keep_alive_seconds
    log(
        "INFO",
        f"{STANDIN_NOTICE}: Listening on {settings.host.address} (version {settings.version})",
        ttft_ms=_ms(settings.ttft_seconds),
        tpot_ms=_ms(settings.tpot_seconds),
        tokens=settings.default_output_tokens,
        load_ms=_ms(settings.load_seconds),
        num_parallel=settings.num_parallel,
        max_queue=settings.max_queue,
        keep_alive="forever" if math.isinf(keep_alive) else f"{keep_alive:g}s",
        models=str(settings.models_dir),
        pid=os.getpid(),
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def log(level: str, message: str, **fields: object) -> None:
    """One line in the key=value format of Ollama's own server log."""
    stamp = format_rfc3339_nano(time.time_ns(), utc=False)
    extra = "".join(f" {key}={_log_value(value)}" for key, value in fields.items())
    sys.stderr.write(
        f"time={stamp} level={level} source=standin msg={json.dumps(message)}{extra}\n"
    )
    sys.stderr.flush()


def _log_value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or re.search(r"[\s\"=]", text) else text


# ----------------------------------------------------------------------------- client commands


def _server_url() -> str:
    return parse_ollama_host(os.environ.get("OLLAMA_HOST")).url


def _request(
    method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30
) -> http.client.HTTPResponse:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        _server_url() + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise CommandError(_error_message(error.read(), error.code)) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise CommandError(CONNECT_ERROR) from error


def _error_message(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or f"HTTP status {status}"


def _get_json(path: str) -> Any:
    with _request("GET", path, timeout=10) as response:
        return json.loads(response.read())


def show_version() -> int:
    server_version = ""
    try:
        server_version = _get_json("/api/version").get("version", "")
    except CommandError:
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print(f"ollama version is {server_version}")
    client_version = os.environ.get("OLLAMA_STANDIN_VERSION") or DEFAULT_VERSION
    if server_version != client_version:
        print(f"Warning: client version is {client_version}")
    print(f"({STANDIN_NOTICE})", file=sys.stderr)
    return 0


def _ndjson(response: Any) -> Iterator[dict[str, Any]]:
    for line in response:
        if line.strip():
            yield json.loads(line)


def pull_model(model: str) -> int:
    reported: set[str] = set()
    with _request("POST", "/api/pull", {"model": model, "stream": True}, timeout=3600) as stream:
        for status in _ndjson(stream):
            if "error" in status:
                raise CommandError(status["error"])
            text = status.get("status", "")
            total = status.get("total")
            if total is not None and status.get("completed") == total:
                print(f"{text}: 100% {human_bytes(total)}", file=sys.stderr)
            elif total is None and text not in reported:
                print(text, file=sys.stderr)
            reported.add(text)
    return 0


def list_models() -> int:
    rows = [
        [
            model["name"],
            model["digest"][:12],
            human_bytes(model["size"]),
            human_time(_parse_time(model["modified_at"])),
        ]
        for model in _get_json("/api/tags").get("models", [])
    ]
    print_table(["NAME", "ID", "SIZE", "MODIFIED"], rows)
    return 0


def list_running() -> int:
    rows = []
    for model in _get_json("/api/ps").get("models", []):
        processor = "100% CPU" if not model.get("size_vram") else "100% GPU"
        until = human_time(_parse_time(model["expires_at"]), future=True)
        rows.append(
            [model["name"], model["digest"][:12], human_bytes(model["size"]), processor, until]
        )
    print_table(["NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"], rows)
    return 0


def remove_models(models: Sequence[str]) -> int:
    for model in models:
        with _request("DELETE", "/api/delete", {"model": model}):
            pass
        print(f"deleted '{model}'")
    return 0


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    for row in [header, *rows]:
        print("    ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def human_bytes(size: int) -> str:
    """Ollama's format.HumanBytes: decimal units, "2.0 GB", "274 MB"."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def _parse_time(text: str) -> float:
    # datetime in Python 3.11 takes at most microseconds; Go writes nanoseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


def human_time(moment: float, future: bool = False) -> str:
    """Ollama's format.HumanTime: "2 weeks ago", "4 minutes from now", "Forever"."""
    seconds = moment - time.time()
    if future and seconds > 100 * 365 * 86400:
        return "Forever"
    phrase = _human_duration(abs(seconds))
    return f"{phrase} from now" if seconds > 0 else f"{phrase} ago"


def _human_duration(seconds: float) -> str:
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if seconds < 1:
        return "Less than a second"
    if round(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    if round(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    if round(hours) == 1:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 730:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"


if __name__ == "__main__":
    sys.exit(main())
