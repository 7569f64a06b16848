"""Simulated inference: model loading, keep-alive, parallel slots, and token timing.

Timing model (all on `time.monotonic()`, every deadline absolute so nothing drifts):

    arrival ── load (cold model only) ── wait for a free slot (only when all are busy) ── ready
    token i (1-based) is sent at  ready + TTFT + (i - 1) * TPOT

`arrival` is when the request's first bytes reached the process (see _arrival.py). With a warm
model and a free slot, `ready` is that arrival, so the first token goes out exactly TTFT after the
request arrived. Every token's deadline is computed from the one origin `ready`, never from the
previous token. Reported durations (nanoseconds) are measured, not computed from the settings,
and follow Ollama's meaning:

    load_duration         model load, including waiting for another request's load
    prompt_eval_duration  ready -> first token sent (= TTFT)
    eval_duration         first token sent -> last token sent (= (eval_count - 1) * TPOT)
    total_duration        arrival -> last token sent, so it also contains any wait for a slot

The times are read as each token is about to be written, so that the last token can carry the
closing object (and its durations) in the same write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from hpcansible_testbed.standins._ollama_models import StoredModel
from hpcansible_testbed.standins._ollama_settings import ServerSettings
from hpcansible_testbed.standins._timer import DeadlineSleeper

# Ollama's own message (server/sched.go ErrMaxQueue), two spaces included.
SERVER_BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"


class ServerBusy(Exception):
    """More requests are waiting than OLLAMA_MAX_QUEUE allows."""


@dataclass
class LoadedModel:
    stored: StoredModel
    slots: asyncio.Semaphore
    loaded: bool = False
    active_requests: int = 0
    expires_at: float = 0.0  # monotonic; inf keeps it loaded forever
    keep_alive_seconds: float = 0.0
    loading: asyncio.Future[None] | None = None


@dataclass
class Timing:
    arrival: float
    load_seconds: float = 0.0
    ready: float = 0.0
    first_token: float = 0.0
    last_token: float = 0.0
    finished: float = 0.0

    def durations_ns(self) -> dict[str, int]:
        # Differences of whole nanoseconds, so total_duration is never less than the sum of the
        # parts it contains (rounding each difference could make it 1 ns short).
        arrival, ready, first, last, finished = map(
            _ns, (self.arrival, self.ready, self.first_token, self.last_token, self.finished)
        )
        return {
            "total_duration": max(0, finished - arrival),
            "load_duration": _ns(self.load_seconds),
            "prompt_eval_duration": max(0, first - ready),
            "eval_duration": max(0, last - first),
        }


def _ns(seconds: float) -> int:
    return max(0, round(seconds * 1e9))


@dataclass
class Engine:
    settings: ServerSettings
    sleeper: DeadlineSleeper
    waiting: int = 0
    models: dict[str, LoadedModel] = field(default_factory=dict)

    @asynccontextmanager
    async def slot(
        self, stored: StoredModel, arrival: float, keep_alive: float | None
    ) -> AsyncIterator[Timing]:
        """Admit a request: queue check, load, a free slot. Raises ServerBusy before waiting."""
        if self.waiting >= self.settings.max_queue:
            raise ServerBusy
        model = self._model(stored)
        self._expire_if_idle(model)
        timing = Timing(arrival=arrival, ready=arrival)
        model.active_requests += 1  # an admitted request keeps its model loaded
        try:
            self.waiting += 1
            try:
                timing.load_seconds = await self._ensure_loaded(model)
                had_to_wait = model.slots.locked()
                await model.slots.acquire()
            finally:
                self.waiting -= 1
            if timing.load_seconds or had_to_wait:
                timing.ready = time.monotonic()
            try:
                yield timing
            finally:
                model.slots.release()
        finally:
            model.active_requests -= 1
            self._keep_loaded_for(model, self._keep_alive(keep_alive))

    async def generate(
        self, timing: Timing, token_count: int, emit: Callable[[int], Awaitable[None]] | None
    ) -> None:
        """Produce token_count tokens on schedule, awaiting emit(index) for each (0-based).

        The timing of a token is stamped before its emit, so emit(token_count - 1) can already
        report the final durations.
        """
        ready, ttft, tpot = timing.ready, self.settings.ttft_seconds, self.settings.tpot_seconds
        sleep_until = self.sleeper.sleep_until
        last = token_count - 1
        if token_count == 0:
            await sleep_until(ready + ttft)
            timing.first_token = timing.last_token = timing.finished = time.monotonic()
            return
        for index in range(token_count):
            await sleep_until(ready + ttft + index * tpot)  # from the one origin: no drift
            now = time.monotonic()
            if index == 0:
                timing.first_token = now
            if index == last:
                timing.last_token = timing.finished = now
            if emit is not None:
                await emit(index)

    async def load_only(self, stored: StoredModel, keep_alive: float | None) -> None:
        """An empty prompt: load the model (or unload it when keep_alive is 0) and return."""
        model = self._model(stored)
        self._expire_if_idle(model)
        if self._keep_alive(keep_alive) == 0 and model.active_requests == 0:
            model.loaded = False
            return
        model.active_requests += 1
        try:
            await self._ensure_loaded(model)
        finally:
            model.active_requests -= 1
            self._keep_loaded_for(model, self._keep_alive(keep_alive))

    def running_models(self) -> list[tuple[LoadedModel, float]]:
        """Loaded models with their expiry as wall-clock seconds (inf: never)."""
        running = []
        for model in self.models.values():
            self._expire_if_idle(model)
            if not model.loaded:
                continue
            if model.active_requests:
                remaining = model.keep_alive_seconds or self.settings.keep_alive_seconds
            else:
                remaining = model.expires_at - time.monotonic()
            running.append((model, time.time() + remaining))
        return running

    def forget(self, display_name: str) -> None:
        """The model was deleted from disk."""
        model = self.models.get(display_name)
        if model is not None and model.active_requests == 0:
            del self.models[display_name]

    def _model(self, stored: StoredModel) -> LoadedModel:
        key = stored.name.display
        model = self.models.get(key)
        if model is None:
            model = LoadedModel(stored, asyncio.Semaphore(self.settings.num_parallel))
            self.models[key] = model
        model.stored = stored
        return model

    def _keep_alive(self, requested: float | None) -> float:
        return self.settings.keep_alive_seconds if requested is None else requested

    def _keep_loaded_for(self, model: LoadedModel, seconds: float) -> None:
        model.keep_alive_seconds = seconds
        if model.active_requests == 0:
            model.expires_at = time.monotonic() + seconds
            if seconds == 0:
                model.loaded = False

    def _expire_if_idle(self, model: LoadedModel) -> None:
        if model.active_requests == 0 and model.expires_at <= time.monotonic():
            model.loaded = False

    async def _ensure_loaded(self, model: LoadedModel) -> float:
        """Seconds spent loading or waiting for a concurrent load of the same model."""
        if model.loaded:
            return 0.0
        started = time.monotonic()
        while not model.loaded:
            if model.loading is not None:
                await asyncio.shield(model.loading)
                continue
            model.loading = asyncio.get_running_loop().create_future()
            try:
                await self.sleeper.sleep_until(started + self.settings.load_seconds)
                model.loaded = True
            finally:
                model.loading.set_result(None)
                model.loading = None
        return time.monotonic() - started
