"""What the Ollama and OpenAI clients share: precomputed bodies and the streaming loop."""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from array import array
from time import perf_counter_ns
from typing import Any

import aiohttp

from hpcansible_jobs.bench.apis.base import (
    ERROR_DETAIL_CHARS,
    JSON_HEADERS,
    HttpApiClient,
    classify_error,
    make_http_session,
    record_cancelled,
    record_failure,
)
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.prompts import Prompt
from hpcansible_jobs.bench.recorder import (
    BROKEN_STREAM,
    EMPTY_RESPONSE,
    SERVER_ERROR,
    SOURCE_CHUNKS,
    SOURCE_SERVER,
    SOURCE_TOKENIZE,
    UNKNOWN_TOKENS,
    Recorder,
)


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

    __slots__ = (
        "content",
        "detail",
        "error",
        "final",
        "finish_reason",
        "input_tokens",
        "output_tokens",
    )

    def reset(self) -> None:
        self.content = False  # the line carried non-empty generated text
        self.final = False  # the stream's closing message (usage / done / [DONE])
        self.finish_reason: str | None = None  # why the server stopped (stop, length...)
        self.error: str | None = None
        self.input_tokens = -1
        self.output_tokens = -1
        self.detail: dict[str, Any] | None = None

    def server_error(self, error: object) -> None:
        """The line is the server's error object: it ends the stream, its text kept."""
        self.error = SERVER_ERROR
        self.final = True
        self.detail = {"error_detail": str(error)[:ERROR_DETAIL_CHARS]}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class StreamingLlmClient(HttpApiClient):
    """Posts a precomputed JSON body and times each streamed line."""

    def __init__(self, config: BenchConfig, prompts: list[Prompt]) -> None:
        super().__init__(config)
        # A server that asks for a key (llama.cpp's --api_key, vLLM's, a gateway's) gets it as
        # a bearer token; the key comes from the 0600 config file, never the command line.
        self.headers = {**JSON_HEADERS, **bearer(config.password)}
        self.prompts = prompts
        # Bodies are encoded once: the hot path only picks bytes by index.
        self.bodies = [json.dumps(self.build_body(p)).encode() for p in prompts]
        self.asked = array("q", [p.output_tokens for p in prompts])
        # Input tokens per prompt from the server's tokenizer, for servers whose streams
        # report none (filled by prepare_token_counts; UNKNOWN_TOKENS otherwise).
        self.input_counts = array("q", [UNKNOWN_TOKENS]) * len(prompts)

    @abstractmethod
    def build_body(self, prompt: Prompt) -> dict[str, Any]: ...

    @abstractmethod
    def parse_line(self, line: bytes, out: StreamResult) -> None:
        """Fill `out` from one line of the response stream (blank lines are skipped)."""

    async def start(self) -> None:
        self.session = make_http_session(self.config, self._trace_send())
        await self.prepare_token_counts()

    async def prepare_token_counts(self) -> None:
        """Before the run: count input tokens where the server's stream will not."""

    def prompts_in_use(self) -> int:
        """How many prompts (from the first) this process's requests will use."""
        count = len(self.prompts)
        if self.config.requests is not None:
            count = min(count, self.config.requests)
        return count

    def _trace_send(self) -> aiohttp.TraceConfig:
        """Stamp `sent` when the request headers reach the socket.

        The engine stamps before calling aiohttp; building the request there costs 0.1 to
        0.3 ms (more after an idle wait for tokens), which is client time, not the
        server's, and would shift every TTFT and E2E. The trace hook costs ~10 us.
        """
        trace = aiohttp.TraceConfig()

        async def headers_sent(session: Any, context: Any, params: Any) -> None:
            index = context.trace_request_ctx
            if index is not None and self.recorder is not None:  # None: not a timed request
                self.recorder.sent[index] = perf_counter_ns()

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
        prompt = (self.worker + i * self.workers) % len(bodies)
        rec.output_asked[i] = self.asked[prompt]
        try:
            async with self.session.post(
                self._url,
                data=bodies[prompt],
                headers=self.headers,
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
                finish_reason: str | None = None
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
                    if parsed.finish_reason is not None:
                        finish_reason = parsed.finish_reason
                    if parsed.input_tokens >= 0:
                        rec.input_tokens[i] = parsed.input_tokens
                        rec.input_source[i] = SOURCE_SERVER
                    if parsed.output_tokens >= 0:
                        rec.output_tokens[i] = parsed.output_tokens
                        rec.output_source[i] = SOURCE_SERVER
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
                    rec.output_source[i] = SOURCE_CHUNKS
                    rec.detail[i] = {**(rec.detail[i] or {}), "tokens_counted": "chunks"}
                if rec.input_tokens[i] < 0 and self.input_counts[prompt] >= 0:
                    rec.input_tokens[i] = self.input_counts[prompt]
                    rec.input_source[i] = SOURCE_TOKENIZE
                if error is not None:
                    rec.error[i] = error
                elif not finished:
                    rec.error[i] = BROKEN_STREAM
                elif not chunks:
                    # a complete answer with nothing in it is not a success
                    rec.error[i] = EMPTY_RESPONSE
                    rec.detail[i] = {
                        **(rec.detail[i] or {}),
                        "error_detail": f"no content token in the answer (finish_reason "
                        f"{finish_reason}, output tokens {rec.output_tokens[i]})",
                    }
        except asyncio.CancelledError:
            record_cancelled(rec, i)
            raise
        except Exception as error:  # every failure becomes a counted error class
            record_failure(rec, i, classify_error(error, got_response), error)
            if chunks:
                rec.first_token[i] = chunks[0]
