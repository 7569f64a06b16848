"""When a request arrived: stamped as its first bytes are received, before aiohttp parses it.

A handler runs a few tenths of a millisecond after its request's bytes reached the process
(more when other requests keep the event loop busy): aiohttp first parses the headers, queues
the message and passes it through two event-loop turns, the router and the middlewares. A timing
reference taken in the handler therefore starts the stand-in's TTFT clock late by that much.

`ArrivalStamper` wraps aiohttp's protocol of one connection and reads `time.monotonic()` in
`data_received` whenever the received bytes begin a request (they start with a request line;
a later segment of a request body does not), and `request_arrival()` hands that stamp to the
handler, once. A request always begins a new segment unless it was pipelined behind another
in the same one; such a request, like any request on a server run without the stamper (aiohttp's
TestServer), gets the time the handler asked instead, which is what it was before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

# The first bytes of a request line; a late segment of the previous request's body is not one.
_REQUEST_STARTS = (b"GET ", b"POST ", b"HEAD ", b"DELETE ", b"PUT ", b"PATCH ", b"OPTIONS ")
_LOOK_AT = 16  # bytes: enough for a few empty lines and the longest method


class ArrivalStamper(asyncio.Protocol):
    """Forwards one connection's events to aiohttp's protocol, stamping when requests begin."""

    __slots__ = ("_arrival", "_inner")

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner
        self._arrival: float | None = None

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        # RFC 9112 2.2: empty lines before a request line are to be ignored
        if data[:_LOOK_AT].lstrip(b"\r\n").startswith(_REQUEST_STARTS):
            self._arrival = now
        self._inner.data_received(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def take_arrival(self) -> float | None:
        """When the latest request began, once; None if that was already taken."""
        arrival, self._arrival = self._arrival, None
        return arrival


def stamping_protocols(server: web.Server) -> Callable[[], ArrivalStamper]:
    """A protocol factory for `loop.create_server`: aiohttp's protocols, wrapped."""
    return lambda: ArrivalStamper(server())


def request_arrival(request: web.BaseRequest) -> float:
    """`time.monotonic()` when the request arrived; call once, as its handler starts."""
    transport = request.transport
    stamper = transport.get_protocol() if transport is not None else None
    arrival = stamper.take_arrival() if isinstance(stamper, ArrivalStamper) else None
    return time.monotonic() if arrival is None else arrival
