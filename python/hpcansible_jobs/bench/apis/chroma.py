"""Chroma (a vector database) through its REST API v2: queries and adds of embeddings.

No model is downloaded: embeddings are `dimensions` floats made from the seed (the same seed,
the same vectors), unit length. Before the clock starts (untimed, before the start gate) the
collection `hpcansible_bench` is created if missing and `keyspace` embeddings are upserted in
batches, so that queries search a filled index. A request is then a query (`top_k` nearest,
distances only) with one of a fixed pool of query vectors, or an add of one new embedding
(`chroma_command: add`, or `mixed` with `chroma_add_ratio` of adds spread evenly). The token
(`password`, from the session's 0600 file) goes in the Authorization header.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from hpcansible_jobs.bench.apis.base import (
    ERROR_DETAIL_CHARS,
    JSON_HEADERS,
    HttpApiClient,
    classify_error,
    join_url,
    make_http_session,
    record_cancelled,
    record_failure,
)
from hpcansible_jobs.bench.apis.redis import is_set_request
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.recorder import Recorder
from hpcansible_jobs.errors import ServiceUnreachable

DATABASE_PATH = "/api/v2/tenants/default_tenant/databases/default_database"
COLLECTION = "hpcansible_bench"
PREFILL_BATCH = 500
QUERY_POOL = 256
QUERY_DETAIL = {"command": "query"}
ADD_DETAIL = {"command": "add"}


def embedding(index: int, dimensions: int, seed: int) -> list[float]:
    """Embedding number `index`: Gaussian floats from (seed, index), scaled to unit length."""
    generator = random.Random(seed * 1_000_003 + index)
    values = [generator.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


class ChromaClient(HttpApiClient):
    def __init__(self, config: BenchConfig) -> None:
        super().__init__(config)
        self.add_ratio = {"query": 0.0, "add": 1.0}.get(
            config.chroma_command, config.chroma_add_ratio
        )
        self.headers = {**JSON_HEADERS, **config.headers}
        if config.password:
            self.headers["Authorization"] = f"Bearer {config.password}"
        self.collection_id: str | None = None
        self.query_bodies: list[bytes] = []
        self.query_url: URL | None = None
        self.add_url: URL | None = None

    def build_url(self) -> str:
        return join_url(self.config.endpoint, DATABASE_PATH)

    def _host(self) -> str:
        return urlsplit(self.config.endpoint).netloc

    async def _call(self, method: str, url: str, body: Any) -> Any:
        """An untimed call before the run; any failure is one line naming the endpoint."""
        assert self.session is not None
        try:
            async with self.session.request(
                method, url, data=json.dumps(body).encode(), headers=self.headers
            ) as response:
                text = await response.text()
                if response.status >= 300:
                    raise ServiceUnreachable(
                        f"endpoint {self._host()}: Chroma answered HTTP {response.status} to "
                        f"{url.rsplit('/', 1)[-1]} ({text[:ERROR_DETAIL_CHARS].strip()})"
                    )
                return json.loads(text) if text else None
        except (OSError, TimeoutError) as error:
            raise ServiceUnreachable(
                f"endpoint {self._host()}: cannot reach Chroma ({error})"
            ) from None

    async def start(self) -> None:
        self.session = make_http_session(self.config)
        try:
            await self._prepare()
        except ServiceUnreachable:
            await self.session.close()
            raise

    async def _prepare(self) -> None:
        """The collection, the filled index and the query pool."""
        config = self.config
        created = await self._call(
            "POST",
            f"{self.url}/collections",
            {"name": COLLECTION, "get_or_create": True, "metadata": {"hnsw:space": "l2"}},
        )
        self.collection_id = created["id"]
        base = f"{self.url}/collections/{self.collection_id}"
        self.query_url, self.add_url = URL(f"{base}/query"), URL(f"{base}/add")
        if self.worker == 0:  # one process fills the index; the others only query it
            for first in range(0, config.keyspace, PREFILL_BATCH):
                indices = range(first, min(first + PREFILL_BATCH, config.keyspace))
                await self._call(
                    "POST",
                    f"{base}/upsert",
                    {
                        "ids": [f"e{i}" for i in indices],
                        "embeddings": [
                            embedding(i, config.dimensions, config.seed) for i in indices
                        ],
                    },
                )
        offset = 10_000_000 + self.worker * QUERY_POOL
        self.query_bodies = [
            json.dumps(
                {
                    "query_embeddings": [embedding(offset + k, config.dimensions, config.seed)],
                    "n_results": config.top_k,
                    "include": ["distances"],
                }
            ).encode()
            for k in range(QUERY_POOL)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "url": f"{urlsplit(self.config.endpoint).scheme}://{self._host()}",
            "collection": COLLECTION,
            "command": self.config.chroma_command,
            "add_ratio": self.add_ratio,
            "dimensions": self.config.dimensions,
            "top_k": self.config.top_k,
            "keyspace": self.config.keyspace,
        }

    def _add_body(self, number: int) -> bytes:
        vector = embedding(20_000_000 + number, self.config.dimensions, self.config.seed)
        return json.dumps(
            {"ids": [f"a{self.config.seed}-{number}"], "embeddings": [vector]}
        ).encode()

    async def send(self, i: int, rec: Recorder) -> None:
        assert self.session is not None
        number = self.global_index(i)
        adding = is_set_request(number, self.add_ratio)
        rec.detail[i] = ADD_DETAIL if adding else QUERY_DETAIL
        url = self.add_url if adding else self.query_url
        body = self._add_body(number) if adding else self.query_bodies[i % len(self.query_bodies)]
        got_response = False
        try:
            async with self.session.post(url, data=body, headers=self.headers) as response:
                got_response = True
                rec.first_byte[i] = perf_counter_ns()
                text = await response.read()
                now = perf_counter_ns()
                rec.end[i] = now
                rec.done[i] = now
                rec.status[i] = response.status
                if response.status >= 300:
                    rec.error[i] = f"http_{response.status}"
                    detail = text[:ERROR_DETAIL_CHARS].decode("utf-8", "replace")
                    rec.detail[i] = {**rec.detail[i], "error_detail": detail}
        except asyncio.CancelledError:
            record_cancelled(rec, i)
            raise
        except Exception as error:  # every failure becomes a counted error class
            record_failure(rec, i, classify_error(error, got_response), error)
