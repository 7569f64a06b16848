"""What the Ollama and OpenAI clients share: precomputed bodies and the streaming loop."""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from array import array
from time import perf_counter_ns
from typing import Any

import aiohttp

from hpcansible.bench.apis.base import (
    BROKEN_STREAM,
    ERROR_DETAIL_CHARS,
    JSON_HEADERS,
    SERVER_ERROR,
    HttpApiClient,
    classify_error,
    make_http_session,
    record_cancelled,
    record_failure,
)
from hpcansible.bench.config import BenchConfig
from hpcansible.bench.prompts import Prompt
from hpcansible.bench.recorder import Recorder


def merge_body(body: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Merge --extra-body into a request body; nested objects (Ollama options) merge too."""
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


class StreamResult:
    """What one parsed stream line says; reused, so parsing allocates nothing per line."""

    __slots__ = ("content", "detail", "error", "final", "input_tokens", "output_tokens")

    def reset(self) -> None:
        self.content = False  # the line carried non-empty generated text
        self.final = False  # the stream's closing message (usage / done / [DONE])
        self.error: str | None = None
        self.input_tokens = -1
        self.output_tokens = -1
        self.detail: dict[str, Any] | None = None

    def server_error(self, error: object) -> None:
        """The line is the server's error object: it ends the stream, its text kept."""
        self.error = SERVER_ERROR
        self.final = True
        self.detail = {"error_detail": str(error)[:ERROR_DETAIL_CHARS]}


class StreamingLlmClient(HttpApiClient):
    """Posts a precomputed JSON body and times each streamed line."""

    def __init__(self, config: BenchConfig, prompts: list[Prompt]) -> None:
        super().__init__(config)
        # Bodies are encoded once: the hot path only picks bytes by index.
        self.bodies = [json.dumps(self.build_body(p)).encode() for p in prompts]

    @abstractmethod
    def build_body(self, prompt: Prompt) -> dict[str, Any]: ...

    @abstractmethod
    def parse_line(self, line: bytes, out: StreamResult) -> None:
        """Fill `out` from one line of the response stream (blank lines are skipped)."""

    async def start(self) -> None:
        self.session = make_http_session(self.config, self._trace_send())

    def _trace_send(self) -> aiohttp.TraceConfig:
        """Stamp `sent` when the request headers reach the socket.

        The engine stamps before calling aiohttp; building the request there costs 0.1 to
        0.3 ms (more after an idle wait for tokens), which is client time, not the
        server's, and would shift every TTFT and E2E. The trace hook costs ~10 us.
        """
        trace = aiohttp.TraceConfig()

        async def headers_sent(session: Any, context: Any, params: Any) -> None:
            assert self.recorder is not None
            self.recorder.sent[context.trace_request_ctx] = perf_counter_ns()

        trace.on_request_headers_sent.append(headers_sent)
        return trace

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "model": self.config.model}

    async def send(self, i: int, rec: Recorder) -> None:
        assert self.session is not None
        bodies = self.bodies
        got_response = False
        chunks = array("q")  # 8 bytes a token, not a Python int each
        rec.chunks[i] = chunks
        parsed = StreamResult()
        try:
            async with self.session.post(
                self._url,
                data=bodies[(self.worker + i * self.workers) % len(bodies)],
                headers=JSON_HEADERS,
                trace_request_ctx=i,
            ) as response:
                got_response = True
                rec.first_byte[i] = perf_counter_ns()
                rec.status[i] = response.status
                if response.status != 200:
                    text = await response.text(errors="replace")
                    rec.error[i] = f"http_{response.status}"
                    rec.detail[i] = {"error_detail": text[:ERROR_DETAIL_CHARS]}
                    rec.done[i] = perf_counter_ns()
                    return
                finished = False
                error: str | None = None
                async for line in response.content:
                    now = perf_counter_ns()
                    if len(line) <= 2 and not line.strip():
                        continue
                    parsed.reset()
                    self.parse_line(line, parsed)
                    if parsed.content:
                        chunks.append(now)
                    if parsed.error is not None:
                        error = parsed.error
                    if parsed.input_tokens >= 0:
                        rec.input_tokens[i] = parsed.input_tokens
                    if parsed.output_tokens >= 0:
                        rec.output_tokens[i] = parsed.output_tokens
                    if parsed.detail is not None:
                        rec.detail[i] = {**(rec.detail[i] or {}), **parsed.detail}
                    if parsed.final:
                        finished = True
                rec.done[i] = perf_counter_ns()
                if chunks:
                    rec.first_token[i] = chunks[0]
                    rec.end[i] = chunks[-1]
                if rec.output_tokens[i] < 0:
                    # no server count: one token per content chunk (marked in the record)
                    rec.output_tokens[i] = len(chunks)
                    rec.detail[i] = {**(rec.detail[i] or {}), "tokens_counted": "chunks"}
                if error is not None:
                    rec.error[i] = error
                elif not finished:
                    rec.error[i] = BROKEN_STREAM
        except asyncio.CancelledError:
            record_cancelled(rec, i)
            raise
        except Exception as error:  # every failure becomes a counted error class
            record_failure(rec, i, classify_error(error, got_response), error)
            if chunks:
                rec.first_token[i] = chunks[0]
