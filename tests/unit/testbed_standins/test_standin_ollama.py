"""The Ollama stand-in: API shapes, model store, scheduling, timing, and the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from hpcansible_testbed.standins import STANDIN_HEADER
from hpcansible_testbed.standins import ollama as ollama_cli
from hpcansible_testbed.standins._arrival import ArrivalStamper, stamping_protocols
from hpcansible_testbed.standins._ollama_api import (
    LATER,
    TOKEN_TEXT,
    create_app,
    dumps,
    json_filler,
)
from hpcansible_testbed.standins._ollama_engine import Engine, Timing
from hpcansible_testbed.standins._ollama_models import ModelName, ModelStore, parse_model_name
from hpcansible_testbed.standins._ollama_settings import ServerSettings, parse_ollama_host
from hpcansible_testbed.standins._timer import DeadlineSleeper
from standin_testing import free_port, standin_process, stop_with

MODEL = "llama3.2:1b"
FINAL_FIELDS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


# ----------------------------------------------------------------------------- settings, names


@pytest.mark.parametrize(
    ("value", "address", "url"),
    [
        (None, "127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("", "127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("10.77.0.11:9000", "10.77.0.11:9000", "http://10.77.0.11:9000"),
        ("node1", "node1:11434", "http://node1:11434"),
        (":8080", ":8080", "http://127.0.0.1:8080"),
        ("http://node2", "node2:80", "http://node2:80"),
        ("https://node2", "node2:443", "https://node2:443"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_ollama_host_is_read_like_ollama(value: str | None, address: str, url: str) -> None:
    host = parse_ollama_host(value)
    assert (host.address, host.url) == (address, url)


def test_model_names_and_manifest_paths(tmp_path: Path) -> None:
    assert parse_model_name("llama3.2") == ModelName(
        "registry.ollama.ai", "library", "llama3.2", "latest"
    )
    custom = parse_model_name("me/tiny:q4")
    assert custom is not None and custom.display == "me/tiny:q4"
    assert custom.manifest_path(tmp_path) == (tmp_path / "manifests/registry.ollama.ai/me/tiny/q4")
    for invalid in ("", "bad name", "-x", "a/b/c/d", "x:", "model:tag!"):
        assert parse_model_name(invalid) is None, invalid


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    warnings: list[str] = []
    settings = ServerSettings.from_environ(
        {
            "OLLAMA_MODELS": str(tmp_path),
            "OLLAMA_NUM_PARALLEL": "8",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_STANDIN_TTFT_MS": "120",
            "OLLAMA_STANDIN_TPOT_MS": "7.5",
            "OLLAMA_STANDIN_TOKENS": "nonsense",
        },
        warnings.append,
    )
    assert settings.models_dir == tmp_path
    assert settings.num_parallel == 8
    assert settings.keep_alive_seconds == float("inf")
    assert settings.ttft_seconds == pytest.approx(0.120)
    assert settings.tpot_seconds == pytest.approx(0.0075)
    assert settings.default_output_tokens == 32
    assert settings.max_queue == 512
    assert len(warnings) == 1 and "OLLAMA_STANDIN_TOKENS" in warnings[0]


# ----------------------------------------------------------------------------- in-process server


def settings_for(models: Path, **overrides: Any) -> ServerSettings:
    environment = {
        "OLLAMA_MODELS": str(models),
        "OLLAMA_STANDIN_TTFT_MS": "5",
        "OLLAMA_STANDIN_TPOT_MS": "1",
        "OLLAMA_STANDIN_TOKENS": "4",
    }
    environment.update({key: str(value) for key, value in overrides.items()})
    return ServerSettings.from_environ(environment)


@asynccontextmanager
async def serving(models: Path, pull: bool = True, **overrides: Any) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(settings_for(models, **overrides)), host="127.0.0.1"))
    await client.start_server()
    try:
        if pull:
            response = await client.post("/api/pull", json={"model": MODEL, "stream": False})
            assert (await response.json()) == {"status": "success"}
        yield client
    finally:
        await client.close()


def run_with_server(
    models: Path, test: Callable[[TestClient], Awaitable[None]], pull: bool = True, **overrides: Any
) -> None:
    async def body() -> None:
        async with serving(models, pull, **overrides) as client:
            await test(client)

    asyncio.run(body())


async def ndjson(response: ClientResponse) -> list[dict[str, Any]]:
    assert response.headers["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) async for line in response.content if line.strip()]


async def sse(response: ClientResponse) -> list[str]:
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = (await response.read()).decode()
    events = [event for event in text.split("\n\n") if event]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


def test_root_version_and_standin_header(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        response = await client.get("/")
        assert await response.text() == "Ollama is running"
        assert response.headers[STANDIN_HEADER] == "ollama"
        assert (await client.head("/")).status == 200
        version = await (await client.get("/api/version")).json()
        assert version == {"version": "0.6.5"}
        missing = await client.get("/api/nothing")
        assert (missing.status, await missing.text()) == (404, "404 page not found")

    run_with_server(tmp_path, check, pull=False)


def test_pull_streams_statuses_and_writes_the_manifest(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        statuses = await ndjson(await client.post("/api/pull", json={"model": "gemma3:270m"}))
        texts = [status["status"] for status in statuses]
        assert texts[0] == "pulling manifest"
        assert texts[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        layer = next(status for status in statuses if "completed" in status)
        assert layer["digest"].startswith("sha256:") and layer["completed"] == layer["total"]
        manifest_path = tmp_path / "manifests/registry.ollama.ai/library/gemma3/270m"
        manifest = json.loads(manifest_path.read_text())
        assert manifest["schemaVersion"] == 2
        config_blob = tmp_path / "blobs" / manifest["config"]["digest"].replace(":", "-")
        assert json.loads(config_blob.read_text())["hpcansible_standin"] is True

        invalid = await client.post("/api/pull", json={"model": "no good!"})
        assert (invalid.status, await invalid.json()) == (400, {"error": "invalid model name"})

        tags = await (await client.get("/api/tags")).json()
        entry = next(model for model in tags["models"] if model["name"] == "gemma3:270m")
        assert set(entry) == {"name", "model", "modified_at", "size", "digest", "details"}
        assert entry["details"]["parameter_size"] == "270M"
        assert entry["details"]["format"] == "gguf"

    run_with_server(tmp_path, check, pull=False)


def test_generate_streams_one_token_per_chunk_then_the_totals(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        request = {"model": MODEL, "prompt": "why is the sky blue", "options": {"num_predict": 3}}
        chunks = await ndjson(await client.post("/api/generate", json=request))
        *tokens, final = chunks
        assert [chunk["response"] for chunk in tokens] == [TOKEN_TEXT] * 3
        assert all(chunk["done"] is False and chunk["model"] == MODEL for chunk in tokens)
        assert tokens[0]["created_at"].endswith("Z")
        assert final["done"] is True and final["done_reason"] == "length"
        assert set(final) >= FINAL_FIELDS and "context" in final
        assert final["eval_count"] == 3
        assert final["prompt_eval_count"] == 5  # five whitespace-separated words
        assert final["total_duration"] >= final["prompt_eval_duration"] + final["eval_duration"]

        default = await ndjson(
            await client.post("/api/generate", json={"model": MODEL, "prompt": "hi"})
        )
        assert default[-1]["done_reason"] == "stop" and default[-1]["eval_count"] == 4

        whole = await (await client.post("/api/generate", json={**request, "stream": False})).json()
        assert whole["response"] == TOKEN_TEXT * 3 and whole["done"] is True
        assert set(whole) >= FINAL_FIELDS

    run_with_server(tmp_path, check)


def test_chat_streams_messages_then_the_totals(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        request = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]}
        *tokens, final = await ndjson(await client.post("/api/chat", json=request))
        assert [chunk["message"] for chunk in tokens] == [
            {"role": "assistant", "content": TOKEN_TEXT}
        ] * 4
        assert final["done"] is True and final["done_reason"] == "stop"
        assert final["message"] == {"role": "assistant", "content": ""}
        assert set(final) >= FINAL_FIELDS and "context" not in final
        assert final["prompt_eval_count"] == 2

        whole = await (await client.post("/api/chat", json={**request, "stream": False})).json()
        assert whole["message"]["content"] == TOKEN_TEXT * 4

        loaded = await (await client.post("/api/chat", json={"model": MODEL})).json()
        assert loaded["done_reason"] == "load"

    run_with_server(tmp_path, check)


def test_unpulled_model_is_404_in_both_apis(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        native = await client.post("/api/generate", json={"model": "absent", "prompt": "x"})
        assert native.status == 404
        assert await native.json() == {"error": 'model "absent" not found, try pulling it first'}
        chat = await client.post("/api/chat", json={"model": "absent", "messages": []})
        assert chat.status == 404
        openai = await client.post(
            "/v1/chat/completions",
            json={"model": "absent", "messages": [{"role": "user", "content": "x"}]},
        )
        assert openai.status == 404
        error = (await openai.json())["error"]
        assert error["type"] == "not_found_error" and "absent" in error["message"]

    run_with_server(tmp_path, check)


def test_openai_chat_streams_sse_with_usage_and_done(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        request = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "one two three"}],
            "stream": True,
            "max_tokens": 3,
            "stream_options": {"include_usage": True},
        }
        events = await sse(await client.post("/v1/chat/completions", json=request))
        assert events[-1] == "[DONE]"
        chunks = [json.loads(event) for event in events[:-1]]
        usage_chunk = chunks[-1]
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == {
            "prompt_tokens": 3,
            "completion_tokens": 3,
            "total_tokens": 6,
        }
        content = [chunk["choices"][0] for chunk in chunks[:-1]]
        assert [choice["delta"]["content"] for choice in content] == [TOKEN_TEXT] * 3 + [""]
        assert [choice["finish_reason"] for choice in content] == [None] * 3 + ["length"]
        assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}

        without_usage = await sse(
            await client.post("/v1/chat/completions", json={**request, "stream_options": None})
        )
        assert all('"usage"' not in event for event in without_usage)

        whole = await (
            await client.post("/v1/chat/completions", json={**request, "stream": False})
        ).json()
        assert whole["object"] == "chat.completion"
        assert whole["choices"][0]["message"]["content"] == TOKEN_TEXT * 3
        assert whole["usage"]["completion_tokens"] == 3

    run_with_server(tmp_path, check)


def test_openai_completions_and_models(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        request = {"model": MODEL, "prompt": "a b", "stream": True}
        events = await sse(await client.post("/v1/completions", json=request))
        chunks = [json.loads(event) for event in events[:-1]]
        assert [chunk["choices"][0]["text"] for chunk in chunks] == [TOKEN_TEXT] * 4 + [""]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        whole = await (
            await client.post("/v1/completions", json={**request, "stream": False})
        ).json()
        assert whole["object"] == "text_completion"
        assert whole["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
        models = await (await client.get("/v1/models")).json()
        assert models["object"] == "list"
        assert [model["id"] for model in models["data"]] == [MODEL]

    run_with_server(tmp_path, check)


def test_show_ps_and_delete(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        assert (await (await client.get("/api/ps")).json()) == {"models": []}
        await client.post("/api/generate", json={"model": MODEL, "prompt": "x", "stream": False})
        running = (await (await client.get("/api/ps")).json())["models"]
        assert [model["name"] for model in running] == [MODEL]
        assert {"expires_at", "size_vram", "digest", "details"} <= set(running[0])

        shown = await (await client.post("/api/show", json={"model": MODEL})).json()
        assert shown["details"]["family"] == "llama" and "model_info" in shown

        unload = {"model": MODEL, "prompt": "", "keep_alive": 0}
        unloaded = await (await client.post("/api/generate", json=unload)).json()
        assert unloaded["done_reason"] == "unload"
        assert (await (await client.get("/api/ps")).json()) == {"models": []}

        assert (await client.delete("/api/delete", json={"model": MODEL})).status == 200
        assert not (tmp_path / "manifests/registry.ollama.ai/library/llama3.2/1b").exists()
        gone = await client.post("/api/show", json={"model": MODEL})
        assert gone.status == 404

    run_with_server(tmp_path, check)


def test_parallel_limit_queues_and_max_queue_refuses(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        async def generate() -> tuple[int, dict[str, Any]]:
            response = await client.post(
                "/api/generate", json={"model": MODEL, "prompt": "x", "stream": False}
            )
            return response.status, await response.json()

        first = asyncio.create_task(generate())
        await asyncio.sleep(0.02)
        second = asyncio.create_task(generate())  # waits for the only slot
        await asyncio.sleep(0.02)
        status, refused = await generate()  # the queue (size 1) is full
        assert status == 503
        assert "maximum pending requests exceeded" in refused["error"]
        (status_1, done_1), (status_2, done_2) = await first, await second
        assert status_1 == status_2 == 200
        # The second request waited for the first, so it took longer end to end.
        assert done_2["total_duration"] > done_2["prompt_eval_duration"] + 30_000_000
        assert done_1["eval_count"] == done_2["eval_count"] == 4

    run_with_server(
        tmp_path,
        check,
        OLLAMA_NUM_PARALLEL=1,
        OLLAMA_MAX_QUEUE=1,
        OLLAMA_STANDIN_TTFT_MS=60,
        OLLAMA_STANDIN_TPOT_MS=10,
    )


def test_first_token_and_token_gaps_follow_the_settings(tmp_path: Path) -> None:
    """A loose check: calibration accuracy is measured by the benchmark, not here."""
    ttft, tpot, tokens = 0.080, 0.020, 6

    async def check(client: TestClient) -> None:
        await client.post("/api/generate", json={"model": MODEL, "prompt": "warm", "stream": False})
        sent = time.monotonic()
        response = await client.post(
            "/api/generate",
            json={"model": MODEL, "prompt": "x", "options": {"num_predict": tokens}},
        )
        arrivals, final = [], {}
        async for line in response.content:
            chunk = json.loads(line)
            if chunk["done"]:
                final = chunk
            else:
                arrivals.append(time.monotonic() - sent)
        assert len(arrivals) == tokens
        assert ttft * 0.95 <= arrivals[0] < ttft + 0.150
        span = arrivals[-1] - arrivals[0]
        assert (tokens - 1) * tpot * 0.9 <= span < (tokens - 1) * tpot + 0.150
        assert final["prompt_eval_duration"] == pytest.approx(ttft * 1e9, abs=30e6)
        assert final["eval_duration"] == pytest.approx((tokens - 1) * tpot * 1e9, abs=30e6)

    run_with_server(
        tmp_path,
        check,
        OLLAMA_STANDIN_TTFT_MS=ttft * 1000,
        OLLAMA_STANDIN_TPOT_MS=tpot * 1000,
    )


def test_cold_model_pays_the_load_time_once(tmp_path: Path) -> None:
    async def check(client: TestClient) -> None:
        request = {"model": MODEL, "prompt": "x", "stream": False}
        cold = await (await client.post("/api/generate", json=request)).json()
        warm = await (await client.post("/api/generate", json=request)).json()
        assert cold["load_duration"] >= 50_000_000
        assert warm["load_duration"] == 0

    run_with_server(tmp_path, check, OLLAMA_STANDIN_LOAD_MS=60)


def test_deadline_sleeper_never_wakes_early() -> None:
    async def check() -> list[float]:
        sleeper = DeadlineSleeper(asyncio.get_running_loop())
        lateness = []
        try:
            start = time.monotonic()
            for index in range(5):
                deadline = start + 0.005 * (index + 1)
                await sleeper.sleep_until(deadline)
                lateness.append(time.monotonic() - deadline)
        finally:
            sleeper.close()
        return lateness

    assert all(0 <= late < 0.1 for late in asyncio.run(check()))


def test_model_store_reads_a_manifest_again_only_when_it_changes(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    name = parse_model_name(MODEL)
    assert name is not None
    assert store.get(name) is None
    _layers, manifest, blobs = store.plan_pull(name)
    store.write_pull(name, manifest, blobs)
    first = store.get(name)
    assert first is not None and first.details["family"] == "llama"
    assert store.get(name) is first  # unchanged manifest: no second read
    store.write_pull(name, manifest, blobs)  # a new pull replaces the file
    again = store.get(name)
    assert (
        again is not None and again is not first and again.manifest_digest == first.manifest_digest
    )
    assert store.delete(name) and store.get(name) is None


# ----------------------------------------------------------------------------- timing details


def test_json_filler_writes_what_dumps_writes() -> None:
    document = {"model": "m", "created_at": LATER, "context": [1, 2, 3], "done": True, "n": LATER}
    fill = json_filler(document)
    values = {"created_at": "2026-01-02T03:04:05.6Z", "n": 42}
    assert fill(values) == (dumps({**document, **values}) + "\n").encode()
    assert json_filler({"a": LATER})({"a": 'x"y'}) == b'{"a":"x\\"y"}\n'
    assert json_filler({"a": [1], "b": None})({}) == b'{"a":[1],"b":null}\n'


class _RecordingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def eof_received(self) -> bool | None:
        self.calls.append(("eof", None))
        return None


def test_arrival_is_stamped_when_a_request_begins() -> None:
    inner = _RecordingProtocol()
    stamper = ArrivalStamper(inner)
    assert stamper.take_arrival() is None
    before = time.monotonic()
    stamper.data_received(b"POST /api/generate HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
    arrival = stamper.take_arrival()
    assert arrival is not None and before <= arrival <= time.monotonic()
    assert stamper.take_arrival() is None  # once
    stamper.data_received(b"{}")  # the rest of a body is not a new request
    assert stamper.take_arrival() is None
    stamper.data_received(b"\r\nGET / HTTP/1.1\r\n\r\n")  # an empty line may come first
    assert stamper.take_arrival() is not None
    stamper.eof_received()
    assert [kind for kind, _ in inner.calls] == ["data", "data", "data", "eof"]


async def _read_until(reader: asyncio.StreamReader, marker: bytes, seen: bytearray) -> float:
    """Read until `marker` has arrived; the time it did."""
    while marker not in seen:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "the server closed the connection"
        seen += data
    return time.monotonic()


def test_ttft_counts_from_the_first_bytes_of_the_request(tmp_path: Path) -> None:
    """Through the protocol `ollama-standin serve` uses: the clock starts at the request line."""
    ttft, gap = 0.080, 0.040

    async def check() -> None:
        settings = settings_for(
            tmp_path, OLLAMA_STANDIN_TTFT_MS=ttft * 1000, OLLAMA_STANDIN_TPOT_MS=1
        )
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        assert runner.server is not None
        listener = await asyncio.get_running_loop().create_server(
            stamping_protocols(runner.server), "127.0.0.1", 0
        )
        try:
            port = listener.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def request(method: str, path: str, body: bytes, split: float = 0) -> float:
                head = (
                    f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                    "Content-Type: application/json\r\n\r\n"
                ).encode()
                sent = time.monotonic()
                if split:  # the request line starts; the rest follows `split` seconds later
                    writer.write(head[:8])
                    await writer.drain()
                    await asyncio.sleep(split)
                writer.write(head[8:] if split else head)
                writer.write(body)
                await writer.drain()
                return sent

            seen = bytearray()
            await request(
                "POST", "/api/pull", json.dumps({"model": MODEL, "stream": False}).encode()
            )
            await _read_until(reader, b"success", seen)
            generate = json.dumps({"model": MODEL, "prompt": "x", "options": {"num_predict": 2}})
            seen.clear()
            await request("POST", "/api/generate", generate.encode())  # loads the model
            await _read_until(reader, b"\r\n0\r\n\r\n", seen)

            seen.clear()
            sent = await request("POST", "/api/generate", generate.encode(), split=gap)
            first = await _read_until(reader, b'"done":false', seen) - sent
            await _read_until(reader, b"\r\n0\r\n\r\n", seen)
            line = next(line for line in seen.split(b"\n") if b'"done":true' in line)
            final = json.loads(line[line.index(b"{") :])
            # stamped as the request line came in, not when the whole request had (gap later)
            assert ttft * 0.95 <= first < ttft + gap * 0.75
            assert final["done"] is True
            assert final["prompt_eval_duration"] == pytest.approx(ttft * 1e9, abs=gap * 0.5e9)

            # A request that does not use its stamp leaves none behind for the next one.
            seen.clear()
            await request("GET", "/api/version", b"")
            await _read_until(reader, b"version", seen)
            await asyncio.sleep(ttft)
            seen.clear()
            sent = await request("POST", "/api/generate", generate.encode())
            first = await _read_until(reader, b'"done":false', seen) - sent
            assert ttft * 0.95 <= first < ttft + 0.150
            writer.close()
        finally:
            listener.close()
            await runner.cleanup()

    asyncio.run(check())


def test_token_deadlines_come_from_one_origin() -> None:
    """A slow emit does not push the later tokens back: deadlines never accumulate."""
    ttft, tpot, tokens, emit_cost = 0.020, 0.006, 8, 0.004

    async def check() -> tuple[list[float], Timing]:
        loop = asyncio.get_running_loop()
        settings = settings_for(
            Path("/nonexistent"),
            OLLAMA_STANDIN_TTFT_MS=ttft * 1000,
            OLLAMA_STANDIN_TPOT_MS=tpot * 1000,
        )
        engine = Engine(settings, DeadlineSleeper(loop))
        started = time.monotonic()
        timing = Timing(arrival=started, ready=started)
        emitted: list[float] = []

        async def emit(_index: int) -> None:
            emitted.append(time.monotonic() - started)
            time.sleep(emit_cost)  # a write that takes a while

        try:
            await engine.generate(timing, tokens, emit)
        finally:
            engine.sleeper.close()
        return emitted, timing

    emitted, timing = asyncio.run(check())
    for index, moment in enumerate(emitted):
        assert ttft + index * tpot <= moment < ttft + index * tpot + emit_cost / 2, index
    assert timing.finished == timing.last_token  # stamped before the last token is written
    durations = timing.durations_ns()
    assert durations["eval_duration"] == pytest.approx((tokens - 1) * tpot * 1e9, abs=2e6)
    assert (
        durations["total_duration"]
        >= durations["prompt_eval_duration"] + durations["eval_duration"]
    )


# ----------------------------------------------------------------------------- the program


def test_cli_serve_pull_list_ps_version_and_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    environment = {"OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(tmp_path)}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    module = "hpcansible_testbed.standins.ollama"
    ready = f"http://127.0.0.1:{port}/"
    with standin_process(module, ["serve"], ready, environment) as process:
        assert ollama_cli.main(["pull", "tinyllama"]) == 0
        assert (tmp_path / "manifests/registry.ollama.ai/library/tinyllama/latest").is_file()
        assert ollama_cli.main(["list"]) == 0
        listing = capsys.readouterr().out
        assert listing.splitlines()[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
        assert "tinyllama:latest" in listing
        assert ollama_cli.main(["ps"]) == 0
        assert ollama_cli.main(["-v"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "ollama version is 0.6.5"
        assert ollama_cli.main(["pull", "bad name!"]) == 1
        assert "Error: invalid model name" in capsys.readouterr().err
        status, stderr = stop_with(process, signal.SIGTERM)
    assert status == 0
    first_line = stderr.splitlines()[0]
    assert "hpcansible Ollama stand-in" in first_line
    assert f"Listening on 127.0.0.1:{port}" in first_line


def test_cli_reports_an_unreachable_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    assert ollama_cli.main(["list"]) == 1
    assert capsys.readouterr().err.startswith("Error: could not connect to ollama")
    assert ollama_cli.main(["--version"]) == 0
    assert "could not connect to a running Ollama instance" in capsys.readouterr().out
