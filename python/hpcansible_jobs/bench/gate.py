"""The start gate: in a session, the measured load waits until Prometheus scrapes.

The client starts its live metrics, waits for the service, opens its connections and
then polls for `gate_file` (every GATE_POLL_S). The session writes that file, atomically,
once its Prometheus scrapes both the service's exporter and the client:
`{"released_at": "<ISO 8601 UTC>", "by": "<who released it>"}`. If `gate_timeout` passes
first, the client starts anyway and says so (a line on stderr, and `gate.timed_out` plus
a warning in summary.json). Without a gate file (`hpcansible bench` by hand) nothing
waits. A sweep waits once, before its first point.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GATE_POLL_S = 0.1


@dataclass(frozen=True)
class GateOutcome:
    """How the wait ended: summary.json's `gate`."""

    released_at: str | None  # from the gate file; None when the wait timed out
    by: str | None
    waited_s: float
    timed_out: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "released_at": self.released_at,
            "by": self.by,
            "waited_s": round(self.waited_s, 3),
            "timed_out": self.timed_out,
        }


def read_gate_file(path: Path) -> tuple[str | None, str | None]:
    """`released_at` and `by` from the gate file. A file that is not the expected JSON
    still opens the gate (it exists); its modification time stands for released_at."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("released_at"):
        by = data.get("by")
        return str(data["released_at"]), None if by is None else str(by)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None, None
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="milliseconds"), None


class StartGate:
    """Waits at most once per run (the first call); later calls return the same outcome.

    `on_open(bool)` is told False when the wait begins and True when the load may start
    (the live metrics' hpcansible_bench_gate_open)."""

    def __init__(
        self,
        path: str | None,
        timeout_s: float,
        on_open: Callable[[bool], None] | None = None,
    ) -> None:
        self.path = None if path is None else Path(os.path.expandvars(path)).expanduser()
        self.timeout_s = timeout_s
        self.on_open = on_open
        self.outcome: GateOutcome | None = None
        self.cancelled = False  # a stop signal arrived while waiting: run nothing
        self._started: float | None = None
        if on_open is not None:
            on_open(self.path is None)

    @property
    def gated(self) -> bool:
        return self.path is not None

    def summary(self) -> dict[str, Any] | None:
        """summary.json's `gate` (None when not gated or not reached)."""
        return None if self.outcome is None else self.outcome.to_json()

    def _begin(self) -> bool:
        """True when there is something to wait for."""
        if self.path is None or self.outcome is not None:
            return False
        self._started = time.monotonic()
        if self.on_open is not None:
            self.on_open(False)
        return True

    def cancel(self) -> None:
        """End a wait from a signal handler (the wait then returns None)."""
        self.cancelled = True

    def _poll(self) -> bool:
        """One look at the file; True (and the outcome set) when the wait is over."""
        assert self.path is not None and self._started is not None
        if self.cancelled:
            return True
        waited = time.monotonic() - self._started
        if self.path.exists():
            released_at, by = read_gate_file(self.path)
            self.outcome = GateOutcome(released_at, by, waited, timed_out=False)
        elif waited >= self.timeout_s:
            self.outcome = GateOutcome(None, None, waited, timed_out=True)
            print(
                f"bench: gate {self.path} not released after {self.timeout_s:g} s "
                "(gate_timeout); starting the measured load anyway",
                file=sys.stderr,
            )
        else:
            return False
        if self.on_open is not None:
            self.on_open(True)
        return True

    def wait(self) -> GateOutcome | None:
        if self._begin():
            while not self._poll():
                time.sleep(GATE_POLL_S)
        return self.outcome

    async def wait_async(self) -> GateOutcome | None:
        if self._begin():
            while not self._poll():
                await asyncio.sleep(GATE_POLL_S)
        return self.outcome
