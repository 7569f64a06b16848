"""Sleep until an absolute `time.monotonic()` deadline with sub-millisecond accuracy.

Event-loop timers are not accurate enough for calibrated token timing: uvloop rounds delays to
whole milliseconds on a millisecond clock (measured here: wake-ups up to 1.2 ms *early*), and the
stock loop rounds epoll timeouts up (about 1 ms late on average). One Linux timerfd armed at the
earliest pending deadline (absolute CLOCK_MONOTONIC, which is what `time.monotonic()` reads) wakes
the loop within ~0.1 ms and never early. Where timerfd is unavailable, the loop's own timer is used
with its millisecond rounding compensated, so wake-ups are late by at most about 1 ms, never early.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import math
import os
import time

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create  # noqa: B018 - probe: absent on non-Linux systems
    except (OSError, AttributeError):
        return None
    return libc


class DeadlineSleeper:
    """Wakes coroutines at absolute monotonic deadlines; one instance per event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # tie-breaker so futures are never compared
        self._armed_for: float | None = None
        self._libc = _load_libc()
        self._fd = -1
        if self._libc is not None:
            self._fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._fd >= 0:
            loop.add_reader(self._fd, self._on_timer_expired)

    @property
    def uses_timerfd(self) -> bool:
        return self._fd >= 0

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= time.monotonic():
            return
        if not self.uses_timerfd:
            await self._sleep_with_loop_timer(deadline)
            return
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._pending, (deadline, next(self._order), future))
        if self._armed_for is None or deadline < self._armed_for:
            self._arm(deadline)
        await future

    async def _sleep_with_loop_timer(self, deadline: float) -> None:
        # Loop timers work in whole milliseconds and uvloop's may fire early: round up, re-check.
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(math.ceil(remaining * 1000) / 1000)

    def _arm(self, deadline: float) -> None:
        assert self._libc is not None
        nanoseconds = max(1, round(deadline * 1e9))  # an all-zero value would disarm the timer
        value = _Timespec(nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)
        spec = _Itimerspec(_Timespec(0, 0), value)
        self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)
        self._armed_for = deadline

    def _on_timer_expired(self) -> None:
        with contextlib.suppress(BlockingIOError):  # re-armed after firing: count was reset
            os.read(self._fd, 8)
        now = time.monotonic()
        pending = self._pending
        while pending and pending[0][0] <= now:
            future = heapq.heappop(pending)[2]
            if not future.done():  # the waiter may have been cancelled (client went away)
                future.set_result(None)
        self._armed_for = None
        if pending:
            self._arm(pending[0][0])

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
