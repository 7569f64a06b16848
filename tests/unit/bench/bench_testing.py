"""Helpers for the bench client's unit tests: tiny in-process servers and the parser.

Each runs its own event loop in a background thread on 127.0.0.1 with a free port:
an aiohttp app speaking the Ollama (NDJSON) and OpenAI (SSE) streaming shapes plus a
static page, and a minimal RESP server for Redis (AUTH, GET, SET, PING, CLIENT).
Token timing is a fixed small gap, so tests can check the metric arithmetic end to end.
A prompt containing EMPTY gets an answer without content, one containing SHORT a single
token. Under /nousage/ the OpenAI routes behave like llama-cpp-python's server: no usage
in streams, a tokenizer at /nousage/extras/tokenize/count, usage in non-streamed answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from hpcansible_jobs.bench import cli as bench_cli

TOKEN_GAP_S = 0.002
PROMPT_TOKENS = 7
# The /nousage/ server's tokenizer: one token per word plus BOS; its chat template adds
# TEMPLATE_TOKENS_PER_MESSAGE per message and TEMPLATE_TOKENS_END once (BOS included).
TEMPLATE_TOKENS_PER_MESSAGE = 4
TEMPLATE_TOKENS_END = 4


def prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return " ".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


def answer_tokens(body: dict[str, Any], asked: int) -> int:
    """How many tokens the fake model answers: EMPTY none, SHORT one, else all asked."""
    text = prompt_text(body)
    if "EMPTY" in text:
        return 0
    return 1 if "SHORT" in text else asked


def nousage_prompt_tokens(body: dict[str, Any]) -> int:
    """What the /nousage/ server reports as usage.prompt_tokens for a body."""
    if "messages" in body:
        words = sum(len(str(m["content"]).split()) for m in body["messages"])
        return TEMPLATE_TOKENS_PER_MESSAGE * len(body["messages"]) + words + TEMPLATE_TOKENS_END
    return 1 + len(str(body["prompt"]).split())


def free_port() -> int:
    """A free port on 127.0.0.1: nothing listens on it until a test binds it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape_until(port: int, done: Callable[[str], bool], timeout_s: float = 10.0) -> str | None:
    """Scrape the live metrics on 127.0.0.1:port until `done(text)`; that text, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                text = r.read().decode()
            if done(text):
                return text
        except OSError:
            pass
        time.sleep(0.02)
    return None


class ThreadedServer:
    """Runs `start(loop) -> port` on a private event loop in a daemon thread."""

    def __init__(self, start: Callable[[], Coroutine[Any, Any, int]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("test server did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --- HTTP / Ollama / OpenAI -------------------------------------------------------------


async def _ollama(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tokens = answer_tokens(body, int(body.get("options", {}).get("num_predict", 3)))
    chat = request.path.endswith("/chat")
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for _ in range(tokens):
        await asyncio.sleep(TOKEN_GAP_S)
        item = (
            {"message": {"role": "assistant", "content": " tok"}} if chat else {"response": " tok"}
        )
        await response.write(json.dumps({**item, "done": False}).encode() + b"\n")
    if request.query.get("broken"):
        return response  # the stream stops without its final object
    final = {
        "done": True,
        "done_reason": "length",
        "eval_count": tokens,
        "prompt_eval_count": PROMPT_TOKENS,
        "total_duration": 1000,
        "load_duration": 10,
        "prompt_eval_duration": 100,
        "eval_duration": 800,
    }
    final.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
    await response.write(json.dumps(final).encode() + b"\n")
    await response.write_eof()
    return response


async def _openai(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tokens = answer_tokens(body, int(body.get("max_tokens", 3)))
    chat = request.path.endswith("/chat/completions")
    nousage = request.path.startswith("/nousage/")
    if nousage and not body.get("stream"):
        return web.json_response(
            {"choices": [], "usage": {"prompt_tokens": nousage_prompt_tokens(body)}}
        )
    usage = body.get("stream_options", {}).get("include_usage") and not nousage
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def event(data: dict[str, Any]) -> None:
        await response.write(b"data: " + json.dumps(data).encode() + b"\n\n")

    await response.write(b": keep-alive comment\n\n")
    for _ in range(tokens):
        await asyncio.sleep(TOKEN_GAP_S)
        choice = (
            {"index": 0, "delta": {"content": " tok"}} if chat else {"index": 0, "text": " tok"}
        )
        await event({"choices": [{**choice, "finish_reason": None}]})
    finish = "length" if tokens == int(body.get("max_tokens", 3)) else "stop"
    await event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        await event(
            {"choices": [], "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": tokens}}
        )
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _tokenize_count(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"count": 1 + len(str(body["input"]).split())})


async def _static(request: web.Request) -> web.Response:
    return web.Response(text="hello " * 20)


async def _echo_status(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=int(request.match_info["code"]), text="status")


LAST_BODIES: dict[str, dict[str, Any]] = {}


@web.middleware
async def _remember_body(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "POST" and request.can_read_body:
        with contextlib.suppress(ValueError):
            LAST_BODIES[request.path] = json.loads(await request.read())
    return await handler(request)


def start_http_server() -> ThreadedServer:
    async def start() -> int:
        app = web.Application()
        app.router.add_post("/api/generate", _ollama)
        app.router.add_post("/api/chat", _ollama)
        app.router.add_post("/v1/chat/completions", _openai)
        app.router.add_post("/v1/completions", _openai)
        app.router.add_post("/nousage/v1/chat/completions", _openai)
        app.router.add_post("/nousage/v1/completions", _openai)
        app.router.add_post("/nousage/extras/tokenize/count", _tokenize_count)
        # the last request body each route received, for tests of what the client sends
        app.middlewares.append(_remember_body)
        app.router.add_get("/static", _static)
        app.router.add_route("*", "/status/{code}", _echo_status)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    return ThreadedServer(start)


# --- Redis --------------------------------------------------------------------------------


class FakeRedis(asyncio.Protocol):
    """Enough RESP2 for redis-py: arrays of bulk strings in, simple replies out."""

    def __init__(self, store: dict[bytes, bytes], password: str | None, stats: dict[str, int]):
        self.store = store
        self.password = password
        self.stats = stats
        self.buffer = b""
        self.authed = password is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            parsed = self._parse_command()
            if parsed is None:
                return
            self.transport.write(self._reply(parsed))  # type: ignore[attr-defined]

    def _parse_command(self) -> list[bytes] | None:
        buffer = self.buffer
        if not buffer.startswith(b"*"):
            return None
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        count = int(buffer[1:end])
        position = end + 2
        parts = []
        for _ in range(count):
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            length = int(buffer[position + 1 : end])
            start = end + 2
            if len(buffer) < start + length + 2:
                return None
            parts.append(buffer[start : start + length])
            position = start + length + 2
        self.buffer = buffer[position:]
        return parts

    def _reply(self, parts: list[bytes]) -> bytes:
        command = parts[0].upper()
        if command == b"AUTH":
            if parts[-1].decode() == self.password:
                self.authed = True
                return b"+OK\r\n"
            return b"-WRONGPASS invalid username-password pair\r\n"
        if not self.authed:
            return b"-NOAUTH Authentication required.\r\n"
        self.stats[command.decode()] = self.stats.get(command.decode(), 0) + 1
        if command == b"SET":
            self.store[parts[1]] = parts[2]
            return b"+OK\r\n"
        if command == b"GET":
            value = self.store.get(parts[1])
            return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
        if command == b"PING":
            return b"+PONG\r\n"
        return b"+OK\r\n"  # CLIENT SETINFO and friends


def start_redis_server(password: str | None = None) -> tuple[ThreadedServer, dict[str, Any]]:
    state: dict[str, Any] = {"store": {}, "stats": {}}

    async def start() -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: FakeRedis(state["store"], password, state["stats"]), "127.0.0.1", 0
        )
        return server.sockets[0].getsockname()[1]

    return ThreadedServer(start), state


def parse_bench_args(argv: list[str]) -> argparse.Namespace:
    """The bench subcommand's parser on its own (independent of the other subcommands)."""
    parser = argparse.ArgumentParser(prog="hpcansible")
    subparsers = parser.add_subparsers(dest="command", required=True)
    bench_cli.register(subparsers)
    return parser.parse_args(argv)
