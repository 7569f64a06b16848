"""Load schedules, computed before the run so that the hot loop only compares integers.

Open loop: a seeded list of send offsets (nanoseconds from the start). Arrivals are first
drawn at unit rate (constant: 1, 1, 1...; Poisson: exponential gaps; gamma: gamma gaps with
shape = burstiness and mean 1) and then mapped through the inverse of the cumulative rate
Λ(t). Λ ramps linearly from 0 to the target rate over `ramp` seconds, then grows at the
target rate; with no ramp Λ(t) = rate * t. This keeps the arrival process's shape
(e.g. burstiness) while the rate ramps.

Closed loop: each stream's start offset; stream j of N starts at ramp * j / N.

Workers: worker i of K takes every K-th arrival of the one global schedule (and every
K-th stream), so K processes together send exactly the schedule one process would.
"""

from __future__ import annotations

import math
import random
from array import array

NS_PER_S = 1_000_000_000
# A schedule longer than this is almost certainly a typo (rate 1e6 for an hour).
MAX_ARRIVALS = 50_000_000


def _next_gap(arrivals: str, burstiness: float, rng: random.Random) -> float:
    if arrivals == "constant":
        return 1.0
    if arrivals == "poisson":
        return rng.expovariate(1.0)
    # gamma with shape k and scale 1/k has mean 1 and coefficient of variation 1/sqrt(k)
    return rng.gammavariate(burstiness, 1.0 / burstiness)


def _inverse_cumulative_rate(units: float, rate: float, ramp_s: float) -> float:
    """Seconds t with Λ(t) = units, for Λ ramping linearly to `rate` over `ramp_s`."""
    if ramp_s <= 0:
        return units / rate
    ramp_units = rate * ramp_s / 2.0  # area under the ramp
    if units <= ramp_units:
        # Λ(t) = rate * t^2 / (2 * ramp)  =>  t = sqrt(2 * ramp * units / rate)
        return math.sqrt(2.0 * ramp_s * units / rate)
    return ramp_s + (units - ramp_units) / rate


def arrival_offsets_ns(
    rate: float,
    arrivals: str = "poisson",
    burstiness: float = 1.0,
    count: int | None = None,
    duration_s: float | None = None,
    ramp_s: float = 0.0,
    seed: int = 0,
) -> array:
    """Send offsets (ns, non-decreasing) for an open-loop run, bounded by count and/or time."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    if count is None and duration_s is None:
        raise ValueError("an open-loop schedule needs a count or a duration")
    limit = count if count is not None else MAX_ARRIVALS
    expected = rate * duration_s if duration_s is not None else float(limit)
    if min(limit, expected) > MAX_ARRIVALS:
        raise ValueError(f"schedule of more than {MAX_ARRIVALS} requests")
    end_ns = math.inf if duration_s is None else duration_s * NS_PER_S
    rng = random.Random(seed)
    offsets = array("q")
    # Constant arrivals start at 0; random ones at their first gap (as a real process would).
    units = 0.0 if arrivals == "constant" else _next_gap(arrivals, burstiness, rng)
    while len(offsets) < limit:
        offset = _inverse_cumulative_rate(units, rate, ramp_s) * NS_PER_S
        if offset >= end_ns:
            break
        offsets.append(int(offset))
        units += _next_gap(arrivals, burstiness, rng)
    return offsets


def stream_start_offsets_ns(streams: int, ramp_s: float) -> list[int]:
    """Closed loop: when each of `streams` streams starts (linear ramp, first at 0)."""
    return [int(ramp_s * NS_PER_S * j / streams) for j in range(streams)]


def share(items: list[int] | array, workers: int, index: int) -> list[int] | array:
    """Worker `index`'s share: every `workers`-th item starting at `index`."""
    return items[index::workers]


def split_count(total: int, workers: int, index: int) -> int:
    """Worker `index`'s share of `total` (the first `total % workers` workers get one more)."""
    return total // workers + (1 if index < total % workers else 0)
