"""Redis through redis-py's asyncio client: GET, SET or a mix, with set key/value sizes.

Keys are `k` + zero-padded numbers, `key_size` bytes long; request i uses key
(i * a large prime) mod keyspace, which visits every key before repeating. With `mixed`,
exactly `redis_set_ratio` of the requests are SETs, spread evenly. Before a get/mixed run
every key is written once (pipelined, untimed) so that GETs hit.
"""

from __future__ import annotations

import asyncio
import inspect
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.asyncio.connection as redis_connection
import redis.exceptions as redis_errors

from hpcansible_jobs.bench.apis.base import (
    ApiClient,
    record_cancelled,
    record_failure,
)
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.recorder import CONNECT, OTHER, TIMEOUT, Recorder
from hpcansible_jobs.errors import ServiceUnreachable

KEY_STRIDE = 2_654_435_761  # prime, larger than any allowed keyspace: a full permutation
PREFILL_BATCH = 1000
# Shared (never copied) record details: the hot path stores a reference, not a new dict.
GET_DETAIL = {"command": "GET"}
SET_DETAIL = {"command": "SET"}


def _no_client_setinfo() -> dict[str, None]:
    """Connection options that skip CLIENT SETINFO on connect: redis-py reads its version
    from package metadata for it (~1 ms each), which stalls the loop while an open-loop
    run grows its pool. redis-py 8 spells it driver_info=None, older ones lib_name=None."""
    base = getattr(redis_connection, "AbstractConnection", aioredis.Connection)
    parameters = inspect.signature(base.__init__).parameters
    if "driver_info" in parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


_NO_CLIENT_SETINFO = _no_client_setinfo()


def key_name(index: int, key_size: int) -> bytes:
    return b"k" + str(index).zfill(key_size - 1).encode()


def is_set_request(i: int, set_ratio: float) -> bool:
    """True for the requests that are SETs: floor((i+1)r) > floor(ir) spreads them evenly."""
    return int((i + 1) * set_ratio) > int(i * set_ratio)


def classify_redis_error(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError | TimeoutError | redis_errors.TimeoutError):
        return TIMEOUT
    if isinstance(error, redis_errors.AuthenticationError):
        return "auth"
    if isinstance(error, redis_errors.ConnectionError | ConnectionError | OSError):
        return CONNECT
    if isinstance(error, redis_errors.ResponseError):
        return "redis_error"
    return OTHER


class RedisClient(ApiClient):
    def __init__(self, config: BenchConfig) -> None:
        super().__init__(config)
        self.set_ratio = {"get": 0.0, "set": 1.0}.get(config.redis_command, config.redis_set_ratio)
        self.keys = [key_name(k, config.key_size) for k in range(config.keyspace)]
        self.value = b"v" * config.value_size
        self.client: aioredis.Redis | None = None

    async def start(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            self.config.endpoint,
            max_connections=self.config.max_in_flight,
            timeout=self.config.timeout,
            socket_timeout=self.config.timeout,
            socket_connect_timeout=min(self.config.timeout, 10.0),
            # RESP2 works with every server version (RESP3's HELLO needs Redis 6+)
            protocol=2,
            **_NO_CLIENT_SETINFO,
            **({"password": self.config.password} if self.config.password else {}),
        )
        self.client = aioredis.Redis(connection_pool=pool)
        if self.set_ratio < 1.0 and self.config.redis_prefill:
            await self.prefill()

    async def prefill(self) -> None:
        assert self.client is not None
        try:
            for first in range(0, len(self.keys), PREFILL_BATCH):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key in self.keys[first : first + PREFILL_BATCH]:
                        pipe.set(key, self.value)
                    await pipe.execute()
        except redis_errors.RedisError as error:
            host = urlsplit(self.config.endpoint).netloc.rpartition("@")[2]
            raise ServiceUnreachable(
                f"endpoint {host}: cannot prefill Redis keys ({type(error).__name__}: {error})"
            ) from None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def describe(self) -> dict[str, Any]:
        host = urlsplit(self.config.endpoint).netloc.rpartition("@")[2]
        return {
            "url": f"{urlsplit(self.config.endpoint).scheme}://{host}",
            "command": self.config.redis_command,
            "set_ratio": self.set_ratio,
            "key_size": self.config.key_size,
            "value_size": self.config.value_size,
            "keyspace": self.config.keyspace,
        }

    async def send(self, i: int, rec: Recorder) -> None:
        assert self.client is not None
        number = self.worker + i * self.workers
        key = self.keys[(number * KEY_STRIDE) % len(self.keys)]
        try:
            if is_set_request(number, self.set_ratio):
                rec.detail[i] = SET_DETAIL
                await self.client.set(key, self.value)
            else:
                rec.detail[i] = GET_DETAIL
                await self.client.get(key)
            now = perf_counter_ns()
            rec.end[i] = now
            rec.done[i] = now
        except asyncio.CancelledError:
            record_cancelled(rec, i)
            raise
        except Exception as error:  # every failure becomes a counted error class
            record_failure(rec, i, classify_redis_error(error), error)
