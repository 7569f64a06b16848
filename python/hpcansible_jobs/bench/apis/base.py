"""What every API client shares: the interface, the one aiohttp session, error classes."""

from __future__ import annotations

import asyncio
import json
from time import perf_counter_ns
from typing import Any

import aiohttp
from yarl import URL

from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.recorder import (
    BROKEN_STREAM,
    CANCELLED,
    CONNECT,
    OTHER,
    TIMEOUT,
    Recorder,
)

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "*/*"}

# Failed requests keep this much of their error message (records and summary examples).
ERROR_DETAIL_CHARS = 200


class ApiClient:
    """Sends request number i and writes its timestamps and results into the recorder.

    `send` never raises (except on cancellation): every failure becomes an error class in
    `rec.error[i]`, and `rec.done[i]` is always set.
    """

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.recorder: Recorder | None = None  # set by the engine before start()
        # Worker w of K sends global requests w, w+K, w+2K...: prompts and keys follow the
        # global number, so K workers send what one process would.
        self.worker = 0
        self.workers = 1

    def global_index(self, i: int) -> int:
        return self.worker + i * self.workers

    async def start(self) -> None:
        """Open connections or sessions; called once, before the clock starts."""

    async def send(self, i: int, rec: Recorder) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        """What the summary reports about the target (URL, path, model...)."""
        return {}


class HttpApiClient(ApiClient):
    """A client that sends to one URL, built from the config, on the one aiohttp session."""

    def __init__(self, config: BenchConfig) -> None:
        super().__init__(config)
        self.url = self.build_url()
        # parsed once: aiohttp would otherwise parse the string on every request
        self._url = URL(self.url)
        self.session: aiohttp.ClientSession | None = None

    def build_url(self) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def make_http_session(
    config: BenchConfig, trace: aiohttp.TraceConfig | None = None
) -> aiohttp.ClientSession:
    """The process's one aiohttp session, its connector sized to the in-flight cap."""
    connector = aiohttp.TCPConnector(
        limit=config.max_in_flight,
        limit_per_host=0,
        # resolve names once per run, not once per request
        ttl_dns_cache=None,
    )
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        raise_for_status=False,
        # decompressing or cookie handling would add client work that is not the service's
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=[trace] if trace else None,
    )


def classify_error(error: BaseException, got_response: bool) -> str:
    """Error class for an exception; `got_response` says whether headers had arrived."""
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return TIMEOUT
    if isinstance(error, aiohttp.ClientPayloadError | json.JSONDecodeError | UnicodeDecodeError):
        return BROKEN_STREAM
    if isinstance(error, aiohttp.ClientConnectorError):
        return CONNECT
    if isinstance(error, aiohttp.ClientConnectionError | ConnectionError | OSError):
        return BROKEN_STREAM if got_response else CONNECT
    return OTHER


def record_cancelled(rec: Recorder, i: int) -> None:
    """Request i was cancelled: its class and end time (the caller re-raises)."""
    rec.error[i] = CANCELLED
    rec.done[i] = perf_counter_ns()


def record_failure(rec: Recorder, i: int, error_class: str, error: BaseException) -> None:
    """Request i failed with `error`: its class, end time and message (added to its detail)."""
    rec.error[i] = error_class
    rec.done[i] = perf_counter_ns()
    rec.detail[i] = {**(rec.detail[i] or {}), "error_detail": describe_error(error)}


def describe_error(error: BaseException) -> str:
    """`Type: message`, short: what a user needs to see why requests failed."""
    text = str(error)
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__)[
        :ERROR_DETAIL_CHARS
    ]


def join_url(endpoint: str, path: str) -> str:
    """endpoint + path with exactly one slash between them."""
    return endpoint.rstrip("/") + "/" + path.lstrip("/")
