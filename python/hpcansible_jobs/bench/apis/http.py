"""Plain HTTP: one method, path and body; success is the expected status."""

from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

from hpcansible_jobs.bench.apis.base import (
    ERROR_DETAIL_CHARS,
    HttpApiClient,
    classify_error,
    join_url,
    make_http_session,
    record_cancelled,
    record_failure,
)
from hpcansible_jobs.bench.recorder import Recorder


class HttpClient(HttpApiClient):
    def build_url(self) -> str:
        # --path overrides the endpoint's own path (http://host:port/index.html works alone)
        config = self.config
        url = join_url(config.endpoint, config.path) if config.path else config.endpoint
        return url if urlsplit(url).path else url + "/"

    async def start(self) -> None:
        self.session = make_http_session(self.config)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "method": self.config.method}

    async def send(self, i: int, rec: Recorder) -> None:
        assert self.session is not None
        got_response = False
        try:
            async with self.session.request(
                self.config.method, self._url, data=self.config.body, headers=self.config.headers
            ) as response:
                got_response = True
                rec.first_byte[i] = perf_counter_ns()
                body = await response.read()
                now = perf_counter_ns()
                rec.end[i] = now
                rec.done[i] = now
                status = response.status
                rec.status[i] = status
                if status != self.config.expect_status:
                    rec.error[i] = f"http_{status}"
                    text = body[:ERROR_DETAIL_CHARS].decode("utf-8", "replace")
                    rec.detail[i] = {"error_detail": text}
        except asyncio.CancelledError:
            record_cancelled(rec, i)
            raise
        except Exception as error:  # every failure becomes a counted error class
            record_failure(rec, i, classify_error(error, got_response), error)
